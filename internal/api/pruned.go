package api

import (
	"context"
	"fmt"
	"strings"
)

// Retention (SPEC §12) deletes the day rankings and drill-down data of days
// older than retain_days and keeps their months and years. A question is
// answered when every set it reads is whole: a top over a range that covers
// a pruned day's month (or year) whole reads that month (cover picks it);
// a top that needs a pruned day itself, a drill (kept by day only) and a
// series (one count per day) over a pruned day are refused with 400 naming
// the pruned days, rather than answered short.

// maxNamedRuns bounds the runs of pruned days an error names.
const maxNamedRuns = 8

// refusePruned returns a *badRequest naming the pruned days among days (the
// day sets the question would read), or nil when there is none. why says
// what the question needs that a pruned day no longer has.
func (a *API) refusePruned(ctx context.Context, days []string, why string) error {
	pruned, err := a.o.Store.PrunedDays(ctx, days)
	if err != nil {
		return err
	}
	var gone []string
	for i, p := range pruned {
		if p {
			gone = append(gone, days[i])
		}
	}
	if len(gone) == 0 {
		return nil
	}
	t, _ := parseDay(gone[len(gone)-1])
	return bad("from: the range reaches into %d pruned days (%s): retain_days keeps only recent days' statistics, and %s; start the range at %s or later",
		len(gone), runs(gone), why, dayName(t.AddDate(0, 0, 1)))
}

// runs writes sorted days as runs of consecutive days, "20250101 to
// 20250131, 20250204", the first maxNamedRuns of them.
func runs(days []string) string {
	var parts []string
	for i := 0; i < len(days); {
		j := i
		for j+1 < len(days) {
			a, _ := parseDay(days[j])
			if dayName(a.AddDate(0, 0, 1)) != days[j+1] {
				break
			}
			j++
		}
		if j > i {
			parts = append(parts, days[i]+" to "+days[j])
		} else {
			parts = append(parts, days[i])
		}
		i = j + 1
	}
	if len(parts) > maxNamedRuns {
		return strings.Join(parts[:maxNamedRuns], ", ") + fmt.Sprintf(" and %d more runs", len(parts)-maxNamedRuns)
	}
	return strings.Join(parts, ", ")
}

// dayPeriods keeps the days among periods (cover's days, months, years).
func dayPeriods(periods []string) []string {
	var out []string
	for _, p := range periods {
		if len(p) == 8 {
			out = append(out, p)
		}
	}
	return out
}

// whyTop says how a top over pruned days can still be answered.
func whyTop(liveFrom string) string {
	return "a pruned day is answered only from its month or year, when the range covers that month whole and it ended before " +
		liveFrom + " (a month still counted into is read by day)"
}

const (
	whyDrill  = "drill-down data is kept by day only, so it was deleted with the pruned days"
	whySeries = "a series needs each day's count, and only months and years of pruned days are kept"
)
