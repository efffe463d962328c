package api

import (
	"context"
	"errors"
	"math/rand"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// recordingStore records the sets read from the counting Redis.
type recordingStore struct {
	*stats.Store
	mu   sync.Mutex
	keys []string
}

func (s *recordingStore) ReadSets(ctx context.Context, keys []string, live func(string) bool, size func(int64), fn func(string, [][]byte, []int64) error) error {
	s.mu.Lock()
	s.keys = append(s.keys, keys...)
	s.mu.Unlock()
	return s.Store.ReadSets(ctx, keys, live, size, fn)
}

// take returns the keys read since the last take, sorted.
func (s *recordingStore) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys
	s.keys = nil
	slices.Sort(k)
	return k
}

// serveSets serves the fixture's data with an API of the given set
// budget, reading through a recordingStore.
func serveSets(t *testing.T, f *fixture, budget int64) (*API, *recordingStore, string) {
	t.Helper()
	rs := &recordingStore{Store: f.store}
	a, err := New(Options{Store: rs, Location: time.UTC, Now: func() time.Time { return f.now }, SetCacheBytes: budget})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return a, rs, srv.URL
}

func (f *fixture) ask(t *testing.T, base, kind string, from, to time.Time) {
	t.Helper()
	code, body := get(t, base+"/api/v1/top?limit=1000&kind="+kind+"&from="+dayName(from)+"&to="+dayName(to))
	if code != 200 {
		t.Fatalf("top %s %s..%s: %d %s", kind, dayName(from), dayName(to), code, body)
	}
	want, attempts := f.expected(kind, "", "", from, to)
	if len(want) > maxLimit {
		t.Fatalf("the fixture ranks more than %d values; the check would miss some", maxLimit)
	}
	f.check(t, kind+" "+dayName(from)+".."+dayName(to), body, want, attempts, int64(len(want)))
}

func statsKeys(kind string, periods ...string) []string {
	out := make([]string, len(periods))
	for i, p := range periods {
		out[i] = stats.StatsKey(p, kind)
	}
	slices.Sort(out)
	return out
}

// A closed period's set is read from Redis once: another question over
// it is summed from the daemon's copy, until something is counted into
// the period (a backfill), which makes exactly that set read again. Days
// still counted into are read every time.
func TestClosedSetsKeptBetweenQuestions(t *testing.T) {
	f := newFixture(t, 3000, false)
	_, rs, base := serveSets(t, f, 0)

	m := time.Date(f.first.Year(), f.first.Month()+3, 1, 0, 0, 0, 0, time.UTC)
	from, to := m.AddDate(0, 0, 3), m.AddDate(0, 4, 3)
	f.ask(t, base, kinds.User, from, to)
	all := cover(from, to, dayName(f.now.AddDate(0, 0, -1)))
	if got, want := rs.take(), statsKeys(kinds.User, all...); !slices.Equal(got, want) {
		t.Fatalf("first question read %q, want %q", got, want)
	}
	// Another range over the same periods: not the same answer (the
	// answer cache does not serve it), and nothing read.
	f.ask(t, base, kinds.User, from.AddDate(0, 0, 1), to)
	if got := rs.take(); len(got) != 0 {
		t.Fatalf("a question over kept periods read %q from redis", got)
	}
	// Another kind's sets are other sets.
	f.ask(t, base, kinds.Src, from, to)
	if got := rs.take(); len(got) != len(all) {
		t.Fatalf("sources over the range read %d sets, want %d", len(got), len(all))
	}

	// A backfill into one day and one month of the range.
	day, inMonth := from.AddDate(0, 0, 2), m.AddDate(0, 2, 9)
	b := stats.NewBatch()
	for _, ts := range []time.Time{day.Add(time.Hour), inMonth.Add(2 * time.Hour)} {
		late := attempt{t: ts, user: "late \xff" + dayName(ts), src: "203.0.113.9", host: "h"}
		f.lines = append(f.lines, late)
		b.Add(late.t, []byte(late.host), []byte(late.user), []byte(late.src))
	}
	if err := f.store.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	f.ask(t, base, kinds.User, from.AddDate(0, 0, 1), to)
	if got, want := rs.take(), statsKeys(kinds.User, dayName(day), inMonth.Format("200601")); !slices.Equal(got, want) {
		t.Fatalf("after a backfill the question read %q, want exactly the sets counted into: %q", got, want)
	}

	// Today and yesterday are counted into: read every time.
	today := time.Date(f.now.Year(), f.now.Month(), f.now.Day(), 0, 0, 0, 0, time.UTC)
	f.ask(t, base, kinds.Host, today.AddDate(0, 0, -3), today)
	rs.take()
	f.ask(t, base, kinds.Host, today.AddDate(0, 0, -2), today)
	if got, want := rs.take(), statsKeys(kinds.Host, dayName(today.AddDate(0, 0, -1)), dayName(today)); !slices.Equal(got, want) {
		t.Fatalf("a question ending today read %q, want only the days still counted into: %q", got, want)
	}
}

