package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// proxy forwards to target; the first time a client sends EXEC, it forwards
// it, waits for Redis to run it, then cuts the connection before the reply.
func proxy(t *testing.T, target string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var fired atomic.Bool
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
			var cut sync.Once
			closeBoth := func() { cut.Do(func() { c.Close(); s.Close() }) }
			go func() { io.Copy(c, s); closeBoth() }()
			go func() {
				buf := make([]byte, 1<<16)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						chunk := buf[:n]
						if !fired.Load() && bytes.Contains(chunk, []byte("EXEC\r\n")) {
							fired.Store(true)
							// stop relaying replies, forward, let redis run it, cut
							s.(*net.TCPConn).CloseRead()
							s.Write(chunk)
							time.Sleep(300 * time.Millisecond)
							closeBoth()
							return
						}
						if _, err := s.Write(chunk); err != nil {
							closeBoth()
							return
						}
					}
					if err != nil {
						closeBoth()
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func fileDaemon(t *testing.T, parsers string, pool int) *Daemon {
	cfg := &config.Config{
		D4: config.RedisAddr{Addr: "127.0.0.1:1", DB: 2}, Queue: queue,
		Parsers: parsers, Pool: pool, Location: time.UTC, CompileInterval: time.Hour,
		OutputDir: t.TempDir(), ChartTop: 10, BatchSize: 50, MaxLineBytes: 1 << 20,
	}
	d := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), BackoffMax: 100 * time.Millisecond})
	t.Cleanup(d.Close)
	return d
}

const oneLine = "2026-01-22T11:59:37Z h sshd[1]: Invalid user git from 192.0.2.1\n"

// -f: the connection dies after Redis ran EXEC: the retry counts the chunk again.
func TestRegressionFileRetryDoubleCounts(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{AOF: true})
	d := fileDaemon(t, proxy(t, cnt.Addr()), 1)
	sum, err := d.RunFile(context.Background(), strings.NewReader(strings.Repeat(oneLine, 10)), time.Now())
	t.Logf("summary %+v err %v", sum, err)
	n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, "20260122"))
	z, _ := redis.Int(cnt.Conn(1).Do("ZSCORE", "20260122:statsusername", "git"))
	if n != 10 || z != 10 {
		t.Fatalf("10 lines in the file, counted total=%d zscore=%d", n, z)
	}
}

// -f: a command failing at run time inside EXEC (e.g. ZADD LT on Redis < 6.2,
// simulated here with a wrong-type key) commits the rest, and the retry loop
// commits it again and again until the operator interrupts.
func TestRegressionFileRuntimeErrorRecounts(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{})
	cnt.Conn(1).Do("SET", stats.FirstSeenKey(stats.KindSrc), "x")
	d := fileDaemon(t, cnt.Addr(), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	sum, err := d.RunFile(ctx, strings.NewReader(strings.Repeat(oneLine, 10)), time.Now())
	t.Logf("summary %+v err %v", sum, err)
	n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, "20260122"))
	if n != 10 {
		t.Fatalf("10 lines in the file, counted %d", n)
	}
}

// Pool of 1 and a period without alog:totals (data from the original
// analyzer): Summarize holds the only connection and sumScores waits for a
// second one forever; the worker can never count and SIGTERM never returns.
func TestRegressionPoolOfOneDeadlock(t *testing.T) {
	h := newHarness(t)
	h.d.Close()
	h.d.cfg.Pool = 1
	h.d.cfg.CompileInterval = time.Second
	cfg := *h.d.cfg
	h.d = New(Options{Config: &cfg, Log: slog.New(slog.NewTextHandler(h.log, nil)),
		BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond})
	c := h.cnt.Conn(1)
	c.Do("ZADD", "20200101:statsusername", 5, "root")
	c.Do("SADD", "toupdate:daily", "20200101:statsusername")
	if strings.Contains(t.Name(), "x") {
	}
	h.run()
	time.Sleep(time.Second)
	h.push(lines(100, 9))
	time.Sleep(3 * time.Second)
	q, _ := redis.Int(h.d4.Conn(2).Do("LLEN", d4queue.QueueKey(queue)))
	t.Logf("queue length after 3s: %d", q)
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel (deadlock)")
	}
}

// A BRPOPLPUSH executed after Claim tagged the slot (an abandoned Wait whose
// command reaches Redis late) puts a line into the tagged processing list;
// Ack deletes it uncounted.
func TestRegressionLateWaitLosesLine(t *testing.T) {
	d4 := redistest.Start(t, redistest.Options{})
	pool := &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", d4.Addr(), redis.DialDatabase(2)) }}
	c := &d4queue.Consumer{Pool: pool, Queue: queue, Slot: 0, MaxLine: 1 << 20}
	raw := d4.Conn(2)
	raw.Do("LPUSH", d4queue.QueueKey(queue), "a", "b")
	b, err := c.Claim(context.Background(), "X", 2)
	if err != nil || b.Len() != 2 {
		t.Fatal(b, err)
	}
	raw.Do("LPUSH", d4queue.QueueKey(queue), "late")
	raw.Do("BRPOPLPUSH", d4queue.QueueKey(queue), d4queue.ProcessingKey(queue, 0), 1) // the stale Wait
	c.Ack(context.Background(), "X")
	q, _ := redis.Int(raw.Do("LLEN", d4queue.QueueKey(queue)))
	p, _ := redis.Int(raw.Do("LLEN", d4queue.ProcessingKey(queue, 0)))
	if q+p == 0 {
		t.Fatalf("line \"late\" was never in batch X and is gone from both lists")
	}
}

