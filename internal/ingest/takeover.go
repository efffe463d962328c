package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Takeover finishes the batches in flight of dead daemons on the queue
// (SPEC §14): every Options.TakeoverEvery it lists the slots in flight, and
// for each member other than this one's whose holder is dead (its
// connection gone, or its lease expired: see stats.Lock) it takes that
// member's lock with this daemon's token, counts and acknowledges what is in
// the member's slots under it, and releases it. Taking the lock is one
// conditional write, so two live daemons never drain one member at once;
// and every transaction of the drain requires the member's lock to hold
// this daemon's token, so a daemon that was only cut off cannot count the
// same slot meanwhile.
type Takeover struct {
	in   *Ingester
	lock *stats.Lock // this daemon's own membership
}

// Takeover returns the finder of dead members' batches for the daemon
// holding lock.
func (in *Ingester) Takeover(lock *stats.Lock) *Takeover { return &Takeover{in: in, lock: lock} }

// Run looks for dead members' batches until ctx ends.
func (t *Takeover) Run(ctx context.Context) error {
	tick := t.in.clock.NewTicker(t.in.o.TakeoverEvery)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.Chan():
			err := t.Once(ctx)
			if err != nil && ctx.Err() == nil && !failing {
				// An outage (logged as such by the parts that count) or a
				// race lost to another daemon: the next round looks again.
				// Logged once per streak, not every round of an outage.
				t.in.o.Log.Warn("looking for the batches of dead daemons failed; trying again", "every", t.in.o.TakeoverEvery.String(), "err", err)
			}
			failing = err != nil
		}
	}
}

// Once takes over every dead member's slots in flight now. A lone daemon
// (member 0, no other member registered) asks only the counting Redis, so
// that an idle D4 Redis serves it no more commands than before.
func (t *Takeover) Once(ctx context.Context) error {
	in := t.in
	registered, err := in.o.Store.Members(ctx, in.o.Queue)
	if err != nil {
		return err
	}
	own := t.lock.Member()
	if own == 0 && len(registered) == 0 {
		return nil
	}
	slots, err := d4queue.InFlight(ctx, in.o.D4, in.o.Queue)
	if err != nil {
		return err
	}
	byMember := map[int][]int{}
	var order []int
	for _, s := range slots {
		m := d4queue.SlotMember(s)
		if m == own {
			continue
		}
		if _, ok := byMember[m]; !ok {
			order = append(order, m)
		}
		byMember[m] = append(byMember[m], s)
	}
	var errs []error
	for _, m := range order {
		if err := t.member(ctx, m, byMember[m]); err != nil {
			errs = append(errs, fmt.Errorf("member %d: %w", m, err))
		}
	}
	// A member with nothing in flight and no holder has nothing left to
	// take over.
	for _, m := range registered {
		if _, busy := byMember[m]; !busy && m != own {
			if err := in.o.Store.ForgetMember(ctx, in.o.Queue, m); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// member drains the slots of member m if its holder is dead.
func (t *Takeover) member(ctx context.Context, m int, slots []int) error {
	in := t.in
	alive, err := in.o.Store.MemberAlive(ctx, in.o.Queue, m)
	if err != nil || alive {
		return err
	}
	l, err := in.o.Store.TakeOver(ctx, in.o.Queue, m, t.lock.Token())
	if err != nil || l == nil {
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := l.Release(rctx); err != nil {
			in.o.Log.Warn("could not release the lock of a dead daemon's member after taking its batches over; it expires with its lease", "member", m, "err", err)
		}
	}()
	in.o.Log.Info("a daemon on this queue died; finishing its batches in flight", "member", m, "lock", l.Key(), "slots", len(slots))
	// The member's lease is renewed while its batches are drained; losing
	// it (another daemon judged this one dead) stops the drain, whose
	// batch stays in flight for the new holder.
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		k := in.clock.NewTicker(time.Second)
		defer k.Stop()
		for {
			select {
			case <-dctx.Done():
				return
			case <-k.Chan():
				if err := l.Keep(dctx); errors.Is(err, stats.ErrLocked) {
					in.o.Log.Warn("stopped finishing a dead daemon's batches: another daemon took them", "member", m, "err", err)
					cancel()
					return
				}
			}
		}
	}()
	w := &Workers{in: in, lock: l, taken: in.o.Metrics.Takeovers.Inc}
	err = w.drain(dctx, slots, "finishing a batch of a daemon that died")
	cancel()
	<-kept
	return err
}
