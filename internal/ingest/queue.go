package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Workers consume the D4 queue.
type Workers struct {
	in   *Ingester
	lock *stats.Lock // the consumer lock every transaction requires; nil in tests without one
	// taken, when set, is called after each batch drain finishes (a dead
	// member's batch taken over).
	taken func()
}

// Workers returns the queue's workers, counting under lock.
func (in *Ingester) Workers(lock *stats.Lock) *Workers { return &Workers{in: in, lock: lock} }

// Run counts batches left in flight by a run with more workers, then
// consumes the queue with Options.Workers workers until ctx ends. A batch
// a worker holds when ctx ends is still counted and acknowledged, unless a
// Redis is in an outage: then it stays in its processing list for the
// next start. Run returns when every worker has stopped.
func (w *Workers) Run(ctx context.Context) error {
	in := w.in
	in.logBacklog(ctx)
	// An outage here is ridden out like any other.
	_ = in.untilDone(ctx, in.o.D4Outage, "looking for batches left by an earlier run",
		func() error { return w.drainLeftovers(ctx) }, never)
	t := newTurn()
	var wg sync.WaitGroup
	first := in.firstSlot()
	for slot := first; slot < first+in.o.Workers; slot++ {
		wg.Add(1)
		go func() { defer wg.Done(); w.worker(ctx, slot, t) }()
	}
	wg.Wait()
	return nil
}

// logBacklog says at start how much is waiting, so that an operator knows
// what the first progress lines are working through.
func (in *Ingester) logBacklog(ctx context.Context) {
	q, proc, err := d4queue.LengthsFrom(ctx, in.o.D4, in.o.Queue, in.firstSlot(), in.o.Workers)
	if err != nil {
		return
	}
	in.o.Log.Info("backlog at start", "queue", q, "in_flight", proc)
}

// turn is held by the one worker allowed to claim or wait on the queue.
// Taking turns is what keeps an idle daemon to one blocking wait on the
// D4 Redis, and a trickle to one claim per linger.
type turn struct {
	ch chan struct{} // holds a token while the turn is free
	// short is set when the last claim came back short of a batch (or a
	// wait just moved a line in): the next claim lingers first. Guarded
	// by holding the turn.
	short bool
	// polling is set once the D4 Redis refused a blocking wait: claims
	// are then spaced by Options.Poll. Guarded by holding the turn.
	polling bool
}

func newTurn() *turn {
	t := &turn{ch: make(chan struct{}, 1)}
	t.ch <- struct{}{}
	return t
}

func (t *turn) acquire(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-t.ch:
		return true
	}
}

func (t *turn) release() { t.ch <- struct{}{} }

// worker consumes the queue through one slot until ctx is done.
func (w *Workers) worker(ctx context.Context, slot int, t *turn) {
	in := w.in
	c := &d4queue.Consumer{Pool: in.o.D4, Queue: in.o.Queue, Slot: slot, MaxLine: in.o.MaxLine}
	p := in.newBatchParser()
	fails := 0
	// own says the slot may hold a batch in flight (left by an earlier
	// run, or by a panic): it is claimed without waiting for the turn,
	// since the turn's holder may be blocked on an empty queue.
	own := true
	for ctx.Err() == nil {
		var (
			b   d4queue.Batch
			id  string
			err error
		)
		began := in.o.D4Outage.Begin()
		if own {
			id = in.o.NewID()
			b, err = c.Claim(ctx, id, 0)
			own = err != nil
		}
		if !own && b.ID == "" && err == nil {
			if !t.acquire(ctx) {
				return
			}
			b, id, err = w.take(ctx, c, t)
			t.release()
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			in.o.D4Outage.Fail("claiming lines", err)
			in.sleep(ctx, in.backoff(fails))
			fails++
			continue
		}
		fails = 0
		in.o.D4Outage.OK(began)
		if b.ID == "" {
			continue // ctx ended while waiting
		}
		if !w.processSafely(ctx, c, p, b, b.ID != id) {
			// The batch stays in its processing list; wait before the
			// next attempt rather than spin on a bug.
			own = true
			in.sleep(ctx, in.o.BackoffMax)
		}
	}
}

