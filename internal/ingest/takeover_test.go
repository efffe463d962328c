package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	dto "github.com/prometheus/client_model/go"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

func counter(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// todayLines are n sshd lines of today, so that no age limit drops them.
func todayLines(n int) []string {
	ts := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s h%d sshd[%d]: Invalid user u%d from 192.0.2.%d", ts, i%3, 100+i, i, 1+i%200)
	}
	return out
}

// Three daemons on one queue: the second dies (SIGKILL: its connections
// close) holding a batch in flight in its own slot. The other two, and a
// third that looks at the same moment, race to finish it: it is counted
// once, its slot is emptied, one takeover is counted, and the dead
// daemon's token can no longer count through its member. A live member's
// batch is never taken.
func TestTakeoverFinishesADeadMembersBatchOnce(t *testing.T) {
	d4 := redistest.Start(t, redistest.Options{})
	cnt := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	a, _, d4Pool := newTestIngester(t, d4.Addr(), cnt.Addr())
	b, storeB, _ := newTestIngester(t, d4.Addr(), cnt.Addr())
	c, _, _ := newTestIngester(t, d4.Addr(), cnt.Addr())
	var locks []*stats.Lock
	for _, in := range []*Ingester{a, b, c} {
		l, err := in.TakeLock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		locks = append(locks, l)
	}
	defer locks[0].Release(ctx)
	defer locks[2].Release(ctx)
	for i, l := range locks {
		if l.Member() != i {
			t.Fatalf("daemon %d joined as member %d", i, l.Member())
		}
	}
	if b.firstSlot() != d4queue.SlotStride {
		t.Fatalf("member 1's first slot %d, want %d", b.firstSlot(), d4queue.SlotStride)
	}
	raw := d4.Conn(2)
	for _, l := range todayLines(10) {
		raw.Do("LPUSH", d4queue.QueueKey(queue), l)
	}
	slot := d4queue.MemberSlot(1, 0)
	cb := &d4queue.Consumer{Pool: d4Pool, Queue: queue, Slot: slot, MaxLine: 1 << 20}
	batch, err := cb.Claim(ctx, "X", 50)
	if err != nil || batch.Len() != 10 {
		t.Fatalf("claim: %d lines, %v", batch.Len(), err)
	}
	// Alive, member 1's batch is left alone.
	if err := a.Takeover(locks[0]).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := redis.Int(raw.Do("LLEN", d4queue.ProcessingKey(queue, slot))); n != 10 {
		t.Fatalf("a live member's batch was taken: %d lines left in its slot", n)
	}
	redistest.KillClientsNamed(t, cnt.Conn(0), "alog-"+locks[1].Token())
	var wg sync.WaitGroup
	for i, in := range []*Ingester{a, c, a} {
		l := locks[0]
		if in == c {
			l = locks[2]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.Takeover(l).Once(ctx); err != nil {
				t.Errorf("takeover %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, time.Now().UTC().Format("20060102"))); n != 10 {
		t.Fatalf("10 lines in flight, %d counted", n)
	}
	if n, _ := redis.Int(raw.Do("EXISTS", d4queue.ProcessingKey(queue, slot), d4queue.BatchKey(queue, slot))); n != 0 {
		t.Fatal("the dead member's slot is not empty")
	}
	if got := counter(t, a.o.Metrics.Takeovers) + counter(t, c.o.Metrics.Takeovers); got != 1 {
		t.Fatalf("takeovers counted %v, want 1", got)
	}
	if n, _ := redis.Int(cnt.Conn(0).Do("EXISTS", stats.MemberKey(queue, 1))); n != 0 {
		t.Fatal("the dead member's lock was not released after the takeover")
	}
	// Its member, empty and free, is forgotten at the next look; the live
	// member 2 stays registered.
	if err := a.Takeover(locks[0]).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if ms, err := storeB.Members(ctx, queue); err != nil || fmt.Sprint(ms) != "[2]" {
		t.Fatalf("registered members %v, %v; want [2]", ms, err)
	}
	// The dead daemon's token counts nothing any more.
	again := stats.NewBatch()
	again.Add(time.Now().UTC(), []byte("h"), []byte("u"), []byte("192.0.2.9"))
	rec := stats.Applied{Queue: queue, Slot: slot, ID: "Y", LockKey: locks[1].Key(), Token: locks[1].Token()}
	if err := storeB.Apply(ctx, again, &rec); !errors.Is(err, stats.ErrLocked) {
		t.Fatalf("apply by the dead member's token: %v; want ErrLocked", err)
	}
}

// A daemon cut off by the network keeps its connection listed in the
// counting Redis; its batch is taken over once its lease runs out, and the
// cut-off daemon, back, cannot count it again.
func TestTakeoverAfterTheLeaseOfACutOffDaemon(t *testing.T) {
	d4 := redistest.Start(t, redistest.Options{})
	cnt := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	a, storeA, d4Pool := newTestIngester(t, d4.Addr(), cnt.Addr())
	b, storeB, _ := newTestIngester(t, d4.Addr(), cnt.Addr())
	storeA.Lease, storeB.Lease = 500*time.Millisecond, 500*time.Millisecond
	la, err := a.TakeLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer la.Release(ctx)
	lb, err := b.TakeLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release(ctx)
	raw := d4.Conn(2)
	for _, l := range todayLines(7) {
		raw.Do("LPUSH", d4queue.QueueKey(queue), l)
	}
	slot := d4queue.MemberSlot(lb.Member(), 0)
	cb := &d4queue.Consumer{Pool: d4Pool, Queue: queue, Slot: slot, MaxLine: 1 << 20}
	batch, err := cb.Claim(ctx, "X", 50)
	if err != nil || batch.Len() != 7 {
		t.Fatalf("claim: %d lines, %v", batch.Len(), err)
	}
	// b stops renewing (cut off); a keeps its own lease and looks.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := la.Keep(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Takeover(la).Once(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := redis.Int(raw.Do("EXISTS", d4queue.ProcessingKey(queue, slot))); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cut-off daemon's batch was not taken over after its lease")
		}
		time.Sleep(100 * time.Millisecond)
	}
	day := time.Now().UTC().Format("20060102")
	if n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, day)); n != 7 {
		t.Fatalf("7 lines in flight, %d counted", n)
	}
	// Back, b finishes the batch it held: the record says it is counted.
	b.Workers(lb).process(ctx, cb, b.newBatchParser(), batch, true)
	if n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, day)); n != 7 {
		t.Fatalf("the cut-off daemon counted its batch again: %d", n)
	}
}

