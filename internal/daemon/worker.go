package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/sshd"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// worker consumes the queue through one slot until ctx is done. A batch
// it has claimed is finished (counted and acknowledged) even when ctx ends
// meanwhile, unless a Redis is in an outage: then it stays in the slot's
// processing list for the next start.
func (d *Daemon) worker(ctx context.Context, slot int) {
	c := &d4queue.Consumer{Pool: d.d4Pool, Queue: d.cfg.Queue, Slot: slot, MaxLine: d.cfg.MaxLineBytes}
	p := newParser(d, stats.NewBatch())
	fails := 0
	polling := false
	for ctx.Err() == nil {
		id := d.newID()
		b, err := c.Claim(ctx, id, d.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.d4Outage.fail("claiming lines", err)
			sleep(ctx, d.backoff(fails))
			fails++
			continue
		}
		fails = 0
		d.d4Outage.ok()
		if b.ID != "" {
			if !d.processSafely(ctx, c, p, b, b.ID != id) {
				// The batch stays in its processing list; wait before
				// the next attempt rather than spin on a bug.
				sleep(ctx, d.backoffMax)
			}
			continue
		}
		if polling {
			sleep(ctx, d.poll)
			continue
		}
		if _, err := c.Wait(ctx, d.block); err != nil {
			if ctx.Err() != nil {
				return
			}
			if isServerError(err) {
				// The server answered but will not block (a proxy, a
				// renamed command): poll every -r instead.
				d.log.Warn("d4 redis refuses blocking waits; polling the queue instead",
					"every", d.poll.String(), "err", err)
				polling = true
				continue
			}
			d.d4Outage.fail("waiting for lines", err)
			sleep(ctx, d.backoff(fails))
			fails++
		}
	}
}

// processSafely is process with a panic turned into a logged, counted
// failure: a bug must not take down the daemon, and the batch is not lost
// (it stays in flight and is tried again).
func (d *Daemon) processSafely(ctx context.Context, c *d4queue.Consumer, p *parser, b d4queue.Batch, inFlight bool) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			d.metrics.WorkerPanics.Inc()
			d.log.Error("worker panic recovered; the batch stays in flight and is retried",
				"slot", c.Slot, "batch", b.ID, "lines", b.Len(), "panic", fmt.Sprint(r))
			ok = false
		}
	}()
	d.process(ctx, c, p, b, inFlight)
	return true
}

// process counts one claimed batch and acknowledges it. A batch that was
// already in flight when claimed (left by a crash or an earlier outage) may
// have been counted before: its record is checked first.
func (d *Daemon) process(ctx context.Context, c *d4queue.Consumer, p *parser, b d4queue.Batch, inFlight bool) {
	start := time.Now()
	p.reset()
	ref := d.now()
	for _, line := range b.Lines {
		p.line(line, ref)
	}
	for range b.Long {
		p.skip(sshd.TooLong)
	}
	rec := &stats.Applied{Queue: c.Queue, Slot: c.Slot, ID: b.ID, LockKey: d.lockKey, Token: d.lockToken}
	// Finish the batch even if a shutdown starts now; only an outage at
	// shutdown leaves it to the next start.
	work := context.WithoutCancel(ctx)
	earlier, ok := d.countOnce(ctx, work, p.batch, *rec, inFlight, "counting a batch")
	if !ok {
		return
	}
	if earlier {
		// Counted by a run that died before acknowledging: nothing of it
		// is new, for the statistics or the metrics.
		d.log.Info("batch in flight was already counted; acknowledging it", "slot", c.Slot, "batch", b.ID, "lines", b.Len())
		p.reset()
	}
	for fails := 0; ; fails++ {
		err := c.Ack(work, b.ID)
		if err == nil {
			d.d4Outage.ok()
			break
		}
		d.d4Outage.fail("acknowledging a batch", err)
		if !sleep(ctx, d.backoff(fails)) {
			return
		}
	}
	p.publish(b.Len())
	d.metrics.BatchSeconds.Observe(time.Since(start).Seconds())
}

