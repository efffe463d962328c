package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Pruner prunes the days older than Days from the counting Redis, archiving
// their attempts first. Every daemon runs one, but of several daemons on
// one queue only the holder of the compile lease prunes (Allowed): two
// pruners would write the same archive file. It prunes nothing while a
// flush (-F) is marked.
type Pruner struct {
	Store   *stats.Store
	Archive *Archive
	// Days is retain_days: today and the Days-1 days before it are kept.
	Days     int
	Location *time.Location
	Clock    clockwork.Clock
	// Interval is the time between passes (an hour when zero): a day
	// becomes old once a day, and a backfill of old days waits at most
	// this long to be archived.
	Interval time.Duration
	Log      *slog.Logger
	Metrics  *metrics.Retention
	// Allowed, when set, is asked before each pass: false skips it (the
	// daemon does not hold its queue's compile lease). Nil always prunes.
	Allowed func() bool

	// afterStep, in tests, runs after each step of a day; an error stops
	// the pass there, as a kill would.
	afterStep func(day, step string) error
	// warned is set while used_memory is above 80 % of maxmemory, so the
	// log warns once when it crosses, not every minute.
	warned bool

	// archived caches the days known to have an archive file: a file is
	// never removed while the daemon runs, so a day found once stays.
	mu       sync.Mutex
	archived map[string]bool
}

// retryAfter is the wait before the next pass after a failed one, and
// measureEvery the period of the memory gauges between passes.
const (
	retryAfter   = time.Minute
	measureEvery = time.Minute
)

// Run prunes at start, then every Interval, until ctx ends, and reads the
// counting Redis's memory every minute. A failed pass (an outage, a full
// disk) is logged and retried; it never stops the daemon, since counting
// does not depend on it. With Days = 0 nothing is pruned: only the memory
// is watched.
func (p *Pruner) Run(ctx context.Context) error {
	interval := p.Interval
	if interval <= 0 {
		interval = time.Hour
	}
	next := p.Clock.Now()
	for {
		if now := p.Clock.Now(); !now.Before(next) && p.Allowed != nil && !p.Allowed() {
			// Another daemon on the queue prunes (it holds the compile
			// lease); ask again at the next measure.
			next = now.Add(min(measureEvery, interval))
			p.measure(ctx, p.Cutoff(now))
		} else if !now.Before(next) {
			next = now.Add(interval)
			if _, err := p.Pass(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				next = now.Add(min(retryAfter, interval))
				p.log().Warn("pruning: pass failed; retrying", "err", err, "at", next.Format(time.RFC3339))
			}
		} else {
			p.measure(ctx, p.Cutoff(now))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.Clock.After(min(measureEvery, next.Sub(p.Clock.Now()))):
		}
	}
}

func (p *Pruner) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Cutoff is the first retained day (yyyymmdd) at now: days before it are
// pruned.
func (p *Pruner) Cutoff(now time.Time) string {
	if p.Days <= 0 {
		return "00000000"
	}
	y, m, d := now.In(p.Location).Date()
	return stats.PeriodOf(time.Date(y, m, d-(p.Days-1), 12, 0, 0, 0, p.Location)).Day
}

// Pruned tells whether day's attempts count into months and years only
// (stats.Store.Pruned): it is older than retain_days, or it was pruned
// before (it has an archive file), under a shorter retain_days maybe. A
// pruned day stays pruned: new attempts of it go to DB 0, which the next
// pass appends to its archive, and never make day rankings of part of the
// day. Safe for concurrent use.
func (p *Pruner) Pruned(day string) bool {
	if p.Days > 0 && day < p.Cutoff(p.Clock.Now()) {
		return true
	}
	return p.hasArchive(day)
}

func (p *Pruner) hasArchive(day string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.archived[day] {
		return true
	}
	// An error other than "no file" counts as archived: counting the day
	// coarsely loses nothing (its attempts are in DB 0 and its month),
	// while partial day rankings would be wrong.
	size, err := p.Archive.Size(day)
	if err == nil && size == 0 {
		return false
	}
	if p.archived == nil {
		p.archived = map[string]bool{}
	}
	p.archived[day] = true
	return true
}

// PassResult is what one pass did.
type PassResult struct {
	Pruned  []string // days pruned
	Pending []string // days left for a compile to draw first
}

