package compile

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/render"
)

// TestStatusSaysTheNewestLineCounted: status.json, which the pages' "counted
// up to" reads, gives the stamp of the newest line the counting Redis
// holds, whatever order the lines were counted in and however long ago
// this daemon counted, beside the compile time and this daemon's own last
// count.
func TestStatusSaysTheNewestLineCounted(t *testing.T) {
	c, s := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	newest := now.Add(-90 * time.Minute)
	for _, d := range []time.Duration{3 * time.Hour, 90 * time.Minute, 26 * time.Hour, 2 * time.Hour} {
		add(t, s, now.Add(-d).Format(time.RFC3339), "h", "root", "192.0.2.1")
	}
	clock := clockwork.NewFakeClockAt(now)
	counted := now.Add(-5 * time.Second)
	l := &Loop{Compiler: c, Interval: time.Minute, Clock: clock, Log: slog.New(slog.DiscardHandler),
		Metrics: metrics.New(prometheus.NewRegistry(), "test", nil), LastCounted: func() time.Time { return counted }, Location: time.UTC}
	if err := l.Once(ctx, false); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, render.StatusFile))
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"newest_line":  newest.Format(time.RFC3339),
		"compiled_at":  now.Format(time.RFC3339),
		"last_counted": counted.Format(time.RFC3339),
	} {
		if st[k] != want {
			t.Errorf("status.json %s = %v, want %s\n%s", k, st[k], want, b)
		}
	}
}
