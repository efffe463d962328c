// Package compile turns the counting Redis into the files under
// <output>/sshd: it redraws the charts and rankings of the periods that
// changed since the last compile, then rewrites the pages and the overview
// (index.html, its trend charts and overview.json; see writeOverview).
//
// Only what changed is redrawn: a compile takes the toupdate sets
// (stats.TakeToUpdate), renders each key, and marks each key done only
// after its files are in place, so a compile that fails or is killed
// leaves the rest for the next one, and a key changed while it draws is
// drawn again next time.
//
// A compile's cost follows what changed, not the size of a period: the
// chart, the top values and the JSON summary of a changed key are written
// at every compile, while its full ranking CSV (5.6 MB for a year of
// 335,000 sources) is written at most once per FullRankingInterval, unless
// it is small (at most SmallRanking rows), which is written every time.
// The CSVs stay exact because:
//
//   - a full CSV is read in place, and read again from a snapshot of its
//     key (stats.OpenSnapshot) if its period was counted into meanwhile
//     (stats.OpenStable), so it is always the exact ranking at one instant,
//     never a mix of two moments;
//   - a key whose full CSV was not written stays in the compiling set in
//     Redis (it is not marked done), so it is drawn again and its CSV is
//     written by a later compile even if the key never changes again, by
//     this process or, after a crash or restart, by the next one (whose
//     first compile writes every pending CSV);
//   - CompileFinal (the compile at shutdown and after -f) and a full
//     compile (after -F) write every pending CSV at once.
//
// So a full CSV is behind Redis by at most FullRankingInterval (plus one
// compile interval) while its period is being counted, and exact once the
// counting stops.
package compile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Store is the part of the counting Redis a compile reads.
type Store interface {
	TakeToUpdate(ctx context.Context, g stats.Granularity) ([]string, error)
	DoneRendering(ctx context.Context, g stats.Granularity, keys ...string) error
	Top(ctx context.Context, key string, n int) ([]stats.Entry, error)
	Summarize(ctx context.Context, period, kind string) (stats.Summary, error)
	OpenSnapshot(ctx context.Context, key string, chunk, maxBytes int) (*stats.Ranking, error)
	OpenStable(ctx context.Context, key, period string, chunk, maxBytes int) (*stats.Ranking, error)
	ReadIndex(ctx context.Context) (stats.Index, error)
	// Names reads the names beside the values of a named kind (SPEC §13).
	Names(ctx context.Context, kind string, values []string) ([]string, error)
	overviewStore
}

// Defaults of the Compiler's fields for full rankings.
const (
	DefaultFullRankingInterval = 5 * time.Minute
	DefaultSmallRanking        = 10000
)

// Compiler renders into Dir (the sshd directory under the output dir).
type Compiler struct {
	Store    Store
	Dir      string
	ChartTop int
	Log      *slog.Logger
	// Parallel is how many charts are drawn at once (at least 1). Each
	// holds a counting-Redis connection while it draws.
	Parallel int
	// FullRankingInterval is the least time between two writes of the full
	// ranking CSV of one key with more than SmallRanking rows (0 means
	// DefaultFullRankingInterval; see the package comment).
	FullRankingInterval time.Duration
	// SmallRanking is the number of rows up to which a ranking's CSV is
	// written at every compile (0 means DefaultSmallRanking).
	SmallRanking int64
	// Now is the clock that times full rankings (time.Now when nil).
	Now func() time.Time
	// Kinds are the kinds counted (the zero Set: the three of every
	// line); a full compile and the overview list these.
	Kinds kinds.Set

	overviewCurrent bool // see compileOverview

	mu       sync.Mutex
	lastFull map[string]time.Time // key → when this process last wrote its full CSV

	spillBytes int // memory for the new-value lists before they spill to disk (0: defaultSpillBytes)
}

// Result says what one compile did, for the log.
type Result struct {
	Keys     int   // stats keys taken from the toupdate sets and drawn
	Charts   int   // charts written (as many JSON summaries)
	FullCSVs int   // full ranking CSVs written
	Pending  int   // keys whose full CSV waits for FullRankingInterval
	Rows     int64 // CSV rows written, full rankings and new-value lists
	Overview bool  // the overview was rewritten
	Duration time.Duration
}

// Compile redraws what changed, or everything when all is set (after a
// flush), then the pages, and the overview when anything was drawn. A
// Compiler runs one compile at a time. A compile stopped by ctx returns an
// error that wraps ctx.Err(), so a stop can be told from a failure.
func (c *Compiler) Compile(ctx context.Context, all bool) (Result, error) {
	return c.compile(ctx, all, all)
}

// CompileFinal is Compile that also writes every full ranking CSV still
// pending, whatever FullRankingInterval says: the compile to run when
// counting stops (at shutdown, after -f), so that the files left behind
// are exact.
func (c *Compiler) CompileFinal(ctx context.Context) (Result, error) {
	return c.compile(ctx, false, true)
}

