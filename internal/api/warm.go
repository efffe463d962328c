package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// warmRest is how many times as long as a set's read the warm-up rests
// after it, so that counting keeps about three quarters of the counting
// Redis meanwhile.
const warmRest = 3

// warmFull is the share of the budget at which the warm-up stops, leaving
// the rest to the sets questions read on their own.
const warmFull = 0.9

// errSetTooBig stops the read of a set that cannot be kept.
var errSetTooBig = errors.New("set too big to keep")

// Warm reads the sets of closed periods into the daemon (setCache) once
// the first question has been asked, so that the questions after it read
// from the counting Redis only what changed: newest first, day by day back
// for as long as a range may reach (3660 days), each month and year once
// it is closed, until the kept sets fill most of the budget. It reads one
// set at a time, holding a computing slot like a question (a question
// waits for at most one set), and rests three times as long as each read
// took. A pass that fails (the counting Redis away) is logged and tried
// again after a minute, keeping what it read. It returns when it is done
// or ctx ends; nothing happens without a budget (SetCacheBytes < 0).
func (a *API) Warm(ctx context.Context) {
	if a.sets.budget <= 0 {
		return
	}
	select {
	case <-a.asked:
	case <-ctx.Done():
		return
	}
	a.warming.Store(true)
	defer a.warming.Store(false)
	t0 := time.Now()
	for {
		err := a.warmPass(ctx, t0)
		if err == nil || ctx.Err() != nil {
			return
		}
		a.o.Log.Warn("investigation api: reading the rankings into memory paused; questions read what they need meanwhile", "err", err, "retry_in", a.warmRetry.String())
		if rest(ctx, a.warmRetry) != nil {
			return
		}
	}
}

// warmRetry is how long a failed warm-up pass waits before the next
// (API.warmRetry; tests shorten it).
const warmRetry = time.Minute

// warmPass reads what is not kept yet, newest first (Warm).
func (a *API) warmPass(ctx context.Context, t0 time.Time) error {
	lf := a.liveFrom()
	last, err := time.Parse("20060102", lf)
	if err != nil {
		return fmt.Errorf("day %q: %w", lf, err)
	}
	last = last.AddDate(0, 0, -1)
	// The periods, newest first: each day, then its month once the day
	// is the month's first and the month is closed, then its year.
	var periods []string
	for i := 0; i < maxDays; i++ {
		d := last.AddDate(0, 0, -i)
		periods = append(periods, dayName(d))
		y, m, day := d.Date()
		if day == 1 && dayName(time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC)) < lf {
			periods = append(periods, d.Format("200601"))
			if m == time.January && dayName(time.Date(y, time.December, 31, 0, 0, 0, 0, time.UTC)) < lf {
				periods = append(periods, d.Format("2006"))
			}
		}
	}
	a.o.Log.Info("investigation api: reading the closed days', months' and years' rankings into memory for questions, newest first",
		"api_cache_mb", a.sets.budget>>20)
	versions, err := a.o.Store.PeriodTotals(ctx, periods)
	if err != nil {
		return err
	}
	// Pruned days (SPEC §12) have a total and no rankings any more:
	// nothing to read, and questions over them are refused.
	ds := dayPeriods(periods)
	pruned, err := a.o.Store.PrunedDays(ctx, ds)
	if err != nil {
		return err
	}
	gone := make(map[string]bool)
	for i, d := range ds {
		if pruned[i] {
			gone[d] = true
		}
	}
	// Back to the oldest period with anything counted; the quiet days in
	// between are kept too (empty), so that questions over them read
	// nothing either.
	end := 0
	for i, v := range versions {
		if v > 0 {
			end = i + 1
		}
	}
	var read, oldest int
	for i, p := range periods[:end] {
		if gone[p] {
			continue // pruned: nothing to read, and questions are refused
		}
		for _, kind := range a.o.Kinds.Names() {
			if bytes, _, _ := a.sets.stats(); float64(bytes) >= warmFull*float64(a.sets.budget) {
				a.warmed(t0, read, p)
				return nil
			}
			key := stats.StatsKey(p, kind)
			if a.sets.has(key, versions[i]) {
				continue
			}
			took, err := a.warmOne(ctx, key, versions[i])
			if err != nil {
				return fmt.Errorf("read %q: %w", key, err)
			}
			read++
			oldest = i
			if err := rest(ctx, warmRest*took); err != nil {
				return err
			}
		}
	}
	a.warmed(t0, read, periods[oldest])
	return nil
}

// warmed logs the end of the warm-up.
func (a *API) warmed(t0 time.Time, read int, oldest string) {
	if read == 0 {
		oldest = ""
	}
	a.warmedNanos.Store(max(1, int64(time.Since(t0))))
	bytes, _, _ := a.sets.stats()
	a.o.Log.Info("investigation api: rankings read into memory", "sets", read, "back_to", oldest,
		"mib", bytes>>20, "seconds", time.Since(t0).Round(time.Second).Seconds())
}

// warmOne reads key into the set cache at version, holding a computing
// slot, and returns how long the read took.
func (a *API) warmOne(ctx context.Context, key string, version int64) (time.Duration, error) {
	release, err := a.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	t0 := time.Now()
	s := &set{key: key, version: version}
	var booked int64
	defer func() { a.sets.release(booked) }()
	err = a.o.Store.ReadSets(ctx, []string{key}, nil, nil, func(_ string, members [][]byte, counts []int64) error {
		n, ok := a.sets.grow(s, members, counts)
		booked += n
		if !ok {
			return errSetTooBig
		}
		return nil
	})
	took := time.Since(t0)
	if errors.Is(err, errSetTooBig) {
		return took, nil
	}
	if err != nil {
		return took, err
	}
	a.sets.put(s)
	return took, nil
}

// rest waits d, or until ctx ends.
func rest(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Warming tells whether the warm-up is reading sets.
func (a *API) Warming() bool { return a.warming.Load() }

// WarmedSeconds is how long the warm-up took once it has ended (read
// everything or filled the budget), 0 before.
func (a *API) WarmedSeconds() float64 { return time.Duration(a.warmedNanos.Load()).Seconds() }
