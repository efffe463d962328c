package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/D4-project/analyzer-d4-log/internal/compile"
	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/web"
)

// Names of the background parts, for the shutdown order and the log.
const (
	partWorkers  = "workers"
	partLock     = "lock keeper"
	partReporter = "progress reporter"
	partCompile  = "compile loop"
	partWeb      = "web server"
	partPruner   = "pruner"
	partSentinel = "sentinel watcher"
	partTakeover = "takeover of dead daemons' batches"
	partLease    = "compile lease keeper"
)

// shutdownOrder is the order the parts stop in, each only after the one
// before it has returned:
//
//  1. the pruner stops first: the shutdown needs nothing from it, every
//     step it stops between is safe (the next start finishes the day), and
//     it must stop while the consumer lock is still held, since only the
//     lock's holder may prune;
//  2. the workers stop taking lines and finish (count and acknowledge) the
//     batches they hold;
//  3. the lock keeper stops, since nothing is counted any more, and the
//     progress reporter logs what the last batches did;
//     The finder of dead daemons' batches (several daemons on one queue)
//     stops with the workers, finishing the batch it holds;
//  4. the compile loop draws what the last batches changed (bounded), then
//     the compile lease keeper releases the lease, so that another daemon
//     on the queue compiles at once;
//  5. the Sentinel watcher (redis_parsers sentinel://) stops once nothing
//     dials the counting Redis any more;
//  6. the web server stops last, so /healthz answers during all of it.
//
// After them the consumer lock is released and the pools are closed. A
// batch whose Redis is in an outage at that moment is left in its
// processing list, where the next start finds it.
var shutdownOrder = []string{partPruner, partWorkers, partTakeover, partLock, partReporter, partCompile, partLease, partSentinel, partWeb}

// Run consumes the D4 queue until ctx is cancelled or a part fails (the
// lock lost to another daemon), then stops the parts in shutdownOrder. srv
// is the web server, listening already, or nil.
func (d *Daemon) Run(ctx context.Context, srv *web.Server) error {
	cfg := d.cfg
	if err := os.MkdirAll(d.compiler.Dir, 0o755); err != nil {
		return fmt.Errorf("create output directory %s: %w", d.compiler.Dir, err)
	}
	d.log.Info("consuming", "queue", d4queue.QueueKey(cfg.Queue), "d4", fmt.Sprintf("%s/%d", cfg.D4.Addr, cfg.D4.DB),
		"counting", cfg.Parsers, "workers", cfg.Pool, "batch_size", cfg.BatchSize)
	parts := newSupervisor(ctx, d.log)
	// The web server and the reporter start first, so that /healthz
	// answers while start-up waits out an outage.
	if srv != nil {
		parts.start(partWeb, d.serve(srv))
	}
	parts.start(partReporter, d.ingester.Reporter(true).Run)
	if d.sentinel != nil {
		parts.start(partSentinel, d.sentinel.Watch)
	}
	lock, err := d.ingester.TakeLock(ctx)
	if err != nil || lock == nil {
		parts.stop()
		return err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := lock.Release(rctx); err != nil {
			d.log.Warn("could not release the consumer lock; the next start takes it over", "err", err)
		}
	}()
	parts.start(partLock, d.ingester.KeepLock(lock).Run)
	// Of the daemons on the queue, the compile lease's holder compiles,
	// writes the feeds and prunes (two pruners would write the same
	// archive file); the lease is asked once before the compile loop's
	// first compile.
	lease := &compile.Lease{Store: d.store, Queue: cfg.Queue, Token: lock.Token(),
		Clock: d.clock, Log: d.log, Metrics: d.metrics, TTL: d.store.Lease}
	lease.Try(ctx)
	d.lease.Store(lease)
	d.loop.Leader, d.pruner.Allowed = lease.Held, lease.Held
	parts.start(partLease, lease.Run)
	parts.start(partCompile, d.loop.Run)
	parts.start(partWorkers, d.ingester.Workers(lock).Run)
	parts.start(partTakeover, d.ingester.Takeover(lock).Run)
	parts.start(partPruner, d.pruner.Run)
	err = parts.wait()
	d.log.Info("stopped")
	return err
}

// supervisor runs the parts in one errgroup and stops them in
// shutdownOrder.
type supervisor struct {
	ctx     context.Context
	log     *slog.Logger
	g       errgroup.Group
	running map[string]*running
	// early receives the name of a part that returned before it was told
	// to stop; every part sends at most once, so it never blocks.
	early chan string
}

type running struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// serve runs the web server and, beside it, the investigation API's
// warm-up, which reads rankings into memory once a question is asked and
// ends with the server.
func (d *Daemon) serve(srv *web.Server) func(context.Context) error {
	return func(ctx context.Context) error {
		if d.inv == nil {
			return srv.Run(ctx)
		}
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.inv.Warm(wctx)
		}()
		err := srv.Run(ctx)
		cancel()
		<-done
		return err
	}
}

func newSupervisor(ctx context.Context, log *slog.Logger) *supervisor {
	return &supervisor{ctx: ctx, log: log, running: map[string]*running{}, early: make(chan string, len(shutdownOrder))}
}

// start runs part with a context that ends only when the part's turn to
// stop comes. Parts are started from one goroutine.
func (s *supervisor) start(name string, run func(context.Context) error) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(s.ctx))
	r := &running{cancel: cancel, done: make(chan struct{})}
	s.running[name] = r
	s.g.Go(func() error {
		defer close(r.done)
		err := run(pctx)
		if pctx.Err() == nil {
			s.early <- name
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// wait returns when ctx ends or a part returns on its own, after stopping
// every part in order; the error is the first a part returned.
func (s *supervisor) wait() error {
	select {
	case <-s.ctx.Done():
	case name := <-s.early:
		s.log.Info("stopping: a part stopped on its own", "part", name)
	}
	return s.stop()
}

// stop stops the started parts in shutdownOrder and returns the first
// error any of them returned.
func (s *supervisor) stop() error {
	for _, name := range shutdownOrder {
		if r, ok := s.running[name]; ok {
			r.cancel()
			<-r.done
		}
	}
	return s.g.Wait()
}
