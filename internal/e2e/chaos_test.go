package e2e

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

var (
	chaosKills      = flag.Int("chaos.kills", 50, "SIGKILLs of the daemon in TestChaos (200 for the long run)")
	chaosLines      = flag.Int("chaos.lines", 30000, "lines pushed in TestChaos")
	chaosRedisKills = flag.Int("chaos.rediskills", 3, "SIGKILLs of the counting Redis in TestChaos")
	chaosSeed       = flag.Uint64("chaos.seed", 0, "seed of TestChaos (0: from the clock, printed)")
)

// TestChaos proves exactly-once counting: the daemon is killed with
// SIGKILL at random instants while lines keep arriving, the counting Redis
// is killed and restarted under it, the D4 Redis is restarted once; in the
// end every statistic, oldest, newest, the DB 0 attempt store and the
// drill-down data (its keys, and the API's top, drill and series answers)
// must equal what one clean run produces.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the daemon and Redis for minutes; runs without -short")
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos seed %d (rerun with -chaos.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	// A short compile interval puts compiles inside the kill window too.
	e := newEnv(t, "compile_interval = \"1s\"\nbatch_size = 250\n")
	lines := workload.Generate(workload.Options{
		Lines: *chaosLines, Ref: time.Now(), Loc: time.UTC, Days: 60,
		Users: 300, Sources: 5000, Hosts: 20, Noise: 0.3, Hostile: true, Seed: seed,
	})
	// The daemon runs with the default max_value_bytes: long values are
	// stored capped.
	lines = workload.CapValues(lines, config.DefaultMaxValueBytes)
	want := workload.Expect(lines, time.UTC)
	wantDrill := expectDrill(lines)
	// Every daemon serves the API: its web server is in the kill window
	// too, and the last one answers the drill-down questions.
	base := e.serveHTTP()
	start := time.Now()

	// The pusher sends waves while the daemon lives and dies; the D4
	// restart holds d4mu so that no wave is half sent when it goes down.
	var d4mu sync.Mutex
	waves := *chaosKills + 1
	pushed := make(chan struct{})
	pushRng := rand.New(rand.NewPCG(seed+1, seed))
	go func() {
		defer close(pushed)
		per := (len(lines) + waves - 1) / waves
		for i := 0; i < len(lines); i += per {
			d4mu.Lock()
			e.push(lines[i:min(i+per, len(lines))])
			d4mu.Unlock()
			time.Sleep(time.Duration(300+pushRng.IntN(700)) * time.Millisecond)
		}
	}()

	redisKillAt := map[int]bool{}
	for len(redisKillAt) < min(*chaosRedisKills, *chaosKills) {
		redisKillAt[1+rng.IntN(*chaosKills)] = true
	}
	d4RestartAt := rng.IntN(*chaosKills)
	var kills, redisKills, d4Restarts int
	for i := 0; i < *chaosKills; i++ {
		p := e.start()
		// Uniform over the daemon's cycle: start-up and reconciliation,
		// blocked on the pop, mid-batch, mid-transaction, mid-compile.
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		if redisKillAt[i] {
			e.cnt.Kill()
			redisKills++
			time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
			e.cnt.Restart()
			time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
		}
		if i == d4RestartAt {
			d4mu.Lock()
			e.d4.Shutdown()
			time.Sleep(200 * time.Millisecond)
			e.d4.Restart()
			d4mu.Unlock()
			d4Restarts++
			time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
		}
		must(t, p.cmd.Process.Kill())
		<-p.exited
		kills++
	}
	<-pushed
	final := e.start()
	time.Sleep(500 * time.Millisecond)
	e.waitDrained(want.Attempts, 3*time.Minute)
	waitAPI(t, base, 30*time.Second)
	checkAPI(t, base, wantDrill, rng, 10)
	final.stop(t, 30*time.Second)
	t.Logf("chaos: %d daemon SIGKILLs, %d counting-Redis SIGKILLs, %d D4 restarts, %d lines (%d attempts), %.1f s",
		kills, redisKills, d4Restarts, len(lines), want.Attempts, time.Since(start).Seconds())

	checkStats(t, e.cnt.Conn(1), want)
	checkBookkeeping(t, e.cnt.Conn(1), want)
	checkAttemptStore(t, e.cnt.Conn(0), lines)
	checkDrillKeys(t, e.cnt.Conn(1), wantDrill)
}

// checkBookkeeping compares the per-period totals and the first-seen days
// with the independent computation: they ride in the same transaction as
// the statistics and must be just as exact.
func checkBookkeeping(t *testing.T, c redis.Conn, want workload.Expected) {
	t.Helper()
	var diffs []string
	got, err := redis.Int64Map(c.Do("HGETALL", stats.TotalsKey))
	must(t, err)
	wantTotals := want.Totals()
	for p, n := range wantTotals {
		if got[p] != n {
			diffs = append(diffs, fmt.Sprintf("%s %s: %d, want %d (%+d)", stats.TotalsKey, p, got[p], n, got[p]-n))
		}
	}
	for p, n := range got {
		if _, ok := wantTotals[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s %s: %d, want none", stats.TotalsKey, p, n))
		}
	}
	for _, kind := range stats.Kinds() {
		first, err := redis.Int64Map(c.Do("ZRANGE", stats.FirstSeenKey(kind), 0, -1, "WITHSCORES"))
		must(t, err)
		wantFirst := want.FirstSeen(kind)
		if len(first) != len(wantFirst) {
			diffs = append(diffs, fmt.Sprintf("%s: %d values, want %d", stats.FirstSeenKey(kind), len(first), len(wantFirst)))
		}
		for v, day := range wantFirst {
			if fmt.Sprint(first[v]) != day {
				diffs = append(diffs, fmt.Sprintf("%s %q: first seen %d, want %s", stats.FirstSeenKey(kind), v, first[v], day))
			}
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = append(diffs[:30], fmt.Sprintf("… and %d more", len(diffs)-30))
		}
		t.Fatalf("bookkeeping differs:\n%s", strings.Join(diffs, "\n"))
	}
}

// checkAttemptStore compares the DB 0 records with the counting lines, as
// multisets, and reports what is over or under.
func checkAttemptStore(t *testing.T, c redis.Conn, lines []workload.Line) {
	t.Helper()
	want := map[string]int{}
	for _, l := range lines {
		if l.Counts {
			want[fmt.Sprintf("%d|%q|%q|%q", l.Time.Unix(), l.Host, l.User, l.Src)]++
		}
	}
	got := map[string]int{}
	keys, err := redis.Strings(c.Do("KEYS", stats.AttemptsPattern))
	must(t, err)
	for _, k := range keys {
		elems, err := redis.ByteSlices(c.Do("LRANGE", k, 0, -1))
		must(t, err)
		for _, el := range elems {
			must(t, stats.DecodeRecords(el, func(a stats.Attempt) error {
				got[fmt.Sprintf("%d|%q|%q|%q", a.Unix, a.Host, a.User, a.Src)]++
				return nil
			}))
		}
	}
	var diffs []string
	for k, n := range want {
		if got[k] != n {
			diffs = append(diffs, fmt.Sprintf("%s: stored %d, want %d", k, got[k], n))
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: stored %d, want 0", k, n))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 30 {
			diffs = append(diffs[:30], fmt.Sprintf("… and %d more", len(diffs)-30))
		}
		t.Fatalf("DB 0 attempt store differs:\n%s", strings.Join(diffs, "\n"))
	}
}
