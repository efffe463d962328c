package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// The dedupe section (SPEC §15): the same recent lines through the queue
// with dedupe_days = 0 and with dedupe_days = 7, in the same run. It
// reports what the memory of counted lines costs the counting Redis per
// remembered line (the used_memory of the two runs, daemon stopped, told
// apart), the queue speed with the memory on against off and against the
// naive ceiling, and that a restarted sensor's resent tail adds nothing.
const (
	dedupeMaxLines = 200000
	dedupeResend   = 2000
	dedupeDays     = 7
	// Per remembered line, the bound SPEC §15 states.
	dedupeBytesBound = 24
	// The floor for the queue with the memory on.
	dedupeCeilingRatio = 3
)

type dedupeResult struct {
	Lines         int     `json:"lines"`
	Remembered    int     `json:"remembered"`
	OffLinesPerS  float64 `json:"off_lines_per_s"`
	OnLinesPerS   float64 `json:"on_lines_per_s"`
	OnOverOff     float64 `json:"on_over_off"`
	OnOverCeiling float64 `json:"on_over_ceiling,omitempty"`
	OffUsedMemory int64   `json:"off_used_memory"`
	OnUsedMemory  int64   `json:"on_used_memory"`
	BytesPerLine  float64 `json:"bytes_per_remembered_line"`
	ResentCounted int64   `json:"resent_counted"`
	Exact         bool    `json:"exact"`
	Resent        int     `json:"resent_lines"`
}

func (b *bench) dedupe(ctx context.Context) error {
	n := min(b.o.lines, dedupeMaxLines)
	// Lines of the last five days, all within the window, none of them
	// noise: every line is one remembered.
	lines := distinctLines(workload.Generate(workload.Options{Lines: n, Ref: time.Now(), Loc: time.UTC, Days: 5,
		Users: 500, Sources: 50000, Hosts: 50, Noise: 0, Seed: 19}))
	want := workload.Expect(lines, time.UTC)
	r := &dedupeResult{Lines: len(lines), Remembered: want.Attempts, Resent: dedupeResend}
	b.rep.Dedupe = r

	off, err := b.dedupeRun(ctx, 0, lines, want, nil)
	if err != nil {
		return err
	}
	resend := lines[max(0, len(lines)-dedupeResend):]
	on, err := b.dedupeRun(ctx, dedupeDays, lines, want, resend)
	if err != nil {
		return err
	}
	r.OffLinesPerS, r.OnLinesPerS = off.linesPerS, on.linesPerS
	r.OffUsedMemory, r.OnUsedMemory = off.used, on.used
	r.OnOverOff = on.linesPerS / off.linesPerS
	r.BytesPerLine = float64(on.used-off.used) / float64(r.Remembered)
	r.ResentCounted = on.resentCounted
	r.Exact = len(on.diffs) == 0 && len(off.diffs) == 0 && on.resentCounted == 0
	b.showDiffs("dedupe", append(off.diffs, on.diffs...))

	rep := b.rep
	rep.target("dedupe", "counting redis memory per remembered line",
		fmt.Sprintf("%.1f bytes (%s lines; used_memory %s vs %s with dedupe_days = 0)", r.BytesPerLine, thousands(float64(r.Remembered)),
			thousands(float64(on.used)), thousands(float64(off.used))),
		fmt.Sprintf("≤ %d bytes", dedupeBytesBound), r.BytesPerLine <= dedupeBytesBound)
	rep.info("dedupe", "queue lines/s: dedupe_days = 0 / 7",
		fmt.Sprintf("%s / %s (%.2f ×)", thousands(r.OffLinesPerS), thousands(r.OnLinesPerS), r.OnOverOff))
	if c := rep.Ceiling; c != nil {
		r.OnOverCeiling = r.OnLinesPerS / c.NaiveLinesPerS
		rep.target("dedupe", "queue lines/s with dedupe_days = 7", fmt.Sprintf("%s (%.2f × ceiling)", thousands(r.OnLinesPerS), r.OnOverCeiling),
			fmt.Sprintf("≥ %d × ceiling = %s", dedupeCeilingRatio, thousands(dedupeCeilingRatio*c.NaiveLinesPerS)), r.OnOverCeiling >= dedupeCeilingRatio)
	}
	rep.correct("dedupe", fmt.Sprintf("the last %d lines resent count nothing new; DB 1 equals the distinct lines", dedupeResend),
		fmt.Sprintf("%d attempts added by the resend; %s", r.ResentCounted, diffSummary(append(off.diffs, on.diffs...))), r.Exact,
		"a resent block of lines was counted again, or DB 1 differs from the distinct lines counted once")
	return nil
}

