package stats_test

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// TestReadSetsReadsEveryMemberOnce fills sets whose members score below
// 1, exactly 1 (the run read without scores) and above, in runs that span
// several chunks, with hostile bytes and a set holding members longer than
// the cap (read on with the byte-bounded script), some keys read through a
// copy: ReadSets must give every member of every key once, with its score,
// and the sizes' sum first.
func TestReadSetsReadsEveryMemberOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	s.MaxValueBytes = 1024 // chunks of 1024 ranks
	c := srv.Conn(1)
	r := rand.New(rand.NewSource(7))
	want := map[string]map[string]int64{}
	var keys []string
	for k := 0; k < 6; k++ {
		key := fmt.Sprintf("20260%d01:statssrc", k+1)
		keys = append(keys, key)
		want[key] = map[string]int64{}
		n := []int{0, 1, 5000, 9000, 300, 12000}[k]
		var es []stats.Entry
		for i := 0; i < n; i++ {
			m := fmt.Sprintf("m%d-%d", k, i)
			switch i % 97 {
			case 3:
				m = "\xff\x00:" + m
			case 5:
				m = ""
				if k == 5 && i == 5 {
					m = strings.Repeat("L", 3000) + m // over the cap
				}
			}
			if _, dup := want[key][m]; dup {
				continue
			}
			score := int64(1)
			switch r.Intn(5) {
			case 0:
				score = int64(2 + r.Intn(1000))
			case 1:
				score = -int64(r.Intn(3)) // 0 and below: foreign or hand-made
			}
			if len(m) > 1024 {
				score = -5 // in the first run read: the rest of the set follows the bounded path
			}
			es = append(es, stats.Entry{Member: m, Count: score})
			want[key][m] = score
		}
		if k == 5 {
			for i := 0; i < 40; i++ {
				m := fmt.Sprintf("%s-%d", strings.Repeat("B", 1100), i)
				es = append(es, stats.Entry{Member: m, Count: int64(1 + i%3)})
				want[key][m] = int64(1 + i%3)
			}
		}
		for i := 0; i < len(es); i += 1000 {
			zadd(t, c, key, es[i:min(i+1000, len(es))])
		}
	}
	keys = append(keys, "missing:statssrc")
	var sized int64 = -1
	got := map[string]map[string]int64{}
	live := func(k string) bool { return strings.HasPrefix(k, "202603") || strings.HasPrefix(k, "202605") }
	err := s.ReadSets(context.Background(), keys, live, func(total int64) {
		if len(got) > 0 {
			t.Error("size told after members")
		}
		sized = total
	}, func(key string, members [][]byte, counts []int64) error {
		if len(members) != len(counts) {
			t.Fatalf("%d members, %d counts", len(members), len(counts))
		}
		if got[key] == nil {
			got[key] = map[string]int64{}
		}
		for i, m := range members {
			if _, dup := got[key][string(m)]; dup {
				t.Errorf("%s: %q read twice", key, m)
			}
			got[key][string(m)] = counts[i]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, key := range keys {
		total += int64(len(want[key]))
		if len(got[key]) != len(want[key]) {
			t.Errorf("%s: %d members read, want %d", key, len(got[key]), len(want[key]))
		}
		for m, n := range want[key] {
			if got[key][m] != n {
				t.Errorf("%s: %q scored %d, want %d", key, m, got[key][m], n)
			}
		}
	}
	if sized != total {
		t.Errorf("size told %d, want %d", sized, total)
	}
	// The copies of live keys are gone.
	left, err := c.Do("KEYS", "alog:snapshot:*")
	if err != nil {
		t.Fatal(err)
	}
	if l := left.([]interface{}); len(l) != 0 {
		t.Errorf("%d snapshots left", len(l))
	}
}
