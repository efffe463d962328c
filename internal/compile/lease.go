package compile

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// LeaseStore is what the compile lease needs of the counting Redis
// (stats.Store).
type LeaseStore interface {
	HoldCompile(ctx context.Context, queue, token string) (bool, error)
	ReleaseCompile(ctx context.Context, queue, token string) error
}

// Lease keeps the compile lease of a queue (stats.CompileLeaseKey): of the
// daemons on one queue, only the holder compiles the output, writes the
// MISP feed and the blocklist, and prunes (SPEC §14). Every second it
// renews the lease or, when nobody holds it (its holder died and the lease
// expired, or it stopped and released it), takes it. Loop.Leader and the
// pruner ask Held before each compile or pass.
type Lease struct {
	Store   LeaseStore
	Queue   string
	Token   string // this daemon's (its consumer lock's)
	Clock   clockwork.Clock
	Log     *slog.Logger
	Metrics *metrics.Metrics
	// Every is the renewal period (default 1s); it must be well inside
	// TTL, the lease's time to live (stats.Store.Lease; default
	// stats.DefaultLease).
	Every, TTL time.Duration

	held atomic.Bool
	// renewed is when the lease was last renewed; only Try touches it.
	renewed time.Time
}

// Held reports whether this daemon held the lease at its last renewal.
func (l *Lease) Held() bool { return l.held.Load() }

// Try takes or renews the lease once and reports whether it is held. An
// error (the counting Redis unreachable) changes nothing until the lease
// would have expired since its last renewal: then it counts as lost, so a
// daemon cut off from the lease stops compiling before another can take
// it by its TTL. Not safe for concurrent use.
func (l *Lease) Try(ctx context.Context) bool {
	ttl := l.TTL
	if ttl <= 0 {
		ttl = stats.DefaultLease
	}
	ok, err := l.Store.HoldCompile(ctx, l.Queue, l.Token)
	now := l.Clock.Now()
	switch {
	case err == nil && ok:
		l.renewed = now
	case err != nil && l.held.Load() && now.Sub(l.renewed) < ttl-2*l.every():
		return true
	}
	if err != nil {
		ok = false
	}
	was := l.held.Swap(ok)
	switch {
	case ok && !was:
		l.Log.Info("compile lease taken: this daemon compiles the output", "lease_holder", l.Token)
	case !ok && was:
		l.Log.Warn("compile lease lost: another daemon on the queue compiles now", "lease_holder", l.Token, "err", err)
	}
	if ok {
		l.Metrics.CompileLeaseHeld.Set(1)
	} else {
		l.Metrics.CompileLeaseHeld.Set(0)
	}
	return ok
}

func (l *Lease) every() time.Duration {
	if l.Every <= 0 {
		return time.Second
	}
	return l.Every
}

// Run keeps the lease until ctx ends, then releases it so that another
// daemon compiles at once.
func (l *Lease) Run(ctx context.Context) error {
	t := l.Clock.NewTicker(l.every())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if l.held.Swap(false) {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				if err := l.Store.ReleaseCompile(rctx, l.Queue, l.Token); err != nil {
					l.Log.Warn("could not release the compile lease; another daemon takes it when it expires", "err", err)
				} else {
					l.Log.Info("compile lease released", "lease_holder", l.Token)
				}
				l.Metrics.CompileLeaseHeld.Set(0)
			}
			return nil
		case <-t.Chan():
			l.Try(ctx)
		}
	}
}
