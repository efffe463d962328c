package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/sshd"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// incrementsPerLine is what one attempt costs a naive counter: a sorted-set
// increment for user, source and host in each of day, month and year.
const incrementsPerLine = 9

// Bounds stated for the daemon's resident set. What it holds in flight is
// pool × batch lines; realistic lines are about a hundred bytes, so at the
// defaults (4 × 1000) that is under a megabyte and the rest is the Go
// runtime, the binary and the chart renderer: about 20 MiB measured. The
// bound allows 64 MiB for that plus 1 KiB per line in flight (the line,
// its parsed fields in the batch, the Redis reply buffers), so it follows
// the batch size, never the backlog or the number of distinct values. A
// compile streams rankings in chunks; one that held a million members at
// once would need some 50 MiB more than its baseline and cross it. Growth
// is measured from the reading at 10% of a drain, when the daemon has
// reached its steady state, to the end.
const (
	rssBaseMiB   = 64
	rssGrowthMiB = 16
)

// rssBoundMiB is the stated bound for pool workers of batch lines.
func rssBoundMiB(pool, batch int) float64 {
	return rssBaseMiB + float64(pool*batch)/1024
}

// Fixed shapes from the performance issue.
const (
	latencyTries   = 20
	compileYear    = "2030"
	compileMembers = 1000000
	backlogChunk   = 1000000
)

func (b *bench) runSections(ctx context.Context) error {
	if b.runs("queue") || b.runs("file") || b.runs("parser") || b.runs("geoip") {
		b.say("generating %s lines (70%% counting over 300 days, 500 users, 50,000 sources, 50 hosts)", thousands(float64(b.o.lines)))
		b.lines = workload.Generate(workload.Options{
			Lines: b.o.lines, Ref: time.Now(), Loc: time.UTC, Days: 300,
			Users: 500, Sources: 50000, Hosts: 50, Noise: 0.3, Seed: 1,
		})
		// The daemon runs with the default max_value_bytes.
		b.lines = workload.CapValues(b.lines, config.DefaultMaxValueBytes)
		b.want = workload.Expect(b.lines, time.UTC)
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"parser", b.parser},
		{"ceiling", b.ceiling},
		{"queue", b.queue},
		{"latency", b.latencyAlone},
		{"flush", b.flush},
		{"storage", b.storage},
		{"file", b.file},
		{"compile", b.compile},
		{"incremental", b.incremental},
		// geoip drains the queue section's lines again: before backlog
		// and trickle, which drop them for lines of their own.
		{"geoip", b.geoip},
		{"dedupe", b.dedupe},
		{"backlog", b.backlog},
		{"trickle", b.trickle},
		{"retention", b.retention},
		{"multi", b.multi},
		{"investigate", b.investigate},
	}
	for _, s := range steps {
		if !b.runs(s.name) {
			continue
		}
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// --- parser -----------------------------------------------------------

func (b *bench) parser(ctx context.Context) error {
	corpus, err := readCorpus(b.root)
	if err != nil {
		return err
	}
	var gen, counting [][]byte
	for _, l := range b.lines {
		gen = append(gen, l.Raw)
		if l.Counts {
			counting = append(counting, l.Raw)
		}
	}
	r := &parserResult{CorpusLines: len(corpus)}
	b.rep.Parser = r
	ref := time.Now()
	b.say("parser: corpus (%d lines)", len(corpus))
	if r.CorpusNsPerLine, r.CorpusAllocsPerLine, err = benchParse(corpus, ref); err != nil {
		return err
	}
	b.say("parser: generated lines")
	if r.GenNsPerLine, r.GenAllocsPerLine, err = benchParse(gen, ref); err != nil {
		return err
	}
	b.say("parser: counting lines only")
	if r.CountNsPerLine, r.CountAllocsPerLine, err = benchParse(counting, ref); err != nil {
		return err
	}
	rep := b.rep
	rep.target("parser", "corpus", fmt.Sprintf("%.0f ns/line, %.2f allocs/line", r.CorpusNsPerLine, r.CorpusAllocsPerLine), "< 1000 ns/line", r.CorpusNsPerLine < 1000)
	rep.target("parser", "generated (30% noise)", fmt.Sprintf("%.0f ns/line, %.2f allocs/line", r.GenNsPerLine, r.GenAllocsPerLine), "< 1000 ns/line", r.GenNsPerLine < 1000)
	rep.target("parser", "counting lines", fmt.Sprintf("%.0f ns/line, %.2f allocs/line", r.CountNsPerLine, r.CountAllocsPerLine),
		"< 1000 ns/line, ≤ 2 allocs/line", r.CountNsPerLine < 1000 && r.CountAllocsPerLine <= 2)
	return ctx.Err()
}

// benchParse runs the parser over lines, round and round, and reports the
// cost of one line.
func benchParse(lines [][]byte, ref time.Time) (nsPerLine, allocsPerLine float64, err error) {
	if len(lines) == 0 {
		return 0, 0, errors.New("no lines to parse")
	}
	res := testing.Benchmark(func(tb *testing.B) {
		tb.ReportAllocs()
		counted, j := 0, 0
		for i := 0; i < tb.N; i++ {
			if _, r := sshd.Parse(lines[j], ref, time.UTC); r == sshd.OK {
				counted++
			}
			if j++; j == len(lines) {
				j = 0
			}
		}
		runtime.KeepAlive(counted)
	})
	if res.N == 0 {
		return 0, 0, errors.New("parser benchmark did not run")
	}
	return float64(res.T.Nanoseconds()) / float64(res.N), float64(res.MemAllocs) / float64(res.N), nil
}

// readCorpus reads the shared real-world corpus, one line per element.
func readCorpus(root string) ([][]byte, error) {
	paths, err := filepath.Glob(filepath.Join(root, "testdata", "corpus", "lines", "*.log"))
	if err != nil || len(paths) == 0 {
		return nil, fmt.Errorf("no corpus under testdata/corpus/lines (%v)", err)
	}
	slices.Sort(paths)
	var lines [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read corpus: %w", err)
		}
		data = bytes.TrimSuffix(data, []byte("\n"))
		lines = append(lines, bytes.Split(data, []byte("\n"))...)
	}
	return lines, nil
}