func (c *Compiler) compile(ctx context.Context, all, full bool) (res Result, err error) {
	start := time.Now()
	defer func() {
		res.Duration = time.Since(start)
		if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			// A call that failed because the stop closed what it used
			// says so in its own words; the caller needs to see the stop.
			err = fmt.Errorf("compile stopped (%w): %w", ctx.Err(), err)
		}
	}()
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("compile stopped: %w", err)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return res, fmt.Errorf("create output directory: %w", err)
	}
	c.forgetOldFull()
	var idx stats.Index
	if all {
		idx, err = c.Store.ReadIndex(ctx)
		if err != nil {
			return res, err
		}
	}
	var errs []error
	for _, g := range stats.Granularities() {
		keys, err := c.Store.TakeToUpdate(ctx, g)
		if err != nil {
			return res, err
		}
		if all {
			keys = allKeys(idx, g, c.Kinds)
		}
		done, drawErrs, err := c.drawAll(ctx, g, keys, full, &res)
		errs = append(errs, drawErrs...)
		if err != nil {
			return res, err
		}
		if all {
			// A full compile drew everything there is; whatever the taken
			// sets held is covered.
			taken, err := c.Store.TakeToUpdate(ctx, g)
			if err != nil {
				return res, err
			}
			done = append(done, taken...)
		}
		if err := c.Store.DoneRendering(ctx, g, done...); err != nil {
			return res, err
		}
	}
	if !all {
		idx, err = c.Store.ReadIndex(ctx)
		if err != nil {
			return res, err
		}
	}
	pi, err := c.PageIndex(idx)
	if err != nil {
		errs = append(errs, err)
	}
	if err := render.WritePages(c.Dir, pi); err != nil {
		errs = append(errs, fmt.Errorf("write pages: %w", err))
	}
	wrote, rows, err := c.compileOverview(ctx, idx, all || res.Charts > 0)
	res.Overview = wrote
	res.Rows += rows
	if err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// PageIndex is the index the pages offer: the periods with statistics,
// and the days pruned by retention whose files stay in c.Dir (archived).
// When the directory cannot be listed the archived days are left out and
// the error returned; the rest is still right.
func (c *Compiler) PageIndex(idx stats.Index) (render.Index, error) {
	archived, err := render.ArchivedDays(c.Dir, idx.Days)
	return render.Index{
		Oldest: idx.Oldest, Newest: idx.Newest,
		Days: idx.Days, Months: idx.Months, Years: idx.Years,
		Kinds:    c.Kinds.Names(),
		Archived: archived,
	}, err
}

func (c *Compiler) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Compiler) interval() time.Duration {
	if c.FullRankingInterval > 0 {
		return c.FullRankingInterval
	}
	return DefaultFullRankingInterval
}

// fullDue reports whether key's full CSV may be written now: this process
// has not written it within the interval (never, after a restart).
func (c *Compiler) fullDue(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	last, ok := c.lastFull[key]
	return !ok || now.Sub(last) >= c.interval()
}

func (c *Compiler) wroteFull(key string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastFull == nil {
		c.lastFull = map[string]time.Time{}
	}
	c.lastFull[key] = now
}

// forgetOldFull drops the write times that no longer hold a CSV back, so
// the map holds only the keys written within the last interval.
func (c *Compiler) forgetOldFull() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, t := range c.lastFull {
		if now.Sub(t) >= c.interval() {
			delete(c.lastFull, k)
		}
	}
}

// drawAll renders keys with up to Parallel goroutines: most of a chart's
// time is spent waiting (Redis round trips, fsync of the files), so a few
// at once finish a large compile several times sooner. It adds what it did
// to res and returns the keys drawn whose full CSV is written but not yet
// marked done, the errors of keys that failed (left for the next
// compile), and an error that stops the compile (a cancelled context,
// Redis unreachable).
func (c *Compiler) drawAll(ctx context.Context, g stats.Granularity, keys []string, full bool, res *Result) (done []string, keyErrs []error, err error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		stop error
	)
	sem := make(chan struct{}, max(1, c.Parallel))
	for _, key := range keys {
		mu.Lock()
		failed := stop
		mu.Unlock()
		if failed == nil && ctx.Err() != nil {
			failed = fmt.Errorf("compile stopped: %w", ctx.Err())
		}
		if failed != nil {
			wg.Wait()
			return done, keyErrs, failed
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out, err := c.renderKey(ctx, key, full)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				keyErrs = append(keyErrs, err)
				return
			}
			if out.drawn {
				res.Keys++
				res.Charts++
			}
			res.Rows += out.rows
			if !out.done {
				res.Pending++
				return
			}
			if out.drawn {
				res.FullCSVs++
			}
			done = append(done, key)
			// Mark progress in chunks so a long first compile that is
			// interrupted does not start over.
			if len(done) >= 64 && stop == nil {
				if err := c.Store.DoneRendering(ctx, g, done...); err != nil {
					stop = err
					return
				}
				done = done[:0]
			}
		}()
	}
	wg.Wait()
	return done, keyErrs, stop
}