func TestRegressionPoolOfOneControl(t *testing.T) {
	h := newHarness(t)
	h.d.Close()
	cfg := *h.d.cfg
	cfg.Pool = 1
	cfg.CompileInterval = time.Second
	h.d = New(Options{Config: &cfg, Log: slog.New(slog.NewTextHandler(h.log, nil)),
		BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond})
	c := h.cnt.Conn(1)
	c.Do("ZADD", "20200101:statsusername", 5, "root")
	c.Do("SADD", "toupdate:daily", "20200101:statsusername")
	c.Do("HSET", stats.TotalsKey, "20200101", 5)
	h.run()
	time.Sleep(time.Second)
	h.push(lines(100, 9))
	time.Sleep(3 * time.Second)
	q, _ := redis.Int(h.d4.Conn(2).Do("LLEN", d4queue.QueueKey(queue)))
	t.Logf("queue length after 3s: %d", q)
	h.stop()
}
func TestRegressionHealthzDuringStartupOutage(t *testing.T) {
	h := newHarness(t)
	h.d.Close()
	cfg := *h.d.cfg
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg.HTTPServer = addr
	cfg.Dir = t.TempDir()
	h.d = New(Options{Config: &cfg, Log: slog.New(slog.NewTextHandler(h.log, nil)),
		BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond})
	h.d4.Kill()
	h.run()
	time.Sleep(time.Second)
	cl := &http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("/healthz during a D4 outage at start: %v", err)
	}
	resp.Body.Close()
	t.Logf("status %d", resp.StatusCode)
}

type ctlProxy struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   atomic.Bool // cut the next connection that sends EXEC, after forwarding it
}

func (p *ctlProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
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
			go func() { io.Copy(c, s); c.Close(); s.Close() }()
			go func() {
				buf := make([]byte, 1<<16)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						chunk := buf[:n]
						if bytes.Contains(chunk, []byte("EXEC\r\n")) && p.cut.CompareAndSwap(true, false) {
							s.(*net.TCPConn).CloseRead()
							s.Write(chunk)
							time.Sleep(300 * time.Millisecond)
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
func TestRegressionApplyRetryAfterFailedCheckDoubleCounts(t *testing.T) {
	d4 := redistest.Start(t, redistest.Options{})
	cnt := redistest.Start(t, redistest.Options{AOF: true})
	px, addr := startCtlProxy(t, cnt.Addr())
	cfg := &config.Config{
		D4: config.RedisAddr{Addr: d4.Addr(), DB: 2}, Queue: queue,
		Parsers: addr, Pool: 1, Location: time.UTC, CompileInterval: time.Hour,
		OutputDir: t.TempDir(), ChartTop: 10, BatchSize: 50, MaxLineBytes: 1 << 20,
	}
	d := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), BackoffMax: 100 * time.Millisecond})
	t.Cleanup(d.Close)
	// Earlier activity leaves an idle Attempts connection in the pool.
	if _, err := d.store.IsApplied(context.Background(), stats.Applied{Queue: queue, Slot: 0, ID: "old"}); err != nil {
		t.Fatal(err)
	}
	px.dropAll() // the counting Redis restarts: every pooled connection is now dead
	px.cut.Store(true)
	raw := d4.Conn(2)
	for i := 0; i < 10; i++ {
		raw.Do("LPUSH", d4queue.QueueKey(queue), strings.TrimSuffix(oneLine, "\n"))
	}
	c := &d4queue.Consumer{Pool: d.d4Pool, Queue: queue, Slot: 0, MaxLine: 1 << 20}
	b, err := c.Claim(context.Background(), "X", 50)
	if err != nil {
		t.Fatal(err)
	}
	d.process(context.Background(), c, newParser(d, stats.NewBatch()), b, false)
	n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, "20260122"))
	if n != 10 {
		t.Fatalf("10 lines popped, %d counted", n)
	}
}

// A second daemon on the same queue is refused while the first lives, and
// takes over at once when the first is gone; nothing is counted twice.
func TestSecondDaemonOnAQueueIsRefused(t *testing.T) {
	h := newHarness(t)
	cfg := *h.d.cfg
	second := func() *Daemon {
		d := New(Options{Config: &cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond, LockWait: time.Second})
		t.Cleanup(d.Close)
		return d
	}
	h.run()
	ls := lines(20000, 5)
	want := workload.Expect(ls, time.UTC)
	h.push(ls)
	done := make(chan error, 1)
	go func() { done <- second().Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, stats.ErrLocked) || !strings.Contains(err.Error(), "stop it first") {
			t.Fatalf("second daemon: %v; want it refused", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("second daemon neither refused nor stopped")
	}
	h.waitCounted(want.Attempts, 60*time.Second)
	h.stop()
	h.check(want)
	// With the first one gone, a new one starts at once.
	ctx, cancel := context.WithCancel(context.Background())
	d3 := second()
	go func() { done <- d3.Run(ctx) }()
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon after the first stopped: %v", err)
	}
}
