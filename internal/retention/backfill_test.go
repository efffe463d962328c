package retention

import (
	"context"
	"math/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// onDay makes n attempts at random seconds of the day off days before
// now, with values that repeat.
func onDay(rng *rand.Rand, now time.Time, loc *time.Location, off, n int, tag string) []attempt {
	y, m, d := now.In(loc).Date()
	start := time.Date(y, m, d-off, 0, 0, 0, 0, loc)
	var out []attempt
	for i := 0; i < n; i++ {
		out = append(out, attempt{start.Unix() + int64(rng.Intn(20*3600)), "host" + strconv.Itoa(rng.Intn(3)),
			tag + "user" + strconv.Itoa(rng.Intn(10)), "10.1." + strconv.Itoa(rng.Intn(4)) + "." + strconv.Itoa(rng.Intn(30))})
	}
	return out
}

func dayOf(a attempt, loc *time.Location) string {
	return stats.PeriodOf(time.Unix(a.unix, 0).In(loc)).Day
}

// TestBackfillOfPrunedDaysCountsIntoMonthsOnly: with the store asking the
// pruner which days are pruned (as the daemon wires it), a backfill of
// days older than retain_days, a second backfill into days already pruned
// (their archive file exists), and, after retain_days is raised, a backfill
// into days pruned under the shorter window all count into months, years,
// totals and first-seen exactly, make no day ranking or drill-down key of
// those days even before a pass, and end in their archive files (a second
// gzip member), which hold exactly every attempt of the day. A day of the
// wider window never pruned gets its rankings. -F gives DB 1 back.
func TestBackfillOfPrunedDaysCountsIntoMonthsOnly(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Luxembourg")
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	now := time.Now()
	rng := rand.New(rand.NewSource(now.UnixNano()))
	ar := &Archive{Dir: t.TempDir()}
	p := &Pruner{Store: s, Archive: ar, Days: 30, Location: loc, Clock: clockwork.NewFakeClockAt(now)}
	s.Pruned = p.Pruned
	m := newModel(loc)
	count := func(as []attempt) {
		t.Helper()
		for _, a := range as {
			m.add(a)
		}
		apply(t, ctx, s, loc, as)
	}
	cutoff30 := p.Cutoff(now)
	// archived is what must be in the archive after a pass: days before
	// the first cutoff, and the days pruned then.
	archived := map[string]bool{}
	noDayKeys := func(when string, days map[string]bool) {
		t.Helper()
		db1 := redistest.Dump(t, srv.Conn(stats.StatsDB))
		for k := range db1 {
			period, _, ok := stats.SplitStatsKey(k)
			if rest, isDrill := strings.CutPrefix(k, "alog:links:"); isDrill && len(rest) >= 8 {
				period, ok = rest[:8], true
			}
			if ok && days[period] {
				t.Errorf("%s: key %s of a pruned day", when, k)
			}
		}
	}

	// 1. A backfill of old days and of retained ones.
	var first []attempt
	for _, off := range []int{0, 3, 29, 35, 60, 61, 200, 500} {
		first = append(first, onDay(rng, now, loc, off, 40+rng.Intn(40), "a")...)
	}
	count(first)
	for _, a := range first {
		if d := dayOf(a, loc); d < cutoff30 {
			archived[d] = true
		}
	}
	if len(archived) < 4 {
		t.Fatalf("only %d days before the cutoff; the test does not exercise what it is for", len(archived))
	}
	noDayKeys("backfill of old days, before a pass", archived)
	compiled(t, ctx, s)
	if _, err := p.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	checkStatsPruned(t, redistest.Dump(t, srv.Conn(stats.StatsDB)), m, func(d string) bool { return archived[d] })
	checkArchivePruned(t, ctx, ar, m, func(d string) bool { return archived[d] })

	// 2. New lines of days already pruned.
	var again []attempt
	for _, off := range []int{35, 200} {
		again = append(again, onDay(rng, now, loc, off, 30, "b")...)
	}
	sizes := map[string]int64{}
	for d := range archived {
		sizes[d], _ = ar.Size(d)
	}
	count(again)
	noDayKeys("backfill into pruned days, before a pass", archived)
	if _, err := p.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	checkStatsPruned(t, redistest.Dump(t, srv.Conn(stats.StatsDB)), m, func(d string) bool { return archived[d] })
	checkArchivePruned(t, ctx, ar, m, func(d string) bool { return archived[d] })
	for _, a := range again {
		if n, _ := ar.Size(dayOf(a, loc)); n <= sizes[dayOf(a, loc)] {
			t.Errorf("the archive of %s did not grow by the new lines", dayOf(a, loc))
		}
	}

	// 3. retain_days raised to 365: days 35 to 61 are inside the window
	// now but were pruned; day 100 never was.
	p.Days = 365
	var raised []attempt
	for _, off := range []int{35, 61, 100} {
		raised = append(raised, onDay(rng, now, loc, off, 25, "c")...)
	}
	count(raised)
	noDayKeys("after retain_days was raised, before a pass", archived)
	compiled(t, ctx, s)
	res, err := p.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pass after raising retain_days pruned %v", res.Pruned)
	isPruned := func(d string) bool { return archived[d] }
	db1 := redistest.Dump(t, srv.Conn(stats.StatsDB))
	checkStatsPruned(t, db1, m, isPruned)
	checkArchivePruned(t, ctx, ar, m, isPruned)
	day100 := dayOf(onDay(rng, now, loc, 100, 1, "x")[0], loc)
	if _, ok := db1[stats.StatsKey(day100, stats.KindUser)]; !ok {
		t.Errorf("day %s, never pruned and inside the raised window, has no rankings", day100)
	}
	db0 := redistest.Dump(t, srv.Conn(stats.AttemptsDB))
	for k := range db0 {
		if d, ok := strings.CutPrefix(k, "alog:attempts:"); ok && archived[d] {
			t.Errorf("%s: the new lines of a pruned day stayed in DB 0 after a pass", k)
		}
	}

	// 4. -F gives DB 1 back, the pruned days without rankings.
	r, err := s.RebuildWith(ctx, stats.RebuildOptions{Location: loc, Archive: ar})
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(first) + len(again) + len(raised)); r.Attempts != want {
		t.Errorf("-F counted %d attempts, want %d", r.Attempts, want)
	}
	rebuilt := redistest.Dump(t, srv.Conn(stats.StatsDB))
	for _, g := range stats.Granularities() {
		delete(rebuilt, stats.ToUpdateKey(g))
		delete(db1, stats.ToUpdateKey(g))
	}
	if d := diff(db1, rebuilt); d != "" {
		t.Errorf("DB 1 after -F differs:\n%s", d)
	}
}
