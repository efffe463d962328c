package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/compile"
	"github.com/D4-project/analyzer-d4-log/internal/retention"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// The retention section (SPEC §12): three simulated years at a constant
// rate with retain_days = 30, through the packages the daemon runs (the
// store's counting script, the pruner, the compiler) in this process with
// a clock the bench moves, against the bench's counting Redis.
//
// Each year is loaded as an operator's backfill would be, then lived
// through: January to November are counted at the end of November a
// month per batch (as -f batches a file), so that every day before the
// window counts into its month and year only and goes to DB 0, and the
// pruner's pass archives it; November's days, inside the window, get
// their day rankings. December is counted day by day on its day, in
// batches of the daemon's size, with a pass mid-month and one at the end
// that prune November's days, day rankings and drill-down data. Before a
// pass the day charts are taken as drawn (see markDaysDrawn): drawing
// them costs the run minutes and moves nothing it measures.
//
// At the end of years 1 and 3 the bench measures the counting Redis's
// memory by key class (MEMORY USAGE of every key), and times the last
// three days of the year as probes: each day's attempts counted in
// batches of the daemon's size, then a compile (the day, its month and
// year, the overview), the best of three kept. A shared machine's load
// moves wall-clock figures by a factor of three from one minute to the
// next (an empty yardstick Redis measured at the same moment did not
// steady them), so the verdicts compare CPU time: the counting Redis's
// (INFO cpu) plus this process's, which runs the counting workers and
// the compiler. Wall-clock figures are shown beside them.
//
// The rate is a quarter of the example (5,000 attempts a day, not
// 20,000): with the drill-down data on, a live day costs the counting
// Redis some 7 sorted-set writes per attempt, and the run must fit in a
// few minutes on a shared two-core machine. The verdicts are ratios of
// year 3 to year 1 and the sizing figures are per attempt and per value,
// so the rate moves neither.
const (
	retentionKeep    = 30   // retain_days
	retentionRate    = 5000 // attempts a day
	retentionSources = 800  // distinct sources a day, a quarter of them new
	retentionUsers   = 600
	retentionHosts   = 20
	retentionYears   = 3
	retentionProbes  = 3 // last days of a year timed as probes
	retentionWorkers = 2
)

type retentionYear struct {
	Year              string  `json:"year"`
	UsedMemory        int64   `json:"used_memory"`
	DayBytes          int64   `json:"day_bytes"`           // day rankings + drill-down + stored attempts
	DayRankingBytes   int64   `json:"day_ranking_bytes"`   // YYYYMMDD:stats*
	DayRankingMembers int64   `json:"day_ranking_members"` // their members
	DrillBytes        int64   `json:"drill_bytes"`
	AttemptsBytes     int64   `json:"attempts_bytes"` // DB 0 lists
	DaysInRedis       int     `json:"days_in_redis"`
	PeriodBytes       int64   `json:"period_bytes"` // month and year rankings
	PeriodMembers     int64   `json:"period_members"`
	FirstSeenBytes    int64   `json:"first_seen_bytes"`
	FirstSeenMembers  int64   `json:"first_seen_members"`
	OtherBytes        int64   `json:"other_bytes"`
	CountLinesPerS    float64 `json:"count_lines_per_s"`
	CompileSeconds    float64 `json:"compile_seconds"`
	// The same probes in CPU time of the counting Redis and the bench
	// (counting workers and compiler), which the machine's load moves far
	// less than wall-clock time.
	CountLinesPerCPUS float64 `json:"count_lines_per_cpu_s"`
	CompileCPUSeconds float64 `json:"compile_cpu_seconds"`
	PruneDaysPerS     float64 `json:"prune_days_per_s"`
	ArchiveBytes      int64   `json:"archive_bytes"`
}

type retentionResult struct {
	RetainDays    int             `json:"retain_days"`
	AttemptsADay  int             `json:"attempts_a_day"`
	SourcesADay   int             `json:"sources_a_day"`
	Attempts      int64           `json:"attempts"`
	Seconds       float64         `json:"seconds"`
	Years         []retentionYear `json:"years"`
	DayGrowth     float64         `json:"day_growth"`
	PeriodGrowth  float64         `json:"period_growth"`
	CountRatio    float64         `json:"count_ratio"`
	CompileRatio  float64         `json:"compile_ratio"`
	Exact         bool            `json:"exact"`
	ExactProblems []string        `json:"exact_problems,omitempty"`
}

