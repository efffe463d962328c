package compile

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// overviewStore is what the overview reads beyond the rankings.
type overviewStore interface {
	Totals(ctx context.Context, periods []string) ([]int64, error)
	Distinct(ctx context.Context, period string, kinds ...string) (map[string]int64, error)
	ScanFirstSeen(ctx context.Context, kind, day string, chunk int, fn func([]stats.Entry) error) error
}

// firstSeenChunk is how many new values are read per round trip.
const firstSeenChunk = 1000

// compileOverview rewrites the overview when drew says the compile drew
// something, or when the last overview was not written (the first compile
// of this process, or one that failed): an idle compile leaves a current
// overview alone, since nothing it shows has changed. It reports whether
// it wrote the overview and the rows of the new-value CSVs.
func (c *Compiler) compileOverview(ctx context.Context, idx stats.Index, drew bool) (bool, int64, error) {
	if !drew && c.overviewCurrent {
		return false, 0, nil
	}
	rows, err := c.writeOverview(ctx, idx)
	c.overviewCurrent = err == nil
	if err != nil {
		return false, rows, fmt.Errorf("write overview: %w", err)
	}
	return true, rows, nil
}

// writeOverview compiles index.html and what it shows: the trends, the
// newest day against the days before it, the values first seen that day
// (and their full lists as CSV), the top values of the newest day, month
// and year. Its cost does not grow with the history: one HMGET of a few
// hundred fields, nine ZCARDs, nine short rankings, and the new values of
// one day.
func (c *Compiler) writeOverview(ctx context.Context, idx stats.Index) (rows int64, err error) {
	o := render.Overview{Oldest: idx.Oldest, Newest: idx.Newest, Kinds: c.Kinds.Names()}
	if idx.Newest == "" {
		return 0, render.WriteOverview(c.Dir, o)
	}
	days, err := render.OverviewDays(idx.Newest)
	if err != nil {
		return rows, err
	}
	months, err := render.OverviewMonths(idx.Oldest, idx.Newest)
	if err != nil {
		return rows, err
	}
	newest := stats.Period{Day: idx.Newest, Month: idx.Newest[:6], Year: idx.Newest[:4]}
	periods := []string{newest.Day, newest.Month, newest.Year}

	// One HMGET reads every total, so the trend, the cards and the tables
	// agree with one another even while attempts are being counted.
	names := append(append(append([]string(nil), days...), months...), newest.Year)
	totals, err := c.Store.Totals(ctx, names)
	if err != nil {
		return rows, err
	}
	byPeriod := make(map[string]int64, len(names))
	for i, n := range names {
		byPeriod[n] = totals[i]
	}
	for _, d := range days {
		o.Days = append(o.Days, render.PeriodCount{Period: d, Attempts: byPeriod[d]})
	}
	for _, m := range months {
		o.Months = append(o.Months, render.PeriodCount{Period: m, Attempts: byPeriod[m]})
	}
	for _, p := range periods {
		distinct, err := c.Store.Distinct(ctx, p, c.Kinds.Names()...)
		if err != nil {
			return rows, err
		}
		pt := render.PeriodTop{Period: p, Attempts: byPeriod[p]}
		for _, k := range c.Kinds.Names() {
			top, err := c.Store.Top(ctx, stats.StatsKey(p, k), render.OverviewTop)
			if err != nil {
				return rows, err
			}
			es := entries(top)
			if err := c.addNames(ctx, &o, k, es); err != nil {
				return rows, err
			}
			pt.Kinds = append(pt.Kinds, render.KindTop{Kind: k, Distinct: distinct[k], Top: es})
		}
		o.Periods = append(o.Periods, pt)
	}
	for _, k := range c.Kinds.FirstSeenNames() {
		nv, err := c.writeNewValues(ctx, idx.Newest, k)
		rows += nv.Count
		if err != nil {
			return rows, err
		}
		if err := c.addNames(ctx, &o, k, nv.Top); err != nil {
			return rows, err
		}
		o.New = append(o.New, nv)
	}
	return rows, render.WriteOverview(c.Dir, o)
}

// writeNewValues writes the CSV of the values of kind first seen on day,
// ranked like every other ranking (count descending, then value), and
// returns how many there are and the first NewTop.
//
// The values arrive in byte order and must be ranked by count; a day may
// bring any number of them, each as large as an attacker made it, so they
// are ranked through a spill (see spill.go) that holds at most about
// spillBytes in memory and merges sorted runs from disk beyond that. Only
// the NewTop shown are kept.
func (c *Compiler) writeNewValues(ctx context.Context, day, kind string) (render.NewValues, error) {
	nv := render.NewValues{Kind: kind}
	path := filepath.Join(c.Dir, render.NewCSVPath(day, kind))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nv, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	sp := newSpill(c.Dir, c.spillBytes)
	defer sp.close()
	err := c.Store.ScanFirstSeen(ctx, kind, day, firstSeenChunk, func(chunk []stats.Entry) error {
		for _, e := range chunk {
			if err := sp.add(render.Entry{Value: e.Member, Count: e.Count}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nv, err
	}
	nv.Count = sp.n
	err = render.WriteFileAtomic(path, func(w io.Writer) error {
		next, err := sp.ranked()
		if err != nil {
			return err
		}
		return render.WriteCSV(w, func() ([]render.Entry, error) {
			chunk, err := next()
			for _, e := range chunk {
				if len(nv.Top) < render.NewTop {
					nv.Top = append(nv.Top, e)
				}
			}
			return chunk, err
		})
	})
	if err != nil {
		return nv, fmt.Errorf("write %s: %w", path, err)
	}
	return nv, nil
}

// names reads the names beside the entries of a named kind (the
// organisation of an AS, the country of a code); other kinds answer nil
// without a round trip.
func (c *Compiler) names(ctx context.Context, kind string, es []render.Entry) (render.Names, error) {
	if !kinds.Named(kind) || len(es) == 0 {
		return nil, nil
	}
	values := make([]string, len(es))
	for i, e := range es {
		values[i] = e.Value
	}
	got, err := c.Store.Names(ctx, kind, values)
	if err != nil {
		return nil, err
	}
	out := make(render.Names, len(es))
	for i, v := range values {
		if got[i] != "" {
			out[v] = got[i]
		}
	}
	return out, nil
}

// addNames adds the names of es to the overview's.
func (c *Compiler) addNames(ctx context.Context, o *render.Overview, kind string, es []render.Entry) error {
	names, err := c.names(ctx, kind, es)
	if err != nil || len(names) == 0 {
		return err
	}
	if o.Names == nil {
		o.Names = map[string]render.Names{}
	}
	if o.Names[kind] == nil {
		o.Names[kind] = render.Names{}
	}
	for v, n := range names {
		o.Names[kind][v] = n
	}
	return nil
}

func entries(es []stats.Entry) []render.Entry {
	out := make([]render.Entry, len(es))
	for i, e := range es {
		out[i] = render.Entry{Value: e.Member, Count: e.Count}
	}
	return out
}
