package stats_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

func apply(t *testing.T, s *stats.Store, attempts ...[4]string) {
	t.Helper()
	b := stats.NewBatch()
	for _, a := range attempts {
		b.Add(at(a[0]), []byte(a[1]), []byte(a[2]), []byte(a[3]))
	}
	if err := s.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
}

func TestTotalsAndDistinct(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	apply(t, s,
		[4]string{"2026-11-25T10:00:00Z", "web1", "root", "192.0.2.1"},
		[4]string{"2026-11-25T11:00:00Z", "web1", "root", "192.0.2.2"},
		[4]string{"2026-11-25T12:00:00Z", "web2", "admin", "192.0.2.2"},
		[4]string{"2026-11-23T12:00:00Z", "web2", "git", "192.0.2.9"},
	)
	got, err := s.Totals(ctx, []string{"20261125", "20261124", "20261123", "202611", "2026", "2025"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[3 0 1 4 4 0]" {
		t.Errorf("totals %v, want [3 0 1 4 4 0]", got)
	}
	if got, err := s.Totals(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("totals of nothing: %v, %v", got, err)
	}
	d, err := s.Distinct(ctx, "20261125")
	if err != nil {
		t.Fatal(err)
	}
	if d[stats.KindUser] != 2 || d[stats.KindSrc] != 2 || d[stats.KindHost] != 2 {
		t.Errorf("distinct of 20261125: %v", d)
	}
	d, err = s.Distinct(ctx, "202611")
	if err != nil || d[stats.KindUser] != 3 || d[stats.KindSrc] != 3 || d[stats.KindHost] != 2 {
		t.Errorf("distinct of 202611: %v, %v", d, err)
	}
}

// scanAll collects ScanFirstSeen's answer, failing on a value delivered twice.
func scanAll(t *testing.T, s *stats.Store, kind, day string, chunk int, each func(n int)) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	chunks := 0
	err := s.ScanFirstSeen(context.Background(), kind, day, chunk, func(es []stats.Entry) error {
		if len(es) > chunk {
			t.Errorf("chunk of %d, asked for %d", len(es), chunk)
		}
		for _, e := range es {
			if _, dup := got[e.Member]; dup {
				t.Errorf("%q delivered twice", e.Member)
			}
			got[e.Member] = e.Count
		}
		chunks++
		if each != nil {
			each(chunks)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestScanFirstSeen(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	var attempts [][4]string
	want := map[string]int64{}
	// Values first seen on the 25th, some of them many times, with bytes
	// of every sort; and values already seen on the 24th, which are not new.
	for i := 0; i < 23; i++ {
		v := fmt.Sprintf("user%02d\x00\xff<%d>", i, i)
		for j := 0; j <= i%4; j++ {
			attempts = append(attempts, [4]string{"2026-11-25T10:00:00Z", "h", v, "s"})
		}
		want[v] = int64(i%4 + 1)
	}
	attempts = append(attempts,
		[4]string{"2026-11-24T10:00:00Z", "h", "root", "s"},
		[4]string{"2026-11-25T10:00:00Z", "h", "root", "s"},
		[4]string{"2026-11-26T10:00:00Z", "h", "later", "s"},
		[4]string{"2026-11-25T10:00:00Z", "h", "", "s"},
	)
	want[""] = 1
	apply(t, s, attempts...)
	// A member of the first-seen set missing from the day's ranking was not
	// seen that day, whatever wrote it.
	if _, err := srv.Conn(1).Do("ZADD", stats.FirstSeenKey(stats.KindUser), 20261125, "ghost"); err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 4, 1000} {
		got := scanAll(t, s, stats.KindUser, "20261125", chunk, nil)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("chunk %d: got %v\nwant %v", chunk, got, want)
		}
	}
	if got := scanAll(t, s, stats.KindSrc, "20261125", 10, nil); len(got) != 0 {
		t.Errorf("source first seen on the 24th reported new on the 25th: %v", got)
	}
	if got := scanAll(t, s, stats.KindUser, "20261127", 10, nil); len(got) != 0 {
		t.Errorf("new values on a day without data: %v", got)
	}
	for _, bad := range []string{"", "2026112", "202611250", "2026-11-2", "*"} {
		if err := s.ScanFirstSeen(context.Background(), stats.KindUser, bad, 10, func([]stats.Entry) error { return nil }); err == nil {
			t.Errorf("day %q accepted", bad)
		}
	}
}

// TestScanFirstSeenWhileCounting counts during a scan: a value new today
// before the cursor and one after it, and a backfill that moves the cursor
// value itself to an earlier day. Nothing is delivered twice, nothing that
// was there when the scan started is missed.
func TestScanFirstSeenWhileCounting(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	var attempts [][4]string
	var before []string
	for i := 0; i < 40; i++ {
		v := fmt.Sprintf("m%02d", i)
		attempts = append(attempts, [4]string{"2026-11-25T10:00:00Z", "h", v, "s"})
		before = append(before, v)
	}
	apply(t, s, attempts...)
	var delivered []string
	got := scanAll(t, s, stats.KindUser, "20261125", 5, func(n int) {
		if n != 2 {
			return
		}
		// The last value delivered so far is m09, the scan's cursor.
		apply(t, s,
			[4]string{"2026-11-25T11:00:00Z", "h", "a-before-cursor", "s"},
			[4]string{"2026-11-25T11:00:00Z", "h", "z-after-cursor", "s"},
			[4]string{"2026-11-20T11:00:00Z", "h", "m09", "s"},
		)
	})
	for v := range got {
		delivered = append(delivered, v)
	}
	sort.Strings(delivered)
	want := append(append([]string(nil), before...), "z-after-cursor")
	if strings.Join(delivered, " ") != strings.Join(want, " ") {
		t.Errorf("delivered\n%v\nwant\n%v", delivered, want)
	}
	// Once the counting is over, a scan sees the day as it is.
	got = scanAll(t, s, stats.KindUser, "20261125", 5, nil)
	if _, ok := got["a-before-cursor"]; !ok || len(got) != 41 {
		t.Errorf("second scan: %d values %v", len(got), got)
	}
	if _, ok := got["m09"]; ok {
		t.Error("m09 was first seen on the 20th after the backfill")
	}
}
