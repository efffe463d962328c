// Package blocklist writes the plain blocklist of SPEC §11 under
// <output>/feeds: sources.txt, one IP address per line, the sources with
// at least Min attempts over the last Days complete days (never the
// partial current day), and sources.csv (source,attempts,first_day,
// last_day) with the same addresses in the same order. Both are sorted,
// IPv4 before IPv6 and by address within each (netip order), so that a
// firewall script diffing two versions sees only what changed.
//
// Sources that are host names are left out (a firewall cannot block a
// name an attacker chose); an IPv4-mapped IPv6 source is the IPv4 address
// it maps, its attempts added to that address's. first_day and last_day
// (YYYYMMDD, as days are named everywhere in the daemon) are the first and
// last day of the window on which the address made attempts.
//
// The files are rewritten (atomically) only when their bytes change, and
// the days behind them are read again only when the window moved or the
// attempts of one of its days changed. A List is used by one goroutine.
package blocklist

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Store is what the blocklist reads from the counting Redis.
type Store interface {
	DayTotals(ctx context.Context, days []string) (map[string]int64, error)
	EachEntry(ctx context.Context, key string, fn func(stats.Entry)) error
}

// The files of the blocklist.
const (
	TextFile = "sources.txt"
	CSVFile  = "sources.csv"
)

// List writes the blocklist into Dir.
type List struct {
	Store    Store
	Dir      string
	Days     int   // complete days summed
	Min      int64 // least attempts over those days
	Location *time.Location
	Now      func() time.Time
	Log      *slog.Logger

	last string // the window and its totals when last written; "" before
}

// Entry is one address of the blocklist.
type Entry struct {
	Addr     netip.Addr
	Attempts int64
	FirstDay string
	LastDay  string
}

// Write brings the blocklist up to date; wrote says whether a file changed.
func (l *List) Write(ctx context.Context) (wrote bool, err error) {
	days := stats.CompleteDays(l.Now(), l.Location, l.Days)
	totals, err := l.Store.DayTotals(ctx, days)
	if err != nil {
		return false, fmt.Errorf("blocklist: %w", err)
	}
	key, known := fingerprint(days, totals)
	if known && key == l.last && l.present() {
		return false, nil
	}
	entries, err := l.Compute(ctx, days, totals)
	if err != nil {
		return false, fmt.Errorf("blocklist: %w", err)
	}
	var txt, csv bytes.Buffer
	csv.WriteString("source,attempts,first_day,last_day\n")
	for _, e := range entries {
		a := e.Addr.String()
		txt.WriteString(a)
		txt.WriteByte('\n')
		fmt.Fprintf(&csv, "%s,%d,%s,%s\n", a, e.Attempts, e.FirstDay, e.LastDay)
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return false, fmt.Errorf("blocklist: create %s: %w", l.Dir, err)
	}
	w1, err := writeIfChanged(filepath.Join(l.Dir, CSVFile), csv.Bytes())
	if err != nil {
		return false, fmt.Errorf("blocklist: %w", err)
	}
	w2, err := writeIfChanged(filepath.Join(l.Dir, TextFile), txt.Bytes())
	if err != nil {
		return false, fmt.Errorf("blocklist: %w", err)
	}
	if known {
		l.last = key
	}
	if w1 || w2 {
		l.Log.Info("blocklist written", "dir", l.Dir, "addresses", len(entries), "days", l.Days, "min", l.Min)
	}
	return w1 || w2, nil
}

func (l *List) present() bool {
	for _, f := range []string{TextFile, CSVFile} {
		if _, err := os.Stat(filepath.Join(l.Dir, f)); err != nil {
			return false
		}
	}
	return true
}

// fingerprint names the window and the attempts of its days; known is
// false when a day's attempts are not kept (data counted by another tool),
// which means it must be read every time.
func fingerprint(days []string, totals map[string]int64) (string, bool) {
	var b strings.Builder
	known := true
	for _, d := range days {
		n, ok := totals[d]
		if n == stats.Unknown {
			known = false
		}
		if !ok {
			n = 0
		}
		b.WriteString(d + "=" + strconv.FormatInt(n, 10) + ";")
	}
	return b.String(), known
}

// Compute returns the blocklist of the given days, sorted.
func (l *List) Compute(ctx context.Context, days []string, totals map[string]int64) ([]Entry, error) {
	agg := map[netip.Addr]*Entry{}
	for _, day := range days {
		if _, ok := totals[day]; !ok {
			continue
		}
		err := l.Store.EachEntry(ctx, stats.StatsKey(day, stats.KindSrc), func(e stats.Entry) {
			addr, ok := stats.SourceAddr(e.Member)
			if !ok {
				return
			}
			a := agg[addr]
			if a == nil {
				a = &Entry{Addr: addr, FirstDay: day, LastDay: day}
				agg[addr] = a
			}
			a.Attempts += e.Count
			a.FirstDay = min(a.FirstDay, day)
			a.LastDay = max(a.LastDay, day)
		})
		if err != nil {
			return nil, fmt.Errorf("read sources of %s: %w", day, err)
		}
	}
	out := make([]Entry, 0, len(agg))
	for _, e := range agg {
		if e.Attempts >= l.Min {
			out = append(out, *e)
		}
	}
	// netip order: every IPv4 address before every IPv6 one.
	slices.SortFunc(out, func(a, b Entry) int { return a.Addr.Compare(b.Addr) })
	return out, nil
}

func writeIfChanged(path string, b []byte) (bool, error) {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, b):
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := render.WriteFileAtomic(path, func(w io.Writer) error { _, err := w.Write(b); return err }); err != nil {
		return false, err
	}
	return true, nil
}
