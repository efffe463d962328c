package api

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// warmed serves the fixture with the given budget, starts the warm-up,
// asks one question to set it off and waits for it to end.
func warmed(t *testing.T, f *fixture, budget int64) (*API, *recordingStore, string) {
	t.Helper()
	a, rs, base := serveSets(t, f, budget)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan struct{})
	go func() { defer close(done); a.Warm(ctx) }()
	today := time.Date(f.now.Year(), f.now.Month(), f.now.Day(), 0, 0, 0, 0, time.UTC)
	if code, body := get(t, base+"/api/v1/series?kind=src&value=x&from="+dayName(today)+"&to="+dayName(today)); code != 200 {
		t.Fatalf("series: %d %s", code, body)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the warm-up did not end within 2 minutes")
	}
	if a.Warming() || a.WarmedSeconds() <= 0 {
		t.Fatalf("after the warm-up: warming %t, took %v s", a.Warming(), a.WarmedSeconds())
	}
	rs.take()
	return a, rs, base
}

// After the first question, the warm-up reads every closed period's sets:
// questions over closed ranges then read nothing from Redis, and their
// answers are exact; the days still counted into are not kept.
func TestWarmKeepsEveryClosedPeriod(t *testing.T) {
	f := newFixture(t, 3000, false)
	a, rs, base := warmed(t, f, 0)
	today := time.Date(f.now.Year(), f.now.Month(), f.now.Day(), 0, 0, 0, 0, time.UTC)
	yesterday := today.AddDate(0, 0, -1)
	for _, kind := range []string{kinds.User, kinds.Src, kinds.Host} {
		// A year not aligned to January, ending on the last closed day,
		// and a whole year long ago.
		f.ask(t, base, kind, yesterday.AddDate(-1, 0, 0), yesterday.AddDate(0, 0, -1))
		y := f.first.Year() + 1
		f.ask(t, base, kind, time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC))
	}
	if got := rs.take(); len(got) != 0 {
		t.Fatalf("after the warm-up, questions over closed days read %q from redis", got)
	}
	a.sets.mu.Lock()
	for k, el := range a.sets.byKey {
		if len(k) >= 8 && (k[:8] == dayName(yesterday) || k[:8] == dayName(today)) {
			t.Errorf("the warm-up kept %q (version %d), which is still counted into", k, el.Value.(*set).version)
		}
	}
	a.sets.mu.Unlock()
}

// With a small budget the warm-up stops when the budget is nearly full,
// having read the newest closed days first.
func TestWarmStopsAtTheBudgetNewestFirst(t *testing.T) {
	f := newFixture(t, 3000, false)
	a, _, _ := warmed(t, f, 24<<10)
	bytes, _, _ := a.sets.stats()
	if bytes > a.sets.budget || bytes == 0 {
		t.Fatalf("%d bytes kept, budget %d", bytes, a.sets.budget)
	}
	newest := time.Date(f.now.Year(), f.now.Month(), f.now.Day()-2, 0, 0, 0, 0, time.UTC)
	for _, kind := range []string{kinds.User, kinds.Src, kinds.Host} {
		key := stats.StatsKey(dayName(newest), kind)
		a.sets.mu.Lock()
		_, ok := a.sets.byKey[key]
		a.sets.mu.Unlock()
		if !ok {
			t.Errorf("the newest closed day's %s set was not kept", kind)
		}
	}
}

// A warm-up still waiting for its first question ends with its context,
// having read nothing.
func TestWarmEndsWithItsContext(t *testing.T) {
	f := newFixture(t, 300, false)
	rs := &recordingStore{Store: f.store}
	a, err := New(Options{Store: rs, Location: time.UTC, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Warm(ctx) }()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the warm-up did not end with its context")
	}
	if got := rs.take(); len(got) != 0 || a.Warming() {
		t.Fatalf("the warm-up read %q without a question", got)
	}
}

// outageStore fails its reads of the totals while away is set, as a
// counting Redis that is away, and counts them.
type outageStore struct {
	*recordingStore
	away   atomic.Bool
	failed atomic.Int64
}

func (s *outageStore) PeriodTotals(ctx context.Context, periods []string) ([]int64, error) {
	if s.away.Load() {
		s.failed.Add(1)
		return nil, errors.New("connection refused")
	}
	return s.recordingStore.PeriodTotals(ctx, periods)
}

// A warm-up pass that fails is tried again, and the warm-up still ends
// with every closed period kept.
func TestWarmRetriesAfterAnOutage(t *testing.T) {
	f := newFixture(t, 1000, false)
	st := &outageStore{recordingStore: &recordingStore{Store: f.store}}
	st.away.Store(true)
	a, err := New(Options{Store: st, Location: time.UTC, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	a.warmRetry = time.Millisecond
	srv := httptest.NewServer(a)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); a.Warm(ctx) }()
	today := time.Date(f.now.Year(), f.now.Month(), f.now.Day(), 0, 0, 0, 0, time.UTC)
	if code, _ := get(t, srv.URL+"/api/v1/top?kind=src&from="+dayName(today)+"&to="+dayName(today)); code != 503 {
		t.Fatalf("a question while the counting redis is away answered %d, want 503", code)
	}
	// The question set off the warm-up; Redis comes back once a pass of
	// it has failed too.
	for deadline := time.Now().Add(time.Minute); st.failed.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("no warm-up pass read the totals within a minute (%d failed reads)", st.failed.Load())
		}
		time.Sleep(time.Millisecond)
	}
	st.away.Store(false)
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the warm-up did not end within 2 minutes")
	}
	if a.WarmedSeconds() <= 0 {
		t.Fatalf("warm-up took %v s", a.WarmedSeconds())
	}
	st.take()
	from := today.AddDate(0, -2, 0)
	f.ask(t, srv.URL, kinds.Src, from, today.AddDate(0, 0, -2))
	if got := st.take(); len(got) != 0 {
		t.Fatalf("after the retried warm-up, a closed range read %q from redis", got)
	}
}