// However small the budget, the kept sets stay within it and every
// answer is exact; a negative budget keeps nothing.
func TestSetCacheStaysWithinBudget(t *testing.T) {
	f := newFixture(t, 3000, false)
	for _, budget := range []int64{-1, 4 << 10, 64 << 10} {
		a, _, base := serveSets(t, f, budget)
		r := rand.New(rand.NewSource(budget))
		ks := []string{kinds.User, kinds.Src, kinds.Host}
		for i := 0; i < 60; i++ {
			from, to := f.randomRange(r)
			f.ask(t, base, ks[r.Intn(len(ks))], from, to)
			bytes, _, _ := a.sets.stats()
			if bytes > max(budget, 0) {
				t.Fatalf("budget %d: %d bytes kept", budget, bytes)
			}
		}
		bytes, hits, misses := a.sets.stats()
		t.Logf("budget %d: %d bytes kept, %d sets from the cache, %d from redis", budget, bytes, hits, misses)
		if budget > 0 && hits == 0 {
			t.Errorf("budget %d: no set was ever served from the cache", budget)
		}
		if budget < 0 && (hits != 0 || bytes != 0) {
			t.Errorf("a negative budget kept %d bytes and served %d sets", bytes, hits)
		}
	}
}

func testSet(key string, version int64, members ...string) *set {
	s := &set{key: key, version: version}
	counts := make([]int64, len(members))
	bs := make([][]byte, len(members))
	for i, m := range members {
		bs[i], counts[i] = []byte(m), int64(i+1)
	}
	s.add(bs, counts)
	return s
}

func TestSetRoundTrip(t *testing.T) {
	in := []string{"", "root", "\xff\x00", "a much longer value than the others"}
	s := testSet("k", 1, in...)
	var got []string
	var counts []int64
	s.each(func(m string, n int64) { got, counts = append(got, m), append(counts, n) })
	if !slices.Equal(got, in) || !slices.Equal(counts, []int64{1, 2, 3, 4}) {
		t.Fatalf("got %q %v", got, counts)
	}
}

func TestSetCacheVersionsAndOrder(t *testing.T) {
	c := newSetCache(4000)
	a := testSet("a", 5, "x", "y")
	c.put(a)
	if c.get("a", 5) != a {
		t.Fatal("a kept set at its version was not served")
	}
	if c.get("a", 6) != nil {
		t.Fatal("a set served at another version")
	}
	if c.get("a", 5) != nil {
		t.Fatal("a set of an old version was kept after a newer version was asked")
	}

	// Five sets of 900 bytes in a budget of 4000: the least recently
	// used one goes.
	pad := string(make([]byte, 900-setOverhead-4-8-1))
	for _, k := range []string{"1", "2", "3", "4"} {
		c.put(testSet(k, 1, pad))
	}
	c.get("1", 1)
	c.put(testSet("5", 1, pad))
	if c.bytes > c.budget {
		t.Fatalf("%d bytes kept, budget %d", c.bytes, c.budget)
	}
	for k, kept := range map[string]bool{"1": true, "2": false, "3": true, "4": true, "5": true} {
		if got := c.get(k, 1) != nil; got != kept {
			t.Errorf("set %s kept: %t, want %t", k, got, kept)
		}
	}
	c.put(testSet("huge", 1, string(make([]byte, 1001))))
	if c.get("huge", 1) != nil {
		t.Fatal("a set over a quarter of the budget was kept")
	}
}

