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
	OpenRanking(ctx context.Context, key string, chunk int) (*stats.Ranking, error)
	ReadIndex(ctx context.Context) (stats.Index, error)
	overviewStore
}

// Compiler renders into Dir (the sshd directory under the output dir).
type Compiler struct {
	Store    Store
	Dir      string
	ChartTop int
	Log      *slog.Logger
	// Parallel is how many charts are drawn at once (at least 1). Each
	// holds a counting-Redis connection while it draws.
	Parallel int

	overviewCurrent bool // see compileOverview
}

// Result says what one compile did.
type Result struct {
	Charts   int // charts (and as many CSV files) written
	Duration time.Duration
}

// Compile redraws what changed, or everything when all is set (after a
// flush), then the pages, and the overview when anything was drawn. A
// Compiler runs one compile at a time.
func (c *Compiler) Compile(ctx context.Context, all bool) (Result, error) {
	start := time.Now()
	var res Result
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return res, fmt.Errorf("create output directory: %w", err)
	}
	var idx stats.Index
	var err error
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
			keys = allKeys(idx, g)
		}
		done, drawn, drawErrs, err := c.drawAll(ctx, g, keys)
		res.Charts += drawn
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
	if err := render.WritePages(c.Dir, render.Index{
		Oldest: idx.Oldest, Newest: idx.Newest,
		Days: idx.Days, Months: idx.Months, Years: idx.Years,
	}); err != nil {
		errs = append(errs, fmt.Errorf("write pages: %w", err))
	}
	if err := c.compileOverview(ctx, idx, all || res.Charts > 0); err != nil {
		errs = append(errs, err)
	}
	res.Duration = time.Since(start)
	return res, errors.Join(errs...)
}

// drawAll renders keys with up to Parallel goroutines: most of a chart's
// time is spent waiting (Redis round trips, fsync of the files), so a few
// at once finish a large compile several times sooner. It returns the keys
// drawn but not yet marked done, how many were drawn, the errors of keys
// that failed (left for the next compile), and an error that stops the
// compile (a cancelled context, Redis unreachable).
func (c *Compiler) drawAll(ctx context.Context, g stats.Granularity, keys []string) (done []string, drawn int, keyErrs []error, err error) {
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
		if failed == nil {
			failed = ctx.Err()
		}
		if failed != nil {
			wg.Wait()
			return done, drawn, keyErrs, failed
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := c.renderKey(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				keyErrs = append(keyErrs, err)
				return
			}
			drawn++
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
	return done, drawn, keyErrs, stop
}

func allKeys(idx stats.Index, g stats.Granularity) []string {
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
		for _, k := range kinds.Names() {
			keys = append(keys, stats.StatsKey(p, k))
		}
	}
	return keys
}

// renderKey writes the chart and the CSV of one stats key.
func (c *Compiler) renderKey(ctx context.Context, key string) error {
	period, kind, ok := stats.SplitStatsKey(key)
	if !ok {
		// Not ours to draw (a foreign member in toupdate); drop it.
		c.Log.Warn("compile: skipping unknown key in toupdate set", "key", key)
		return nil
	}
	sum, err := c.Store.Summarize(ctx, period, kind)
	if err != nil {
		return err
	}
	top, err := c.Store.Top(ctx, key, c.ChartTop)
	if err != nil {
		return err
	}
	chart := render.Chart{Period: period, Kind: kind, Total: sum.Total, Distinct: sum.Distinct, Top: entries(top)}
	dir := filepath.Join(c.Dir, period)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	svg := filepath.Join(c.Dir, render.ChartPath(period, kind))
	if err := render.WriteFileAtomic(svg, func(w io.Writer) error { return render.WriteSVG(w, chart) }); err != nil {
		return fmt.Errorf("write %s: %w", svg, err)
	}
	rk, err := c.Store.OpenRanking(ctx, key, 10000)
	if err != nil {
		return err
	}
	defer rk.Close()
	csvPath := filepath.Join(c.Dir, render.CSVPath(period, kind))
	err = render.WriteFileAtomic(csvPath, func(w io.Writer) error {
		return render.WriteCSV(w, func() ([]render.Entry, error) {
			chunk, err := rk.Next()
			if err != nil || chunk == nil {
				return nil, err
			}
			return entries(chunk), nil
		})
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", csvPath, err)
	}
	jsonPath := filepath.Join(c.Dir, render.JSONPath(period, kind))
	if err := render.WriteFileAtomic(jsonPath, func(w io.Writer) error { return render.WriteStatsJSON(w, chart) }); err != nil {
		return fmt.Errorf("write %s: %w", jsonPath, err)
	}
	return nil
}
