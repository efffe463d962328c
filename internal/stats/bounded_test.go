package stats_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// bigValue is a distinct value of size bytes.
func bigValue(i, size int) string {
	p := fmt.Sprintf("v%04d-", i)
	return p + strings.Repeat("x", size-len(p))
}

// zadd writes es into key in one command.
func zadd(t *testing.T, c redis.Conn, key string, es []stats.Entry) {
	t.Helper()
	args := []interface{}{key}
	for _, e := range es {
		args = append(args, e.Count, e.Member)
	}
	if _, err := c.Do("ZADD", args...); err != nil {
		t.Fatal(err)
	}
}

func chunkBytes(es []stats.Entry) int {
	n := 0
	for _, e := range es {
		n += len(e.Member)
	}
	return n
}

// TestRankingBoundedByBytes reads a ranking of 200 values of 256 KB mixed
// with small ones: every chunk stays within the byte budget (or is a single
// member), whatever the chunk size asked, and the order is still exact.
func TestRankingBoundedByBytes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	c := srv.Conn(1)
	var want []stats.Entry
	for i := 0; i < 200; i++ {
		want = append(want, stats.Entry{Member: bigValue(i, 256<<10), Count: int64(i%7 + 1)})
	}
	for i := 0; i < 1000; i++ {
		want = append(want, stats.Entry{Member: fmt.Sprintf("s%04d", i), Count: int64(i%5 + 1)})
	}
	zadd(t, c, "big", want)
	sort.Slice(want, func(i, j int) bool {
		if want[i].Count != want[j].Count {
			return want[i].Count > want[j].Count
		}
		return want[i].Member < want[j].Member
	})
	const limit = 1 << 20
	r, err := s.OpenRankingLimit(ctx, "big", 10000, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Len() != int64(len(want)) {
		t.Errorf("Len() = %d, want %d", r.Len(), len(want))
	}
	var got []stats.Entry
	chunks := 0
	for {
		es, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if es == nil {
			break
		}
		chunks++
		if n := chunkBytes(es); n > limit && len(es) > 1 {
			t.Fatalf("chunk of %d members holds %d bytes, more than %d", len(es), n, limit)
		}
		got = append(got, es...)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d = %.20q %d, want %.20q %d", i, got[i].Member, got[i].Count, want[i].Member, want[i].Count)
		}
	}
	// 50 MB of values in chunks of at most 1 MB: at least 50 reads.
	if chunks < 50 {
		t.Errorf("%d chunks for 50 MB of values", chunks)
	}

	// A value larger than the budget comes alone, whole.
	huge := bigValue(9999, 3<<20)
	if _, err := c.Do("ZADD", "huge", 1, huge, 1, "a", 1, "zz"); err != nil {
		t.Fatal(err)
	}
	r2, err := s.OpenRankingLimit(ctx, "huge", 10, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	var sizes []int
	for {
		es, err := r2.Next()
		if err != nil {
			t.Fatal(err)
		}
		if es == nil {
			break
		}
		for _, e := range es {
			sizes = append(sizes, len(e.Member))
		}
		sizes = append(sizes, -1)
	}
	if fmt.Sprint(sizes) != fmt.Sprint([]int{1, -1, 3 << 20, -1, 2, -1}) {
		t.Errorf("member sizes by chunk (-1 ends a chunk) = %v", sizes)
	}
}

// TestScanFirstSeenBoundedByBytes delivers 200 new values of 256 KB in
// chunks of at most about ReplyBytes, each exactly once.
func TestScanFirstSeenBoundedByBytes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	c := srv.Conn(1)
	const day = "20261125"
	var first, counts []stats.Entry
	for i := 0; i < 200; i++ {
		v := bigValue(i, 256<<10)
		first = append(first, stats.Entry{Member: v, Count: 20261125})
		counts = append(counts, stats.Entry{Member: v, Count: int64(i + 1)})
	}
	zadd(t, c, stats.FirstSeenKey(stats.KindUser), first)
	zadd(t, c, stats.StatsKey(day, stats.KindUser), counts)
	seen := map[string]int64{}
	err := s.ScanFirstSeen(context.Background(), stats.KindUser, day, 4000, func(es []stats.Entry) error {
		if n := chunkBytes(es); n > stats.ReplyBytes && len(es) > 1 {
			t.Errorf("chunk of %d values holds %d bytes", len(es), n)
		}
		for _, e := range es {
			if _, dup := seen[e.Member]; dup {
				t.Errorf("value %.10q delivered twice", e.Member)
			}
			seen[e.Member] = e.Count
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 200 {
		t.Fatalf("%d values delivered, want 200", len(seen))
	}
	for i := 0; i < 200; i++ {
		if n := seen[bigValue(i, 256<<10)]; n != int64(i+1) {
			t.Fatalf("value %d counted %d, want %d", i, n, i+1)
		}
	}
}

// TestSummarizeWithoutTotals sums a ranking that another tool wrote
// without totals, group by group.
func TestSummarizeWithoutTotals(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	c := srv.Conn(1)
	key := stats.StatsKey("2026", stats.KindSrc)
	var want int64
	var es []stats.Entry
	for i := 0; i < 3000; i++ {
		n := int64(i%13 + 1)
		if i == 7 {
			n = 1 << 40
		}
		want += n
		es = append(es, stats.Entry{Member: fmt.Sprintf("192.0.2.%d/%d", i%256, i), Count: n})
	}
	zadd(t, c, key, es)
	sum, err := s.Summarize(context.Background(), "2026", stats.KindSrc)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != want || sum.Distinct != 3000 {
		t.Errorf("Summarize = %+v, want total %d, distinct 3000", sum, want)
	}
}
