package e2e

import (
	"flag"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

var (
	multiKills = flag.Int("multi.kills", 12, "SIGKILLs among the three daemons of TestThreeDaemonsOnOneQueue")
	multiLines = flag.Int("multi.lines", 9000, "lines pushed in TestThreeDaemonsOnOneQueue")
)

// member is one of the daemons on the queue, in its own working directory,
// and every run of it (a SIGKILL ends one, a restart begins the next).
type member struct {
	dir  string
	runs []*memberRun
}

type memberRun struct {
	p      *proc
	killed time.Time // zero for a run stopped with SIGTERM
}

func (e *env) startIn(dir string) *proc {
	e.t.Helper()
	cmd := exec.Command(binary, "-c", e.conf)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	must(e.t, cmd.Start())
	p := &proc{cmd: cmd, out: out, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	e.t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// TestThreeDaemonsOnOneQueue runs three daemons on one queue and one
// counting Redis (SPEC §14), each in its own working directory, and kills
// them with SIGKILL at random while lines flow, restarting each killed one.
// In the end every statistic, the bookkeeping and the attempt store must
// equal what one clean run produces; and the output must have been
// compiled by one daemon at a time: the compile lease's holding periods,
// from each run's log, never overlap, and every compile falls inside its
// daemon's own holding.
func TestThreeDaemonsOnOneQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three daemons for about a minute; runs without -short")
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -chaos.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	e := newEnv(t, "compile_interval = \"1s\"\nbatch_size = 100\n")
	e.writeConf(2)
	lines := workload.Generate(workload.Options{
		Lines: *multiLines, Ref: time.Now(), Loc: time.UTC, Days: 10,
		Users: 200, Sources: 3000, Hosts: 10, Noise: 0.3, Hostile: true, Seed: seed,
	})
	lines = workload.CapValues(lines, config.DefaultMaxValueBytes)
	want := workload.Expect(lines, time.UTC)
	start := time.Now()

	members := make([]*member, 3)
	for i := range members {
		members[i] = &member{dir: t.TempDir()}
		members[i].runs = append(members[i].runs, &memberRun{p: e.startIn(members[i].dir)})
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A steady flow of small pushes over the kill phase, so that a
		// kill often finds its daemon in the middle of a batch.
		const per = 30
		pause := time.Duration(*multiKills) * 2800 * time.Millisecond / time.Duration(len(lines)/per+1)
		pushRng := rand.New(rand.NewPCG(seed+1, seed))
		for i := 0; i < len(lines); i += per {
			e.push(lines[i:min(i+per, len(lines))])
			time.Sleep(pause/2 + time.Duration(pushRng.Int64N(int64(pause))))
		}
	}()
	for k := 0; k < *multiKills; k++ {
		time.Sleep(time.Duration(400+rng.IntN(1600)) * time.Millisecond)
		m := members[rng.IntN(len(members))]
		if k%4 == 1 {
			// The compile lease's holder, so that the lease moves.
			holder, _ := redis.String(e.cnt.Conn(0).Do("GET", stats.CompileLeaseKey(queueUUID)))
			for _, o := range members {
				if holder != "" && strings.Contains(o.runs[len(o.runs)-1].p.out.String(), "lease_holder="+holder) {
					m = o
				}
			}
		}
		r := m.runs[len(m.runs)-1]
		r.killed = time.Now()
		must(t, r.p.cmd.Process.Kill())
		<-r.p.exited
		// Mostly soon (the restart takes its own member back and finishes
		// its batch itself); every fourth time after the others have
		// looked for its batches (every 5 s) and finished them.
		wait := time.Duration(rng.IntN(2500)) * time.Millisecond
		if k%4 == 3 {
			wait = 7 * time.Second
		}
		time.Sleep(wait)
		m.runs = append(m.runs, &memberRun{p: e.startIn(m.dir)})
	}
	wg.Wait()
	e.waitDrained(want.Attempts, 90*time.Second)
	// -F refuses while any daemon of the queue runs, whichever member it is.
	members[0].runs[len(members[0].runs)-1].p.stop(t, 30*time.Second)
	if code, out := e.run("-F"); code == 0 || !strings.Contains(out, "analyzer-d4-log is counting ("+queueUUID+")") {
		t.Fatalf("-F under two running daemons exited %d:\n%s", code, tail(out))
	}
	for _, m := range members[1:] {
		m.runs[len(m.runs)-1].p.stop(t, 30*time.Second)
	}
	takeovers, tookOver := 0, 0
	for _, m := range members {
		for _, r := range m.runs {
			takeovers += strings.Count(r.p.out.String(), "finishing a batch of a daemon that died")
			tookOver += strings.Count(r.p.out.String(), "a daemon on this queue died")
		}
	}
	t.Logf("three daemons: %d SIGKILLs, %d dead members taken over, %d batches of dead daemons finished, %d lines (%d attempts), %.1f s",
		*multiKills, tookOver, takeovers, len(lines), want.Attempts, time.Since(start).Seconds())

	checkStats(t, e.cnt.Conn(1), want)
	checkBookkeeping(t, e.cnt.Conn(1), want)
	checkAttemptStore(t, e.cnt.Conn(0), lines)
	checkOneCompilerAtATime(t, members)
}

// holding is one period a run held the compile lease.
type holding struct {
	from, to time.Time
	who      string
}

// checkOneCompilerAtATime reads, from each run's log, when it took and
// gave up the compile lease (a SIGKILL ends a holding at the kill) and when
// it compiled, and fails on two holdings that overlap, on a compile outside
// its run's holdings, and when nothing was compiled at all.
func checkOneCompilerAtATime(t *testing.T, members []*member) {
	t.Helper()
	var all []holding
	compiles := 0
	for i, m := range members {
		for j, r := range m.runs {
			who := filepath.Base(m.dir) + " run " + string(rune('0'+j%10))
			var mine []holding
			var open *holding
			for _, line := range strings.Split(r.p.out.String(), "\n") {
				at, ok := logTime(line)
				if !ok {
					continue
				}
				switch {
				case strings.Contains(line, `msg="compile lease taken`):
					if open != nil {
						t.Fatalf("daemon %d %s took the lease twice without losing it:\n%s", i, who, line)
					}
					open = &holding{from: at, who: who}
				case strings.Contains(line, `msg="compile lease released`), strings.Contains(line, `msg="compile lease lost`):
					if open == nil {
						t.Fatalf("daemon %d %s gave up a lease it did not hold:\n%s", i, who, line)
					}
					open.to = at
					mine = append(mine, *open)
					open = nil
				case strings.Contains(line, "msg=compiled "):
					compiles++
					inside := open != nil && !at.Before(open.from)
					for _, h := range mine {
						inside = inside || (!at.Before(h.from) && !at.After(h.to))
					}
					if !inside {
						t.Fatalf("daemon %d %s compiled without the compile lease:\n%s", i, who, line)
					}
				}
			}
			if open != nil {
				if r.killed.IsZero() {
					t.Fatalf("daemon %d %s stopped without releasing the compile lease", i, who)
				}
				open.to = r.killed
				mine = append(mine, *open)
			}
			all = append(all, mine...)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].from.Before(all[j].from) })
	for i := 1; i < len(all); i++ {
		if all[i].from.Before(all[i-1].to) {
			t.Fatalf("two daemons held the compile lease at once: %s from %s to %s, %s from %s",
				all[i-1].who, all[i-1].from.Format(time.StampMilli), all[i-1].to.Format(time.StampMilli),
				all[i].who, all[i].from.Format(time.StampMilli))
		}
	}
	if len(all) < 2 || compiles == 0 {
		t.Fatalf("the compile lease never moved, or nothing was compiled: %d holdings, %d compiles", len(all), compiles)
	}
	t.Logf("compile lease: %d holdings, %d compiles, never two at once", len(all), compiles)
}

// logTime is the time= field of a log line.
func logTime(line string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(line, "time=")
	if !ok {
		return time.Time{}, false
	}
	if i := strings.IndexByte(rest, ' '); i >= 0 {
		rest = rest[:i]
	}
	at, err := time.Parse(time.RFC3339Nano, rest)
	return at, err == nil
}