// --- ceiling ----------------------------------------------------------

func (b *bench) ceiling(ctx context.Context) error {
	b.say("ceiling: redis-benchmark -P 64 -n 1000000 -r 100000 zincrby against the counting redis")
	cmd := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(b.cnt.port),
		"-P", "64", "-n", "1000000", "-r", "100000", "--csv", "zincrby", "k", "1", "__rand_int__")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("run redis-benchmark: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	rps, err := parseBenchmarkCSV(out)
	if err != nil {
		return err
	}
	if err := b.flushAll(b.cnt); err != nil {
		return err
	}
	r := &ceilingResult{ZincrbyPerS: rps, NaiveLinesPerS: rps / incrementsPerLine, IncrementsPerLine: incrementsPerLine}
	b.rep.Ceiling = r
	b.rep.info("ceiling", "ZINCRBY -P 64 (appendfsync always)", thousands(rps)+" ops/s")
	b.rep.info("ceiling", "naive ceiling = rate / 9", thousands(r.NaiveLinesPerS)+" lines/s")
	return nil
}

// parseBenchmarkCSV reads the requests per second from redis-benchmark
// --csv output: a header row naming the columns, then one row per test.
func parseBenchmarkCSV(out []byte) (float64, error) {
	var rows []string
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r", "\n"), "\n") {
		if strings.HasPrefix(line, `"`) {
			rows = append(rows, line)
		}
	}
	recs, err := csv.NewReader(strings.NewReader(strings.Join(rows, "\n"))).ReadAll()
	if err != nil {
		return 0, fmt.Errorf("read redis-benchmark output: %w", err)
	}
	if len(recs) < 2 {
		return 0, fmt.Errorf("redis-benchmark printed no result: %q", out)
	}
	col := slices.Index(recs[0], "rps")
	if col < 0 {
		return 0, fmt.Errorf("redis-benchmark output has no rps column: %q", recs[0])
	}
	if col >= len(recs[1]) {
		return 0, fmt.Errorf("redis-benchmark result row is short: %q", recs[1])
	}
	rps, err := strconv.ParseFloat(recs[1][col], 64)
	if err != nil || rps <= 0 {
		return 0, fmt.Errorf("redis-benchmark rps %q: want a positive number", recs[1][col])
	}
	return rps, nil
}

// --- queue ------------------------------------------------------------

func (b *bench) queue(ctx context.Context) error {
	if err := b.flushAll(b.cnt); err != nil {
		return err
	}
	if err := b.flushAll(b.d4); err != nil {
		return err
	}
	r := &queueResult{Lines: len(b.lines), Attempts: b.want.Attempts}
	b.rep.Queue = r
	b.say("queue: pushing %s lines into %s, oldest first", thousands(float64(len(b.lines))), d4queue.QueueKey(queueUUID))
	start := time.Now()
	if err := b.push(ctx, b.lines); err != nil {
		return err
	}
	r.PushSeconds = time.Since(start).Seconds()

	cnt0, err := b.cnt.cpuSeconds()
	if err != nil {
		return err
	}
	d40, err := b.d4.cpuSeconds()
	if err != nil {
		return err
	}
	b.say("queue: starting the daemon")
	t0 := time.Now()
	p, err := startDaemon(ctx, b.bin, b.conf, filepath.Join(b.tmp, "run-queue"))
	if err != nil {
		return err
	}
	defer p.kill()
	dr, err := b.drain(ctx, p, "queue", yearsOf(b.want), int64(b.want.Attempts))
	if err != nil {
		return err
	}
	cnt1, err := b.cnt.cpuSeconds()
	if err != nil {
		return err
	}
	d41, err := b.d4.cpuSeconds()
	if err != nil {
		return err
	}
	r.Seconds = dr.at.Sub(t0).Seconds()
	r.LinesPerS = float64(r.Lines) / r.Seconds
	r.AttemptsPerS = float64(r.Attempts) / r.Seconds
	r.DaemonCPUToDrain = dr.cpu
	r.CountingRedisCPU = cnt1 - cnt0
	r.D4RedisCPU = d41 - d40
	r.RSS = summarizeRSS(dr.samples)
	b.say("queue: drained in %.2f s (%s lines/s); comparing every DB 1 key with the expected statistics", r.Seconds, thousands(r.LinesPerS))

	diffs, err := b.checkDB1(b.want)
	if err != nil {
		return err
	}
	r.Exact = len(diffs) == 0
	b.showDiffs("queue", diffs)

	rep := b.rep
	rep.info("queue", "push (LPUSH, pipelined)", fmt.Sprintf("%s lines in %.1f s", thousands(float64(r.Lines)), r.PushSeconds))
	rep.info("queue", "start → queue empty and every attempt in DB 1", fmt.Sprintf("%.2f s", r.Seconds))
	if c := rep.Ceiling; c != nil {
		r.RatioToCeiling = r.LinesPerS / c.NaiveLinesPerS
		rep.target("queue", "lines/s end to end", fmt.Sprintf("%s (%.2f × ceiling)", thousands(r.LinesPerS), r.RatioToCeiling),
			"≥ 1.5 × ceiling = "+thousands(1.5*c.NaiveLinesPerS), r.RatioToCeiling >= 1.5)
	} else {
		rep.info("queue", "lines/s end to end", thousands(r.LinesPerS))
	}
	rep.info("queue", "attempts/s", thousands(r.AttemptsPerS))
	rep.info("queue", "CPU s: daemon to drain / counting redis / d4 redis",
		fmt.Sprintf("%.1f / %.1f / %.1f", r.DaemonCPUToDrain, r.CountingRedisCPU, r.D4RedisCPU))
	bound := rssBoundMiB(b.o.pool, b.o.batch)
	rep.target("queue", "daemon RSS while draining: max (at 10/50/90%)",
		fmt.Sprintf("%.1f MiB (%.1f/%.1f/%.1f)", r.RSS.MaxMiB, r.RSS.At10MiB, r.RSS.At50MiB, r.RSS.At90MiB),
		fmt.Sprintf("≤ %.0f MiB, end ≤ 10%% + %d MiB", bound, rssGrowthMiB),
		r.RSS.MaxMiB <= bound && r.RSS.EndMiB <= r.RSS.At10MiB+rssGrowthMiB)
	rep.correct("queue", "DB 1 equals the expected statistics", diffSummary(diffs), r.Exact,
		fmt.Sprintf("DB 1 after the queue run differs from the expected statistics (%d differences)", len(diffs)))

	if b.runs("latency") {
		if err := b.latency(ctx, "the queue run's daemon"); err != nil {
			return err
		}
	}
	b.say("queue: SIGTERM; the daemon compiles what changed before it exits")
	if err := p.stop(ctx, 10*time.Minute); err != nil {
		return err
	}
	r.DaemonCPUTotal = p.cpuSeconds()
	r.PeakRSSMiB = mib(p.peakRSS())
	if rec, err := p.record("compiled"); err == nil {
		charts, _ := rec.float("charts")
		r.FinalCompileCharts = int(charts)
		r.FinalCompileSec, _ = rec.float("seconds")
	}
	rep.info("queue", "daemon peak RSS (VmHWM, incl. final compile)", fmt.Sprintf("%.1f MiB", r.PeakRSSMiB))
	rep.info("queue", "final compile at SIGTERM", fmt.Sprintf("%d charts in %.2f s", r.FinalCompileCharts, r.FinalCompileSec))
	return nil
}