// retentionSim is the state of one simulated run: the generator and the
// bench's own counts.
type retentionSim struct {
	rng     *rand.Rand
	nextSrc int
	recent  []string // the new sources of the last 60 days, a ring
	ring    int

	totals map[string]int64 // period → attempts
	// The exact checks on a sample: every user count of one month of the
	// first and last year, every distinct source of those years, and
	// every attempt of one pruned day.
	sampleMonths map[string]map[string]int64
	yearSources  map[string]map[string]bool
	sampleDay    string
	sampleLines  []string
}

func (s *retentionSim) newSource() string {
	n := s.nextSrc
	s.nextSrc++
	return fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
}

// day makes the attempts of one day: a quarter of its sources never seen
// before, the rest drawn from the new sources of the last 60 days.
func (s *retentionSim) day(start time.Time) []simAttempt {
	const window = 60 * retentionSources / 4
	srcs := make([]string, 0, retentionSources)
	for i := 0; i < retentionSources/4; i++ {
		src := s.newSource()
		srcs = append(srcs, src)
		if len(s.recent) < window {
			s.recent = append(s.recent, src)
		} else {
			s.recent[s.ring] = src
			s.ring = (s.ring + 1) % window
		}
	}
	for len(srcs) < retentionSources {
		srcs = append(srcs, s.recent[s.rng.Intn(len(s.recent))])
	}
	p := stats.PeriodOf(start)
	out := make([]simAttempt, 0, retentionRate)
	users := s.sampleMonths[p.Month]
	ys := s.yearSources[p.Year]
	for i := 0; i < retentionRate; i++ {
		r := s.rng.Float64()
		user := "user" + strconv.Itoa(int(retentionUsers*r*r))
		src := srcs[s.rng.Intn(len(srcs))]
		host := "host" + strconv.Itoa(s.rng.Intn(retentionHosts))
		at := start.Add(time.Duration(s.rng.Intn(86400)) * time.Second)
		out = append(out, simAttempt{at, host, user, src})
		if users != nil {
			users[user]++
		}
		if ys != nil {
			ys[src] = true
		}
		if p.Day == s.sampleDay {
			s.sampleLines = append(s.sampleLines, fmt.Sprintf("%d %s %s %s", at.Unix(), host, user, src))
		}
	}
	s.totals[p.Month] += retentionRate
	s.totals[p.Year] += retentionRate
	return out
}

type simAttempt struct {
	at              time.Time
	host, user, src string
}

