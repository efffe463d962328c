package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/retention"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// TestSIGKILLWhilePruning backfills 120 days with -f, sets retain_days,
// SIGKILLs the built binary again and again while it prunes the backlog
// (each kill when the archive has grown by a few days, so every kill lands
// inside the pass), then lets a last start finish. It then backfills more
// lines, into pruned days and retained ones, which must count into months
// and years without making day keys of pruned days. Every month, year and
// retained day must equal an independent computation, pruned days must
// have no day key left, and each archive file must hold exactly its day's
// attempts; -F must give the same statistics back.
func TestSIGKILLWhilePruning(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the daemon while it prunes a backlog of months; runs without -short")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	began := time.Now()
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	const keep = 30
	e := newEnv(t, "")
	now := time.Now().UTC()
	cutoff := now.AddDate(0, 0, -(keep - 1)).Format("20060102")
	// The days on either side of the cutoff are left out, so that a test
	// that runs across midnight checks the same window it pruned.
	edge := map[string]bool{cutoff: true, now.AddDate(0, 0, -keep).Format("20060102"): true,
		now.AddDate(0, 0, -(keep - 2)).Format("20060102"): true}
	var lines []workload.Line
	for _, l := range workload.Generate(workload.Options{Lines: 6000, Ref: now, Loc: time.UTC, Days: 120,
		Users: 80, Sources: 2000, Hosts: 6, Seed: seed}) {
		if !edge[l.Time.Format("20060102")] {
			lines = append(lines, l)
		}
	}
	// A tenth of the lines is held back for the backfill after pruning.
	rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	later, first := lines[:len(lines)/10], lines[len(lines)/10:]
	dayOf := func(l workload.Line) string { return l.Time.UTC().Format("20060102") }

	// 1. The backlog, counted while retain_days is not set: every day has
	// its rankings and drill-down data, as on an installation that ran
	// for months before retention was turned on.
	path := filepath.Join(e.dir, "backlog.log")
	writeLines(t, path, first)
	if code, out := e.run("-f", path); code != 0 {
		t.Fatalf("-f exited %d:\n%s", code, tail(out))
	}
	e.toml = fmt.Sprintf("retain_days = %d\nmisp_days = 7\n", keep)
	e.writeConf(4)

	db0, db1 := e.cnt.Conn(0), e.cnt.Conn(1)
	archiveDir := filepath.Join(e.dir, retention.DirName)
	archive := &retention.Archive{Dir: archiveDir}
	archived := func() int {
		days, err := archive.Days()
		must(t, err)
		return len(days)
	}
	// leftover lists what pruning has still to do: stored attempts, lists
	// taken aside, markers and day keys of days before the cutoff.
	leftover := func() []string {
		var out []string
		for _, p := range []struct {
			c       redis.Conn
			pattern string
		}{{db0, stats.AttemptsPattern}, {db0, stats.ArchivingPattern}, {db0, stats.PruningPattern},
			{db1, "[0-9]*:stats*"}, {db1, stats.LinksPattern}} {
			keys, err := redis.Strings(p.c.Do("KEYS", p.pattern))
			must(t, err)
			for _, k := range keys {
				day, _, _ := stats.SplitStatsKey(k)
				if rest, ok := strings.CutPrefix(k, "alog:links:"); ok {
					day, _, _ = strings.Cut(rest, ":")
				}
				if rest, ok := strings.CutPrefix(k, "alog:attempts:"); ok {
					day = rest
				}
				if strings.HasPrefix(k, "alog:pruning:") || strings.HasPrefix(k, "alog:archiving:") ||
					(len(day) == 8 && day < cutoff) {
					out = append(out, k)
				}
			}
		}
		sort.Strings(out)
		return out
	}
	if len(leftover()) == 0 {
		t.Fatal("nothing to prune after the backlog: the test does not test pruning")
	}

	// 2. Kills while it prunes.
	kills := 0
	for kills < 6 {
		p := e.start()
		target := archived() + 2 + rng.IntN(25)
		done := false
		for !done {
			select {
			case err := <-p.exited:
				t.Fatalf("the daemon exited while pruning: %v\n%s", err, tail(p.out.String()))
			default:
			}
			switch {
			case archived() >= target:
				// A few round trips more, so that kills land at every
				// step, not only just after a rename.
				for i := rng.IntN(6); i > 0; i-- {
					_, _ = db0.Do("PING")
				}
				must(t, p.cmd.Process.Kill())
				<-p.exited
				kills++
				done = true
			case len(leftover()) == 0:
				p.stop(t, 30*time.Second)
				done = true
			default:
				time.Sleep(2 * time.Millisecond) // polling the condition above
			}
		}
		if done && len(leftover()) == 0 {
			break
		}
	}
	if kills < 3 {
		t.Fatalf("only %d kills landed inside the pass; the test did not exercise what it is for", kills)
	}
	waitPruned := func(what string) {
		t.Helper()
		p := e.start()
		for deadline := time.Now().Add(60 * time.Second); len(leftover()) > 0; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: pruning not finished within 60 s: %v\n%s", what, leftover()[:min(5, len(leftover()))], tail(p.out.String()))
			}
			time.Sleep(10 * time.Millisecond) // polling the condition above
		}
		p.stop(t, 30*time.Second)
	}
	waitPruned("after the kills")
	t.Logf("%d SIGKILLs while pruning, %d days archived, at %.1f s", kills, archived(), time.Since(began).Seconds())

	// 3. A backfill into pruned and retained days.
	path = filepath.Join(e.dir, "later.log")
	writeLines(t, path, later)
	if code, out := e.run("-f", path); code != 0 {
		t.Fatalf("-f exited %d:\n%s", code, tail(out))
	}
	for _, k := range leftover() {
		if !strings.HasPrefix(k, "alog:attempts:") {
			t.Errorf("the backfill into pruned days made %s", k)
		}
	}
	waitPruned("after the backfill")

	// 4. The checks, then -F and the checks again.
	want := workload.Expect(lines, time.UTC)
	retained := workload.Expected{Sets: map[string]map[string]int64{}, Oldest: want.Oldest, Newest: want.Newest, Attempts: want.Attempts}
	for k, v := range want.Sets {
		if period, _, _ := strings.Cut(k, ":"); len(period) != 8 || period >= cutoff {
			retained.Sets[k] = v
		}
	}
	check := func(when string) {
		t.Helper()
		checkStats(t, db1, retained)
		checkBookkeeping(t, db1, want)
		if left := leftover(); len(left) > 0 {
			t.Fatalf("%s: left of pruned days: %v", when, left[:min(10, len(left))])
		}
		checkArchiveFiles(t, archive, lines, cutoff)
		var kept []workload.Line
		for _, l := range lines {
			if dayOf(l) >= cutoff {
				kept = append(kept, l)
			}
		}
		checkAttemptStore(t, db0, kept)
	}
	check("after pruning")
	t.Logf("backfill into pruned days archived and checked at %.1f s", time.Since(began).Seconds())
	if code, out := e.run("-F"); code != 0 {
		t.Fatalf("-F exited %d:\n%s", code, tail(out))
	}
	check("after -F")
}