// push LPUSHes lines in order, as the D4 server does (the first line ends
// up at the tail, where the daemon takes the oldest from), many per
// command and many commands per round trip.
func (b *bench) push(ctx context.Context, lines []workload.Line) error {
	c, err := b.d4.dial(d4DB)
	if err != nil {
		return err
	}
	defer c.Close()
	key := d4queue.QueueKey(queueUUID)
	const perCommand, perRoundTrip = 1000, 32
	pending := 0
	for i := 0; i < len(lines); i += perCommand {
		args := make([]any, 0, perCommand+1)
		args = append(args, key)
		for _, l := range lines[i:min(i+perCommand, len(lines))] {
			args = append(args, l.Raw)
		}
		if err := c.Send("LPUSH", args...); err != nil {
			return fmt.Errorf("push lines: %w", err)
		}
		if pending++; pending == perRoundTrip {
			if _, err := c.Do(""); err != nil {
				return fmt.Errorf("push lines: %w", err)
			}
			pending = 0
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	if _, err := c.Do(""); err != nil {
		return fmt.Errorf("push lines: %w", err)
	}
	return nil
}

// drainResult is what watching a daemon work through a queue saw.
type drainResult struct {
	at      time.Time // when the queue was empty and every attempt counted
	cpu     float64   // daemon CPU seconds at that moment
	samples []rssSample
}

// drain watches the daemon until the queue is empty and DB 1's yearly
// totals hold want attempts, reading the queue and the totals every 20 ms
// (two cheap commands) and the daemon's resident set every 250 ms.
func (b *bench) drain(ctx context.Context, p *daemonProc, section string, years []string, want int64) (drainResult, error) {
	var res drainResult
	d4, err := b.d4.dial(d4DB)
	if err != nil {
		return res, err
	}
	defer d4.Close()
	cnt, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return res, err
	}
	defer cnt.Close()
	key := d4queue.QueueKey(queueUUID)
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var lastRSS, lastSay time.Time
	lastCount, lastChange := int64(-1), start
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-p.done:
			return res, fmt.Errorf("the daemon exited before the queue was drained: %v; its log ends:\n%s", p.err, p.tail())
		case <-tick.C:
		}
		queued, err := redis.Int64(d4.Do("LLEN", key))
		if err != nil {
			return res, fmt.Errorf("queue length: %w", err)
		}
		counted, err := countedTotals(cnt, years)
		if isBusy(err) {
			// A script has held the counting Redis for longer than its
			// busy threshold: counted as a figure, and the watch goes on.
			b.busyReplies++
			continue
		}
		if err != nil {
			return res, err
		}
		now := time.Now()
		if now.Sub(lastRSS) >= 250*time.Millisecond {
			lastRSS = now
			if rss, err := readVmRSS(p.pid()); err == nil {
				res.samples = append(res.samples, rssSample{Seconds: now.Sub(start).Seconds(), Bytes: rss, Progress: float64(counted) / float64(want)})
			}
		}
		if queued == 0 && counted == want {
			res.at = now
			res.cpu, _ = readCPUSeconds(p.pid())
			return res, nil
		}
		if counted > want {
			return res, fmt.Errorf("DB 1 totals hold %d attempts, more than the %d pushed: lines were counted twice", counted, want)
		}
		if counted != lastCount {
			lastCount, lastChange = counted, now
		} else if now.Sub(lastChange) > time.Minute {
			return res, fmt.Errorf("no progress for a minute: %d lines queued, %d of %d attempts counted; the daemon's log ends:\n%s",
				queued, counted, want, p.tail())
		}
		if now.Sub(lastSay) >= 5*time.Second {
			lastSay = now
			b.say("%s: %s queued, %s of %s attempts counted", section, thousands(float64(queued)), thousands(float64(counted)), thousands(float64(want)))
		}
	}
}

