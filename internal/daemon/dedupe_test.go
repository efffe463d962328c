package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// distinct keeps the first of identical lines (the generator may, rarely,
// repeat one): the expected counts are those of the distinct lines.
func distinct(ls []workload.Line) []workload.Line {
	seen := map[string]bool{}
	var out []workload.Line
	for _, l := range ls {
		k := string(bytes.TrimSuffix(l.Raw, []byte("\r")))
		if !seen[k] {
			seen[k] = true
			out = append(out, l)
		}
	}
	return out
}

// recent are distinct lines of the last few days, all within a week.
func recent(n int, seed uint64) []workload.Line {
	return distinct(workload.Generate(workload.Options{Lines: n, Ref: time.Now(), Loc: time.UTC, Days: 4,
		Users: 30, Sources: 200, Hosts: 5, Noise: 0, Seed: seed}))
}

// A restarted sensor resends its last lines (tail -n2000): nothing new is
// counted, and the resent lines are skipped as duplicate.
func TestResentBlockCountsNothingNew(t *testing.T) {
	h := newHarnessConfig(t, nil, func(c *config.Config) { c.DedupeDays = 7 })
	first := recent(600, 21)
	h.run()
	h.push(first)
	h.waitCounted(len(first), 20*time.Second)

	more := recent(40, 22)
	resend := append(append([]workload.Line(nil), first[len(first)-200:]...), more...)
	h.push(resend)
	all := append(append([]workload.Line(nil), first...), more...)
	want := workload.Expect(distinct(all), time.UTC)
	h.waitCounted(want.Attempts, 20*time.Second)
	dup := h.d.metrics.Skipped.WithLabelValues("duplicate")
	waitFor(t, 20*time.Second, "skipped{reason=duplicate} to reach 200", func() bool { return testutil.ToFloat64(dup) == 200 })
	h.stop()
	h.check(want)
	if n := int(testutil.ToFloat64(h.d.metrics.Counted)); n != want.Attempts {
		t.Fatalf("counted metric %d; want %d", n, want.Attempts)
	}
}

// dedupe_days = 0 counts a resent line again, as the original did.
func TestDedupeOffCountsResentLinesAgain(t *testing.T) {
	h := newHarnessConfig(t, nil, func(c *config.Config) { c.DedupeDays = 0 })
	ls := recent(200, 23)
	h.run()
	h.push(ls)
	h.push(ls)
	h.waitCounted(2*len(ls), 20*time.Second)
	h.stop()
	if got := testutil.ToFloat64(h.d.metrics.Skipped.WithLabelValues("duplicate")); got != 0 {
		t.Fatalf("skipped{reason=duplicate} = %v with dedupe_days = 0; want 0", got)
	}
	if keys, _ := redis.Strings(h.cnt.Conn(0).Do("KEYS", stats.SeenPattern)); len(keys) != 0 {
		t.Fatalf("dedupe_days = 0 remembered lines: %v", keys)
	}
}

// -f twice over the same recent file adds nothing the second time and
// says duplicates=N; lines older than the window count again.
func TestSameFileTwiceCountsRecentLinesOnce(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{AOF: true})
	now := time.Now()
	fresh := recent(500, 24)
	old := distinct(workload.Generate(workload.Options{Lines: 50, Ref: now.AddDate(0, 0, -12), Loc: time.UTC, Days: 2,
		Users: 5, Sources: 20, Hosts: 2, Seed: 25}))
	var file bytes.Buffer
	for _, l := range append(append([]workload.Line(nil), old...), fresh...) {
		file.Write(l.Raw)
		file.WriteString("\n")
	}
	run := func() string {
		log := &testlog.Buffer{}
		cfg := &config.Config{
			D4: config.RedisAddr{Addr: "127.0.0.1:1", DB: 2}, Queue: queue,
			Parsers: cnt.Addr(), Pool: 2, Location: time.UTC, CompileInterval: time.Hour,
			OutputDir: t.TempDir(), ChartTop: 10, BatchSize: 50, MaxLineBytes: 1 << 20, DedupeDays: 7,
		}
		d := New(Options{Config: cfg, Log: slog.New(slog.NewTextHandler(io.MultiWriter(log), nil)), BackoffMax: 100 * time.Millisecond})
		defer d.Close()
		if err := d.countFile(context.Background(), "auth.log", bytes.NewReader(file.Bytes()), now); err != nil {
			t.Fatal(err)
		}
		return log.String()
	}
	nOld, nFresh := workload.Expect(old, time.UTC).Attempts, workload.Expect(fresh, time.UTC).Attempts
	summary := func(counted, dups int) *regexp.Regexp {
		return regexp.MustCompile(fmt.Sprintf(`msg="file done" .* counted=%d duplicates=%d `, counted, dups))
	}
	if log := run(); !summary(nOld+nFresh, 0).MatchString(log) {
		t.Fatalf("first run: want counted=%d duplicates=0 in the file summary; log:\n%s", nOld+nFresh, log)
	}
	// Only the lines older than the window count again.
	if log := run(); !summary(nOld, nFresh).MatchString(log) {
		t.Fatalf("second run: want counted=%d duplicates=%d in the file summary; log:\n%s", nOld, nFresh, log)
	}
	want := workload.Expect(append(append(append([]workload.Line(nil), old...), old...), fresh...), time.UTC)
	c := cnt.Conn(1)
	if n := yearTotals(c); n != want.Attempts {
		t.Fatalf("counted %d attempts; want %d (the recent lines once, the old ones twice)", n, want.Attempts)
	}
}
