package compile

import (
	"context"
	"errors"
	"fmt"
	"github.com/D4-project/analyzer-d4-log/internal/render"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
)

// Loop is the one compile goroutine: a compile at start, so the pages exist
// from the first seconds, then one every Interval, and a last one, bounded
// by Final, when it is stopped. One goroutine does all compiles, so two
// never draw the same file at once.
type Loop struct {
	Compiler *Compiler
	Interval time.Duration
	// Final bounds the compile at stop; what it does not draw stays marked
	// and is drawn at the next start.
	Final   time.Duration
	Clock   clockwork.Clock
	Log     *slog.Logger
	Metrics *metrics.Metrics
	// CountingDown reports an outage of the counting Redis, so that a
	// compile it fails is logged as skipped, not as failed.
	CountingDown func() bool
	// Shares are written after each successful compile, in order: the
	// MISP feed and the blocklist, which follow the complete days of the
	// same counting Redis. Each decides itself whether anything changed;
	// one that fails is logged and retried at the next compile, and does
	// not stop the others.
	Shares []func(ctx context.Context) error
	// LastCounted, when set, is asked after each compile for status.json
	// (render.WriteStatus), which the pages read to say how fresh they
	// are; Location and Zone are the configured time zone.
	LastCounted func() time.Time
	Location    *time.Location
	Zone        string
	// Leader, when set, is asked before each compile: only the daemon
	// holding its queue's compile lease (Lease.Held) compiles and writes
	// the shares; the others skip. Nil compiles always (-f, -F).
	Leader func() bool

	last atomic.Int64 // unix nanoseconds of the last successful compile
}

// Run compiles until ctx ends, then compiles once more and returns nil.
func (l *Loop) Run(ctx context.Context) error {
	_ = l.Once(ctx, false)
	t := l.Clock.NewTicker(l.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.Final)
			defer cancel()
			_ = l.Last(final)
			return nil
		case <-t.Chan():
			_ = l.Once(ctx, false)
		}
	}
}

// LastCompile is when the last compile finished; zero before the first.
func (l *Loop) LastCompile() time.Time {
	n := l.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Once compiles what changed (everything with all), logs the outcome and
// returns the error with its cause. It is not safe to call while Run runs.
func (l *Loop) Once(ctx context.Context, all bool) error {
	return l.record(ctx, all, func() (Result, error) { return l.Compiler.Compile(ctx, all) })
}

// Last compiles what changed and every full ranking still waiting for its
// interval: the compile at a stop and after a file.
func (l *Loop) Last(ctx context.Context) error {
	return l.record(ctx, false, func() (Result, error) { return l.Compiler.CompileFinal(ctx) })
}

func (l *Loop) record(ctx context.Context, all bool, compile func() (Result, error)) error {
	if l.Leader != nil && !l.Leader() {
		return nil
	}
	res, err := compile()
	l.Metrics.CompileSeconds.Observe(res.Duration.Seconds())
	l.Metrics.ChartsRendered.Add(float64(res.Charts))
	switch {
	case err != nil && ctx.Err() != nil:
		l.Log.Info("compile stopped by the shutdown; what it did not draw stays marked and is drawn at the next start",
			"charts", res.Charts, "reason", context.Cause(ctx).Error())
		return fmt.Errorf("compile: %w", err)
	case err != nil && l.CountingDown != nil && l.CountingDown():
		l.Log.Warn("compile skipped: counting redis unreachable; the next compile retries", "err", err)
		return fmt.Errorf("compile: %w", err)
	case err != nil:
		l.Log.Error("compile failed; the next compile retries", "charts", res.Charts, "err", err)
		return fmt.Errorf("compile: %w", err)
	}
	now := l.Clock.Now()
	if l.LastCounted != nil {
		idx, ierr := l.Compiler.Store.ReadIndex(ctx)
		var pi render.Index
		if ierr == nil {
			pi, ierr = l.Compiler.PageIndex(idx)
		}
		if ierr == nil {
			ierr = render.WriteStatus(l.Compiler.Dir, render.Status{
				CompiledAt: now, LastCounted: l.LastCounted(), NewestLine: idx.NewestLine, Location: l.Location, Zone: l.Zone,
				Refresh: l.Interval,
				Index:   pi,
			})
		}
		if ierr != nil {
			l.Log.Warn("write status.json failed; the pages' freshness line is stale until the next compile", "err", ierr)
		}
	}
	l.last.Store(now.UnixNano())
	l.Metrics.LastCompile.Set(float64(now.UnixNano()) / 1e9)
	if res.Charts > 0 || all {
		l.Log.Info("compiled", "charts", res.Charts, "seconds", fmt.Sprintf("%.3f", res.Duration.Seconds()))
	}
	l.Log.Debug("compile", "keys", res.Keys, "charts", res.Charts, "full_csvs", res.FullCSVs,
		"pending", res.Pending, "rows", res.Rows, "overview", res.Overview, "ms", res.Duration.Milliseconds())
	var errs []error
	for _, share := range l.Shares {
		if err := share(ctx); err != nil {
			l.Log.Error("write failed; the next compile retries", "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