// isBusy tells a BUSY reply: Redis has been running one script for longer
// than its busy threshold (lua-time-limit, 5 s) and answers nothing else.
func isBusy(err error) bool {
	return err != nil && strings.Contains(err.Error(), "BUSY")
}

// countedTotals sums the daemon's yearly totals (alog:totals), which it
// writes in the same transaction as the rankings.
func countedTotals(c redis.Conn, years []string) (int64, error) {
	args := []any{stats.TotalsKey}
	for _, y := range years {
		args = append(args, y)
	}
	vs, err := redis.Values(c.Do("HMGET", args...))
	if err != nil {
		return 0, fmt.Errorf("read totals: %w", err)
	}
	var sum int64
	for _, v := range vs {
		if v == nil {
			continue
		}
		n, err := redis.Int64(v, nil)
		if err != nil {
			return 0, fmt.Errorf("read totals: %w", err)
		}
		sum += n
	}
	return sum, nil
}

// yearsOf lists the years that have expected statistics.
func yearsOf(e workload.Expected) []string {
	seen := map[string]bool{}
	for key := range e.Sets {
		if period, _, ok := stats.SplitStatsKey(key); ok {
			if g, _ := stats.GranularityOf(period); g == stats.Yearly {
				seen[period] = true
			}
		}
	}
	return sortedKeys(seen)
}

// checkDB1 compares every statistics key of DB 1, oldest and newest with
// want and returns the differences.
func (b *bench) checkDB1(want workload.Expected) ([]string, error) {
	c, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	got, err := readStats(c)
	if err != nil {
		return nil, err
	}
	diffs := want.Diff(got)
	for _, k := range []struct{ key, want string }{{stats.OldestKey, want.Oldest}, {stats.NewestKey, want.Newest}} {
		v, err := redis.String(c.Do("GET", k.key))
		if err != nil && !errors.Is(err, redis.ErrNil) {
			return nil, fmt.Errorf("read %s: %w", k.key, err)
		}
		if v != k.want {
			diffs = append(diffs, fmt.Sprintf("%s = %q, want %q", k.key, v, k.want))
		}
	}
	return diffs, nil
}

// readStats reads every statistics sorted set of the connection's DB.
func readStats(c redis.Conn) (map[string]map[string]float64, error) {
	all, err := scanKeys(c, "*:stats*")
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, k := range all {
		if _, _, ok := stats.SplitStatsKey(k); ok {
			keys = append(keys, k)
		}
	}
	out := make(map[string]map[string]float64, len(keys))
	const perRoundTrip = 64
	for i := 0; i < len(keys); i += perRoundTrip {
		chunk := keys[i:min(i+perRoundTrip, len(keys))]
		for _, k := range chunk {
			if err := c.Send("ZRANGE", k, 0, -1, "WITHSCORES"); err != nil {
				return nil, fmt.Errorf("read statistics: %w", err)
			}
		}
		if err := c.Flush(); err != nil {
			return nil, fmt.Errorf("read statistics: %w", err)
		}
		for _, k := range chunk {
			v, err := redis.ByteSlices(c.Receive())
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", k, err)
			}
			m := make(map[string]float64, len(v)/2)
			for j := 0; j+1 < len(v); j += 2 {
				score, err := strconv.ParseFloat(string(v[j+1]), 64)
				if err != nil {
					return nil, fmt.Errorf("score in %s: %w", k, err)
				}
				m[string(v[j])] = score
			}
			out[k] = m
		}
	}
	return out, nil
}

func (b *bench) showDiffs(section string, diffs []string) {
	for i, d := range diffs {
		if i == 20 {
			b.say("%s: … and %d more differences", section, len(diffs)-20)
			return
		}
		b.say("%s: DIFFERENCE %s", section, d)
	}
}

func diffSummary(diffs []string) string {
	if len(diffs) == 0 {
		return "every key equal"
	}
	return fmt.Sprintf("%d differences", len(diffs))
}

// flushAll empties one of the bench's own servers. A server with an
// append-only file then has it rewritten to nothing, so that every run
// starts as on a new install: otherwise the file still holds the earlier
// runs' commands, and when its next automatic rewrite comes (a run with
// one more rewrite is markedly slower) depends on what ran before.
func (b *bench) flushAll(s *redisServer) error {
	if _, err := s.do(0, "FLUSHALL"); err != nil {
		return err
	}
	m, err := s.info("persistence")
	if err != nil || m["aof_enabled"] != "1" {
		return err
	}
	// One rewrite at a time: wait for any that runs, then start ours.
	ctx := context.Background()
	if _, err := s.quietPersistence(ctx, 5*time.Minute); err != nil {
		return err
	}
	if _, err := s.do(0, "BGREWRITEAOF"); err != nil {
		return fmt.Errorf("rewrite the %s redis's AOF: %w", s.name, err)
	}
	_, err = s.quietPersistence(ctx, 5*time.Minute)
	return err
}

// --- latency ----------------------------------------------------------

