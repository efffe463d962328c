package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// The trickle section: what an idle daemon costs the D4 server's Redis,
// and what a real D4 worker's one-LPUSH-per-line delivery costs the
// counting Redis (every counting transaction is an fsync under
// appendfsync always).
const (
	idleSeconds    = 10
	trickleRate    = 2000 // lines per second, one LPUSH each
	trickleSeconds = 20
)

type trickleResult struct {
	IdleD4CommandsPerS  float64 `json:"idle_d4_commands_per_s"`
	Lines               int     `json:"lines"`
	PushedLinesPerS     float64 `json:"pushed_lines_per_s"`
	Transactions        int64   `json:"transactions"`
	TransactionsPerLine float64 `json:"transactions_per_line"`
	LatencyP50Ms        float64 `json:"latency_p50_ms"`
	LatencyP99Ms        float64 `json:"latency_p99_ms"`
	Exact               bool    `json:"exact"`
}

func (b *bench) trickle(ctx context.Context) error {
	if err := b.flushAll(b.cnt); err != nil {
		return err
	}
	if err := b.flushAll(b.d4); err != nil {
		return err
	}
	b.lines, b.want, b.extra = nil, workload.Expected{}, nil
	r := &trickleResult{}
	b.rep.Trickle = r
	// -d logs one line per counted batch: each is one counting script
	// (one fsync under appendfsync always), which is what is counted.
	p, err := startDaemon(ctx, b.bin, b.conf, filepath.Join(b.tmp, "run-trickle"), "-d")
	if err != nil {
		return err
	}
	defer p.kill()
	if err := waitConsuming(ctx, p); err != nil {
		return err
	}
	// Let start-up (the first compile, the backlog check) pass.
	if err := waitCtx(ctx, 2*time.Second); err != nil {
		return err
	}

	b.say("trickle: the daemon idle for %d s; counting the commands the D4 Redis serves", idleSeconds)
	before, err := commandsProcessed(b.d4)
	if err != nil {
		return err
	}
	if err := waitCtx(ctx, idleSeconds*time.Second); err != nil {
		return err
	}
	after, err := commandsProcessed(b.d4)
	if err != nil {
		return err
	}
	// The second INFO itself is one of them.
	r.IdleD4CommandsPerS = float64(after-before-1) / idleSeconds
	b.rep.target("trickle", "idle: commands/s on the D4 Redis", fmt.Sprintf("%.2f", r.IdleD4CommandsPerS), "≤ 2", r.IdleD4CommandsPerS <= 2)

	n := trickleRate * trickleSeconds
	lines := workload.Generate(workload.Options{Lines: n, Ref: time.Now(), Loc: time.UTC, Days: 2,
		Users: 100, Sources: 5000, Hosts: 10, Noise: 0, Seed: 3})
	want := workload.Expect(lines, time.UTC)
	r.Lines = n
	b.say("trickle: %d lines at %d lines/s, one LPUSH each", n, trickleRate)
	batchesBefore, err := batchLines(p)
	if err != nil {
		return err
	}
	d4, err := b.d4.dial(d4DB)
	if err != nil {
		return err
	}
	defer d4.Close()
	lengths := &redis.Pool{Dial: func() (redis.Conn, error) { return b.d4.dial(d4DB) }, MaxIdle: 1}
	defer lengths.Close()
	// pushedAt[i] is when line i was pushed; counted samples the number of
	// lines taken off the queue and counted, to time each line.
	pushedAt := make([]time.Time, 0, n)
	type sample struct {
		at   time.Time
		done int
	}
	var samples []sample
	start := time.Now()
	countedSoFar := func() (int, error) {
		// Lines acknowledged: pushed minus what is still queued or in
		// flight.
		q, proc, err := d4queue.Lengths(ctx, lengths, queueUUID, 64)
		return len(pushedAt) - int(q+proc), err
	}
	next := start
	for i := 0; i < n; i++ {
		if d := time.Until(next); d > 0 {
			if err := waitCtx(ctx, d); err != nil {
				return err
			}
		}
		next = next.Add(time.Second / trickleRate)
		if _, err := d4.Do("LPUSH", d4queue.QueueKey(queueUUID), lines[i].Raw); err != nil {
			return fmt.Errorf("push a line: %w", err)
		}
		pushedAt = append(pushedAt, time.Now())
		if i%50 == 0 {
			done, err := countedSoFar()
			if err != nil {
				return err
			}
			samples = append(samples, sample{time.Now(), done})
		}
	}
	r.PushedLinesPerS = float64(n) / time.Since(start).Seconds()
	for deadline := time.Now().Add(30 * time.Second); ; {
		done, err := countedSoFar()
		if err != nil {
			return err
		}
		samples = append(samples, sample{time.Now(), done})
		if done >= n || time.Now().After(deadline) {
			break
		}
		if err := waitCtx(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	batchesAfter, err := batchLines(p)
	if err != nil {
		return err
	}
	r.Transactions = batchesAfter - batchesBefore
	r.TransactionsPerLine = float64(r.Transactions) / float64(n)
	// Line i is counted no later than the first sample that shows i+1
	// lines done; the sampling period (50 pushes, 25 ms) bounds the error.
	var lat []float64
	j := 0
	for i := range pushedAt {
		for j < len(samples) && samples[j].done < i+1 {
			j++
		}
		if j == len(samples) {
			break
		}
		lat = append(lat, float64(max(samples[j].at.Sub(pushedAt[i]), 0).Microseconds())/1000)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.LatencyP50Ms, r.LatencyP99Ms = percentile(lat, 0.5), percentile(lat, 0.99)
	}
	if err := p.stop(ctx, 5*time.Minute); err != nil {
		return err
	}
	diffs, err := b.checkDB1(want)
	if err != nil {
		return err
	}
	r.Exact = len(diffs) == 0
	b.rep.target("trickle", "counting transactions per line", fmt.Sprintf("%.4f (%d for %d lines)", r.TransactionsPerLine, r.Transactions, n), "≤ 0.05", r.TransactionsPerLine <= 0.05)
	b.rep.target("trickle", "push → counted, p99", fmt.Sprintf("%.0f ms (p50 %.0f ms)", r.LatencyP99Ms, r.LatencyP50Ms), "< 250 ms", r.LatencyP99Ms < 250 && len(lat) == n)
	b.rep.correct("trickle", "DB 1 after the trickle", diffSummary(diffs), r.Exact, "DB 1 differs after the trickle: "+fmt.Sprint(diffs[:min(len(diffs), 5)]))
	return nil
}

// waitConsuming waits until the daemon logs that it consumes.
func waitConsuming(ctx context.Context, p *daemonProc) error {
	for deadline := time.Now().Add(30 * time.Second); ; {
		if recs, err := p.records(); err == nil {
			if _, ok := lastRecord(recs, "consuming"); ok {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the daemon did not start consuming within 30 s; its log ends:\n%s", p.tail())
		}
		if err := waitCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

func commandsProcessed(s *redisServer) (int64, error) {
	m, err := s.info("stats")
	if err != nil {
		return 0, err
	}
	var n int64
	_, err = fmt.Sscan(m["total_commands_processed"], &n)
	return n, err
}

// batchLines is how many batches the daemon has counted so far, from its
// debug log: one "batch" line per counting transaction.
func batchLines(p *daemonProc) (int64, error) {
	recs, err := p.records()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, r := range recs {
		if r["msg"] == "batch" {
			n++
		}
	}
	return n, nil
}
