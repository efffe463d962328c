package d4queue_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
)

const uuid = "3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d11"

func setup(t *testing.T) (*redistest.Server, *d4queue.Consumer, redis.Conn) {
	srv := redistest.Start(t, redistest.Options{})
	p := &redis.Pool{Dial: func() (redis.Conn, error) {
		return redis.Dial("tcp", srv.Addr(), redis.DialDatabase(2))
	}, MaxActive: 4, Wait: true}
	t.Cleanup(func() { p.Close() })
	return srv, &d4queue.Consumer{Pool: p, Queue: uuid, Slot: 0, MaxLine: 100}, srv.Conn(2)
}

func push(t *testing.T, c redis.Conn, lines ...string) {
	t.Helper()
	for _, l := range lines {
		// The D4 server LPUSHes each line: newest at the head.
		if _, err := c.Do("LPUSH", d4queue.QueueKey(uuid), l); err != nil {
			t.Fatal(err)
		}
	}
}

func lines(b d4queue.Batch) string {
	var s []string
	for _, l := range b.Lines {
		s = append(s, string(l))
	}
	return strings.Join(s, ",")
}

func TestClaimOldestFirstAndAck(t *testing.T) {
	_, c, conn := setup(t)
	ctx := context.Background()
	push(t, conn, "1", "2", "3", "4", "5")
	b, err := c.Claim(ctx, "id1", 3)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID != "id1" || lines(b) != "1,2,3" {
		t.Fatalf("claim = %q %q; want id1 1,2,3", b.ID, lines(b))
	}
	// Before the ack, a claim (after a crash) returns the same batch.
	again, err := c.Claim(ctx, "id2", 3)
	if err != nil || again.ID != "id1" || lines(again) != "1,2,3" {
		t.Fatalf("reclaim = %q %q %v; want the batch in flight", again.ID, lines(again), err)
	}
	if err := c.Ack(ctx, "id1"); err != nil {
		t.Fatal(err)
	}
	// A stale ack is harmless.
	if err := c.Ack(ctx, "id1"); err != nil {
		t.Fatal(err)
	}
	b, _ = c.Claim(ctx, "id3", 10)
	if b.ID != "id3" || lines(b) != "4,5" {
		t.Fatalf("second claim = %q %q", b.ID, lines(b))
	}
	if err := c.Ack(ctx, "id3"); err != nil {
		t.Fatal(err)
	}
	empty, err := c.Claim(ctx, "id4", 10)
	if err != nil || empty.ID != "" || empty.Len() != 0 {
		t.Fatalf("claim of empty queue = %+v, %v", empty, err)
	}
	if n, _ := redis.Int(conn.Do("EXISTS", d4queue.BatchKey(uuid, 0), d4queue.ProcessingKey(uuid, 0))); n != 0 {
		t.Fatalf("%d bookkeeping keys left after ack", n)
	}
}