func (b *bench) retention(ctx context.Context) error {
	if err := b.flushAll(b.cnt); err != nil {
		return fmt.Errorf("flush counting redis: %w", err)
	}
	began := time.Now()
	pool := func(db int) *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) { return b.cnt.dial(db) }, MaxActive: 4, MaxIdle: 4, Wait: true}
	}
	store := &stats.Store{Stats: pool(stats.StatsDB), Attempts: pool(stats.AttemptsDB)}
	defer store.Stats.Close()
	defer store.Attempts.Close()
	first := time.Now().Year() - retentionYears - 1
	clock := clockwork.NewFakeClockAt(time.Date(first, 1, 1, 0, 0, 0, 0, time.UTC))
	setClock := func(t time.Time) { clock.Advance(t.Sub(clock.Now())) }
	dir := filepath.Join(b.tmp, "run-retention")
	archive := &retention.Archive{Dir: filepath.Join(dir, retention.DirName)}
	pruner := &retention.Pruner{Store: store, Archive: archive, Days: retentionKeep, Location: time.UTC, Clock: clock}
	store.Pruned = pruner.Pruned
	comp := &compile.Compiler{Store: store, Dir: filepath.Join(dir, "sshd"), ChartTop: 25, Parallel: 2,
		Log: slog.New(slog.DiscardHandler), Now: clock.Now}

	// cpu is the CPU time spent so far by the counting Redis and by this
	// process, which runs the counting workers and the compiler: what a
	// probe costs, whatever else the machine is doing.
	cpu := func() (float64, error) {
		rs, err := b.cnt.cpuSeconds()
		if err != nil {
			return 0, err
		}
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, fmt.Errorf("read the bench's cpu time: %w", err)
		}
		return rs + time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Seconds(), nil
	}

	last := strconv.Itoa(first + retentionYears - 1)
	sim := &retentionSim{rng: rand.New(rand.NewSource(17)), totals: map[string]int64{},
		sampleMonths: map[string]map[string]int64{strconv.Itoa(first) + "06": {}, last + "06": {}},
		yearSources:  map[string]map[string]bool{strconv.Itoa(first): {}, last: {}},
		sampleDay:    strconv.Itoa(first+1) + "0315"}
	r := &retentionResult{RetainDays: retentionKeep, AttemptsADay: retentionRate, SourcesADay: retentionSources}
	b.rep.Retention = r

	// count applies batches with retentionWorkers at once, as the daemon's
	// workers do.
	count := func(store *stats.Store, batches []*stats.Batch) error {
		ch := make(chan *stats.Batch)
		errs := make(chan error, retentionWorkers)
		var wg sync.WaitGroup
		for w := 0; w < retentionWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for bt := range ch {
					if err := store.Apply(ctx, bt, nil); err != nil {
						errs <- err
						for range ch {
						}
						return
					}
				}
			}()
		}
		for _, bt := range batches {
			ch <- bt
		}
		close(ch)
		wg.Wait()
		select {
		case err := <-errs:
			return fmt.Errorf("count: %w", err)
		default:
			return nil
		}
	}

	var prunedDays int
	var pruneTime time.Duration
	for y := first; y < first+retentionYears; y++ {
		b.say("retention: simulating year %d of %d (%s attempts a day, retain_days = %d)", y-first+1, retentionYears, thousands(retentionRate), retentionKeep)
		yr := retentionYear{Year: strconv.Itoa(y)}
		pass := func(at time.Time) error {
			setClock(at)
			t0 := time.Now()
			res, err := pruner.Pass(ctx)
			if err != nil {
				return fmt.Errorf("prune: %w", err)
			}
			pruneTime += time.Since(t0)
			prunedDays += len(res.Pruned)
			if len(res.Pending) > 0 {
				return fmt.Errorf("prune: days %v wait for a compile after a compile", res.Pending)
			}
			return nil
		}
		// January to November as a backfill at the end of November: a
		// month per batch, as -f batches a file; the days before the
		// window count into months and years only, November's into its
		// days too.
		setClock(time.Date(y, time.November, 30, 23, 0, 0, 0, time.UTC))
		for m := time.January; m <= time.November; m++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			var month []simAttempt
			for d := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC); d.Month() == m; d = d.AddDate(0, 0, 1) {
				month = append(month, sim.day(d)...)
			}
			if err := count(store, splitBatch(month, len(month))); err != nil {
				return err
			}
			r.Attempts += int64(len(month))
		}
		if err := markDaysDrawn(ctx, store); err != nil {
			return err
		}
		if err := pass(time.Date(y, time.November, 30, 23, 59, 0, 0, time.UTC)); err != nil {
			return err
		}
		// December live: each day counted on its day in batches of the
		// daemon's size, then a compile, then the probes.
		live := 31 - retentionProbes
		for d := 1; d <= live; d++ {
			start := time.Date(y, time.December, d, 0, 0, 0, 0, time.UTC)
			setClock(start.Add(23 * time.Hour))
			if err := count(store, splitBatch(sim.day(start), b.o.batch)); err != nil {
				return err
			}
			r.Attempts += retentionRate
			if d == 15 {
				// Mid-month, as the hourly pass would: November's
				// first half leaves the window.
				if err := markDaysDrawn(ctx, store); err != nil {
					return err
				}
				if err := pass(start.Add(23*time.Hour + 30*time.Minute)); err != nil {
					return err
				}
			}
		}
		if _, err := comp.Compile(ctx, false); err != nil {
			return fmt.Errorf("compile: %w", err)
		}
		// The probes: each of the last days counted, then compiled, each
		// timed in wall-clock and in CPU time.
		var speeds, cpuSpeeds, compiles, cpuCompiles []float64
		for d := live + 1; d <= 31; d++ {
			start := time.Date(y, time.December, d, 0, 0, 0, 0, time.UTC)
			setClock(start.Add(23 * time.Hour))
			batches := splitBatch(sim.day(start), b.o.batch)
			// A collection of the bench's own heap (the sections before
			// this one leave hundreds of megabytes) would be charged to
			// the probe's few tens of milliseconds of counting.
			runtime.GC()
			c0, err := cpu()
			if err != nil {
				return err
			}
			t0 := time.Now()
			if err := count(store, batches); err != nil {
				return err
			}
			wall := time.Since(t0).Seconds()
			c1, err := cpu()
			if err != nil {
				return err
			}
			res, err := comp.Compile(ctx, false)
			if err != nil {
				return fmt.Errorf("compile: %w", err)
			}
			c2, err := cpu()
			if err != nil {
				return err
			}
			speeds = append(speeds, retentionRate/wall)
			cpuSpeeds = append(cpuSpeeds, retentionRate/(c1-c0))
			compiles = append(compiles, res.Duration.Seconds())
			cpuCompiles = append(cpuCompiles, c2-c1)
			r.Attempts += retentionRate
		}
		yr.CountLinesPerS, yr.CountLinesPerCPUS = slices.Max(speeds), slices.Max(cpuSpeeds)
		yr.CompileSeconds, yr.CompileCPUSeconds = slices.Min(compiles), slices.Min(cpuCompiles)
		if err := pass(time.Date(y, time.December, 31, 23, 59, 0, 0, time.UTC)); err != nil {
			return err
		}
		if pruneTime > 0 {
			yr.PruneDaysPerS = float64(prunedDays) / pruneTime.Seconds()
		}
		if err := b.retentionMemory(ctx, &yr, pruner.Cutoff(clock.Now()), r); err != nil {
			return err
		}
		yr.ArchiveBytes, _ = archive.Bytes()
		r.Years = append(r.Years, yr)
		b.say("retention: end of year %d: used_memory %.1f MiB, day-level %.1f MiB in %d days, months and years %.1f MiB, first-seen %.1f MiB; %.0f lines/s (%.0f per CPU second), compile %.3f s (%.3f CPU s)",
			y-first+1, mib(yr.UsedMemory), mib(yr.DayBytes), yr.DaysInRedis, mib(yr.PeriodBytes), mib(yr.FirstSeenBytes),
			yr.CountLinesPerS, yr.CountLinesPerCPUS, yr.CompileSeconds, yr.CompileCPUSeconds)
	}
	r.Seconds = time.Since(began).Seconds()
	if err := b.retentionExact(ctx, store, archive, sim, r); err != nil {
		return err
	}
	y1, y3 := r.Years[0], r.Years[len(r.Years)-1]
	r.DayGrowth = float64(y3.DayBytes)/float64(y1.DayBytes) - 1
	r.PeriodGrowth = float64(y3.PeriodBytes+y3.FirstSeenBytes)/float64(y1.PeriodBytes+y1.FirstSeenBytes) - 1
	// In CPU time: see the section's comment.
	r.CountRatio = y3.CountLinesPerCPUS / y1.CountLinesPerCPUS
	r.CompileRatio = y3.CompileCPUSeconds / y1.CompileCPUSeconds

	rep := b.rep
	rep.info("retention", "simulated", fmt.Sprintf("%d years, %s attempts (%s a day, %s sources a day, a quarter new), in %.0f s",
		retentionYears, thousands(float64(r.Attempts)), thousands(retentionRate), thousands(retentionSources), r.Seconds))
	rep.target("retention", "day-level memory, end of year 3 vs year 1",
		fmt.Sprintf("%.1f → %.1f MiB (%+.1f %%)", mib(y1.DayBytes), mib(y3.DayBytes), 100*r.DayGrowth), "≤ +10 %", r.DayGrowth <= 0.10)
	rep.info("retention", "months, years and first-seen, year 1 → year 3",
		fmt.Sprintf("%.1f → %.1f MiB (%+.0f %%; they grow with distinct values)", mib(y1.PeriodBytes+y1.FirstSeenBytes), mib(y3.PeriodBytes+y3.FirstSeenBytes), 100*r.PeriodGrowth))
	rep.info("retention", "used_memory, year 1 → year 3", fmt.Sprintf("%.1f → %.1f MiB", mib(y1.UsedMemory), mib(y3.UsedMemory)))
	rep.target("retention", "counting, lines per CPU second, year 3 vs year 1",
		fmt.Sprintf("%s → %s (%.2f×; wall-clock %s → %s lines/s)", thousands(y1.CountLinesPerCPUS), thousands(y3.CountLinesPerCPUS), r.CountRatio,
			thousands(y1.CountLinesPerS), thousands(y3.CountLinesPerS)), "≥ 0.90×", r.CountRatio >= 0.9)
	rep.target("retention", "compile after a day, CPU seconds, year 3 vs year 1",
		fmt.Sprintf("%.3f → %.3f s (%.2f×; wall-clock %.3f → %.3f s)", y1.CompileCPUSeconds, y3.CompileCPUSeconds, r.CompileRatio,
			y1.CompileSeconds, y3.CompileSeconds), "≤ 1.10×", r.CompileRatio <= 1.10)
	// The sizing figures of the README, from year 3.
	retained := float64(y3.DaysInRedis * retentionRate)
	rep.info("retention", "sizing, per retained day",
		fmt.Sprintf("%.0f bytes per attempt: day rankings %.0f bytes per member (%.0f members a day), drill-down %.0f and stored attempts %.0f bytes per attempt",
			float64(y3.DayBytes)/retained, float64(y3.DayRankingBytes)/float64(max(y3.DayRankingMembers, 1)),
			float64(y3.DayRankingMembers)/float64(max(y3.DaysInRedis, 1)), float64(y3.DrillBytes)/retained, float64(y3.AttemptsBytes)/retained))
	rep.info("retention", "sizing, kept forever",
		fmt.Sprintf("month and year rankings %.0f bytes per member (%s members), first-seen %.0f bytes per distinct value (%s values)",
			float64(y3.PeriodBytes)/float64(max(y3.PeriodMembers, 1)), thousands(float64(y3.PeriodMembers)),
			float64(y3.FirstSeenBytes)/float64(max(y3.FirstSeenMembers, 1)), thousands(float64(y3.FirstSeenMembers))))
	rep.info("retention", "pruning speed", fmt.Sprintf("%.1f days/s (year 1), %.1f days/s (year 3)", y1.PruneDaysPerS, y3.PruneDaysPerS))
	rep.correct("retention", "months, years, sample rankings, pruned days, archive",
		fmt.Sprintf("%d problems", len(r.ExactProblems)), r.Exact, "retention: "+strings.Join(r.ExactProblems[:min(len(r.ExactProblems), 5)], "; "))
	return nil
}

