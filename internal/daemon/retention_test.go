package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// With retain_days set, the daemon that holds the lock prunes the days
// before the window at start (their charts drawn by the previous run's
// final compile): months and years stay exact, pruned days' rankings are
// gone, and -F gives the same statistics back from the archive.
func TestDaemonPrunesOldDaysAndFlushKeepsMonths(t *testing.T) {
	h := newHarnessConfig(t, nil, func(c *config.Config) {
		c.RetainDays = 30
		c.BlocklistDays = 7
	})
	ls := workload.Generate(workload.Options{Lines: 1500, Ref: time.Now(), Loc: time.UTC, Days: 120, Seed: 17})
	want := workload.Expect(ls, time.UTC)
	h.push(ls)
	h.run()
	h.waitCounted(want.Attempts, 30*time.Second)
	h.stop() // its final compile draws every day

	h.run()
	h.waitLog("pruning: pass done")
	h.stop()
	cutoff := h.d.pruner.Cutoff(time.Now())
	pruned := 0
	for k := range want.Sets {
		if period, _, _ := strings.Cut(k, ":"); len(period) == 8 && period < cutoff {
			delete(want.Sets, k)
			pruned++
		}
	}
	if pruned == 0 {
		t.Fatal("no day before the window: the test does not test pruning")
	}
	h.check(want)
	if n := testutil.ToFloat64(h.d.pruner.Metrics.DaysPruned); n == 0 {
		t.Error("retention_days_pruned_total is 0")
	}
	if n := testutil.ToFloat64(h.d.pruner.Metrics.ArchiveBytes); n == 0 {
		t.Error("retention_archive_bytes is 0")
	}
	if n := testutil.ToFloat64(h.d.pruner.Metrics.UsedMemory); n == 0 {
		t.Error("counting_redis_used_memory_bytes is 0")
	}

	if err := h.d.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.check(want)
}