func TestWaitBlocksThenClaimTagsIt(t *testing.T) {
	_, c, conn := setup(t)
	ctx := context.Background()
	start := time.Now()
	got, err := c.Wait(ctx, 200*time.Millisecond)
	if err != nil || got {
		t.Fatalf("wait on empty queue = %v, %v", got, err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Fatalf("wait returned after %v, did not block", time.Since(start))
	}
	push(t, conn, "a")
	got, err = c.Wait(ctx, time.Second)
	if err != nil || !got {
		t.Fatalf("wait with a line = %v, %v", got, err)
	}
	push(t, conn, "b")
	b, err := c.Claim(ctx, "x", 10)
	if err != nil || b.ID != "x" || lines(b) != "a,b" {
		t.Fatalf("claim after wait = %q %q %v", b.ID, lines(b), err)
	}
}

func TestLongLinesReturnOnlyTheirLength(t *testing.T) {
	_, c, conn := setup(t)
	push(t, conn, "short", strings.Repeat("x", 101), "tail")
	b, err := c.Claim(context.Background(), "id", 10)
	if err != nil {
		t.Fatal(err)
	}
	if lines(b) != "short,tail" || fmt.Sprint(b.Long) != "[101]" || b.Len() != 3 {
		t.Fatalf("batch = %q long %v", lines(b), b.Long)
	}
}

func TestBinaryLinesSurvive(t *testing.T) {
	_, c, conn := setup(t)
	raw := "\x00\xff\r\n trailing  "
	push(t, conn, raw)
	b, err := c.Claim(context.Background(), "id", 10)
	if err != nil || len(b.Lines) != 1 || string(b.Lines[0]) != raw {
		t.Fatalf("binary line came back as %q, %v", b.Lines, err)
	}
}

func TestLengthsAndLeftovers(t *testing.T) {
	_, c, conn := setup(t)
	ctx := context.Background()
	push(t, conn, "1", "2", "3")
	c.Slot = 7
	if _, err := c.Claim(ctx, "id", 2); err != nil {
		t.Fatal(err)
	}
	q, proc, err := d4queue.Lengths(ctx, c.Pool, uuid, 8)
	if err != nil || q != 1 || proc != 2 {
		t.Fatalf("Lengths = %d, %d, %v; want 1, 2", q, proc, err)
	}
	left, err := d4queue.Leftovers(ctx, c.Pool, uuid, 4)
	if err != nil || fmt.Sprint(left) != "[7]" {
		t.Fatalf("Leftovers = %v, %v; want [7]", left, err)
	}
	left, _ = d4queue.Leftovers(ctx, c.Pool, uuid, 8)
	if len(left) != 0 {
		t.Fatalf("Leftovers within the pool = %v", left)
	}
}

func TestBatchBytesAreCapped(t *testing.T) {
	_, c, conn := setup(t)
	c.MaxLine = 1000
	c.MaxBytes = 2500
	line := strings.Repeat("x", 1000)
	push(t, conn, line, line, line, line, line, strings.Repeat("y", 5000))
	b, err := c.Claim(context.Background(), "id", 100)
	if err != nil || len(b.Lines) != 3 {
		t.Fatalf("claim returned %d lines (%v); want 3 (2500 bytes reached on the third)", len(b.Lines), err)
	}
}

// A blocking wait that reaches Redis late (its client gave up) can push a
// line onto a processing list whose batch is already tagged. That line is
// not part of the batch: the ack must leave it, and the next claim take it.
func TestLateWaitLineIsNotAcknowledgedWithTheBatch(t *testing.T) {
	_, c, conn := setup(t)
	ctx := context.Background()
	push(t, conn, "1", "2")
	b, err := c.Claim(ctx, "first", 10)
	if err != nil || lines(b) != "1,2" {
		t.Fatalf("claim = %q, %v", lines(b), err)
	}
	// What BRPOPLPUSH does when it finally runs.
	push(t, conn, "late")
	if _, err := conn.Do("RPOPLPUSH", d4queue.QueueKey(uuid), d4queue.ProcessingKey(uuid, 0)); err != nil {
		t.Fatal(err)
	}
	again, err := c.Claim(ctx, "other", 10)
	if err != nil || again.ID != "first" || lines(again) != "1,2" {
		t.Fatalf("reclaim = %q %q, %v; want the tagged batch only", again.ID, lines(again), err)
	}
	if err := c.Ack(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	next, err := c.Claim(ctx, "second", 10)
	if err != nil || next.ID != "second" || lines(next) != "late" {
		t.Fatalf("claim after ack = %q %q, %v; want the late line", next.ID, lines(next), err)
	}
}

// Slots of several members: each member's leftovers are its own, InFlight
// lists every member's slot (a lone batch key included) and no other
// queue's, and lengths follow one member's slots.
func TestMemberSlots(t *testing.T) {
	_, c, conn := setup(t)
	ctx := context.Background()
	push(t, conn, "1", "2", "3", "4", "5")
	for _, s := range []int{0, 7, d4queue.MemberSlot(1, 0), d4queue.MemberSlot(2, 9)} {
		c.Slot = s
		if _, err := c.Claim(ctx, "id", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Do("SET", d4queue.BatchKey(uuid, d4queue.MemberSlot(3, 1)), "lone 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Do("LPUSH", d4queue.ProcessingKey("other-queue", 5), "x"); err != nil {
		t.Fatal(err)
	}
	all, err := d4queue.InFlight(ctx, c.Pool, uuid)
	if err != nil || fmt.Sprint(all) != "[0 7 10000 20009 30001]" {
		t.Fatalf("InFlight = %v, %v", all, err)
	}
	if d4queue.SlotMember(20009) != 2 || d4queue.SlotMember(9999) != 0 {
		t.Fatal("SlotMember")
	}
	for m, want := range map[int]string{0: "[7]", 1: "[]", 2: "[20009]"} {
		left, err := d4queue.MemberLeftovers(ctx, c.Pool, uuid, m, 4)
		if err != nil || fmt.Sprint(left) != want {
			t.Fatalf("member %d leftovers = %v, %v; want %s", m, left, err, want)
		}
	}
	q, proc, err := d4queue.LengthsFrom(ctx, c.Pool, uuid, d4queue.MemberSlot(1, 0), 4)
	if err != nil || q != 1 || proc != 1 {
		t.Fatalf("member 1 lengths = %d, %d, %v; want 1, 1", q, proc, err)
	}
}
