package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// proxy forwards to target; the first time a client sends the apply script
// of a batch (an EVALSHA naming a batch record), it forwards it, waits for
// Redis to run it, then cuts the connection before the reply. fired tells
// whether it did.
func proxy(t *testing.T, target string) (addr string, fired *atomic.Bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	fired = new(atomic.Bool)
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
			var mute atomic.Bool
			replied := make(chan struct{})
			go func() { redistest.RelayReplies(c, s, &mute, replied); closeBoth() }()
			go func() {
				buf := make([]byte, 1<<16)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						chunk := buf[:n]
						if bytes.Contains(chunk, []byte("EVALSHA")) && bytes.Contains(chunk, []byte("alog:applied:")) && fired.CompareAndSwap(false, true) {
							// Forward it, let Redis run it, cut once its reply
							// comes back, without relaying the reply.
							mute.Store(true)
							s.Write(chunk)
							select {
							case <-replied:
							case <-time.After(10 * time.Second):
							}
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
	return ln.Addr().String(), fired
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
func TestFileChunkWithLostReplyCountsOnce(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{AOF: true})
	// Redis must know the apply script, or the first apply through the
	// proxy only gets NOSCRIPT, and cutting that reply tests nothing.
	pool := func(db int) *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", cnt.Addr(), redis.DialDatabase(db)) }}
	}
	warm := &stats.Store{Stats: pool(stats.StatsDB), Attempts: pool(stats.AttemptsDB)}
	rec := stats.Applied{Queue: "warm-up", ID: "1"}
	if err := warm.Apply(context.Background(), stats.NewBatch(), &rec); err != nil {
		t.Fatal(err)
	}
	if err := warm.Forget(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	warm.Stats.Close()
	warm.Attempts.Close()
	addr, fired := proxy(t, cnt.Addr())
	d := fileDaemon(t, addr, 1)
	sum, err := d.RunFile(context.Background(), strings.NewReader(strings.Repeat(oneLine, 10)), time.Now())
	t.Logf("summary %+v err %v", sum, err)
	if !fired.Load() {
		t.Fatal("the proxy never cut a reply of the apply script: the test did not test a lost reply")
	}
	n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, "20260122"))
	z, _ := redis.Int(cnt.Conn(1).Do("ZSCORE", "20260122:statsusername", "git"))
	if n != 10 || z != 10 {
		t.Fatalf("10 lines in the file, counted total=%d zscore=%d", n, z)
	}
}

// -f: a key of the wrong type (another writer's) holds counting up with
// nothing applied; once it is repaired, the file is counted exactly once.
func TestFileWaitsForAForeignKeyThenCountsOnce(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{})
	cnt.Conn(1).Do("SET", stats.FirstSeenKey(stats.KindSrc), "x")
	d := fileDaemon(t, cnt.Addr(), 1)
	done := make(chan error, 1)
	go func() {
		_, err := d.RunFile(context.Background(), strings.NewReader(strings.Repeat(oneLine, 10)), time.Now())
		done <- err
	}()
	waitFor(t, 10*time.Second, "the batch refused for the foreign key", func() bool {
		return testutil.ToFloat64(d.metrics.ForeignKeyRefusals) > 0
	})
	if n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, "20260122")); n != 0 {
		t.Fatalf("%d attempts applied next to a key of the wrong type; want none", n)
	}
	cnt.Conn(1).Do("DEL", stats.FirstSeenKey(stats.KindSrc))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n, _ := redis.Int(cnt.Conn(1).Do("HGET", stats.TotalsKey, "20260122"))
	z, _ := redis.Int(cnt.Conn(1).Do("ZSCORE", "20260122:statsusername", "git"))
	if n != 10 || z != 10 {
		t.Fatalf("10 lines in the file, counted total=%d zscore=%d", n, z)
	}
}

