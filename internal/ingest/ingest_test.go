package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/parsers"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

const queue = "5b3c8f0e-2d6a-4c1b-9e7f-0a1b2c3d4e5f"

const oneLine = "2026-01-22T11:59:37Z h sshd[1]: Invalid user git from 192.0.2.1\n"

func testPool(addr string, db int) *redis.Pool {
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", addr, redis.DialDatabase(db),
				redis.DialReadTimeout(10*time.Second), redis.DialWriteTimeout(10*time.Second))
		},
		MaxIdle: 8, MaxActive: 8, Wait: true,
	}
}

// newTestIngester builds an Ingester on real Redis servers at d4Addr and
// cntAddr, with one worker and batches of 50.
func newTestIngester(t *testing.T, d4Addr, cntAddr string) (*Ingester, *stats.Store, *redis.Pool) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New(prometheus.NewRegistry(), "test", SkipReasons(parsers.Registry()))
	store := &stats.Store{Stats: testPool(cntAddr, stats.StatsDB), Attempts: testPool(cntAddr, stats.AttemptsDB)}
	d4 := testPool(d4Addr, 2)
	t.Cleanup(func() { store.Stats.Close(); store.Attempts.Close(); d4.Close() })
	in := New(Options{
		Store: store, D4: d4, Queue: queue, Workers: 1, BatchSize: 50, MaxLine: 1 << 20,
		Parsers: parsers.Registry(), Parse: parsers.Options{Location: time.UTC},
		Metrics: m, Log: log,
		D4Outage:       NewOutage(metrics.ServerD4, d4Addr, "", log, m, nil),
		CountingOutage: NewOutage(metrics.ServerCounting, cntAddr, "", log, m, nil),
		BackoffMax:     100 * time.Millisecond,
	})
	return in, store, d4
}

func TestBackoffIsCappedWithJitter(t *testing.T) {
	for n, want := range map[int]time.Duration{0: 50 * time.Millisecond, 3: 400 * time.Millisecond, 10: time.Second, 100: time.Second} {
		got := Backoff(n, time.Second, func() float64 { return 0.999 })
		if got > want || got < want*49/100 {
			t.Errorf("backoff(%d) = %v, want within [%v/2, %v]", n, got, want, want)
		}
	}
	if got := Backoff(100, time.Second, func() float64 { return 0 }); got != 500*time.Millisecond {
		t.Errorf("backoff with zero jitter = %v, want half the cap", got)
	}
}

func TestLineReaderHandlesLongLines(t *testing.T) {
	long := strings.Repeat("x", 3000)
	in := "a\n" + long + "\n\nb\r\n" + strings.Repeat("y", 1500) + "\nlast"
	lr := newLineReader(strings.NewReader(in), 2000)
	var got []string
	for {
		line, tooLong, err := lr.next()
		if err != nil {
			break
		}
		if tooLong {
			got = append(got, "<long>")
			continue
		}
		got = append(got, string(line))
	}
	want := []string{"a", "<long>", "", "b\r", strings.Repeat("y", 1500), "last"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lines = %q, want %q", got, want)
	}
}

type ctlProxy struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   atomic.Bool // cut the next connection that sends a batch's apply script, after forwarding it
}

func (p *ctlProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// loadApplyScript runs the apply script once straight on the counting
// Redis at addr, so that Redis knows it: the first apply through a proxy
// then runs it, where it would otherwise only answer NOSCRIPT (and a cut
// reply of NOSCRIPT tests nothing).
func loadApplyScript(t *testing.T, addr string) {
	t.Helper()
	st := &stats.Store{Stats: testPool(addr, stats.StatsDB), Attempts: testPool(addr, stats.AttemptsDB)}
	defer st.Stats.Close()
	defer st.Attempts.Close()
	warm := stats.Applied{Queue: "warm-up", ID: "1"}
	if err := st.Apply(context.Background(), stats.NewBatch(), &warm); err != nil {
		t.Fatal(err)
	}
	if err := st.Forget(context.Background(), warm); err != nil {
		t.Fatal(err)
	}
}

func startCtlProxy(t *testing.T, target string) (*ctlProxy, string) {
	p := &ctlProxy{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			var mute atomic.Bool
			replied := make(chan struct{})
			go func() { redistest.RelayReplies(c, s, &mute, replied); c.Close(); s.Close() }()
			go func() {
				buf := make([]byte, 1<<16)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						chunk := buf[:n]
						if bytes.Contains(chunk, []byte("EVALSHA")) && bytes.Contains(chunk, []byte("alog:applied:")) && p.cut.CompareAndSwap(true, false) {
							// Forward it, let Redis run it, cut once its reply
							// comes back, without relaying the reply.
							mute.Store(true)
							s.Write(chunk)
							select {
							case <-replied:
							case <-time.After(10 * time.Second):
							}
							c.Close()
							s.Close()
							return
						}
						if _, err := s.Write(chunk); err != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
				s.Close()
			}()
		}
	}()
	return p, ln.Addr().String()
}

