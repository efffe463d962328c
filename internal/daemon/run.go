package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/sshd"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/web"
)

// Run consumes the D4 queue until ctx is cancelled, then shuts down in the
// documented order and returns nil.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.cfg
	if err := os.MkdirAll(d.compiler.Dir, 0o755); err != nil {
		return fmt.Errorf("create output directory %s: %w", d.compiler.Dir, err)
	}
	var srv *web.Server
	if cfg.HTTPServer != "" {
		h, err := web.Handler(cfg.OutputDir, d.health, d.reg)
		if err != nil {
			return fmt.Errorf("web server: %w", err)
		}
		srv, err = web.Listen(cfg.HTTPServer, filepath.Join(cfg.Dir, config.FileHTTPServer), h)
		if err != nil {
			return err
		}
		srv.SetLogger(d.log)
		d.log.Info("serving output, /healthz and /metrics", "addr", srv.Addr().String())
	}
	d.log.Info("consuming", "queue", d4queue.QueueKey(cfg.Queue), "d4", fmt.Sprintf("%s/%d", cfg.D4.Addr, cfg.D4.DB),
		"counting", cfg.Parsers, "workers", cfg.Pool, "batch_size", cfg.BatchSize)

	// The web server and the reports start first, so that /healthz
	// answers while start-up waits out an outage.
	bgCtx, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); d.report(bgCtx) }()
	webCtx, stopWebCtx := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWebCtx()
	webDone := make(chan error, 1)
	if srv != nil {
		go func() { webDone <- srv.Serve(webCtx) }()
	}
	stopWeb := func() {
		stopBg()
		bg.Wait()
		stopWebCtx()
		if srv != nil {
			if err := <-webDone; err != nil {
				d.log.Error("web server stopped with an error", "err", err)
			}
		}
	}

	// The lock first, then the checks: a flush marks DB 0 before it looks
	// for live daemons, so one of the two always sees the other.
	lock, err := d.lock(ctx)
	if err != nil {
		stopWeb()
		return err
	}
	if lock != nil {
		d.lockKey, d.lockToken = lock.Key(), lock.Token()
	}
	if err := d.preflight(ctx); err != nil {
		stopWeb()
		if lock != nil {
			_ = lock.Release(context.WithoutCancel(ctx))
		}
		return err
	}
	// Workers stop when the daemon is told to, or when another daemon has
	// taken the queue over (then this one must not take a line more).
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	lost := make(chan error, 1)
	if lock != nil {
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := lock.Release(rctx); err != nil {
				d.log.Warn("could not release the consumer lock; the next start takes it over", "err", err)
			}
		}()
		bg.Add(1)
		go func() { defer bg.Done(); d.keepLock(bgCtx, lock, lost) }()
	}
	// Batches left in flight by a run with more workers are counted before
	// anything new is taken. An outage here is ridden out like any other.
	_ = d.untilDone(wctx, d.d4Outage, "looking for batches left by an earlier run",
		func() error { return d.drainLeftovers(wctx) }, never)
	bg.Add(1)
	go func() { defer bg.Done(); d.compileLoop(bgCtx) }()

	var workers sync.WaitGroup
	for slot := 0; slot < cfg.Pool; slot++ {
		workers.Add(1)
		go func() { defer workers.Done(); d.worker(wctx, slot) }()
	}
	var lostErr error
	select {
	case <-ctx.Done():
	case lostErr = <-lost:
		d.log.Error("stopping: another daemon took this queue over", "err", lostErr)
	}
	stopWorkers()
	d.log.Info("stopping: finishing the batches in flight")
	workers.Wait()
	// The last compile is bounded so that a stop stays quick; what it does
	// not draw stays marked and is drawn at the next start.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownCompile)
	defer cancel()
	// The compile loop stops first, so the last compile is the only one.
	stopBg()
	bg.Wait()
	d.compileOnce(final, false)
	stopWeb()
	d.log.Info("stopped")
	return lostErr
}

// lock takes the queue's consumer lock, riding out an outage of the
// counting Redis; another live daemon on the queue, or a Redis that forbids
// naming connections, is refused. A nil Lock with a nil error means ctx
// ended first.
func (d *Daemon) lock(ctx context.Context) (*stats.Lock, error) {
	var l *stats.Lock
	err := d.untilDone(ctx, d.cntOutage, "taking the consumer lock", func() error {
		var err error
		l, err = d.store.Lock(ctx, d.cfg.Queue, d.newID(), d.lockWait)
		return err
	}, func(err error) bool { return errors.Is(err, stats.ErrLocked) || isPermissionError(err) })
	if isPermissionError(err) {
		return nil, fmt.Errorf("take the consumer lock: %w; the counting redis must allow CLIENT SETNAME and CLIENT LIST to this user", err)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// untilDone calls fn until it succeeds or fails for good (permanent says
// which errors are), riding out an outage of o with backoff. It returns nil
// when ctx ends first.
func (d *Daemon) untilDone(ctx context.Context, o *outage, what string, fn func() error, permanent func(error) bool) error {
	for fails := 0; ; fails++ {
		err := fn()
		if err == nil {
			o.ok()
			return nil
		}
		if permanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		o.fail(what, err)
		if !sleep(ctx, d.backoff(fails)) {
			return nil
		}
	}
}

// never is the permanent test of work whose every error is an outage.
func never(error) bool { return false }

// isPermissionError tells an ACL refusal, which waiting will not cure,
// from an outage.
func isPermissionError(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(string(re), "NOPERM")
}

// keepLock checks the consumer lock every second and reports on lost when
// another daemon took it.
func (d *Daemon) keepLock(ctx context.Context, l *stats.Lock, lost chan<- error) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := l.Keep(ctx)
			if errors.Is(err, stats.ErrLocked) {
				lost <- err
				return
			}
			if err != nil && ctx.Err() == nil {
				d.cntOutage.fail("keeping the consumer lock", err)
			}
		}
	}
}