// take claims a batch for c's slot while holding the turn: at once when
// the last claim was full (a backlog), after Options.Linger when it was
// short (a trickle), and after a blocking wait when the queue is empty.
// It returns an empty Batch when ctx ends first, and the ID it offered,
// so that a batch found in flight (another ID) is told apart.
func (w *Workers) take(ctx context.Context, c *d4queue.Consumer, t *turn) (d4queue.Batch, string, error) {
	in := w.in
	claim := true
	for ctx.Err() == nil {
		if claim {
			if t.short && !in.sleep(ctx, in.o.Linger) {
				break
			}
			id := in.o.NewID()
			began := in.o.D4Outage.Begin()
			b, err := c.Claim(ctx, id, in.o.BatchSize)
			if err != nil {
				return d4queue.Batch{}, id, err
			}
			in.o.D4Outage.OK(began)
			if b.ID != "" {
				t.short = b.Len() < in.o.BatchSize
				return b, id, nil
			}
			t.short = false
		}
		if t.polling {
			in.sleep(ctx, in.o.Poll)
			claim = true
			continue
		}
		began := in.o.D4Outage.Begin()
		got, err := c.Wait(ctx, in.o.Block)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if isServerError(err) {
				// The server answered but will not block (a proxy, a
				// renamed command): poll every -r instead.
				in.o.Log.Warn("d4 redis refuses blocking waits; polling the queue instead",
					"every", in.o.Poll.String(), "err", err)
				t.polling = true
				continue
			}
			return d4queue.Batch{}, "", err
		}
		in.o.D4Outage.OK(began)
		// A line moved into the slot: claim it with whatever follows it
		// within a linger. Nothing moved: wait again without claiming,
		// so that idle costs one command per wait.
		claim, t.short = got, got
	}
	return d4queue.Batch{}, "", nil
}

// processSafely is process with a panic turned into a logged, counted
// failure: a bug must not take down the daemon, and the batch is not lost
// (it stays in flight and is tried again).
func (w *Workers) processSafely(ctx context.Context, c *d4queue.Consumer, p *batchParser, b d4queue.Batch, inFlight bool) (ok bool) {
	in := w.in
	defer func() {
		if r := recover(); r != nil {
			in.o.Metrics.WorkerPanics.Inc()
			in.o.Log.Error("worker panic recovered; the batch stays in flight and is retried",
				"slot", c.Slot, "batch", b.ID, "lines", b.Len(), "panic", fmt.Sprint(r))
			ok = false
		}
	}()
	return w.process(ctx, c, p, b, inFlight)
}