// The reply of a committed EXEC is lost (Redis restarted right after it);
// the follow-up IsApplied hits a pooled connection from before the restart
// and fails; the loop then calls Apply again without knowing: counted twice.
func TestApplyWithLostReplyIsAskedBeforeRetry(t *testing.T) {
	d4 := redistest.Start(t, redistest.Options{})
	cnt := redistest.Start(t, redistest.Options{AOF: true})
	loadApplyScript(t, cnt.Addr())
	px, addr := startCtlProxy(t, cnt.Addr())
	in, store, d4Pool := newTestIngester(t, d4.Addr(), addr)
	// Earlier activity leaves an idle Attempts connection in the pool.
	if _, err := store.IsApplied(context.Background(), stats.Applied{Queue: queue, Slot: 0, ID: "old"}); err != nil {
		t.Fatal(err)
	}
	px.dropAll() // the counting Redis restarts: every pooled connection is now dead
	px.cut.Store(true)
	raw := d4.Conn(2)
	for i := 0; i < 10; i++ {
		raw.Do("LPUSH", d4queue.QueueKey(queue), strings.TrimSuffix(oneLine, "\n"))
	}
	c := &d4queue.Consumer{Pool: d4Pool, Queue: queue, Slot: 0, MaxLine: 1 << 20}
	b, err := c.Claim(context.Background(), "X", 50)
	if err != nil {
		t.Fatal(err)
	}
	in.Workers(nil).process(context.Background(), c, in.newBatchParser(), b, false)
	if px.cut.Load() {
		t.Fatal("the proxy never cut a reply of the apply script: the test did not test a lost reply")
	}
	n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, "20260122"))
	if n != 10 {
		t.Fatalf("10 lines popped, %d counted", n)
	}
}

// An idle daemon costs the D4 Redis at most about one command per blocking
// wait, whatever the number of workers, and a line pushed onto the idle
// queue is still taken at once; a trickle of single pushes is counted in
// few transactions.
func TestIdleCostsOneWaitAndATrickleIsGathered(t *testing.T) {
	if testing.Short() {
		t.Skip("waits several seconds of real time")
	}
	d4 := redistest.Start(t, redistest.Options{})
	cnt := redistest.Start(t, redistest.Options{})
	in, _, _ := newTestIngester(t, d4.Addr(), cnt.Addr())
	in.o.Workers = 4
	in.o.Linger = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Workers(nil).Run(ctx) }()
	defer func() { cancel(); <-done }()
	processed := func() int {
		s, err := redis.String(d4.Conn(0).Do("INFO", "stats"))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		for _, l := range strings.Split(s, "\r\n") {
			if v, ok := strings.CutPrefix(l, "total_commands_processed:"); ok {
				fmt.Sscan(v, &n)
			}
		}
		return n
	}
	// Wait until the workers have claimed their slots once and one of
	// them blocks on the queue.
	for deadline := time.Now().Add(10 * time.Second); ; {
		s, _ := redis.String(d4.Conn(0).Do("INFO", "clients"))
		if strings.Contains(s, "blocked_clients:1\r\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no worker blocked on the idle queue:\n%s", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The other workers may still be starting (each claims its slot
	// once, then waits for the turn): on a loaded machine that can take
	// a while after the first one blocks, and is not what idle costs.
	// Wait until a quarter of a second passes with no command but INFO.
	for deadline := time.Now().Add(10 * time.Second); ; {
		a := processed()
		time.Sleep(250 * time.Millisecond)
		if processed()-a <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the D4 Redis never went quiet after the workers started")
		}
	}
	before := processed()
	const idle = 3 * time.Second
	time.Sleep(idle)
	// One of them is the second INFO.
	if n := processed() - before - 1; float64(n)/idle.Seconds() > 2 {
		t.Fatalf("idle: %d commands in %v on the D4 Redis; want at most 2 a second", n, idle)
	}
	// Each counted batch is one counting transaction (one apply script).
	batches := func() uint64 {
		var m dto.Metric
		if err := in.o.Metrics.BatchSeconds.(prometheus.Metric).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	batchesBefore := batches()
	const lines = 200
	raw := d4.Conn(2)
	for i := 0; i < lines; i++ {
		if _, err := raw.Do("LPUSH", d4queue.QueueKey(queue), strings.TrimSuffix(oneLine, "\n")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, "20260122"))
		if n == lines {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines counted", n, lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Pushed over at least 200 ms with a 50 ms linger: a handful of
	// transactions, far fewer than one a line.
	n := batches() - batchesBefore
	t.Logf("%d counting transactions for %d lines pushed one at a time", n, lines)
	if n == 0 || n > lines/5 {
		t.Fatalf("%d counting transactions for %d lines pushed one at a time; want them gathered", n, lines)
	}
}
