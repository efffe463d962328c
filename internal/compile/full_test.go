package compile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// csvRows counts the rows of a ranking CSV, header excluded.
func csvRows(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n")) - 1
}

func compiling(t *testing.T, s *stats.Store, g stats.Granularity) []string {
	t.Helper()
	conn := s.Stats.Get()
	defer conn.Close()
	keys, err := redis.Strings(conn.Do("SMEMBERS", stats.CompilingKey(g)))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

// TestFullRankingFollowsItsInterval: a large ranking's chart and JSON are
// written at every compile, its full CSV at most once per interval; the
// key stays in the compiling set until its CSV is written, and
// CompileFinal writes what is pending at once.
func TestFullRankingFollowsItsInterval(t *testing.T) {
	c, s := setup(t)
	ctx := context.Background()
	now := time.Unix(1_000_000, 0)
	c.Now = func() time.Time { return now }
	c.SmallRanking = 3
	c.FullRankingInterval = 5 * time.Minute
	for i := 1; i <= 5; i++ {
		add(t, s, "2026-11-25T10:00:00Z", "h", fmt.Sprintf("u%d", i), "192.0.2.1")
	}
	res, err := c.Compile(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Keys != 9 || res.Charts != 9 || res.FullCSVs != 9 || res.Pending != 0 || !res.Overview {
		t.Fatalf("first compile: %+v, want 9 keys and 9 full CSVs", res)
	}
	dayCSV := filepath.Join(c.Dir, render.CSVPath("20261125", stats.KindUser))
	dayJSON := filepath.Join(c.Dir, render.JSONPath("20261125", stats.KindUser))
	if n := csvRows(t, dayCSV); n != 5 {
		t.Fatalf("day CSV has %d rows, want 5", n)
	}

	// One more user name a minute later: every key is drawn, the three
	// user-name rankings (6 rows, more than 3) wait for their interval.
	now = now.Add(time.Minute)
	add(t, s, "2026-11-25T10:01:00Z", "h", "u6", "192.0.2.1")
	res, err = c.Compile(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Keys != 9 || res.FullCSVs != 6 || res.Pending != 3 {
		t.Fatalf("compile after one attempt: %+v, want 9 keys, 6 full CSVs, 3 pending", res)
	}
	if n := csvRows(t, dayCSV); n != 5 {
		t.Errorf("day CSV rewritten before its interval: %d rows", n)
	}
	if b, err := os.ReadFile(dayJSON); err != nil || !strings.Contains(string(b), `"distinct":6`) {
		t.Errorf("day JSON not current: %s, %v", b, err)
	}
	want := []string{stats.StatsKey("20261125", stats.KindUser)}
	if got := compiling(t, s, stats.Daily); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("compiling set %v, want %v", got, want)
	}

	// Nothing new, still within the interval: the pending keys are drawn
	// again and stay pending.
	now = now.Add(3 * time.Minute)
	res, err = c.Compile(ctx, false)
	if err != nil || res.Keys != 3 || res.Pending != 3 || res.FullCSVs != 0 {
		t.Fatalf("compile within the interval: %+v, %v", res, err)
	}

	// Five minutes after the first write: written, and done.
	now = now.Add(time.Minute + time.Second)
	res, err = c.Compile(ctx, false)
	if err != nil || res.FullCSVs != 3 || res.Pending != 0 {
		t.Fatalf("compile after the interval: %+v, %v", res, err)
	}
	if n := csvRows(t, dayCSV); n != 6 {
		t.Errorf("day CSV has %d rows after its interval, want 6", n)
	}
	if got := compiling(t, s, stats.Daily); len(got) != 0 {
		t.Errorf("compiling set %v after the full write", got)
	}

	// A change right after: pending again; the final compile writes it.
	now = now.Add(time.Second)
	add(t, s, "2026-11-25T10:02:00Z", "h", "u7", "192.0.2.1")
	res, err = c.Compile(ctx, false)
	if err != nil || res.Pending != 3 {
		t.Fatalf("compile after a change: %+v, %v", res, err)
	}
	res, err = c.CompileFinal(ctx)
	if err != nil || res.FullCSVs != 3 || res.Pending != 0 {
		t.Fatalf("final compile: %+v, %v", res, err)
	}
	if n := csvRows(t, dayCSV); n != 7 {
		t.Errorf("day CSV has %d rows after the final compile, want 7", n)
	}
	if res.Rows < 3*7 {
		t.Errorf("final compile reports %d rows, want at least 21", res.Rows)
	}

	// A restarted process (a new Compiler) writes what a dead one left
	// pending at its first compile.
	now = now.Add(time.Second)
	add(t, s, "2026-11-25T10:03:00Z", "h", "u8", "192.0.2.1")
	if res, err := c.Compile(ctx, false); err != nil || res.Pending != 3 {
		t.Fatalf("compile before the restart: %+v, %v", res, err)
	}
	restarted := &Compiler{Store: c.Store, Dir: c.Dir, ChartTop: c.ChartTop, Log: c.Log, SmallRanking: 3, Now: c.Now}
	if res, err := restarted.Compile(ctx, false); err != nil || res.FullCSVs != 3 || res.Pending != 0 {
		t.Fatalf("first compile after a restart: %+v, %v", res, err)
	}
	if n := csvRows(t, dayCSV); n != 8 {
		t.Errorf("day CSV has %d rows after the restart, want 8", n)
	}
}

// cancellingStore cancels the compile's context from inside a read, as a
// shutdown does, and then fails the read the way a closed connection does.
type cancellingStore struct {
	*stats.Store
	cancel context.CancelFunc
	fail   bool
}

func (s cancellingStore) Top(ctx context.Context, key string, n int) ([]stats.Entry, error) {
	s.cancel()
	if s.fail {
		return nil, errors.New("use of closed network connection")
	}
	return s.Store.Top(ctx, key, n)
}

// TestCancelledCompileWrapsTheContext: whatever a stop interrupts, the
// error says it was the stop.
func TestCancelledCompileWrapsTheContext(t *testing.T) {
	for _, fail := range []bool{false, true} {
		c, s := setup(t)
		add(t, s, "2026-11-25T10:00:00Z", "h", "root", "192.0.2.1")
		ctx, cancel := context.WithCancel(context.Background())
		c.Store = cancellingStore{Store: s, cancel: cancel, fail: fail}
		_, err := c.Compile(ctx, false)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read fails %v: err = %v, want it to wrap context.Canceled", fail, err)
		}
		cancel()
	}
	c, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Compile(ctx, false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled before: err = %v", err)
	}
}

// heapPeak samples the heap while fn runs and returns the largest growth
// over the heap before it.
//
// The collector runs at 10% growth meanwhile, so that the peak measures
// what the compile holds rather than garbage not yet collected.
func heapPeak(fn func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak {
				peak = ms.HeapAlloc - base
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return peak
}

// TestCompileMemoryFollowsBudgetNotValues compiles a day that brought 200
// new user names of 256 KB each (50 MB in every ranking of the day, month
// and year, and in the new-value list): writing a full ranking and the
// new-value list each hold a small part of one copy of the values, and
// every file is complete. (The overview shows the top values whole, a
// bounded number of them, and is left out of the measure.)
func TestCompileMemoryFollowsBudgetNotValues(t *testing.T) {
	c, s := setup(t)
	c.spillBytes = 4 << 20
	const n, size = 200, 256 << 10
	conn := s.Stats.Get()
	defer conn.Close()
	year, first := stats.StatsKey("2026", stats.KindUser), stats.FirstSeenKey(stats.KindUser)
	day := stats.StatsKey("20261125", stats.KindUser)
	args := map[string][]interface{}{year: {year}, day: {day}, first: {first}}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("u%04d-", i) + strings.Repeat("x", size-6)
		for key := range args {
			score := i%9 + 1
			if key == first {
				score = 20261125
			}
			args[key] = append(args[key], score, v)
		}
	}
	for _, a := range args {
		if _, err := conn.Do("ZADD", a...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Do("HSET", stats.TotalsKey, "2026", 1000); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var out keyOutcome
	var nv render.NewValues
	var err1, err2 error
	keyPeak := heapPeak(func() { out, err1 = c.renderKey(ctx, year, true) })
	newPeak := heapPeak(func() { nv, err2 = c.writeNewValues(ctx, "20261125", stats.KindUser) })
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	t.Logf("50 MB of values: heap peak +%.1f MiB for the year's ranking, +%.1f MiB for the new values",
		float64(keyPeak)/(1<<20), float64(newPeak)/(1<<20))
	if !out.done || out.rows != n || nv.Count != n || len(nv.Top) != render.NewTop {
		t.Errorf("ranking %+v, new values %d (top %d), want %d rows", out, nv.Count, len(nv.Top), n)
	}
	for _, p := range []string{render.CSVPath("2026", stats.KindUser), render.NewCSVPath("20261125", stats.KindUser)} {
		if got := csvRows(t, filepath.Join(c.Dir, p)); got != n {
			t.Errorf("%s has %d rows, want %d", p, got, n)
		}
	}
	// One copy of the values is 50 MB. A ranking is read ReplyBytes at a
	// time; the new values spill past 4 MB and keep the NewTop shown
	// (25 × 256 KB = 6.25 MB).
	if keyPeak > 12<<20 {
		t.Errorf("writing the ranking grew the heap by %.1f MiB, more than 12 MiB", float64(keyPeak)/(1<<20))
	}
	if newPeak > 20<<20 {
		t.Errorf("writing the new values grew the heap by %.1f MiB, more than 20 MiB", float64(newPeak)/(1<<20))
	}
}
