package daemon

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/ingest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// RunFile counts every line of r with ref as the reference time for year
// inference; see ingest.Ingester.File.
func (d *Daemon) RunFile(ctx context.Context, r io.Reader, ref time.Time) (ingest.FileSummary, error) {
	return d.ingester.File(ctx, r, ref)
}

// Flush drops the statistics, recounts them from the stored attempts and
// recompiles everything.
func (d *Daemon) Flush(ctx context.Context) error {
	start := d.clock.Now()
	// Mark first, then look for daemons: a daemon takes its lock first,
	// then looks for the mark; so one of the two always sees the other.
	existed, err := d.store.BeginRebuild(ctx)
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	live, err := d.store.LiveConsumers(ctx)
	if err == nil && len(live) > 0 {
		err = fmt.Errorf("analyzer-d4-log is counting (%s); run the flush with ./launch_server.sh -F (it stops the daemon, keeps the counting Redis, flushes, starts the daemon again), or stop the daemon alone with ./launch_server.sh -s: a flush under it would count its batches twice", strings.Join(live, ", "))
	}
	if err != nil {
		if !existed {
			if aerr := d.store.AbortRebuild(context.WithoutCancel(ctx)); aerr != nil {
				d.log.Error("flush: could not remove the flush mark; run -F again once the daemon is stopped", "err", aerr)
			}
		}
		return fmt.Errorf("flush: %w", err)
	}
	d.log.Info("flush: dropping the statistics and recounting them from the stored attempts")
	lastLog := d.clock.Now()
	res, err := d.store.RebuildWith(ctx, stats.RebuildOptions{
		Location: d.cfg.Location,
		Batch:    100000,
		// Pruned days count into their months and years from the archive.
		Archive: d.archive,
		Progress: func(p stats.RebuildProgress) {
			if d.clock.Since(lastLog) >= 5*time.Second || p.DaysDone == p.Days {
				lastLog = d.clock.Now()
				d.log.Info("flush: progress", "days", fmt.Sprintf("%d/%d", p.DaysDone, p.Days), "attempts", p.Attempts, "day", p.Day)
			}
		},
		SetAside: func(a stats.SetAside) {
			d.log.Warn("flush: set aside a stored record it cannot count", "key", a.Key, "index", a.Index,
				"type", a.Type, "reason", a.Reason, "to", a.To)
		},
		// A stamp more than a day after now was forged or broken (an
		// earlier version stored such lines): it is not counted again,
		// so a forged newest is repaired.
		NotAfter: d.clock.Now().Add(24 * time.Hour),
		// The country and AS of each stored source, as the databases
		// answer now (a record keeps the source, not the answer).
		Enricher: rebuildEnricher(d.geoip),
	})
	if err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if res.ArchiveBad > 0 {
		d.log.Warn("flush: archived elements that do not decode were left out; they stay in their archive files", "elements", res.ArchiveBad, "archive", d.archive.Dir)
	}
	d.log.Info("flush: recounted", "attempts", res.Attempts, "from_archive", res.Archived, "left_out_future", res.Later,
		"seconds", fmt.Sprintf("%.1f", d.clock.Since(start).Seconds()))
	if msg := res.Message(); msg != "" {
		d.log.Warn("flush: " + msg)
	}
	return d.Compile(ctx, true)
}