func allKeys(idx stats.Index, g stats.Granularity, ks kinds.Set) []string {
	var periods []string
	switch g {
	case stats.Daily:
		periods = idx.Days
	case stats.Monthly:
		periods = idx.Months
	case stats.Yearly:
		periods = idx.Years
	}
	keys := make([]string, 0, 3*len(periods))
	for _, p := range periods {
		for _, k := range ks.Names() {
			keys = append(keys, stats.StatsKey(p, k))
		}
	}
	return keys
}

// keyOutcome is what renderKey did with one key.
type keyOutcome struct {
	drawn bool  // chart and JSON written
	done  bool  // nothing left to write: the key may leave the compiling set
	rows  int64 // rows of the full CSV written
}

// renderKey writes the chart and the JSON summary of one stats key, and
// its full CSV when full is set, when the ranking is small, or when the
// key's last full CSV is older than FullRankingInterval.
func (c *Compiler) renderKey(ctx context.Context, key string, full bool) (keyOutcome, error) {
	period, kind, ok := stats.SplitStatsKey(key)
	if !ok {
		// Not ours to draw (a foreign member in toupdate); drop it.
		c.Log.Warn("compile: skipping unknown key in toupdate set", "key", key)
		return keyOutcome{done: true}, nil
	}
	// The chart's title and "others" bar need the attempts and the number
	// of values, not the ranking: ZCARD and the totals the store keeps.
	sum, err := c.Store.Summarize(ctx, period, kind)
	if err != nil {
		return keyOutcome{}, err
	}
	top, err := c.Store.Top(ctx, key, c.ChartTop)
	if err != nil {
		return keyOutcome{}, err
	}
	chart := render.Chart{Period: period, Kind: kind, Total: sum.Total, Distinct: sum.Distinct, Top: entries(top)}
	if chart.Names, err = c.names(ctx, kind, chart.Top); err != nil {
		return keyOutcome{}, err
	}
	dir := filepath.Join(c.Dir, period)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return keyOutcome{}, fmt.Errorf("create %s: %w", dir, err)
	}
	svg := filepath.Join(c.Dir, render.ChartPath(period, kind))
	if err := render.WriteFileAtomic(svg, func(w io.Writer) error { return render.WriteSVG(w, chart) }); err != nil {
		return keyOutcome{}, fmt.Errorf("write %s: %w", svg, err)
	}
	jsonPath := filepath.Join(c.Dir, render.JSONPath(period, kind))
	if err := render.WriteFileAtomic(jsonPath, func(w io.Writer) error { return render.WriteStatsJSON(w, chart) }); err != nil {
		return keyOutcome{}, fmt.Errorf("write %s: %w", jsonPath, err)
	}
	out := keyOutcome{drawn: true}
	small := c.SmallRanking
	if small <= 0 {
		small = DefaultSmallRanking
	}
	now := c.now()
	if !full && sum.Distinct > small && !c.fullDue(key, now) {
		return out, nil
	}
	rows, err := c.writeRanking(ctx, key, period, kind)
	if err != nil {
		return out, err
	}
	c.wroteFull(key, now)
	out.rows, out.done = rows, true
	return out, nil
}

// writeRanking writes the full CSV of key, read in place when nothing is
// counted into its period meanwhile, else from a snapshot, and returns its
// number of rows.
func (c *Compiler) writeRanking(ctx context.Context, key, period, kind string) (int64, error) {
	rows, err := c.writeRankingFrom(ctx, key, period, kind, false)
	if errors.Is(err, stats.ErrMoved) {
		// Counted into during the read: the file was not replaced, and
		// the copy taken now is one moment.
		return c.writeRankingFrom(ctx, key, period, kind, true)
	}
	return rows, err
}

func (c *Compiler) writeRankingFrom(ctx context.Context, key, period, kind string, snapshot bool) (int64, error) {
	open := c.Store.OpenStable
	if snapshot {
		open = func(ctx context.Context, key, _ string, chunk, maxBytes int) (*stats.Ranking, error) {
			return c.Store.OpenSnapshot(ctx, key, chunk, maxBytes)
		}
	}
	rk, err := open(ctx, key, period, 10000, stats.ReplyBytes)
	if err != nil {
		return 0, err
	}
	var rows int64
	csvPath := filepath.Join(c.Dir, render.CSVPath(period, kind))
	err = render.WriteFileAtomic(csvPath, func(w io.Writer) error {
		next := func() ([]render.Entry, error) {
			chunk, err := rk.Next()
			if err != nil || chunk == nil {
				return nil, err
			}
			rows += int64(len(chunk))
			return entries(chunk), nil
		}
		if !kinds.Named(kind) {
			return render.WriteCSV(w, next)
		}
		return render.WriteNamedCSV(w, func() ([]render.Entry, render.Names, error) {
			es, err := next()
			if err != nil || len(es) == 0 {
				return es, nil, err
			}
			names, err := c.names(ctx, kind, es)
			return es, names, err
		})
	})
	if cerr := rk.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", csvPath, err)
	}
	return rows, nil
}
