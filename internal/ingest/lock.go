package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// ErrLockLost says another daemon took the queue over.
var ErrLockLost = errors.New("another analyzer-d4-log took this queue over")

// TakeLock makes this daemon a member of the queue (the first free member's
// lock: member 0 for a lone daemon, as it always was), then checks that the
// counting Redis is fit to count into, riding out an outage of the counting
// Redis. A queue whose every member is held by a live daemon, a Redis that
// forbids naming connections, or one unfit to count into are refused. A
// nil Lock with a nil error means ctx ended first.
//
// The lock comes before the checks: a flush marks DB 0 before it looks for
// live daemons, so one of the two always sees the other.
func (in *Ingester) TakeLock(ctx context.Context) (*stats.Lock, error) {
	var l *stats.Lock
	err := in.untilDone(ctx, in.o.CountingOutage, "taking the consumer lock", func() error {
		var err error
		l, err = in.o.Store.Join(ctx, in.o.Queue, in.o.NewID(), in.o.LockWait)
		return err
	}, func(err error) bool { return errors.Is(err, stats.ErrLocked) || isPermissionError(err) })
	if isPermissionError(err) {
		return nil, fmt.Errorf("take the consumer lock: %w; the counting redis must allow CLIENT SETNAME and CLIENT LIST to this user", err)
	}
	if err != nil || l == nil {
		return nil, err
	}
	if err := in.untilDone(ctx, in.o.CountingOutage, "checking the counting redis at start",
		func() error { return in.o.Store.Check(ctx) },
		func(err error) bool { return errors.Is(err, stats.ErrUnfit) }); err != nil || ctx.Err() != nil {
		_ = l.Release(context.WithoutCancel(ctx))
		return nil, err
	}
	in.member.Store(int64(l.Member()))
	if l.Member() > 0 {
		in.o.Log.Info("another daemon consumes this queue too; this one joins it", "member", l.Member(),
			"lock", l.Key(), "first_slot", d4queue.MemberSlot(l.Member(), 0))
	}
	return l, nil
}

// Member is this daemon's member number on its queue (0 for a lone
// daemon), once TakeLock has returned.
func (in *Ingester) Member() int { return int(in.member.Load()) }

// isPermissionError tells an ACL refusal, which waiting will not cure,
// from an outage.
func isPermissionError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(string(re), "NOPERM")
}

// LockKeeper keeps the consumer lock: every second it checks that the lock
// is still this daemon's and renews its lease.
type LockKeeper struct {
	in   *Ingester
	lock *stats.Lock
}

// KeepLock returns the keeper of l.
func (in *Ingester) KeepLock(l *stats.Lock) *LockKeeper { return &LockKeeper{in: in, lock: l} }

// Run checks the lock until ctx ends (nil) or another daemon has taken it
// (ErrLockLost: the daemon must stop taking lines at once).
func (k *LockKeeper) Run(ctx context.Context) error {
	t := k.in.clock.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.Chan():
			err := k.lock.Keep(ctx)
			if errors.Is(err, stats.ErrLocked) {
				return fmt.Errorf("%w: %v", ErrLockLost, err)
			}
			if err != nil && ctx.Err() == nil {
				k.in.o.CountingOutage.Fail("keeping the consumer lock", err)
			}
		}
	}
}
