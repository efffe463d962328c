package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/retention"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// prunedFixture is newFixture's 800 days with the days older than
// retainDays pruned by the real pruner (archive in a temp dir).
func prunedFixture(t *testing.T, retainDays int) (*fixture, string) {
	t.Helper()
	f := newFixture(t, 6000, false)
	ctx := context.Background()
	for _, g := range stats.Granularities() {
		keys, err := f.store.TakeToUpdate(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.DoneRendering(ctx, g, keys...); err != nil {
			t.Fatal(err)
		}
	}
	p := &retention.Pruner{
		Store: f.store, Archive: &retention.Archive{Dir: t.TempDir()}, Days: retainDays,
		Location: time.UTC, Clock: clockwork.NewFakeClockAt(f.now),
	}
	res, err := p.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pruned) == 0 || len(res.Pending) != 0 {
		t.Fatalf("pass pruned %d days, %d pending; want some pruned, none pending", len(res.Pruned), len(res.Pending))
	}
	return f, p.Cutoff(f.now)
}

// refused is the test's own account of which days a question needs that
// are pruned: days before the cutoff with attempts, except (for top) those
// whose month the range covers whole and that ended before yesterday.
func (f *fixture) refused(ep endpoint, from, to time.Time, cutoff string) []string {
	counted := map[string]bool{}
	for _, l := range f.lines {
		counted[dayName(l.t)] = true
	}
	y, m, d := f.now.Date()
	yesterday := dayName(time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC))
	var out []string
	for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
		name := dayName(day)
		if name >= cutoff || !counted[name] {
			continue
		}
		first := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
		last := first.AddDate(0, 1, -1)
		if ep == epTop && !first.Before(from) && !last.After(to) && dayName(last) < yesterday {
			continue
		}
		out = append(out, name)
	}
	return out
}

// checkRefusal checks a 400 names the pruned days: how many, the first,
// the last, and the day to start from instead.
func checkRefusal(t *testing.T, what string, code int, body []byte, want []string) {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(body, &e); err != nil || code != 400 {
		t.Fatalf("%s: %d %s, want 400 naming %d pruned days", what, code, body, len(want))
	}
	last, _ := parseDay(want[len(want)-1])
	for _, s := range []string{
		"from: ", fmt.Sprintf("reaches into %d pruned days (%s", len(want), want[0]),
		"start the range at " + dayName(last.AddDate(0, 0, 1)),
	} {
		if !strings.Contains(e.Error, s) {
			t.Errorf("%s: error %q does not say %q", what, e.Error, s)
		}
	}
	if len(want) > 1 && !strings.Contains(e.Error, want[len(want)-1]) && !strings.Contains(e.Error, "more runs") {
		t.Errorf("%s: error %q does not name the last pruned day %s", what, e.Error, want[len(want)-1])
	}
}

// TestPrunedDays: after pruning, a top over pruned days is exact when the
// range covers their months whole (months are kept) and 400 naming them
// otherwise; drill and series over pruned days are 400; ranges of retained
// days are exact as before.
func TestPrunedDays(t *testing.T) {
	f, cutoff := prunedFixture(t, 60)
	checkPrunedYearAndMonth(t, f, cutoff)
	r := rand.New(rand.NewSource(3))
	names := kinds.Names()
	var answeredPruned, refusedTop, refusedOther, retained int
	for i := 0; i < 100; i++ {
		from, to := f.randomRange(r)
		if from.After(to) {
			continue
		}
		kind := names[r.Intn(len(names))]
		rng := "&from=" + dayName(from) + "&to=" + dayName(to)
		want, attempts := f.expected(kind, "", "", from, to)
		code, body := get(t, f.srv.URL+"/api/v1/top?kind="+kind+rng+"&limit=1000")
		if gone := f.refused(epTop, from, to, cutoff); len(gone) > 0 {
			checkRefusal(t, "top"+rng, code, body, gone)
			refusedTop++
		} else {
			if code != 200 {
				t.Fatalf("top %s: %d %s", rng, code, body)
			}
			f.check(t, "top "+kind+rng, body, want, attempts, int64(len(want)))
			if dayName(from) < cutoff && attempts > 0 {
				answeredPruned++
			} else {
				retained++
			}
		}
		value := "never seen"
		if len(want) > 0 {
			value = want[r.Intn(len(want))].Member
		}
		of := names[(1+i)%len(names)]
		if of == kind {
			of = names[(2+i)%len(names)]
		}
		gone := f.refused(epDrill, from, to, cutoff)
		code, body = get(t, f.srv.URL+"/api/v1/drill?kind="+kind+"&of="+of+"&"+valueParam(r, value)+rng+"&limit=1000")
		if len(gone) > 0 {
			checkRefusal(t, "drill"+rng, code, body, gone)
			refusedOther++
		} else {
			if code != 200 {
				t.Fatalf("drill %s: %d %s", rng, code, body)
			}
			dwant, dattempts := f.expected(of, kind, value, from, to)
			f.check(t, "drill "+kind+rng, body, dwant, dattempts, int64(len(dwant)))
		}
		code, body = get(t, f.srv.URL+"/api/v1/series?kind="+kind+"&"+valueParam(r, value)+rng)
		if len(gone) > 0 {
			checkRefusal(t, "series"+rng, code, body, gone)
		} else if code != 200 {
			t.Fatalf("series %s: %d %s", rng, code, body)
		}
	}
	// Every branch taken, so the checks above could fail.
	if answeredPruned == 0 || refusedTop == 0 || refusedOther == 0 || retained == 0 {
		t.Fatalf("ranges: %d answered over pruned days, %d top refused, %d drill refused, %d retained only; want each above zero",
			answeredPruned, refusedTop, refusedOther, retained)
	}
}

// checkPrunedYearAndMonth: the oldest whole year, entirely pruned, and a
// month of it are answered exactly from their own statistics; the same
// month shifted by a day is refused.
func checkPrunedYearAndMonth(t *testing.T, f *fixture, cutoff string) {
	t.Helper()
	// The first whole year of the fixture's data: its 800 days less the
	// 60 kept span 740 days, so a calendar year (at most 731 days from
	// any start) always lies whole among the pruned ones.
	y := f.first.Year()
	if f.first.YearDay() != 1 {
		y++
	}
	if end := dayName(time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)); end >= cutoff {
		t.Fatalf("year %d ends %s, not before the first retained day %s", y, end, cutoff)
	}
	from, to := time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ from, to time.Time }{
		{from, to},
		{time.Date(y, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 3, 31, 0, 0, 0, 0, time.UTC)},
	} {
		rng := "&from=" + dayName(c.from) + "&to=" + dayName(c.to)
		want, attempts := f.expected(kinds.Src, "", "", c.from, c.to)
		code, body := get(t, f.srv.URL+"/api/v1/top?kind="+kinds.Src+rng+"&limit=1000")
		if code != 200 || attempts == 0 {
			t.Fatalf("top %s: %d %s (%d attempts expected)", rng, code, body, attempts)
		}
		f.check(t, "top"+rng, body, want, attempts, int64(len(want)))
	}
	rng := "&from=" + fmt.Sprint(y) + "0302&to=" + fmt.Sprint(y) + "0401"
	code, body := get(t, f.srv.URL+"/api/v1/top?kind="+kinds.Src+rng)
	if code != 400 || !strings.Contains(string(body), "pruned days") {
		t.Fatalf("top %s: %d %s, want 400 naming pruned days", rng, code, body)
	}
}