// latencyAlone measures latency with a fresh daemon when the queue run,
// whose daemon it otherwise uses, is skipped.
func (b *bench) latencyAlone(ctx context.Context) error {
	if b.runs("queue") {
		return nil
	}
	if err := b.flushAll(b.d4); err != nil {
		return err
	}
	p, err := startDaemon(ctx, b.bin, b.conf, filepath.Join(b.tmp, "run-latency"))
	if err != nil {
		return err
	}
	defer p.kill()
	// Measure a running daemon, not its start: wait until it consumes.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if recs, err := p.records(); err == nil {
			if _, ok := lastRecord(recs, "consuming"); ok {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon did not start consuming within 30 s; its log ends:\n%s", p.tail())
		}
		if err := waitCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	if err := waitCtx(ctx, 500*time.Millisecond); err != nil {
		return err
	}
	if err := b.latency(ctx, "a fresh daemon"); err != nil {
		return err
	}
	return p.stop(ctx, 5*time.Minute)
}

// latency pushes one counting line at a time into the idle queue and
// times until its user name is in today's ranking.
func (b *bench) latency(ctx context.Context, which string) error {
	d4, err := b.d4.dial(d4DB)
	if err != nil {
		return err
	}
	defer d4.Close()
	cnt, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return err
	}
	defer cnt.Close()
	b.say("latency: %d lines pushed one at a time into the idle queue", latencyTries)
	r := &latencyResult{Tries: latencyTries, Daemon: which}
	b.rep.Latency = r
	const host, src, limit = "bench-probe", "192.0.2.7", 5 * time.Second
	for i := range latencyTries {
		now := time.Now().UTC()
		user := fmt.Sprintf("bench-latency-%d-%d", i, now.UnixNano())
		raw := fmt.Sprintf("%s %s sshd[4242]: Invalid user %s from %s port 22", now.Format("2006-01-02T15:04:05.000000Z07:00"), host, user, src)
		key := stats.StatsKey(stats.PeriodOf(now).Day, stats.KindUser)
		start := time.Now()
		if _, err := d4.Do("LPUSH", d4queue.QueueKey(queueUUID), raw); err != nil {
			return fmt.Errorf("push a line: %w", err)
		}
		var took time.Duration
		for {
			v, err := cnt.Do("ZSCORE", key, user)
			if err != nil {
				return fmt.Errorf("look for the pushed line: %w", err)
			}
			if took = time.Since(start); v != nil {
				break
			}
			if took > limit {
				b.say("latency: line %d not counted within %v", i, limit)
				break
			}
			if err := waitCtx(ctx, time.Millisecond); err != nil {
				return err
			}
		}
		r.AllMs = append(r.AllMs, float64(took.Microseconds())/1000)
		b.extra = append(b.extra, workload.Line{Raw: []byte(raw), Counts: true, Time: now, Host: host, User: user, Src: src})
		// Let the worker go back to waiting, as on an idle queue.
		if err := waitCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	sorted := slices.Clone(r.AllMs)
	slices.Sort(sorted)
	r.P50Ms, r.MaxMs = percentile(sorted, 0.5), sorted[len(sorted)-1]
	b.rep.target("latency", "idle queue → DB 1, p50 of 20", fmt.Sprintf("%.1f ms", r.P50Ms), "< 100 ms", r.P50Ms < 100)
	b.rep.target("latency", "idle queue → DB 1, max of 20", fmt.Sprintf("%.1f ms", r.MaxMs), "< 1000 ms", r.MaxMs < 1000)
	return nil
}

// --- flush ------------------------------------------------------------

func (b *bench) flush(ctx context.Context) error {
	q := b.rep.Queue
	if q == nil {
		b.say("flush: skipped, it recounts what the queue run stored")
		return nil
	}
	wantAll := workload.Expect(append(slices.Clip(b.lines), b.extra...), time.UTC)
	b.say("flush: -F recounts DB 1 from the %s attempts stored in DB 0, then compiles everything", thousands(float64(wantAll.Attempts)))
	start := time.Now()
	p, err := startDaemon(ctx, b.bin, b.conf, filepath.Join(b.tmp, "run-flush"), "-F")
	if err != nil {
		return err
	}
	if err := p.wait(ctx, 15*time.Minute); err != nil {
		return err
	}
	r := &flushResult{WallSeconds: time.Since(start).Seconds(), PeakRSSMiB: mib(p.peakRSS()), DaemonCPUTotal: p.cpuSeconds()}
	b.rep.Flush = r
	recs, err := p.records()
	if err != nil {
		return err
	}
	rec, ok := lastRecord(recs, "flush: recounted")
	if !ok {
		return fmt.Errorf("the daemon's log has no \"flush: recounted\" line; it ends:\n%s", p.tail())
	}
	attempts, err := rec.float("attempts")
	if err != nil {
		return err
	}
	if r.Seconds, err = rec.float("seconds"); err != nil {
		return err
	}
	if r.Seconds < 1 {
		// The line says tenths of a second; its timestamps say more.
		r.Seconds = refineSeconds(recs, "flush:", rec, r.Seconds)
	}
	r.AttemptsCounted = int(attempts)
	r.Attempts = wantAll.Attempts
	if r.Seconds > 0 {
		r.AttemptsPerS = attempts / r.Seconds
	}
	if c, ok := lastRecord(recs, "compiled"); ok {
		charts, _ := c.float("charts")
		r.CompileCharts = int(charts)
		r.CompileSeconds, _ = c.float("seconds")
	}
	diffs, err := b.checkDB1(wantAll)
	if err != nil {
		return err
	}
	if r.AttemptsCounted != wantAll.Attempts {
		diffs = append(diffs, fmt.Sprintf("-F recounted %d attempts, want %d", r.AttemptsCounted, wantAll.Attempts))
	}
	r.Exact = len(diffs) == 0
	b.showDiffs("flush", diffs)

	r.RatioToQueue = r.AttemptsPerS / q.AttemptsPerS
	b.rep.target("flush", "-F recount attempts/s", fmt.Sprintf("%s (%.2f × live)", thousands(r.AttemptsPerS), r.RatioToQueue),
		"≥ queue attempts/s = "+thousands(q.AttemptsPerS), r.RatioToQueue >= 1)
	b.rep.info("flush", "-F full compile", fmt.Sprintf("%d charts in %.2f s (peak RSS %.1f MiB)", r.CompileCharts, r.CompileSeconds, r.PeakRSSMiB))
	b.rep.correct("flush", "DB 1 after -F equals the expected statistics", diffSummary(diffs), r.Exact,
		fmt.Sprintf("DB 1 rebuilt by -F differs from the expected statistics (%d differences)", len(diffs)))
	return nil
}

