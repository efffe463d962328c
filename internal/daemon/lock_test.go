package daemon

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/parsers"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

func totalAttempts(t *testing.T, addr string) int {
	c, err := redis.Dial("tcp", addr, redis.DialDatabase(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m, _ := redis.IntMap(c.Do("HGETALL", stats.TotalsKey))
	n := 0
	for k, v := range m {
		if len(k) == 4 {
			n += v
		}
	}
	return n
}

func killLockConn(t *testing.T, c redis.Conn) {
	list, _ := redis.String(c.Do("CLIENT", "LIST"))
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name=alog-") {
			for _, f := range strings.Fields(line) {
				if id, ok := strings.CutPrefix(f, "id="); ok {
					if _, err := c.Do("CLIENT", "KILL", "ID", id); err != nil {
						t.Fatal(err)
					}
					return
				}
			}
		}
	}
	t.Fatal("no lock connection found")
}

// R1: daemon A's lock connection drops (network blip, Redis-side kill,
// counting Redis restart) while A holds a claimed batch. B starts, takes the
// lock over at once, reclaims A's in-flight batch and counts it; A, stopping
// on the lost lock, still finishes (applies) the same batch: counted twice.
func TestBatchInFlightIsCountedOnceWhenTheLockIsTakenOver(t *testing.T) {
	h := newHarness(t)
	h.d.Close()
	cfg := *h.d.cfg
	cfg.Pool = 1
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h.d = New(Options{Config: &cfg, Log: slog.New(slog.NewTextHandler(h.log, nil)),
		BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond,
		wrapParse: func(p parsers.Parser) parsers.Parser {
			return hookParser{p, func() { once.Do(func() { close(entered); <-release }) }}
		}})
	t.Cleanup(h.d.Close)
	ls := lines(40, 3) // < batch_size: one batch
	want := workload.Expect(ls, time.UTC)
	h.push(ls)
	h.run()
	<-entered // A holds batch X on slot 0, mid-parse
	killLockConn(t, h.cnt.Conn(0))
	b := New(Options{Config: &cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond, LockWait: time.Second})
	t.Cleanup(b.Close)
	bctx, bcancel := context.WithCancel(context.Background())
	bdone := make(chan error, 1)
	go func() { bdone <- b.Run(bctx, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for totalAttempts(t, h.cnt.Addr()) != want.Attempts && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("after B: %d attempts counted, want %d", totalAttempts(t, h.cnt.Addr()), want.Attempts)
	close(release)
	select {
	case err := <-h.done:
		t.Logf("A stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("A did not stop")
	}
	bcancel()
	<-bdone
	if got := totalAttempts(t, h.cnt.Addr()); got != want.Attempts {
		t.Fatalf("counted %d attempts, want %d (batch counted by both daemons)", got, want.Attempts)
	}
}

// R2: a transient write refusal (OOM here; MISCONF, READONLY, LOADING
// alike) while taking the lock is an outage to wait out, not a reason to
// run without the lock: once it clears the first daemon holds member 0's
// lock and a second joins as member 1.
func TestLockWaitsOutAWriteRefusal(t *testing.T) {
	h := newHarness(t)
	c := h.cnt.Conn(0)
	if _, err := c.Do("CONFIG", "SET", "maxmemory", "1"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type result struct {
		l   *stats.Lock
		err error
	}
	got := make(chan result, 1)
	go func() {
		l, err := h.d.ingester.TakeLock(ctx)
		got <- result{l, err}
	}()
	h.waitRedisErrors("counting", 3)
	select {
	case r := <-got:
		t.Fatalf("lock under OOM returned %v, %v; want it to wait the outage out", r.l, r.err)
	default:
	}
	if _, err := c.Do("CONFIG", "SET", "maxmemory", "0"); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.l == nil {
		t.Fatalf("lock after the outage = %v, %v", r.l, r.err)
	}
	defer r.l.Release(context.Background())
	if r.l.Member() != 0 || r.l.Key() != stats.LockKey(queue) {
		t.Fatalf("first daemon: member %d on %s; want member 0 on the queue's lock", r.l.Member(), r.l.Key())
	}
	// A second daemon joins the queue as member 1 (SPEC §14).
	cfg := *h.d.cfg
	d2 := New(Options{Config: &cfg, LockWait: time.Second})
	t.Cleanup(d2.Close)
	l2, err := d2.ingester.TakeLock(ctx)
	if err != nil || l2 == nil || l2.Member() != 1 {
		t.Fatalf("second daemon: lock %v, err %v; want member 1", l2, err)
	}
	l2.Release(context.Background())
}

// hookParser calls hook before each parse.
type hookParser struct {
	parsers.Parser
	hook func()
}

func (h hookParser) Parse(line []byte, ref time.Time) (parsers.Event, int) {
	h.hook()
	return h.Parser.Parse(line, ref)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// R3: Flush's live-consumer check and Rebuild's marker are not ordered
// against a daemon's preflight (marker read) and lock (write): a daemon that
// starts in between counts during the rebuild.
func TestFlushUnderAStartingDaemonCountsOnce(t *testing.T) {
	h := newHarness(t)
	ls := lines(3000, 4)
	want := workload.Expect(ls, time.UTC)
	h.push(ls[:1500])
	h.run()
	h.waitCounted(workload.Expect(ls[:1500], time.UTC).Attempts, 30*time.Second)
	h.stop()
	cfg := *h.d.cfg
	f := New(Options{Config: &cfg})
	t.Cleanup(f.Close)
	// Flush step 1: no live consumer.
	live, err := f.store.LiveConsumers(context.Background())
	if err != nil || len(live) != 0 {
		t.Fatal(live, err)
	}
	// A daemon starts now: preflight passes (no marker yet), lock taken.
	d := New(Options{Config: &cfg, BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond})
	t.Cleanup(d.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, nil) }()
	h.waitFor(20*time.Second, "the second daemon holding the lock", func() bool {
		live, _ := f.store.LiveConsumers(context.Background())
		return len(live) > 0
	})
	pushed := make(chan struct{})
	go func() { // lines keep arriving while the flush rebuilds
		defer close(pushed)
		for i := 1500; i < len(ls); i += 10 {
			h.push(ls[i:min(i+10, len(ls))])
		}
	}()
	// Flush step 2: Rebuild (marker, FLUSHDB, recount) under the live daemon.
	if _, err := f.store.Rebuild(context.Background(), time.UTC, 100, nil); err != nil {
		t.Fatal(err)
	}
	<-pushed
	// Every line counted (a batch counted twice would overshoot and never
	// match; the count after the stop is compared again below).
	h.waitFor(60*time.Second, "every line counted", func() bool {
		q, _ := redis.Int(h.d4.Conn(2).Do("LLEN", d4queue.QueueKey(queue)))
		return q == 0 && totalAttempts(t, h.cnt.Addr()) == want.Attempts
	})
	cancel()
	<-done
	got := totalAttempts(t, h.cnt.Addr())
	t.Logf("counted %d, want %d", got, want.Attempts)
	if got != want.Attempts {
		t.Fatalf("counted %d attempts, want %d", got, want.Attempts)
	}
}

// R4: a leftover slot (beyond the pool) whose processing list holds a line
// a late BRPOPLPUSH put above its tagged batch: drainLeftovers acks the
// batch once and moves on; the line stays stranded for this whole run.
func TestLeftoverSlotIsDrainedToEmpty(t *testing.T) {
	h := newHarness(t)
	ls := lines(3, 8)
	raw := h.d4.Conn(2)
	pk := "alog:processing:" + queue + ":7"
	raw.Do("LPUSH", pk, ls[0].Raw, ls[1].Raw) // batch (tail)
	raw.Do("SET", "alog:batch:"+queue+":7", "B 2")
	raw.Do("LPUSH", pk, ls[2].Raw) // late line at head
	h.run()
	h.waitFor(20*time.Second, "the leftover slot drained to empty", func() bool {
		n, _ := redis.Int(raw.Do("LLEN", pk))
		return n == 0
	})
	h.stop()
}