// A lone daemon (member 0, no other member registered) looks for dead
// daemons' batches without sending the D4 Redis a single command.
func TestTakeoverOfALoneDaemonCostsTheD4RedisNothing(t *testing.T) {
	d4 := redistest.Start(t, redistest.Options{})
	cnt := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	a, _, _ := newTestIngester(t, d4.Addr(), cnt.Addr())
	l, err := a.TakeLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	processed := func() int {
		info, err := redis.String(d4.Conn(0).Do("INFO", "stats"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
				var n int
				fmt.Sscan(v, &n)
				return n
			}
		}
		t.Fatal("no total_commands_processed")
		return 0
	}
	before := processed()
	for i := 0; i < 5; i++ {
		if err := a.Takeover(l).Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The second INFO is the one command served.
	if n := processed() - before; n != 1 {
		t.Fatalf("the D4 Redis served %d commands for five looks of a lone daemon; want none", n-1)
	}
	// Once a second member has joined, the D4 Redis is asked.
	b, _, _ := newTestIngester(t, d4.Addr(), cnt.Addr())
	lb, err := b.TakeLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release(ctx)
	before = processed()
	if err := a.Takeover(l).Once(ctx); err != nil {
		t.Fatal(err)
	}
	if n := processed() - before; n < 2 {
		t.Fatalf("with two members the look asked the D4 Redis nothing (%d)", n-1)
	}
}
