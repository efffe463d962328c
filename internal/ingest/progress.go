package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Progress accumulates what was counted between two reports.
type Progress struct {
	mu      sync.Mutex
	lines   int64
	counted int64
	skipped []int64
	// first and last bound the time spent working since the last take:
	// the start of the first batch and the end of the last one.
	first, last time.Time
	// total is everything since the start, never taken.
	total tally
}

func (p *Progress) add(lines, counted int64, skipped []int, start, end time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines += lines
	p.counted += counted
	p.total.lines += lines
	p.total.counted += counted
	if p.total.skipped == nil {
		p.total.skipped = make([]int64, len(p.skipped))
	}
	for i, n := range skipped {
		p.skipped[i] += int64(n)
		p.total.skipped[i] += int64(n)
	}
	if p.first.IsZero() || start.Before(p.first) {
		p.first = start
	}
	if end.After(p.last) {
		p.last = end
	}
}

// tally is one report's worth of progress.
type tally struct {
	lines, counted int64
	skipped        []int64
	busy           time.Duration
}

func (p *Progress) take() tally {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := tally{lines: p.lines, counted: p.counted, skipped: append([]int64(nil), p.skipped...), busy: p.last.Sub(p.first)}
	p.lines, p.counted = 0, 0
	clear(p.skipped)
	p.first, p.last = time.Time{}, time.Time{}
	return t
}

// totals is everything added since the start.
func (p *Progress) totals() tally {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.total
	t.skipped = append([]int64(nil), t.skipped...)
	return t
}

// summary renders skip counts as "not_sshd=3 too_long=1".
func (in *Ingester) summary(skipped []int64) string {
	var b strings.Builder
	for r, n := range skipped {
		if n > 0 {
			fmt.Fprintf(&b, "%s=%d ", in.reasons[r], n)
		}
	}
	return strings.TrimSpace(b.String())
}

// ReportEvery is how often progress is logged and the queue gauges are
// refreshed.
const ReportEvery = 10 * time.Second

// Reporter logs progress while there is work and, in queue mode, keeps the
// queue gauges fresh. The rate it logs is over the time spent working, so
// a backlog drained in one second of a ten-second interval reports its
// real speed.
type Reporter struct {
	in *Ingester
	// gauges refreshes gauges and returns the queue length to log, or -1.
	gauges func(ctx context.Context) int64
}

// Reporter returns the progress reporter; queue says whether to read the
// queue's length.
func (in *Ingester) Reporter(queue bool) *Reporter {
	r := &Reporter{in: in}
	if queue {
		r.gauges = in.refreshGauges
	}
	return r
}

// Run reports every ReportEvery until ctx ends, then reports what is left.
func (r *Reporter) Run(ctx context.Context) error {
	t := r.in.clock.NewTicker(ReportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			r.report(context.WithoutCancel(ctx), false)
			return nil
		case <-t.Chan():
			r.report(ctx, true)
		}
	}
}

func (r *Reporter) report(ctx context.Context, gauges bool) {
	q := int64(-1)
	if gauges && r.gauges != nil {
		q = r.gauges(ctx)
	}
	t := r.in.progress.take()
	if t.lines == 0 {
		return
	}
	busy := max(t.busy, time.Millisecond)
	args := []any{
		"lines_per_s", fmt.Sprintf("%.0f", float64(t.lines)/busy.Seconds()),
		"busy_s", fmt.Sprintf("%.2f", t.busy.Seconds()),
		"lines", t.lines, "counted", t.counted,
		"skipped", r.in.summary(t.skipped),
	}
	if q >= 0 {
		args = append(args, "queue", q)
	}
	r.in.o.Log.Info("progress", args...)
}