// process counts one claimed batch and acknowledges it. A batch that was
// already in flight when claimed (left by a crash or an earlier outage) may
// have been counted before: its record is checked first. It reports false
// when the batch is left in flight.
func (w *Workers) process(ctx context.Context, c *d4queue.Consumer, p *batchParser, b d4queue.Batch, inFlight bool) bool {
	in := w.in
	start := in.clock.Now()
	p.reset()
	ref := start
	for _, line := range b.Lines {
		p.line(line, ref)
	}
	for range b.Long {
		p.skipTooLong()
	}
	rec := stats.Applied{Queue: c.Queue, Slot: c.Slot, ID: b.ID}
	if w.lock != nil {
		rec.LockKey, rec.Token = w.lock.Key(), w.lock.Token()
	}
	// Finish the batch even if a shutdown starts now; only an outage at
	// shutdown leaves it to the next start.
	work := context.WithoutCancel(ctx)
	counted := in.clock.Now()
	earlier, ok := in.countOnce(ctx, work, p.batch, rec, inFlight, "counting a batch")
	if !ok {
		return true
	}
	if earlier {
		// Counted by a run that died before acknowledging: nothing of it
		// is new, for the statistics or the metrics.
		in.o.Log.Info("batch in flight was already counted; acknowledging it", "slot", c.Slot, "batch", b.ID, "lines", b.Len())
		p.reset()
	}
	acked := in.clock.Now()
	for fails := 0; ; fails++ {
		began := in.o.D4Outage.Begin()
		err := c.Ack(work, b.ID)
		if err == nil {
			in.o.D4Outage.OK(began)
			break
		}
		in.o.D4Outage.Fail("acknowledging a batch", err)
		if !in.sleep(ctx, in.backoff(fails)) {
			return true
		}
	}
	end := in.clock.Now()
	p.publish(b.Len(), start, end)
	in.o.Metrics.BatchSeconds.Observe(end.Sub(start).Seconds())
	in.o.Log.Debug("batch", "slot", c.Slot, "batch", b.ID, "lines", b.Len(), "counted", p.batch.Len(),
		"in_flight", inFlight, "already_counted", earlier,
		"parse_ms", ms(counted.Sub(start)), "count_ms", ms(acked.Sub(counted)), "ack_ms", ms(end.Sub(acked)))
	return true
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// countOnce applies batch under rec exactly once. Whenever the outcome of
// an earlier attempt is unknown (a batch found in flight, or an Apply that
// failed: the connection may have died after Redis committed it), it asks
// the record before applying, and applies only on a definite "not applied".
// It reports whether the batch had been applied before this call tried
// anything, and false in ok when ctx ended first.
func (in *Ingester) countOnce(ctx, work context.Context, batch *stats.Batch, rec stats.Applied, unknown bool, what string) (earlier, ok bool) {
	tried := false
	refused := false
	defer func() {
		if refused && in.foreignN.Add(-1) == 0 {
			in.o.Metrics.CountingBlocked.Set(0)
		}
	}()
	for fails := 0; ; fails++ {
		began := in.o.CountingOutage.Begin()
		if unknown {
			applied, err := in.o.Store.IsApplied(work, rec)
			if err != nil {
				in.o.CountingOutage.Fail("checking a batch record", err)
				if !in.sleep(ctx, in.backoff(fails)) {
					return false, false
				}
				continue
			}
			if applied {
				in.o.CountingOutage.OK(began)
				return !tried, true
			}
		}
		triedBefore := tried
		tried = true
		err := in.o.Store.SaveNames(work, batch)
		if err == nil {
			err = in.o.Store.Apply(work, batch, &rec)
		}
		var foreign *stats.ForeignKeyError
		var full *stats.DrillFullError
		switch {
		case err == nil:
			in.o.CountingOutage.OK(began)
			in.repaired(refused)
			return false, true
		case errors.Is(err, stats.ErrAlreadyApplied):
			in.o.CountingOutage.OK(began)
			in.repaired(refused)
			return !triedBefore, true
		case errors.Is(err, stats.ErrLocked):
			// Another daemon owns the queue now and will count this batch;
			// the lock keeper is about to stop this one.
			in.o.Log.Error("not counting a batch: the queue belongs to another daemon now", "batch", rec.ID, "err", err)
			<-ctx.Done()
			return false, false
		case errors.As(err, &foreign), errors.As(err, &full):
			// Nothing was applied: a key the batch writes holds another
			// type (a foreign writer), or a drill-down string is full.
			// Counting waits until the operator acts; the batch stays in
			// flight, not acknowledged.
			in.o.CountingOutage.OK(began)
			if !refused {
				refused = true
				in.foreignN.Add(1)
				in.o.Metrics.CountingBlocked.Set(1)
			}
			if foreign != nil {
				in.reportForeign(foreign.Key, "not counting: a key the batch writes holds another type; the batch stays in the queue and is counted once the key is repaired", err)
			} else {
				in.reportForeign(full.Key, "not counting: a drill-down string of the counting redis is full; the batch stays in the queue", err)
			}
			if !in.sleep(ctx, in.o.BackoffMax) {
				return false, false
			}
			continue
		}
		in.o.CountingOutage.Fail(what, err)
		unknown = true
		if !in.sleep(ctx, in.backoff(fails)) {
			return false, false
		}
	}
}

// reportForeign logs a key that refuses the batch once, however often the
// batch is retried.
func (in *Ingester) reportForeign(key, msg string, err error) {
	in.o.Metrics.ForeignKeyRefusals.Inc()
	in.foreignMu.Lock()
	defer in.foreignMu.Unlock()
	if in.foreign[key] {
		return
	}
	in.foreign[key] = true
	in.o.Log.Error(msg, "err", err)
}

func (in *Ingester) repaired(refused bool) {
	if !refused {
		return
	}
	in.foreignMu.Lock()
	defer in.foreignMu.Unlock()
	if len(in.foreign) > 0 {
		in.o.Log.Info("counting again: the keys of the wrong type were repaired")
		clear(in.foreign)
	}
}

// firstSlot is the first slot of this daemon's member.
func (in *Ingester) firstSlot() int { return d4queue.MemberSlot(int(in.member.Load()), 0) }

// drainLeftovers counts batches in this member's slots beyond the current
// workers (the pool was shrunk) once at start; a slot's own worker finds
// its batch in flight at its first claim.
func (w *Workers) drainLeftovers(ctx context.Context) error {
	in := w.in
	slots, err := d4queue.MemberLeftovers(ctx, in.o.D4, in.o.Queue, int(in.member.Load()), in.o.Workers)
	if err != nil {
		return err
	}
	return w.drain(ctx, slots, "finishing a batch left by an earlier run with more workers")
}

// drain counts and acknowledges what is in flight in slots, until each is
// empty.
func (w *Workers) drain(ctx context.Context, slots []int, why string) error {
	in := w.in
	for _, slot := range slots {
		c := &d4queue.Consumer{Pool: in.o.D4, Queue: in.o.Queue, Slot: slot, MaxLine: in.o.MaxLine}
		p := in.newBatchParser()
		// A claim with a batch size of 0 returns what is in flight and
		// moves nothing new; repeated until the slot is empty, since a late
		// blocking pop may have left a line beside the tagged batch.
		for ctx.Err() == nil {
			id := in.o.NewID()
			b, err := c.Claim(ctx, id, 0)
			if err != nil {
				return err
			}
			if b.ID == "" {
				break
			}
			in.o.Log.Info(why, "slot", slot, "lines", b.Len())
			if !w.processSafely(ctx, c, p, b, b.ID != id) {
				return fmt.Errorf("batch left in slot %d failed", slot)
			}
			if w.taken != nil {
				w.taken()
			}
		}
	}
	return nil
}

// refreshGauges sets the queue gauges and returns the queue's length, or
// -1 when the D4 Redis does not answer.
func (in *Ingester) refreshGauges(ctx context.Context) int64 {
	q, proc, err := d4queue.LengthsFrom(ctx, in.o.D4, in.o.Queue, in.firstSlot(), in.o.Workers)
	if err != nil {
		return -1
	}
	in.o.Metrics.QueueLength.Set(float64(q))
	in.o.Metrics.ProcessingLength.Set(float64(proc))
	return q
}