// refineSeconds measures from the first record whose msg starts with
// prefix to end by their timestamps (milliseconds), falling back to
// coarse when they cannot be read.
func refineSeconds(recs []logRecord, prefix string, end logRecord, coarse float64) float64 {
	t1, err := end.time()
	if err != nil {
		return coarse
	}
	for _, r := range recs {
		if strings.HasPrefix(r["msg"], prefix) {
			t0, err := r.time()
			if err != nil || !t1.After(t0) {
				return coarse
			}
			return t1.Sub(t0).Seconds()
		}
	}
	return coarse
}

// --- storage ----------------------------------------------------------

func (b *bench) storage(ctx context.Context) error {
	if b.rep.Queue == nil {
		b.say("storage: skipped, it measures what the queue run stored")
		return nil
	}
	r := &storageResult{StoredAttempts: b.want.Attempts + len(b.extra)}
	b.rep.Storage = r
	b.say("storage: INFO memory before and after dropping DB 0, then DB 1")
	db0, err := b.memoryOf(stats.AttemptsDB)
	if err != nil {
		return err
	}
	r.DB0Bytes = db0
	r.DB0BytesPerAttempt = float64(db0) / float64(r.StoredAttempts)

	c, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return err
	}
	keys, err := scanKeys(c, "*:stats*")
	if err == nil {
		for _, k := range keys {
			if _, _, ok := stats.SplitStatsKey(k); !ok {
				continue
			}
			n, zerr := redis.Int64(c.Do("ZCARD", k))
			if zerr != nil {
				err = fmt.Errorf("count members of %s: %w", k, zerr)
				break
			}
			r.DB1Members += n
		}
	}
	c.Close()
	if err != nil {
		return err
	}
	db1, err := b.memoryOf(stats.StatsDB)
	if err != nil {
		return err
	}
	r.DB1Bytes = db1
	if r.DB1Members > 0 {
		r.DB1BytesPerMember = float64(db1) / float64(r.DB1Members)
	}
	b.rep.target("storage", "DB 0 Redis memory per stored attempt", fmt.Sprintf("%.1f bytes (%s attempts)", r.DB0BytesPerAttempt, thousands(float64(r.StoredAttempts))),
		"≤ 64 bytes", r.DB0BytesPerAttempt <= 64)
	b.rep.info("storage", "DB 1 Redis memory per distinct member", fmt.Sprintf("%.1f bytes (%s members)", r.DB1BytesPerMember, thousands(float64(r.DB1Members))))
	return ctx.Err()
}

// memoryOf is how much used_memory drops when db is emptied.
func (b *bench) memoryOf(db int) (int64, error) {
	before, err := b.cnt.usedMemory()
	if err != nil {
		return 0, err
	}
	if _, err := b.cnt.do(db, "FLUSHDB"); err != nil {
		return 0, err
	}
	after, err := b.cnt.usedMemory()
	if err != nil {
		return 0, err
	}
	return before - after, nil
}

// --- file -------------------------------------------------------------

