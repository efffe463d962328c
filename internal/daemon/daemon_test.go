package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/parsers"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"github.com/D4-project/analyzer-d4-log/internal/web"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

const queue = "5b3c8f0e-2d6a-4c1b-9e7f-0a1b2c3d4e5f"

type harness struct {
	t       *testing.T
	d4, cnt *redistest.Server
	d       *Daemon
	log     *testlog.Buffer
	cancel  context.CancelFunc
	done    chan error
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

// newHarnessWith wraps the parser with wrap when it is not nil.
func newHarnessWith(t *testing.T, wrap func(parsers.Parser) parsers.Parser) *harness {
	return newHarnessConfig(t, wrap, nil)
}

// newHarnessConfig also lets edit change the configuration, when not nil.
func newHarnessConfig(t *testing.T, wrap func(parsers.Parser) parsers.Parser, edit func(*config.Config)) *harness {
	if testing.Short() {
		t.Skip("runs the daemon against real Redis for seconds; runs without -short")
	}
	h := &harness{t: t, log: &testlog.Buffer{}}
	h.d4 = redistest.Start(t, redistest.Options{RDB: true})
	h.cnt = redistest.Start(t, redistest.Options{AOF: true})
	cfg := &config.Config{
		D4: config.RedisAddr{Addr: h.d4.Addr(), DB: 2}, Queue: queue,
		Parsers: h.cnt.Addr(), Pool: 3,
		Location: time.UTC, CompileInterval: time.Hour,
		OutputDir: t.TempDir(), ChartTop: 10, BatchSize: 50, MaxLineBytes: 1 << 20,
	}
	if edit != nil {
		edit(cfg)
	}
	h.d = New(Options{
		Config: cfg, Log: slog.New(slog.NewTextHandler(h.log, nil)),
		BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond,
		ArchiveDir: t.TempDir(),
		wrapParse:  wrap,
	})
	t.Cleanup(h.d.Close)
	return h
}

func (h *harness) run() { h.runWith(nil) }

func (h *harness) runWith(srv *web.Server) {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.d.Run(ctx, srv) }()
	h.t.Cleanup(cancel)
}

func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatal("Run did not return within 30s of cancel")
	}
}