type dedupeRunResult struct {
	linesPerS     float64
	used          int64
	resentCounted int64
	diffs         []string
}

// dedupeRun drains lines with dedupe_days = days, resends resend once the
// queue is empty, stops the daemon and reads the counting Redis's memory.
func (b *bench) dedupeRun(ctx context.Context, days int, lines []workload.Line, want workload.Expected, resend []workload.Line) (dedupeRunResult, error) {
	var res dedupeRunResult
	if err := b.flushAll(b.cnt); err != nil {
		return res, err
	}
	if err := b.flushAll(b.d4); err != nil {
		return res, err
	}
	conf := filepath.Join(b.tmp, fmt.Sprintf("conf-dedupe-%d", days))
	if err := writeConf(conf, b.d4.addr(), queueUUID, b.cnt.addr(), b.o.pool, b.o.batch); err != nil {
		return res, err
	}
	toml := filepath.Join(conf, "analyzer.toml")
	f, err := os.OpenFile(toml, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return res, fmt.Errorf("add dedupe_days to %s: %w", toml, err)
	}
	_, err = fmt.Fprintf(f, "dedupe_days = %d\n", days)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("add dedupe_days to %s: %w", toml, err)
	}

	b.say("dedupe: %s recent lines through the queue with dedupe_days = %d", thousands(float64(len(lines))), days)
	if err := b.push(ctx, lines); err != nil {
		return res, err
	}
	t0 := time.Now()
	p, err := startDaemon(ctx, b.bin, conf, filepath.Join(b.tmp, fmt.Sprintf("run-dedupe-%d", days)))
	if err != nil {
		return res, err
	}
	defer p.kill()
	years := yearsOf(want)
	dr, err := b.drain(ctx, p, "dedupe", years, int64(want.Attempts))
	if err != nil {
		return res, err
	}
	res.linesPerS = float64(len(lines)) / dr.at.Sub(t0).Seconds()
	if len(resend) > 0 {
		b.say("dedupe: resending the last %d lines, as a restarted sensor's tail -n%d would", len(resend), len(resend))
		if err := b.push(ctx, resend); err != nil {
			return res, err
		}
		if err := b.waitQueueEmpty(ctx, p); err != nil {
			return res, err
		}
	}
	// A stop finishes the batch in flight: every resent line is decided.
	if err := p.stop(ctx, time.Minute); err != nil {
		return res, err
	}
	cnt, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return res, err
	}
	total, err := countedTotals(cnt, years)
	cnt.Close()
	if err != nil {
		return res, err
	}
	res.resentCounted = total - int64(want.Attempts)
	if res.diffs, err = b.checkDB1(want); err != nil {
		return res, err
	}
	res.used, err = b.cnt.usedMemory()
	return res, err
}

// waitQueueEmpty waits until the daemon has taken every line of the queue.
func (b *bench) waitQueueEmpty(ctx context.Context, p *daemonProc) error {
	d4, err := b.d4.dial(d4DB)
	if err != nil {
		return err
	}
	defer d4.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("the daemon exited before the queue was drained: %v; its log ends:\n%s", p.err, p.tail())
		case <-tick.C:
		}
		n, err := redis.Int64(d4.Do("LLEN", d4queue.QueueKey(queueUUID)))
		if err != nil {
			return fmt.Errorf("queue length: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d lines still queued a minute after the resend; the daemon's log ends:\n%s", n, p.tail())
		}
	}
}

// distinctLines keeps the first of identical lines: the generator may,
// rarely, repeat one, which the daemon rightly counts once.
func distinctLines(ls []workload.Line) []workload.Line {
	seen := make(map[string]bool, len(ls))
	out := ls[:0:0]
	for _, l := range ls {
		k := string(bytes.TrimSuffix(l.Raw, []byte("\r")))
		if !seen[k] {
			seen[k] = true
			out = append(out, l)
		}
	}
	return out
}