func (b *bench) file(ctx context.Context) error {
	if err := b.flushAll(b.cnt); err != nil {
		return err
	}
	path := filepath.Join(b.tmp, "lines.log")
	if err := writeLines(path, b.lines); err != nil {
		return err
	}
	b.say("file: -f with the same %s lines", thousands(float64(len(b.lines))))
	if err := b.cnt.scriptLog(); err != nil {
		return err
	}
	cnt0, err := b.cnt.cpuSeconds()
	if err != nil {
		return err
	}
	start := time.Now()
	p, err := startDaemon(ctx, b.bin, b.conf, filepath.Join(b.tmp, "run-file"), "-f", path)
	if err != nil {
		return err
	}
	if err := p.wait(ctx, 15*time.Minute); err != nil {
		return err
	}
	r := &fileResult{WallSeconds: time.Since(start).Seconds(), PeakRSSMiB: mib(p.peakRSS()), DaemonCPU: p.cpuSeconds()}
	b.rep.File = r
	cnt1, err := b.cnt.cpuSeconds()
	if err != nil {
		return err
	}
	r.CountingRedisCPU = cnt1 - cnt0
	if r.LongestScriptMs, _, err = b.cnt.longestScript(fileScripts); err != nil {
		return err
	}
	recs, err := p.records()
	if err != nil {
		return err
	}
	done, ok := lastRecord(recs, "file done")
	if !ok {
		return fmt.Errorf("the daemon's log has no \"file done\" line; it ends:\n%s", p.tail())
	}
	lines, err := done.float("lines")
	if err != nil {
		return err
	}
	counted, err := done.float("counted")
	if err != nil {
		return err
	}
	if r.Seconds, err = done.float("seconds"); err != nil {
		return err
	}
	r.Lines, r.Counted = int(lines), int(counted)
	if r.Seconds > 0 {
		r.LinesPerS = lines / r.Seconds
	}
	if c, ok := lastRecord(recs, "compiled"); ok {
		r.CompileSeconds, _ = c.float("seconds")
	}
	b.say("file: counted in %.2f s; comparing every DB 1 key with the expected statistics", r.Seconds)
	diffs, err := b.checkDB1(b.want)
	if err != nil {
		return err
	}
	if r.Lines != len(b.lines) || r.Counted != b.want.Attempts {
		diffs = append(diffs, fmt.Sprintf("file done: lines=%d counted=%d, want %d and %d", r.Lines, r.Counted, len(b.lines), b.want.Attempts))
	}
	r.Exact = len(diffs) == 0
	b.showDiffs("file", diffs)

	if q := b.rep.Queue; q != nil {
		r.RatioToQueue = r.LinesPerS / q.LinesPerS
		b.rep.target("file", "-f lines/s (counting)", fmt.Sprintf("%s (%.2f × queue)", thousands(r.LinesPerS), r.RatioToQueue),
			"≥ queue lines/s = "+thousands(q.LinesPerS), r.RatioToQueue >= 1)
	} else {
		b.rep.info("file", "-f lines/s (counting)", thousands(r.LinesPerS))
	}
	b.rep.info("file", "CPU s: daemon / counting redis (incl. compile)", fmt.Sprintf("%.1f / %.1f", r.DaemonCPU, r.CountingRedisCPU))
	b.rep.info("file", "longest counting script (SLOWLOG)", fmt.Sprintf("%.1f ms", r.LongestScriptMs))
	b.rep.info("file", "-f wall time incl. compile", fmt.Sprintf("%.2f s (compile %.2f s, peak RSS %.1f MiB)", r.WallSeconds, r.CompileSeconds, r.PeakRSSMiB))
	b.rep.correct("file", "DB 1 equals the expected statistics", diffSummary(diffs), r.Exact,
		fmt.Sprintf("DB 1 after -f differs from the expected statistics (%d differences)", len(diffs)))
	return nil
}

func writeLines(path string, lines []workload.Line) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create the lines file: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, l := range lines {
		w.Write(l.Raw)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write the lines file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write the lines file: %w", err)
	}
	return nil
}

// --- compile ----------------------------------------------------------

func (b *bench) compile(ctx context.Context) error {
	if err := b.flushAll(b.cnt); err != nil {
		return err
	}
	r := &compileResult{Members: compileMembers}
	b.rep.Compile = r
	// The same command with nothing to draw: what the process costs
	// without the ranking.
	base, err := startDaemon(ctx, b.bin, b.conf, filepath.Join(b.tmp, "run-compile-baseline"), "-f", os.DevNull)
	if err != nil {
		return err
	}
	if err := base.wait(ctx, time.Minute); err != nil {
		return err
	}
	r.BaselineRSSMiB = mib(base.peakRSS())

	b.say("compile: filling year %s with %s distinct sources", compileYear, thousands(compileMembers))
	start := time.Now()
	if err := b.fillYear(ctx); err != nil {
		return err
	}
	r.FillSeconds = time.Since(start).Seconds()
	b.say("compile: -f %s compiles the year's three keys", os.DevNull)
	dir := filepath.Join(b.tmp, "run-compile")
	start = time.Now()
	p, err := startDaemon(ctx, b.bin, b.conf, dir, "-f", os.DevNull)
	if err != nil {
		return err
	}
	if err := p.wait(ctx, 10*time.Minute); err != nil {
		return err
	}
	r.DaemonWallSeconds = time.Since(start).Seconds()
	r.PeakRSSMiB = mib(p.peakRSS())
	rec, err := p.record("compiled")
	if err != nil {
		return err
	}
	charts, err := rec.float("charts")
	if err != nil {
		return err
	}
	r.Charts = int(charts)
	if r.Seconds, err = rec.float("seconds"); err != nil {
		return err
	}
	out := filepath.Join(dir, "data", "sshd", compileYear)
	name := stats.StatsKey(compileYear, stats.KindSrc)
	if r.CSVLines, err = countLines(filepath.Join(out, name+".csv")); err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Join(out, name+".svg")); err == nil {
		r.SVGBytes = st.Size()
	}
	r.OutputOK = r.CSVLines == compileMembers+1 && r.SVGBytes > 0 && r.Charts == 3

	b.rep.target("compile", "year with 1,000,000 distinct sources", fmt.Sprintf("%.2f s (%d charts)", r.Seconds, r.Charts), "< 5 s", r.Seconds < 5)
	b.rep.target("compile", "daemon peak RSS while compiling it", fmt.Sprintf("%.1f MiB (%.1f MiB with nothing to draw)", r.PeakRSSMiB, r.BaselineRSSMiB),
		fmt.Sprintf("≤ %d MiB", rssBaseMiB), r.PeakRSSMiB <= rssBaseMiB)
	b.rep.correct("compile", "CSV rows and SVG written", fmt.Sprintf("%s CSV lines, SVG %s bytes", thousands(float64(r.CSVLines)), thousands(float64(r.SVGBytes))),
		r.OutputOK, fmt.Sprintf("want a header and %d CSV rows, an SVG and 3 charts; got %d lines, %d SVG bytes, %d charts",
			compileMembers, r.CSVLines, r.SVGBytes, r.Charts))
	return nil
}