// checkArchiveFiles compares every archive file with the attempts of its
// day among lines, as multisets: exactly the days before cutoff that have
// attempts are archived.
func checkArchiveFiles(t *testing.T, archive *retention.Archive, lines []workload.Line, cutoff string) {
	t.Helper()
	want := map[string]map[string]int{}
	for _, l := range lines {
		day := l.Time.UTC().Format("20060102")
		if !l.Counts || day >= cutoff {
			continue
		}
		if want[day] == nil {
			want[day] = map[string]int{}
		}
		want[day][fmt.Sprintf("%d|%q|%q|%q", l.Time.Unix(), l.Host, l.User, l.Src)]++
	}
	days, err := archive.Days()
	must(t, err)
	if len(days) != len(want) {
		t.Errorf("%d days archived, want %d", len(days), len(want))
	}
	for _, day := range days {
		got := map[string]int{}
		err := archive.Read(context.Background(), day, -1, func(elem []byte) error {
			return stats.DecodeRecords(elem, func(a stats.Attempt) error {
				got[fmt.Sprintf("%d|%q|%q|%q", a.Unix, a.Host, a.User, a.Src)]++
				return nil
			})
		})
		must(t, err)
		if fmt.Sprint(got) != fmt.Sprint(want[day]) {
			t.Errorf("the archive of %s holds %d distinct attempts, not exactly the %d of the day", day, len(got), len(want[day]))
		}
	}
}