// markDaysDrawn empties the daily toupdate set, as a compile that drew
// the day charts does.
func markDaysDrawn(ctx context.Context, store *stats.Store) error {
	keys, err := store.TakeToUpdate(ctx, stats.Daily)
	if err != nil {
		return err
	}
	return store.DoneRendering(ctx, stats.Daily, keys...)
}

// splitBatch cuts a day's attempts into batches of size attempts.
func splitBatch(day []simAttempt, size int) []*stats.Batch {
	var out []*stats.Batch
	for start := 0; start < len(day); start += size {
		b := stats.NewBatch()
		for _, a := range day[start:min(start+size, len(day))] {
			b.Add(a.at, []byte(a.host), []byte(a.user), []byte(a.src))
		}
		out = append(out, b)
	}
	return out
}

// retentionMemory sums MEMORY USAGE of every key by class, once Redis has
// freed what the pruner unlinked.
func (b *bench) retentionMemory(ctx context.Context, yr *retentionYear, cutoff string, r *retentionResult) error {
	for {
		m, err := b.cnt.info("memory")
		if err != nil {
			return err
		}
		if m["lazyfree_pending_objects"] == "0" {
			break
		}
		if err := waitCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	days := map[string]bool{}
	// The members of the sorted sets are counted after the walk: a
	// command sent in the middle of the pipelined replies would read them.
	type keyCard struct {
		key string
		sum *int64
	}
	var cards []keyCard
	for _, db := range []int{stats.StatsDB, stats.AttemptsDB} {
		c, err := b.cnt.dial(db)
		if err != nil {
			return err
		}
		keys, err := scanKeys(c, "*")
		if err != nil {
			c.Close()
			return err
		}
		for start := 0; start < len(keys); start += 1000 {
			chunk := keys[start:min(start+1000, len(keys))]
			for _, k := range chunk {
				c.Send("MEMORY", "USAGE", k, "SAMPLES", "0")
			}
			c.Flush()
			for _, k := range chunk {
				n, err := redis.Int64(c.Receive())
				if err != nil {
					c.Close()
					return fmt.Errorf("memory usage of %s: %w", k, err)
				}
				period, _, isStats := stats.SplitStatsKey(k)
				drill, isDrill := strings.CutPrefix(k, "alog:links:")
				attempts, isAttempts := strings.CutPrefix(k, "alog:attempts:")
				switch {
				case db == stats.StatsDB && isStats && len(period) == 8:
					yr.DayRankingBytes += n
					days[period] = true
					if period < cutoff {
						r.ExactProblems = append(r.ExactProblems, "day ranking "+k+" of a pruned day")
					}
					cards = append(cards, keyCard{k, &yr.DayRankingMembers})
				case db == stats.StatsDB && isDrill:
					yr.DrillBytes += n
					if len(drill) >= 8 && drill[:8] < cutoff {
						r.ExactProblems = append(r.ExactProblems, "drill-down key "+k+" of a pruned day")
					}
				case db == stats.AttemptsDB && isAttempts:
					yr.AttemptsBytes += n
					days[attempts] = true
				case db == stats.StatsDB && isStats:
					yr.PeriodBytes += n
					cards = append(cards, keyCard{k, &yr.PeriodMembers})
				case db == stats.StatsDB && strings.HasPrefix(k, "alog:firstseen:"):
					yr.FirstSeenBytes += n
					cards = append(cards, keyCard{k, &yr.FirstSeenMembers})
				default:
					yr.OtherBytes += n
				}
			}
		}
		c.Close()
	}
	c, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, kc := range cards {
		n, err := redis.Int64(c.Do("ZCARD", kc.key))
		if err != nil {
			return fmt.Errorf("members of %s: %w", kc.key, err)
		}
		*kc.sum += n
	}
	yr.DayBytes = yr.DayRankingBytes + yr.DrillBytes + yr.AttemptsBytes
	yr.DaysInRedis = len(days)
	used, err := b.cnt.usedMemory()
	yr.UsedMemory = used
	return err
}

// retentionExact compares the counting Redis with the bench's own counts:
// every month and year total, the user ranking of a month of the first
// and of the last year, the number of distinct sources of those years,
// and the archive of a pruned day.
func (b *bench) retentionExact(ctx context.Context, store *stats.Store, archive *retention.Archive, sim *retentionSim, r *retentionResult) error {
	c, err := b.cnt.dial(stats.StatsDB)
	if err != nil {
		return err
	}
	defer c.Close()
	bad := func(format string, args ...any) {
		r.ExactProblems = append(r.ExactProblems, fmt.Sprintf(format, args...))
	}
	for period, want := range sim.totals {
		got, err := redis.Int64(c.Do("HGET", stats.TotalsKey, period))
		if err != nil || got != want {
			bad("total of %s = %d (%v), want %d", period, got, err, want)
		}
	}
	for month, users := range sim.sampleMonths {
		got, err := redis.Int64Map(c.Do("ZRANGE", stats.StatsKey(month, stats.KindUser), 0, -1, "WITHSCORES"))
		if err != nil {
			return err
		}
		if len(got) != len(users) {
			bad("%s has %d user names, want %d", month, len(got), len(users))
		}
		for u, n := range users {
			if got[u] != n {
				bad("%s: %s counted %d times, want %d", month, u, got[u], n)
			}
		}
	}
	for year, srcs := range sim.yearSources {
		n, err := redis.Int(c.Do("ZCARD", stats.StatsKey(year, stats.KindSrc)))
		if err != nil || n != len(srcs) {
			bad("%s has %d sources (%v), want %d", year, n, err, len(srcs))
		}
	}
	var got []string
	err = archive.Read(ctx, sim.sampleDay, -1, func(elem []byte) error {
		return stats.DecodeRecords(elem, func(a stats.Attempt) error {
			got = append(got, fmt.Sprintf("%d %s %s %s", a.Unix, a.Host, a.User, a.Src))
			return nil
		})
	})
	if err != nil {
		return err
	}
	slices.Sort(got)
	want := slices.Clone(sim.sampleLines)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		bad("the archive of %s holds %d attempts, not exactly the %d of the day", sim.sampleDay, len(got), len(want))
	}
	r.Exact = len(r.ExactProblems) == 0
	return nil
}