// fillYear writes one year's statistics as the daemon would have left
// them: a million distinct sources with a long-tailed count, a few users
// and hosts, the year's total, oldest/newest and the toupdate entries
// that make the next compile draw them.
func (b *bench) fillYear(ctx context.Context) error {
	c, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return err
	}
	defer c.Close()
	var total int64
	fill := func(kind string, n int, member func(int) string) error {
		key := stats.StatsKey(compileYear, kind)
		const perCommand, perRoundTrip = 1000, 16
		pending := 0
		for i := 0; i < n; i += perCommand {
			args := []any{key}
			for j := i; j < min(i+perCommand, n); j++ {
				score := int64(1 + 100000/(j+1))
				if kind == stats.KindSrc {
					total += score
				}
				args = append(args, score, member(j))
			}
			if err := c.Send("ZADD", args...); err != nil {
				return fmt.Errorf("fill %s: %w", key, err)
			}
			if pending++; pending == perRoundTrip {
				if _, err := c.Do(""); err != nil {
					return fmt.Errorf("fill %s: %w", key, err)
				}
				pending = 0
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		if _, err := c.Do(""); err != nil {
			return fmt.Errorf("fill %s: %w", key, err)
		}
		return nil
	}
	if err := fill(stats.KindSrc, compileMembers, func(j int) string {
		return fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255)
	}); err != nil {
		return err
	}
	if err := fill(stats.KindUser, 500, func(j int) string { return "user" + strconv.Itoa(j) }); err != nil {
		return err
	}
	if err := fill(stats.KindHost, 50, func(j int) string { return "srv" + strconv.Itoa(j) }); err != nil {
		return err
	}
	cmds := [][]any{
		{"HSET", stats.TotalsKey, compileYear, total},
		{"SET", stats.OldestKey, compileYear + "0101"},
		{"SET", stats.NewestKey, compileYear + "1231"},
		{"SADD", stats.ToUpdateKey(stats.Yearly), stats.StatsKey(compileYear, stats.KindUser),
			stats.StatsKey(compileYear, stats.KindSrc), stats.StatsKey(compileYear, stats.KindHost)},
	}
	for _, cmd := range cmds {
		if _, err := c.Do(cmd[0].(string), cmd[1:]...); err != nil {
			return fmt.Errorf("fill year %s: %s: %w", compileYear, cmd[0], err)
		}
	}
	return nil
}

func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open compiled ranking: %w", err)
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	for {
		k, err := f.Read(buf)
		n += bytes.Count(buf[:k], []byte("\n"))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read compiled ranking: %w", err)
		}
	}
}

// --- backlog ----------------------------------------------------------

func (b *bench) backlog(ctx context.Context) error {
	if err := b.flushAll(b.cnt); err != nil {
		return err
	}
	if err := b.flushAll(b.d4); err != nil {
		return err
	}
	// The earlier sections' lines are done with; the backlog brings its own.
	b.lines, b.want, b.extra = nil, workload.Expected{}, nil
	r := &backlogResult{Lines: b.o.backlog}
	b.rep.Backlog = r
	// Generated and pushed a million at a time, so the bench's own memory
	// stays bounded; each chunk is in time order over the same 300 days.
	years := map[string]bool{}
	start := time.Now()
	for done, chunk := 0, 0; done < b.o.backlog; chunk++ {
		n := min(backlogChunk, b.o.backlog-done)
		lines := workload.Generate(workload.Options{
			Lines: n, Ref: time.Now(), Loc: time.UTC, Days: 300,
			Users: 500, Sources: 50000, Hosts: 50, Noise: 0.3, Seed: uint64(1000 + chunk),
		})
		for _, l := range lines {
			if l.Counts {
				r.Attempts++
				years[strconv.Itoa(l.Time.Year())] = true
			}
		}
		if err := b.push(ctx, lines); err != nil {
			return err
		}
		done += n
		b.say("backlog: pushed %s of %s lines", thousands(float64(done)), thousands(float64(b.o.backlog)))
	}
	r.PushSeconds = time.Since(start).Seconds()
	b.say("backlog: starting the daemon")
	t0 := time.Now()
	p, err := startDaemon(ctx, b.bin, b.conf, filepath.Join(b.tmp, "run-backlog"))
	if err != nil {
		return err
	}
	defer p.kill()
	dr, err := b.drain(ctx, p, "backlog", sortedKeys(years), int64(r.Attempts))
	if err != nil {
		return err
	}
	r.Exact = true
	r.Seconds = dr.at.Sub(t0).Seconds()
	r.LinesPerS = float64(r.Lines) / r.Seconds
	r.RSS = summarizeRSS(dr.samples)
	b.say("backlog: drained in %.1f s; SIGTERM", r.Seconds)
	if err := p.stop(ctx, 15*time.Minute); err != nil {
		return err
	}
	r.PeakRSSMiB = mib(p.peakRSS())
	b.rep.info("backlog", "lines/s", fmt.Sprintf("%s (%s lines in %.1f s)", thousands(r.LinesPerS), thousands(float64(r.Lines)), r.Seconds))
	bound := rssBoundMiB(b.o.pool, b.o.batch)
	b.rep.target("backlog", "daemon RSS while draining: min/median/max",
		fmt.Sprintf("%.1f/%.1f/%.1f MiB; at 10%% %.1f, end %.1f", r.RSS.MinMiB, r.RSS.MedianMiB, r.RSS.MaxMiB, r.RSS.At10MiB, r.RSS.EndMiB),
		fmt.Sprintf("≤ %.0f MiB, end ≤ 10%% + %d MiB", bound, rssGrowthMiB),
		r.RSS.MaxMiB <= bound && r.RSS.EndMiB <= r.RSS.At10MiB+rssGrowthMiB)
	b.rep.info("backlog", "daemon peak RSS (VmHWM, incl. final compile)", fmt.Sprintf("%.1f MiB", r.PeakRSSMiB))
	b.rep.correct("backlog", "DB 1 totals equal the attempts pushed", thousands(float64(r.Attempts)), r.Exact, "totals differ")
	return nil
}