// countOnce applies batch under rec exactly once. Whenever the outcome of
// an earlier attempt is unknown (a batch found in flight, or an Apply that
// failed: the connection may have died after Redis committed it), it asks
// the record before applying, and applies only on a definite "not applied".
// It reports whether the batch had been applied before this call tried
// anything, and false in ok when ctx ended first.
func (d *Daemon) countOnce(ctx, work context.Context, batch *stats.Batch, rec stats.Applied, unknown bool, what string) (earlier, ok bool) {
	tried := false
	for fails := 0; ; fails++ {
		if unknown {
			applied, err := d.store.IsApplied(work, rec)
			if err != nil {
				d.cntOutage.fail("checking a batch record", err)
				if !sleep(ctx, d.backoff(fails)) {
					return false, false
				}
				continue
			}
			if applied {
				d.cntOutage.ok()
				return !tried, true
			}
		}
		triedBefore := tried
		tried = true
		err := d.store.Apply(work, batch, &rec)
		switch {
		case err == nil:
			d.cntOutage.ok()
			return false, true
		case errors.Is(err, stats.ErrAlreadyApplied):
			d.cntOutage.ok()
			return !triedBefore, true
		case errors.Is(err, stats.ErrLocked):
			// Another daemon owns the queue now and will count this batch;
			// the lock keeper is about to stop this one.
			d.log.Error("not counting a batch: the queue belongs to another daemon now", "batch", rec.ID, "err", err)
			<-ctx.Done()
			return false, false
		case errors.Is(err, stats.ErrConflict):
			// Nothing was applied, but a guarded key moved: ask again.
			unknown = true
			continue
		}
		d.cntOutage.fail(what, err)
		unknown = true
		if !sleep(ctx, d.backoff(fails)) {
			return false, false
		}
	}
}

// Reconcile is done by the workers themselves: a slot's first Claim returns
// the batch a previous run left in flight. Slots beyond the current pool
// size (the pool was shrunk) are drained here once at start.
func (d *Daemon) drainLeftovers(ctx context.Context) error {
	slots, err := d4queue.Leftovers(ctx, d.d4Pool, d.cfg.Queue, d.cfg.Pool)
	if err != nil {
		return err
	}
	for _, slot := range slots {
		c := &d4queue.Consumer{Pool: d.d4Pool, Queue: d.cfg.Queue, Slot: slot, MaxLine: d.cfg.MaxLineBytes}
		p := newParser(d, stats.NewBatch())
		// A Claim with a batch size of 0 returns what is in flight and
		// moves nothing new; repeated until the slot is empty, since a late
		// blocking pop may have left a line beside the tagged batch.
		for ctx.Err() == nil {
			id := d.newID()
			b, err := c.Claim(ctx, id, 0)
			if err != nil {
				return err
			}
			if b.ID == "" {
				break
			}
			d.log.Info("finishing a batch left by an earlier run with more workers", "slot", slot, "lines", b.Len())
			if !d.processSafely(ctx, c, p, b, b.ID != id) {
				return fmt.Errorf("batch left in slot %d failed", slot)
			}
		}
	}
	return nil
}

// parser turns lines into a stats.Batch and keeps the batch's tallies until
// it is committed, so metrics never count a batch that was not.
type parser struct {
	d       *Daemon
	batch   *stats.Batch
	skipped [16]int
	panics  int
	lines   int64 // lines read into this batch (file mode)
}

func newParser(d *Daemon, b *stats.Batch) *parser { return &parser{d: d, batch: b} }

func (p *parser) reset() {
	p.batch.Reset()
	p.skipped = [16]int{}
	p.panics = 0
	p.lines = 0
}

func (p *parser) skip(r sshd.Reason) { p.skipped[r]++ }

// line parses one line into the batch. A panic in the parser is a bug, but
// must not take the daemon down: the line is logged, counted as skipped
// with reason "panic", and work goes on.
func (p *parser) line(line []byte, ref time.Time) {
	defer func() {
		if r := recover(); r != nil {
			p.panics++
			head := line
			if len(head) > 64 {
				head = head[:64]
			}
			p.d.log.Error("parser panic recovered; line skipped", "len", len(line), "head", fmt.Sprintf("%q", head), "panic", fmt.Sprint(r))
		}
	}()
	if len(line) > p.d.cfg.MaxLineBytes {
		p.skipped[sshd.TooLong]++
		return
	}
	ev, reason := p.d.parse(line, ref, p.d.cfg.Location)
	if reason != sshd.OK {
		p.skipped[reason]++
		return
	}
	p.batch.Add(ev.Time, ev.Host, ev.User, ev.Src)
}

// publish adds a committed batch's tallies to the metrics and progress.
func (p *parser) publish(lines int) {
	m := p.d.metrics
	m.Popped.Add(float64(lines))
	counted := p.batch.Len()
	m.Counted.Add(float64(counted))
	var skipped [16]int64
	for r, n := range p.skipped {
		if n > 0 {
			m.Skipped.WithLabelValues(sshd.Reason(r).String()).Add(float64(n))
			skipped[r] = int64(n)
		}
	}
	if p.panics > 0 {
		m.Skipped.WithLabelValues(reasonPanic).Add(float64(p.panics))
		m.WorkerPanics.Add(float64(p.panics))
	}
	if counted > 0 {
		now := p.d.now()
		p.d.lastCounted.Store(now.UnixNano())
		m.LastCounted.Set(float64(now.UnixNano()) / 1e9)
	}
	p.d.progress.add(int64(lines), int64(counted), skipped, int64(p.panics))
}
