package stats

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// Work counts what the script will write: a member of a day once, a
// tuple of a day once, an attempt repeated not at all.
func TestWorkCountsDistinctMembersAndTuples(t *testing.T) {
	b := NewBatch()
	day := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	for h := 0; h < 5; h++ {
		b.Add(day, []byte(fmt.Sprint("h", h)), []byte("admin"), []byte("192.0.2.1"))
	}
	// 7 members (admin, the source, 5 hosts) × 3, and 5 tuples × 3
	// kinds.
	if got, want := b.Work(), 7*3+5*3; got != want {
		t.Fatalf("work %d, want %d", got, want)
	}
	b.Add(day, []byte("h0"), []byte("admin"), []byte("192.0.2.1"))
	if got := b.Work(); got != 36 {
		t.Fatalf("a repeated attempt changed the work to %d", got)
	}
	b.Add(day.AddDate(0, 0, 1), []byte("h0"), []byte("admin"), []byte("192.0.2.1"))
	if got, want := b.Work(), 36+3*3+3; got != want || b.Days() != 2 {
		t.Fatalf("work %d over %d days, want %d over 2", got, b.Days(), want)
	}
	b.Reset()
	if b.Work() != 0 || b.Days() != 0 {
		t.Fatalf("after Reset: work %d, days %d", b.Work(), b.Days())
	}
}

// Work is an upper bound of the writes the plan holds (increments and
// drill-down appends), whatever the spread of the attempts over days.
func TestWorkBoundsThePlansWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, days := range []int{1, 3, 40, 400} {
		b := NewBatch()
		start := time.Date(2025, 12, 20, 0, 0, 0, 0, time.UTC)
		for i := 0; i < 3000; i++ {
			at := start.Add(time.Duration(r.IntN(days*24)) * time.Hour)
			b.Add(at, []byte(fmt.Sprint("h", r.IntN(7))), []byte(fmt.Sprint("u", r.IntN(300))), []byte(fmt.Sprint("s", r.IntN(900))))
		}
		p := b.planWith(true, nil)
		writes := len(p.incrs) + len(p.links)
		if b.Work() < writes {
			t.Errorf("%d days: work %d under the plan's %d writes", days, b.Work(), writes)
		}
		// Not far above either, or batches would be cut for nothing.
		if b.Work() > 3*writes {
			t.Errorf("%d days: work %d over three times the plan's %d writes", days, b.Work(), writes)
		}
	}
}
