package compile

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// overviewStore is what the overview reads beyond the rankings.
type overviewStore interface {
	Totals(ctx context.Context, periods []string) ([]int64, error)
	Distinct(ctx context.Context, period string) (map[string]int64, error)
	ScanFirstSeen(ctx context.Context, kind, day string, chunk int, fn func([]stats.Entry) error) error
}

// firstSeenChunk is how many new values are read per round trip.
const firstSeenChunk = 1000

// compileOverview rewrites the overview when drew says the compile drew
// something, or when the last overview was not written (the first compile
// of this process, or one that failed): an idle compile leaves a current
// overview alone, since nothing it shows has changed.
func (c *Compiler) compileOverview(ctx context.Context, idx stats.Index, drew bool) error {
	if !drew && c.overviewCurrent {
		return nil
	}
	err := c.writeOverview(ctx, idx)
	c.overviewCurrent = err == nil
	if err != nil {
		return fmt.Errorf("write overview: %w", err)
	}
	return nil
}

// writeOverview compiles index.html and what it shows: the trends, the
// newest day against the days before it, the values first seen that day
// (and their full lists as CSV), the top values of the newest day, month
// and year. Its cost does not grow with the history: one HMGET of a few
// hundred fields, nine ZCARDs, nine short rankings, and the new values of
// one day.
func (c *Compiler) writeOverview(ctx context.Context, idx stats.Index) error {
	o := render.Overview{Oldest: idx.Oldest, Newest: idx.Newest}
	if idx.Newest == "" {
		return render.WriteOverview(c.Dir, o)
	}
	days, err := render.OverviewDays(idx.Newest)
	if err != nil {
		return err
	}
	months, err := render.OverviewMonths(idx.Oldest, idx.Newest)
	if err != nil {
		return err
	}
	newest := stats.Period{Day: idx.Newest, Month: idx.Newest[:6], Year: idx.Newest[:4]}
	periods := []string{newest.Day, newest.Month, newest.Year}

	// One HMGET reads every total, so the trend, the cards and the tables
	// agree with one another even while attempts are being counted.
	names := append(append(append([]string(nil), days...), months...), newest.Year)
	totals, err := c.Store.Totals(ctx, names)
	if err != nil {
		return err
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
		distinct, err := c.Store.Distinct(ctx, p)
		if err != nil {
			return err
		}
		pt := render.PeriodTop{Period: p, Attempts: byPeriod[p]}
		for _, k := range kinds.Names() {
			top, err := c.Store.Top(ctx, stats.StatsKey(p, k), render.OverviewTop)
			if err != nil {
				return err
			}
			pt.Kinds = append(pt.Kinds, render.KindTop{Kind: k, Distinct: distinct[k], Top: entries(top)})
		}
		o.Periods = append(o.Periods, pt)
	}
	for _, k := range kinds.FirstSeenNames() {
		nv, err := c.writeNewValues(ctx, idx.Newest, k)
		if err != nil {
			return err
		}
		o.New = append(o.New, nv)
	}
	return render.WriteOverview(c.Dir, o)
}

// writeNewValues writes the CSV of the values of kind first seen on day,
// ranked like every other ranking (count descending, then value), and
// returns how many there are and the first NewTop.
//
// The ranking is sorted in memory: it holds the values first seen on one
// day, never the history, at about 24 bytes plus the value's length each
// (a day bringing 100,000 new sources holds about 4 MB while the file is
// written).
func (c *Compiler) writeNewValues(ctx context.Context, day, kind string) (render.NewValues, error) {
	nv := render.NewValues{Kind: kind}
	var all []render.Entry
	err := c.Store.ScanFirstSeen(ctx, kind, day, firstSeenChunk, func(chunk []stats.Entry) error {
		for _, e := range chunk {
			all = append(all, render.Entry{Value: e.Member, Count: e.Count})
		}
		return nil
	})
	if err != nil {
		return nv, err
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Count != all[j].Count {
			return all[i].Count > all[j].Count
		}
		return all[i].Value < all[j].Value
	})
	nv.Count = int64(len(all))
	nv.Top = all[:min(len(all), render.NewTop)]

	path := filepath.Join(c.Dir, render.NewCSVPath(day, kind))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nv, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	err = render.WriteFileAtomic(path, func(w io.Writer) error {
		rest := all
		return render.WriteCSV(w, func() ([]render.Entry, error) {
			n := min(len(rest), 1000)
			chunk := rest[:n]
			rest = rest[n:]
			return chunk, nil
		})
	})
	if err != nil {
		return nv, fmt.Errorf("write %s: %w", path, err)
	}
	return nv, nil
}

func entries(es []stats.Entry) []render.Entry {
	out := make([]render.Entry, len(es))
	for i, e := range es {
		out[i] = render.Entry{Value: e.Member, Count: e.Count}
	}
	return out
}