// Pass prunes every day before the cutoff, oldest first, and updates the
// metrics.
func (p *Pruner) Pass(ctx context.Context) (PassResult, error) {
	var res PassResult
	now := p.Clock.Now()
	cutoff := p.Cutoff(now)
	defer p.measure(ctx, cutoff)
	if p.Days <= 0 {
		return res, nil
	}
	if on, err := p.Store.Rebuilding(ctx); err != nil || on {
		if err == nil {
			err = stats.ErrRebuilding
		}
		return res, err
	}
	// Every day with something left in Redis, of which those before the
	// cutoff and those archived before (attempts counted into a day pruned
	// under a shorter retain_days) are pruned: one walk of the keys.
	all, err := p.Store.DaysBefore(ctx, stats.AfterEveryDay)
	if err != nil {
		return res, err
	}
	var days []string
	for _, day := range all {
		if day < cutoff || p.hasArchive(day) {
			days = append(days, day)
		}
	}
	for _, day := range days {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		err := p.PruneDay(ctx, day)
		if errors.Is(err, stats.ErrPending) {
			res.Pending = append(res.Pending, day)
			continue
		}
		if err != nil {
			return res, fmt.Errorf("prune %s: %w", day, err)
		}
		res.Pruned = append(res.Pruned, day)
		if p.Metrics != nil {
			p.Metrics.DaysPruned.Inc()
		}
	}
	if len(res.Pruned) > 0 || len(res.Pending) > 0 {
		p.log().Info("pruning: pass done", "pruned", len(res.Pruned), "waiting_for_compile", len(res.Pending),
			"retain_days", p.Days, "first_retained", cutoff)
	}
	return res, nil
}

// PruneDay archives and prunes one day (the steps of stats' prune.go). It
// returns stats.ErrPending, the day's attempts archived but its rankings
// kept, while a compile is still to draw them: the next pass finishes it.
func (p *Pruner) PruneDay(ctx context.Context, day string) error {
	if err := p.Store.MarkPruning(ctx, day); err != nil {
		return err
	}
	if err := p.step(day, "marked"); err != nil {
		return err
	}
	// A list counted into the day while it was archived is taken and
	// archived in its turn, until none is left.
	for {
		taken, err := p.Store.TakeForArchive(ctx, day)
		if err != nil {
			return err
		}
		if !taken {
			break
		}
		if err := p.step(day, "taken"); err != nil {
			return err
		}
		size, err := p.Archive.Size(day)
		if err != nil {
			return err
		}
		base, err := p.Store.ArchiveBase(ctx, day, size)
		if err != nil {
			return err
		}
		_, err = p.Archive.Write(day, base, func(emit func([]byte) error) error {
			return p.Store.ReadArchiving(ctx, day, emit)
		})
		if err != nil {
			return err
		}
		if err := p.step(day, "written"); err != nil {
			return err
		}
		if err := p.Store.DoneArchiving(ctx, day); err != nil {
			return err
		}
		if err := p.step(day, "archived"); err != nil {
			return err
		}
	}
	// The drill-down keys go first, then the rankings; a compile still to
	// draw the day keeps both.
	if err := p.Store.DayPending(ctx, day); err != nil {
		return err
	}
	if err := p.Store.DropDrill(ctx, day); err != nil {
		return err
	}
	if err := p.step(day, "drill"); err != nil {
		return err
	}
	if err := p.Store.DropDay(ctx, day); err != nil {
		return err
	}
	if err := p.step(day, "dropped"); err != nil {
		return err
	}
	return p.Store.EndPruning(ctx, day)
}

func (p *Pruner) step(day, name string) error {
	if p.afterStep == nil {
		return nil
	}
	return p.afterStep(day, name)
}

// measure sets the gauges and warns when the counting Redis nears its
// maxmemory. Failures here only leave the gauges as they were.
func (p *Pruner) measure(ctx context.Context, cutoff string) {
	used, max, err := p.Store.UsedMemory(ctx)
	if err == nil {
		// At 80 % there is still room to act before Redis refuses writes
		// (noeviction) or evicts statistics (any other policy).
		high := max > 0 && float64(used) > 0.8*float64(max)
		if high && !p.warned {
			p.log().Warn("counting redis memory is above 80% of its maxmemory; lower retain_days (see the sizing table in the README) or raise maxmemory",
				"used_memory", used, "maxmemory", max, "retain_days", p.Days)
		}
		p.warned = high
	}
	if p.Metrics == nil {
		return
	}
	if err == nil {
		p.Metrics.UsedMemory.Set(float64(used))
		p.Metrics.MaxMemory.Set(float64(max))
	}
	if n, err := p.Archive.Bytes(); err == nil {
		p.Metrics.ArchiveBytes.Set(float64(n))
	}
	// Everything still in Redis up to tomorrow; pruned days, once pruned,
	// are not among them.
	y, m, d := p.Clock.Now().In(p.Location).Date()
	tomorrow := stats.PeriodOf(time.Date(y, m, d+2, 12, 0, 0, 0, p.Location)).Day
	if days, err := p.Store.DaysBefore(ctx, tomorrow); err == nil {
		n := 0
		for _, day := range days {
			if day >= cutoff {
				n++
			}
		}
		p.Metrics.DaysRetained.Set(float64(n))
	}
}
