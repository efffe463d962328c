package stats_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// BenchmarkApply measures the hot path: one guarded batch of 1000 attempts
// of one day, with the spread of names a busy sensor sees. Besides the
// wall time it reports the CPU time of redis-server per batch, which the
// daemon's throughput is bound by and which a busy machine disturbs less.
func BenchmarkApply(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	s := &stats.Store{Stats: pool(srv.Addr(), 1), Attempts: pool(srv.Addr(), 0)}
	b.Cleanup(func() { s.Stats.Close(); s.Attempts.Close() })
	ctx := context.Background()
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	batch := stats.NewBatch()
	for i := 0; i < 1000; i++ {
		batch.Add(day.Add(time.Duration(i)*time.Minute), []byte(fmt.Sprintf("host%d", i%5)),
			[]byte(fmt.Sprintf("user%d", i%200)), []byte(fmt.Sprintf("10.0.%d.%d", i%3, i%97)))
	}
	c := srv.Conn(0)
	before, cpuOK := redisCPU(b, c)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Apply(ctx, batch, &stats.Applied{Queue: "q", Slot: 0, ID: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if after, ok := redisCPU(b, c); ok && cpuOK {
		b.ReportMetric(float64((after-before).Microseconds())/float64(b.N), "redis-cpu-µs/op")
	}
}

// BenchmarkApplyDrillDown measures what the drill-down data adds to a
// batch: 700 attempts over two days from sources mostly seen once, 500
// user names with a skew, 50 hosts (the bench's realistic workload), with
// drilldown off and on, without and with the append-only file (as the
// counting Redis runs). Compare the redis-cpu-µs/op of the runs.
func BenchmarkApplyDrillDown(b *testing.B) {
	for _, c := range []struct{ drill, aof bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		drill := c.drill
		b.Run(fmt.Sprintf("drilldown=%t/aof=%t", c.drill, c.aof), func(b *testing.B) {
			srv := redistest.Start(b, redistest.Options{AOF: c.aof})
			s := &stats.Store{Stats: pool(srv.Addr(), 1), Attempts: pool(srv.Addr(), 0), NoDrill: !drill}
			b.Cleanup(func() { s.Stats.Close(); s.Attempts.Close() })
			ctx := context.Background()
			r := rand.New(rand.NewPCG(1, 2))
			day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
			batches := make([]*stats.Batch, 50)
			for k := range batches {
				batch := stats.NewBatch()
				for i := 0; i < 700; i++ {
					d := day.AddDate(0, 0, 2*k+i/350)
					user := int(r.ExpFloat64()*50) % 500
					batch.Add(d.Add(time.Duration(i)*time.Minute), fmt.Appendf(nil, "host%d", r.IntN(50)),
						fmt.Appendf(nil, "user%d", user), fmt.Appendf(nil, "10.%d.%d.%d", r.IntN(4), r.IntN(200), r.IntN(64)))
				}
				batches[k] = batch
			}
			c := srv.Conn(0)
			before, cpuOK := redisCPU(b, c)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Apply(ctx, batches[i%len(batches)], &stats.Applied{Queue: "q", Slot: 0, ID: fmt.Sprint(i)}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if after, ok := redisCPU(b, c); ok && cpuOK {
				b.ReportMetric(float64((after-before).Microseconds())/float64(b.N), "redis-cpu-µs/op")
			}
		})
	}
}

// redisCPU reads the user and system time of the server behind c from
// /proc; ok is false where there is no /proc to read.
func redisCPU(b *testing.B, c redis.Conn) (time.Duration, bool) {
	pid := infoInt(b, c, "server", "process_id")
	raw, err := os.ReadFile("/proc/" + strconv.FormatInt(pid, 10) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th of them, in ticks of 1/100 s.
	_, rest, _ := strings.Cut(string(raw), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond, true
}

// BenchmarkApplyRemembered measures what the memory of counted lines
// (SPEC §15) costs a batch of 4,000 new lines of a day that already holds
// many, as a backlog of recent days brings them, with the append-only
// file on as the counting Redis runs. Besides the Redis CPU it reports the
// bytes each batch adds to the append-only file; compare dedupe=false.
func BenchmarkApplyRemembered(b *testing.B) {
	const batch, before = 4000, 200000
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprint("dedupe=", on), func(b *testing.B) {
			srv := redistest.Start(b, redistest.Options{AOF: true})
			s := &stats.Store{Stats: pool(srv.Addr(), 1), Attempts: pool(srv.Addr(), 0), NoDrill: true}
			b.Cleanup(func() { s.Stats.Close(); s.Attempts.Close() })
			ctx := context.Background()
			mem := stats.Memory{}
			if on {
				mem.Days = 7
			}
			now := time.Now().UTC()
			day := now.Truncate(24 * time.Hour)
			line := func(i int) seenLine {
				return seenLine{t: day.Add(time.Duration(i) * time.Millisecond / 4), host: fmt.Sprintf("web%d", i%20),
					user: fmt.Sprintf("u%d", i%500), src: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
			}
			apply := func(from int) {
				bt := stats.NewBatch()
				for i := from; i < from+batch; i++ {
					addOnce(bt, mem, now, line(i))
				}
				if err := s.Apply(ctx, bt, nil); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < before; i += batch {
				apply(i)
			}
			c := srv.Conn(0)
			aof := func() int64 { return infoInt(b, c, "persistence", "aof_current_size") }
			if _, err := c.Do("CONFIG", "SET", "auto-aof-rewrite-percentage", "0"); err != nil {
				b.Fatal(err)
			}
			cpu0, cpuOK := redisCPU(b, c)
			size0 := aof()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				apply(before + i*batch)
			}
			b.StopTimer()
			if cpu1, ok := redisCPU(b, c); ok && cpuOK {
				b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "redis-cpu-µs/op")
			}
			b.ReportMetric(float64(aof()-size0)/float64(b.N), "aof-bytes/op")
		})
	}
}
