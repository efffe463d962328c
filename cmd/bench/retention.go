package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/compile"
	"github.com/D4-project/analyzer-d4-log/internal/retention"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// The retention section (SPEC §12): three simulated years at a constant
// rate with retain_days = 30, day by day: count the day, run a pruning
// pass at the day's end. At the end of year 1 and year 3 it measures the
// counting Redis's used_memory, the memory of the day-level data (the day
// rankings, drill-down data and stored attempts, by MEMORY USAGE), the
// counting speed of a day and the compile time of a day's changes. The
// issue's example is 20,000 attempts a day; the section runs a tenth of
// it so that it fits in a few minutes on a small machine (the day-level
// data is proportional to the rate, so the ratios hold).
const (
	retDays          = 30
	retAttemptsDay   = 2000
	retNewSourcesDay = retAttemptsDay / 4 // a quarter of the sources new each day
	retYears         = 3
)

type retentionPoint struct {
	Year            int     `json:"year"`
	UsedMemory      int64   `json:"used_memory"`
	DayLevelBytes   int64   `json:"day_level_bytes"`
	MonthYearBytes  int64   `json:"month_year_bytes"`
	CountLinesPerS  float64 `json:"count_lines_per_s"`
	CompileSeconds  float64 `json:"compile_seconds"`
	DistinctSources int64   `json:"distinct_sources"`
}

type retentionResult struct {
	AttemptsPerDay int              `json:"attempts_per_day"`
	RetainDays     int              `json:"retain_days"`
	Points         []retentionPoint `json:"points"`
}

func (b *bench) retentionSection(ctx context.Context) error {
	if err := b.flushAll(b.cnt); err != nil {
		return err
	}
	pool := func(db int) *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) { return b.cnt.dial(db) }, MaxActive: 4, MaxIdle: 4, Wait: true}
	}
	st := &stats.Store{Stats: pool(stats.StatsDB), Attempts: pool(stats.AttemptsDB)}
	defer st.Stats.Close()
	defer st.Attempts.Close()
	y, _, _ := time.Now().UTC().Date()
	start := time.Date(y-retYears-1, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := clockwork.NewFakeClockAt(start)
	pr := &retention.Pruner{Store: st, Archive: &retention.Archive{Dir: filepath.Join(b.tmp, "retention-archive")},
		Days: retDays, Location: time.UTC, Clock: clock}
	comp := &compile.Compiler{Store: st, Dir: filepath.Join(b.tmp, "retention-out", "sshd"), ChartTop: 50, Parallel: 2,
		Now: clock.Now}
	r := &retentionResult{AttemptsPerDay: retAttemptsDay, RetainDays: retDays}
	b.rep.Retention = r
	b.say("retention: %d simulated years, %d attempts a day, %d new sources a day, retain_days %d (a tenth of the issue's 20,000 a day)",
		retYears, retAttemptsDay, retNewSourcesDay, retDays)
	src := 0
	for day := 0; day < 365*retYears; day++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := start.AddDate(0, 0, day)
		clock.Advance(d.Sub(clock.Now()))
		bt := stats.NewBatch()
		began := time.Now()
		for i := 0; i < retAttemptsDay; i++ {
			var s int
			if i < retNewSourcesDay {
				src++
				s = src
			} else {
				s = src - (i*7919)%max(1, min(src, 20000))
			}
			ts := d.Add(time.Duration(i*86400/retAttemptsDay-43200) * time.Second)
			bt.Add(ts, []byte(fmt.Sprintf("host%d", i%20)), []byte(fmt.Sprintf("user%d", i%700)), []byte(fmt.Sprintf("10.%d.%d.%d", s>>16&255, s>>8&255, s&255)))
			if bt.Len() == 1000 {
				if err := st.Apply(ctx, bt, nil); err != nil {
					return err
				}
				bt.Reset()
			}
		}
		if err := st.Apply(ctx, bt, nil); err != nil {
			return err
		}
		counted := time.Since(began)
		measure := (day+1)%365 == 0 && ((day+1)/365 == 1 || (day+1)/365 == retYears)
		began = time.Now()
		if _, err := comp.Compile(ctx, false); err != nil {
			return err
		}
		compiled := time.Since(began)
		// The day ends: the pass runs in the first hour of the next.
		clock.Advance(12*time.Hour + time.Minute)
		if _, err := pr.Pass(ctx); err != nil {
			return err
		}
		if measure {
			p := retentionPoint{Year: (day + 1) / 365, CountLinesPerS: float64(retAttemptsDay) / counted.Seconds(),
				CompileSeconds: compiled.Seconds(), DistinctSources: int64(src)}
			var err error
			if p.UsedMemory, _, err = st.UsedMemory(ctx); err != nil {
				return err
			}
			if p.DayLevelBytes, p.MonthYearBytes, err = retentionMemory(b); err != nil {
				return err
			}
			r.Points = append(r.Points, p)
			b.say("retention: end of year %d: used_memory %s B, day-level %s B, months and years %s B, counting %s lines/s, compile %.3f s",
				p.Year, thousands(float64(p.UsedMemory)), thousands(float64(p.DayLevelBytes)), thousands(float64(p.MonthYearBytes)),
				thousands(p.CountLinesPerS), p.CompileSeconds)
		}
	}
	if len(r.Points) == 2 {
		y1, y3 := r.Points[0], r.Points[1]
		for _, c := range []struct {
			figure string
			ratio  float64
		}{
			{"day-level memory, end of year 3 / end of year 1", float64(y3.DayLevelBytes) / float64(y1.DayLevelBytes)},
			{"counting time of a day, year 3 / year 1", y1.CountLinesPerS / y3.CountLinesPerS},
			{"compile time of a day, year 3 / year 1", y3.CompileSeconds / y1.CompileSeconds},
		} {
			b.rep.target("retention", c.figure, fmt.Sprintf("%.3f", c.ratio), "≤ 1.10", c.ratio <= 1.10)
		}
		b.rep.info("retention", "months and years memory, end of year 3 / end of year 1", fmt.Sprintf("%.3f", float64(y3.MonthYearBytes)/float64(y1.MonthYearBytes)))
	}
	return nil
}

// retentionMemory sums MEMORY USAGE of the day-level keys (day rankings
// and drill-down data in DB 1, stored attempts in DB 0) and of the month
// and year rankings.
func retentionMemory(b *bench) (day, monthYear int64, err error) {
	for _, db := range []int{stats.StatsDB, stats.AttemptsDB} {
		conn, err := b.cnt.dial(db)
		if err != nil {
			return 0, 0, err
		}
		cursor := "0"
		for {
			v, err := redis.Values(conn.Do("SCAN", cursor, "COUNT", 1000))
			if err != nil {
				conn.Close()
				return 0, 0, fmt.Errorf("scan: %w", err)
			}
			cursor, _ = redis.String(v[0], nil)
			keys, _ := redis.Strings(v[1], nil)
			for _, k := range keys {
				n, _ := redis.Int64(conn.Do("MEMORY", "USAGE", k, "SAMPLES", 0))
				period, _, ok := stats.SplitStatsKey(k)
				switch {
				case ok && len(period) == 8, len(k) > 11 && k[:11] == "alog:drill:", len(k) > 14 && k[:14] == "alog:attempts:":
					day += n
				case ok:
					monthYear += n
				}
			}
			if cursor == "0" {
				break
			}
		}
		conn.Close()
	}
	return day, monthYear, nil
}
