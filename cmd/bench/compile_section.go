package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/compile"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// incrementalLines is how many new lines the incremental compile follows.
const incrementalLines = 1000

// incrementalResult holds the figures of the incremental section.
type incrementalResult struct {
	FullSeconds, IncrementalSeconds, FinalSeconds float64
	Ratio                                         float64
	Incremental, Final                            compile.Result
}

// incremental measures what a compile costs after a trickle of new lines
// when the year's source ranking holds a million values: the compile
// package in this process against the bench's counting Redis, so that the
// figure is the compile's own. The full compile of the same data, measured
// just before in the same run, is the yardstick: the target is absolute
// (under 0.5 s) and the ratio shows it follows what changed, not the
// size of the year.
func (b *bench) incremental(ctx context.Context) error {
	if err := b.flushAll(b.cnt); err != nil {
		return fmt.Errorf("flush counting redis: %w", err)
	}
	b.say("incremental: filling year %s with %s distinct sources", compileYear, thousands(compileMembers))
	if err := b.fillYear(ctx); err != nil {
		return err
	}
	pool := func(db int) *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) { return b.cnt.dial(db) }, MaxActive: 4, MaxIdle: 4, Wait: true}
	}
	store := &stats.Store{Stats: pool(stats.StatsDB), Attempts: pool(stats.AttemptsDB)}
	defer store.Stats.Close()
	defer store.Attempts.Close()
	c := &compile.Compiler{
		Store: store, Dir: filepath.Join(b.tmp, "run-incremental", "sshd"), ChartTop: 25, Parallel: 2,
		Log: slog.New(slog.DiscardHandler),
	}
	r := &incrementalResult{}

	b.say("incremental: full compile of the year")
	full, err := c.Compile(ctx, false)
	if err != nil {
		return fmt.Errorf("full compile: %w", err)
	}
	r.FullSeconds = full.Duration.Seconds()

	b.say("incremental: %s new lines, then a compile", thousands(incrementalLines))
	batch := stats.NewBatch()
	at := time.Date(2030, 12, 31, 12, 0, 0, 0, time.UTC)
	for i := 0; i < incrementalLines; i++ {
		src := fmt.Sprintf("192.0.2.%d/%d", i%256, i)
		batch.Add(at.Add(time.Duration(i)*time.Second), []byte("srv1"), []byte(fmt.Sprintf("user%d", i%600)), []byte(src))
	}
	if err := store.Apply(ctx, batch, nil); err != nil {
		return fmt.Errorf("count %d lines: %w", incrementalLines, err)
	}
	r.Incremental, err = c.Compile(ctx, false)
	if err != nil {
		return fmt.Errorf("incremental compile: %w", err)
	}
	r.IncrementalSeconds = r.Incremental.Duration.Seconds()
	r.Ratio = r.IncrementalSeconds / r.FullSeconds

	r.Final, err = c.CompileFinal(ctx)
	if err != nil {
		return fmt.Errorf("final compile: %w", err)
	}
	r.FinalSeconds = r.Final.Duration.Seconds()

	rep := b.rep
	rep.Incremental = r
	rep.target("incremental", fmt.Sprintf("compile after %s new lines, year of 1,000,000 sources", thousands(incrementalLines)),
		fmt.Sprintf("%.3f s (%.3f × the full compile's %.2f s)", r.IncrementalSeconds, r.Ratio, r.FullSeconds), "< 0.5 s", r.IncrementalSeconds < 0.5)
	rep.correct("incremental", "the year's full CSV waits, the rest is written",
		fmt.Sprintf("%d keys, %d full CSVs, %d pending", r.Incremental.Keys, r.Incremental.FullCSVs, r.Incremental.Pending),
		r.Incremental.Pending == 1 && r.Incremental.Keys == 9 && r.Incremental.FullCSVs == 8,
		fmt.Sprintf("incremental compile: %+v, want 9 keys of which the year's sources pending", r.Incremental))
	rep.correct("incremental", "final compile writes the pending CSV",
		fmt.Sprintf("%d full CSVs, %s rows in %.2f s", r.Final.FullCSVs, thousands(float64(r.Final.Rows)), r.FinalSeconds),
		r.Final.Pending == 0 && r.Final.FullCSVs == 1 && r.Final.Rows >= compileMembers+incrementalLines,
		fmt.Sprintf("final compile: %+v, want the year's %d sources written", r.Final, compileMembers+incrementalLines))
	return nil
}