// waitFor polls cond until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With a pool of one and a period without alog:totals (data from the
// original analyzer), a compile that sums the ranking needs a second
// connection: counting must go on beside it and a stop must return.
func TestPoolOfOneCountsBesideACompileOfOldData(t *testing.T) {
	for _, withTotals := range []bool{false, true} {
		t.Run(fmt.Sprintf("totals=%v", withTotals), func(t *testing.T) {
			h := newHarness(t)
			h.d.Close()
			cfg := *h.d.cfg
			cfg.Pool = 1
			cfg.CompileInterval = time.Second
			h.d = New(Options{Config: &cfg, Log: slog.New(slog.NewTextHandler(h.log, nil)),
				BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond})
			t.Cleanup(h.d.Close)
			c := h.cnt.Conn(1)
			c.Do("ZADD", "20200101:statsusername", 5, "root")
			c.Do("SADD", "toupdate:daily", "20200101:statsusername")
			if withTotals {
				c.Do("HSET", stats.TotalsKey, "20200101", 5)
			}
			ls := lines(100, 9)
			want := workload.Expect(ls, time.UTC)
			h.run()
			h.push(ls)
			h.waitCounted(want.Attempts, 20*time.Second)
			h.stop()
			if _, err := os.Stat(filepath.Join(cfg.OutputDir, "sshd", "20200101", "20200101:statsusername.svg")); err != nil {
				t.Fatalf("the old period was not compiled: %v", err)
			}
		})
	}
}

// A BRPOPLPUSH executed after Claim tagged the slot (an abandoned Wait whose
// command reaches Redis late) puts a line into the tagged processing list;
// Ack deletes it uncounted.
func TestLateBlockingPopStaysQueued(t *testing.T) {
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

// /healthz answers while start-up waits out an outage of the D4 Redis,
// and says which Redis is down.
func TestHealthzAnswersDuringAnOutageAtStart(t *testing.T) {
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
	t.Cleanup(h.d.Close)
	h.d4.Kill()
	srv, err := h.d.Listen()
	if err != nil {
		t.Fatal(err)
	}
	h.runWith(srv)
	cl := &http.Client{Timeout: 6 * time.Second}
	resp, err := cl.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("/healthz during a D4 outage at start: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"d4_redis":false`) || !strings.Contains(string(body), `"counting_redis":true`) {
		t.Fatalf("/healthz = %d %s; want 503 with the D4 Redis down and the counting one up", resp.StatusCode, body)
	}
	h.d4.Restart()
	h.stop()
}

// A second daemon on the same queue joins it (SPEC §14): both count, every
// line once, and only one of them holds the compile lease; when the first
// stops, the second takes the lease over at once and a new daemon joins.
func TestSecondDaemonOnAQueueJoins(t *testing.T) {
	h := newHarness(t)
	cfg := *h.d.cfg
	second := func() *Daemon {
		d := New(Options{Config: &cfg, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond, LockWait: time.Second})
		t.Cleanup(d.Close)
		return d
	}
	h.run()
	h.waitFor(20*time.Second, "the first daemon holding the compile lease", func() bool {
		l := h.d.lease.Load()
		return l != nil && l.Held()
	})
	ls := lines(20000, 5)
	want := workload.Expect(ls, time.UTC)
	h.push(ls)
	ctx, cancel := context.WithCancel(context.Background())
	d2 := second()
	done := make(chan error, 1)
	go func() { done <- d2.Run(ctx, nil) }()
	h.waitFor(20*time.Second, "the second daemon joined as member 1", func() bool {
		return d2.lease.Load() != nil && d2.ingester.Member() == 1
	})
	h.waitCounted(want.Attempts, 60*time.Second)
	if h.d.lease.Load().Held() == d2.lease.Load().Held() {
		t.Fatalf("compile lease held by the first %v, the second %v; want exactly one", h.d.lease.Load().Held(), d2.lease.Load().Held())
	}
	st := d2.health(context.Background())
	if st.Member == nil || *st.Member != 1 || st.CompileLease == nil || *st.CompileLease || st.CountingRole != "master" || st.CountingAddress != cfg.Parsers {
		t.Fatalf("second daemon's health: %+v", st)
	}
	h.stop()
	h.check(want)
	h.waitFor(5*time.Second, "the second daemon taking the compile lease over", func() bool { return d2.lease.Load().Held() })
	live, err := h.d.store.LiveConsumers(context.Background())
	if err != nil || len(live) != 1 || live[0] != queue {
		t.Fatalf("LiveConsumers = %v, %v; want the queue once", live, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("second daemon stopped: %v", err)
	}
}