// preflight waits until the counting Redis answers and is fit to count
// into; a Redis that is not (too old, a flush half done) is refused with
// what to do, since counting into it would give wrong numbers.
func (d *Daemon) preflight(ctx context.Context) error {
	return d.untilDone(ctx, d.cntOutage, "checking the counting redis at start",
		func() error { return d.store.Check(ctx) },
		func(err error) bool { return errors.Is(err, stats.ErrUnfit) })
}

// shutdownCompile bounds the compile at shutdown.
const shutdownCompile = 8 * time.Second

// compileLoop compiles every compile_interval. One goroutine does all
// compiles, so two never draw the same file at once.
func (d *Daemon) compileLoop(ctx context.Context) {
	// A first compile right away, so the pages exist (and show what is
	// already counted) from the start, not one interval later.
	d.compileOnce(ctx, false)
	t := time.NewTicker(d.cfg.CompileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.compileOnce(ctx, false)
		}
	}
}

// compileOnce compiles and logs; a failed compile is retried by the next.
func (d *Daemon) compileOnce(ctx context.Context, all bool) bool {
	res, err := d.compiler.Compile(ctx, all)
	d.metrics.CompileSeconds.Observe(res.Duration.Seconds())
	d.metrics.ChartsRendered.Add(float64(res.Charts))
	if err != nil {
		if d.cntOutage.isDown() {
			d.log.Warn("compile skipped: counting redis unreachable", "err", err)
		} else {
			d.log.Error("compile failed; the next compile retries", "charts", res.Charts, "err", err)
		}
		return false
	}
	now := d.now()
	d.lastCompile.Store(now.UnixNano())
	d.metrics.LastCompile.Set(float64(now.UnixNano()) / 1e9)
	if res.Charts > 0 || all {
		d.log.Info("compiled", "charts", res.Charts, "seconds", fmt.Sprintf("%.3f", res.Duration.Seconds()))
	}
	return true
}

// health answers /healthz.
func (d *Daemon) health(ctx context.Context) web.Status {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var st web.Status
	// A pooled connection may predate a Redis restart and fail once; the
	// pool drops it, so a second try tells an outage from a stale socket.
	q, _, err := d4queue.Lengths(ctx, d.d4Pool, d.cfg.Queue, 0)
	if err != nil {
		q, _, err = d4queue.Lengths(ctx, d.d4Pool, d.cfg.Queue, 0)
	}
	st.D4Redis = err == nil
	st.QueueLength = q
	if err = d.store.Ping(ctx); err != nil {
		err = d.store.Ping(ctx)
	}
	st.CountingRedis = err == nil
	if n := d.lastCounted.Load(); n != 0 {
		s := d.now().Sub(time.Unix(0, n)).Seconds()
		st.SecondsSinceLastCounted = &s
	}
	if n := d.lastCompile.Load(); n != 0 {
		t := time.Unix(0, n).UTC()
		st.LastCompile = &t
	}
	return st
}

// progress accumulates what the workers did between two reports.
type progress struct {
	mu      sync.Mutex
	lines   int64
	counted int64
	skipped [16]int64
	panics  int64
}

func (p *progress) add(lines, counted int64, skipped [16]int64, panics int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines += lines
	p.counted += counted
	for i, n := range skipped {
		p.skipped[i] += n
	}
	p.panics += panics
}

func (p *progress) take() (lines, counted int64, skipped [16]int64, panics int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines, counted, skipped, panics = p.lines, p.counted, p.skipped, p.panics
	p.lines, p.counted, p.skipped, p.panics = 0, 0, [16]int64{}, 0
	return
}

// skippedSummary renders skip counts as "not_sshd=3 too_long=1".
func skippedSummary(skipped [16]int64, panics int64) string {
	var b strings.Builder
	for r, n := range skipped {
		if n > 0 {
			fmt.Fprintf(&b, "%s=%d ", sshd.Reason(r), n)
		}
	}
	if panics > 0 {
		fmt.Fprintf(&b, "%s=%d ", reasonPanic, panics)
	}
	return strings.TrimSpace(b.String())
}

// reportEvery is how often progress and queue gauges are refreshed.
const reportEvery = 10 * time.Second

// report logs progress while there is work and keeps the queue gauges
// fresh.
func (d *Daemon) report(ctx context.Context) {
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			q, proc, err := d4queue.Lengths(ctx, d.d4Pool, d.cfg.Queue, d.cfg.Pool)
			if err == nil {
				d.metrics.QueueLength.Set(float64(q))
				d.metrics.ProcessingLength.Set(float64(proc))
			}
			lines, counted, skipped, panics := d.progress.take()
			secs := now.Sub(last).Seconds()
			last = now
			if lines == 0 {
				continue
			}
			d.log.Info("progress",
				"lines_per_s", fmt.Sprintf("%.0f", float64(lines)/secs),
				"lines", lines, "counted", counted,
				"skipped", skippedSummary(skipped, panics),
				"queue", q)
		}
	}
}

// ErrInterrupted is returned by RunFile when ctx ends before the file does.
var ErrInterrupted = errors.New("interrupted before the end of the input")