// Questions computed at once share the kept sets: every answer is exact,
// the kept bytes stay within the budget, and nothing stays booked for
// building once they are answered.
func TestSetsSharedByConcurrentQuestions(t *testing.T) {
	f := newFixture(t, 3000, false)
	a, _, base := serveSets(t, f, 48<<10)
	ks := []string{kinds.User, kinds.Src, kinds.Host}
	var wg sync.WaitGroup
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(c)))
			for i := 0; i < 15; i++ {
				from, to := f.randomRange(r)
				f.ask(t, base, ks[r.Intn(len(ks))], from, to)
			}
		}(c)
	}
	wg.Wait()
	bytes, hits, _ := a.sets.stats()
	if bytes > a.sets.budget || hits == 0 {
		t.Errorf("%d bytes kept (budget %d), %d sets served from the cache", bytes, a.sets.budget, hits)
	}
	a.sets.mu.Lock()
	building := a.sets.building
	a.sets.mu.Unlock()
	if building != 0 {
		t.Errorf("%d bytes still booked for building after every question was answered", building)
	}
}

// failingStore hands over the first chunk of a read, then fails it.
type failingStore struct{ *stats.Store }

func (s failingStore) ReadSets(ctx context.Context, keys []string, live func(string) bool, size func(int64), fn func(string, [][]byte, []int64) error) error {
	first := true
	err := s.Store.ReadSets(ctx, keys, live, size, func(k string, m [][]byte, c []int64) error {
		if !first {
			return errors.New("connection lost")
		}
		first = false
		return fn(k, m, c)
	})
	if err == nil {
		err = errors.New("connection lost")
	}
	return err
}

// A read that fails part way keeps nothing of what it read.
func TestFailedReadKeepsNoSet(t *testing.T) {
	f := newFixture(t, 3000, false)
	a, err := New(Options{Store: failingStore{f.store}, Location: time.UTC, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	m := time.Date(f.first.Year(), f.first.Month()+3, 1, 0, 0, 0, 0, time.UTC)
	code, body := get(t, srv.URL+"/api/v1/top?kind=src&from="+dayName(m)+"&to="+dayName(m.AddDate(0, 4, 3)))
	if code != 503 {
		t.Fatalf("a failed read answered %d %s, want 503", code, body)
	}
	if bytes, hits, _ := a.sets.stats(); bytes != 0 || hits != 0 {
		t.Errorf("a failed read kept %d bytes", bytes)
	}
	if a.sets.building != 0 {
		t.Errorf("%d bytes still booked after a failed read", a.sets.building)
	}
}

// A question that read its totals before a count and asks after it must
// neither drop nor replace the newer set.
func TestOlderQuestionKeepsNewerSet(t *testing.T) {
	c := newSetCache(1 << 20)
	c.put(testSet("k", 7, "x"))
	if c.get("k", 5) != nil {
		t.Fatal("a set of a newer total served to an older question")
	}
	c.put(testSet("k", 5, "y"))
	if s := c.get("k", 7); s == nil || s.version != 7 {
		t.Fatal("an older read replaced or dropped the newer kept set")
	}
	if c.get("k", 9) != nil || c.get("k", 7) != nil {
		t.Fatal("a set older than the question's total was served or kept")
	}
}