func (h *harness) push(lines []workload.Line) {
	h.t.Helper()
	c := h.d4.Conn(2)
	for _, l := range lines {
		if err := c.Send("LPUSH", d4queue.QueueKey(queue), l.Raw); err != nil {
			h.t.Fatal(err)
		}
	}
	if _, err := c.Do(""); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) waitCounted(want int, limit time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		c, err := redis.Dial("tcp", h.cnt.Addr(), redis.DialDatabase(1))
		if err == nil {
			n := yearTotals(c)
			c.Close()
			q, _ := redis.Int(h.d4.Conn(2).Do("LLEN", d4queue.QueueKey(queue)))
			if n == want && q == 0 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("not %d attempts counted within %v; log:\n%s", want, limit, h.log.String())
}

// yearTotals sums the totals of every year, whichever years the lines
// fell in: tests date their lines relative to today.
func yearTotals(c redis.Conn) int {
	m, _ := redis.Int64Map(c.Do("HGETALL", stats.TotalsKey))
	n := 0
	for period, v := range m {
		if len(period) == 4 {
			n += int(v)
		}
	}
	return n
}

// counted is the attempts counted so far, in every year.
func (h *harness) counted() int {
	c, err := redis.Dial("tcp", h.cnt.Addr(), redis.DialDatabase(1))
	if err != nil {
		return -1
	}
	defer c.Close()
	return yearTotals(c)
}

// waitFor polls cond until it holds, failing the test after limit.
func (h *harness) waitFor(limit time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s; log:\n%s", limit, what, h.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLog waits until the daemon's log contains s.
func (h *harness) waitLog(s string) {
	h.t.Helper()
	h.waitFor(20*time.Second, fmt.Sprintf("%q in the log", s), func() bool { return strings.Contains(h.log.String(), s) })
}

// waitRedisErrors waits until the daemon has seen n failures of server.
func (h *harness) waitRedisErrors(server string, n float64) {
	h.t.Helper()
	h.waitFor(30*time.Second, fmt.Sprintf("%v failures of the %s redis", n, server), func() bool {
		return testutil.ToFloat64(h.d.metrics.RedisErrors.WithLabelValues(server)) >= n
	})
}

func (h *harness) check(want workload.Expected) {
	h.t.Helper()
	c := h.cnt.Conn(1)
	got, err := redistest.ReadRankings(c)
	if err != nil {
		h.t.Fatal(err)
	}
	if d := want.Diff(got); len(d) > 0 {
		if len(d) > 20 {
			d = d[:20]
		}
		h.t.Fatalf("statistics differ:\n%s", strings.Join(d, "\n"))
	}
}

var ref = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func lines(n int, seed uint64) []workload.Line {
	return workload.Generate(workload.Options{Lines: n, Ref: time.Now(), Loc: time.UTC, Days: 20,
		Users: 30, Sources: 200, Hosts: 5, Noise: 0.2, Seed: seed})
}

// A batch counted by a run that died before acknowledging it must not be
// counted again; one that was not counted must be.
func TestLeftoverBatchesAreReconciled(t *testing.T) {
	h := newHarness(t)
	ls := lines(200, 1)
	counted, pending := ls[:100], ls[100:]
	d4 := h.d4.Conn(2)
	leave := func(slot int, id string, batch []workload.Line) {
		for _, l := range batch {
			if _, err := d4.Do("LPUSH", d4queue.ProcessingKey(queue, slot), l.Raw); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d4.Do("SET", d4queue.BatchKey(queue, slot), fmt.Sprintf("%s %d", id, len(batch))); err != nil {
			t.Fatal(err)
		}
	}
	// Slot 0: applied before the crash. Slot 1: not applied. Slot 7:
	// beyond the current pool size, not applied.
	leave(0, "applied", counted)
	b := stats.NewBatch()
	for _, l := range counted {
		if l.Counts {
			b.Add(l.Time, []byte(l.Host), []byte(l.User), []byte(l.Src))
		}
	}
	if err := h.d.store.Apply(context.Background(), b, &stats.Applied{Queue: queue, Slot: 0, ID: "applied"}); err != nil {
		t.Fatal(err)
	}
	leave(1, "pending", pending[:50])
	leave(7, "beyond", pending[50:])
	want := workload.Expect(ls, time.UTC)
	h.run()
	h.waitCounted(want.Attempts, 20*time.Second)
	h.stop()
	h.check(want)
	if keys, _ := redis.Strings(d4.Do("KEYS", "alog:*")); len(keys) != 0 {
		t.Fatalf("bookkeeping left in the D4 Redis: %v", keys)
	}
}

// While the counting Redis is down, nothing more than the batches in
// flight leaves the queue, the outage is logged once at each end, and
// everything is counted once it is back.
func TestCountingRedisOutage(t *testing.T) {
	h := newHarness(t)
	ls := lines(3000, 2)
	want := workload.Expect(ls, time.UTC)
	h.run()
	h.push(ls[:1000])
	h.waitFor(20*time.Second, "the first lines counted", func() bool { return h.counted() > 0 })
	h.cnt.Kill()
	h.waitLog(`msg="redis outage: `)
	h.push(ls[1000:2000])
	// Lines keep arriving through many failed retries of the outage.
	h.waitRedisErrors("counting", 5)
	h.push(ls[2000:])
	h.waitRedisErrors("counting", 10)
	q, _ := redis.Int(h.d4.Conn(2).Do("LLEN", d4queue.QueueKey(queue)))
	inFlight := h.d.cfg.Pool * h.d.cfg.BatchSize
	if q < 2000-inFlight {
		t.Fatalf("queue length %d during the outage: lines left the queue that could not be counted", q)
	}
	h.cnt.Restart()
	h.waitCounted(want.Attempts, 30*time.Second)
	h.stop()
	h.check(want)
	log := h.log.String()
	if n := strings.Count(log, `msg="redis outage: `); n != 1 {
		t.Errorf("outage start logged %d times, want 1:\n%s", n, log)
	}
	if n := strings.Count(log, `msg="redis outage over"`); n != 1 {
		t.Errorf("outage end logged %d times, want 1:\n%s", n, log)
	}
}

// The D4 Redis going away (and coming back with its data) is ridden out.
func TestD4RedisOutage(t *testing.T) {
	h := newHarness(t)
	ls := lines(2000, 3)
	want := workload.Expect(ls, time.UTC)
	h.run()
	h.push(ls[:1000])
	h.waitCounted(workload.Expect(ls[:1000], time.UTC).Attempts, 20*time.Second)
	h.d4.Shutdown()
	h.waitLog("server=d4")
	h.waitRedisErrors("d4", 3)
	h.d4.Restart()
	h.push(ls[1000:])
	h.waitCounted(want.Attempts, 30*time.Second)
	h.stop()
	h.check(want)
	if !strings.Contains(h.log.String(), "server=d4") {
		t.Errorf("D4 outage not logged:\n%s", h.log.String())
	}
}

// A counting Redis that answers errors (out of memory) is an outage too:
// nothing is lost, nothing is counted twice.
func TestCountingRedisAnsweringErrors(t *testing.T) {
	h := newHarness(t)
	ls := lines(2000, 4)
	want := workload.Expect(ls, time.UTC)
	admin := h.cnt.Conn(0)
	h.run()
	h.push(ls[:500])
	h.waitCounted(workload.Expect(ls[:500], time.UTC).Attempts, 20*time.Second)
	if _, err := admin.Do("CONFIG", "SET", "maxmemory", "1"); err != nil {
		t.Fatal(err)
	}
	h.push(ls[500:])
	h.waitLog("OOM")
	h.waitRedisErrors("counting", 3)
	if _, err := admin.Do("CONFIG", "SET", "maxmemory", "0"); err != nil {
		t.Fatal(err)
	}
	h.waitCounted(want.Attempts, 30*time.Second)
	h.stop()
	h.check(want)
}

// The daemon's own web server: pages, health and metrics after a known
// workload, and a 503 while the counting Redis is down.
func TestWebServerHealthAndMetrics(t *testing.T) {
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	h.d.cfg.HTTPServer = addr
	h.d.cfg.Dir = t.TempDir()
	ls := lines(1000, 5)
	want := workload.Expect(ls, time.UTC)
	srv, err := h.d.Listen()
	if err != nil {
		t.Fatal(err)
	}
	h.runWith(srv)
	h.push(ls)
	h.waitCounted(want.Attempts, 20*time.Second)
	// Metrics are published after each acknowledged batch; wait for the
	// last one.
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		body = get(t, "http://"+addr+"/metrics", 200)
		if strings.Contains(body, fmt.Sprintf("analyzer_d4_log_lines_counted_total %d\n", want.Attempts)) &&
			strings.Contains(body, fmt.Sprintf("analyzer_d4_log_lines_popped_total %d\n", len(ls))) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range []string{
		fmt.Sprintf("analyzer_d4_log_lines_counted_total %d\n", want.Attempts),
		fmt.Sprintf("analyzer_d4_log_lines_popped_total %d\n", len(ls)),
		`analyzer_d4_log_redis_up{server="counting"} 1`,
		`analyzer_d4_log_build_info{`,
		`analyzer_d4_log_batch_duration_seconds_count`,
	} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
	skipped := 0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "analyzer_d4_log_lines_skipped_total{") {
			var n int
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n)
			skipped += n
		}
	}
	if skipped != len(ls)-want.Attempts {
		t.Errorf("skipped lines in metrics = %d, want %d", skipped, len(ls)-want.Attempts)
	}
	health := get(t, "http://"+addr+"/healthz", 200)
	if !strings.Contains(health, `"counting_redis":true`) || !strings.Contains(health, `"queue_length":0`) {
		t.Errorf("/healthz = %s", health)
	}
	h.cnt.Kill()
	get(t, "http://"+addr+"/healthz", 503)
	h.cnt.Restart()
	get(t, "http://"+addr+"/healthz", 200)
	h.stop()
}

