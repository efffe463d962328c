package compile

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/D4-project/analyzer-d4-log/internal/render"
)

// TestSpillRanksLikeASort ranks lists of every size through spills of
// several budgets, from all in memory to a run per entry with merges of
// merges, and compares with a plain sort. No run file is left behind.
func TestSpillRanksLikeASort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 7, 100, 3000} {
		for _, budget := range []int{1, 500, 20000, 1 << 30} {
			var want []render.Entry
			for i := 0; i < n; i++ {
				v := fmt.Sprintf("%x", rng.Uint64()%uint64(n+1))
				if i%17 == 0 {
					v += strings.Repeat("\x00\xff", rng.IntN(200))
				}
				want = append(want, render.Entry{Value: v, Count: int64(rng.IntN(5))})
			}
			dir := t.TempDir()
			sp := newSpill(dir, budget)
			for _, e := range want {
				if err := sp.add(e); err != nil {
					t.Fatal(err)
				}
			}
			if len(sp.runs) > maxRuns {
				t.Errorf("n %d budget %d: %d runs wait, more than %d", n, budget, len(sp.runs), maxRuns)
			}
			next, err := sp.ranked()
			if err != nil {
				t.Fatal(err)
			}
			var got []render.Entry
			for {
				chunk, err := next()
				if err != nil {
					t.Fatal(err)
				}
				if len(chunk) == 0 {
					break
				}
				got = append(got, chunk...)
			}
			sp.close()
			slices.SortStableFunc(want, rankedCmp)
			if !slices.Equal(got, want) {
				t.Fatalf("n %d budget %d: ranked %d entries differently from a sort", n, budget, len(got))
			}
			if sp.n != int64(n) {
				t.Errorf("n %d: counted %d", n, sp.n)
			}
			left, err := os.ReadDir(dir)
			if err != nil || len(left) != 0 {
				t.Errorf("n %d budget %d: %d files left (%v)", n, budget, len(left), err)
			}
		}
	}
}