func get(t *testing.T, url string, code int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != code {
		t.Fatalf("GET %s = %d, want %d: %s", url, resp.StatusCode, code, b)
	}
	return string(b)
}

// A line that makes the parser panic is skipped with reason "panic",
// logged with its length and first bytes, and counted in the metrics; the
// other lines of its batch are counted.
func TestParserPanicCostsOneLine(t *testing.T) {
	h := newHarnessWith(t, func(p parsers.Parser) parsers.Parser { return boomParser{p} })
	ls := lines(300, 6)
	want := workload.Expect(ls, time.UTC)
	bad := workload.Line{Raw: []byte("Nov 25 10:00:00 h sshd[1]: Invalid user BOOM from 192.0.2.1")}
	ls = append(ls[:150:150], append([]workload.Line{bad}, ls[150:]...)...)
	h.run()
	h.push(ls)
	h.waitCounted(want.Attempts, 20*time.Second)
	h.stop()
	h.check(want)
	log := h.log.String()
	if !strings.Contains(log, "parser panic recovered") || !strings.Contains(log, "len=59") || !strings.Contains(log, "BOOM") {
		t.Fatalf("panic not logged with length and head:\n%s", log)
	}
	if got := testutil.ToFloat64(h.d.metrics.WorkerPanics); got != 1 {
		t.Fatalf("worker panics metric = %v, want 1", got)
	}
	if got := testutil.ToFloat64(h.d.metrics.Skipped.WithLabelValues("panic")); got != 1 {
		t.Fatalf("skipped{reason=panic} = %v, want 1", got)
	}
}

// boomParser panics on lines that contain BOOM.
type boomParser struct{ parsers.Parser }

func (b boomParser) Parse(line []byte, ref time.Time) (parsers.Event, int) {
	if bytes.Contains(line, []byte("BOOM")) {
		panic("boom")
	}
	return b.Parser.Parse(line, ref)
}

// A stop during an outage is quick: the batch in flight stays in its
// processing list and is counted, once, after the next start.
func TestStopDuringOutageThenRecover(t *testing.T) {
	h := newHarness(t)
	ls := lines(1000, 7)
	want := workload.Expect(ls, time.UTC)
	h.run()
	h.cnt.Kill()
	h.push(ls)
	h.waitLog(`msg="redis outage: `)
	start := time.Now()
	h.stop()
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("stop during an outage took %v", took)
	}
	h.cnt.Restart()
	h.run()
	h.waitCounted(want.Attempts, 20*time.Second)
	h.stop()
	h.check(want)
}
