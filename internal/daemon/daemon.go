// Package daemon wires the pipeline: the Redis pools, the parser workers
// that take batches from the D4 queue and count them, the compile loop, the
// web server and the order they stop in.
//
// Shutdown order: stop taking lines; let every worker finish (count and
// acknowledge) the batch it holds; compile what changed; stop the web
// server; close the pools. A batch whose Redis is in an outage at that
// moment is left in its processing list, where the next start finds it.
package daemon

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/D4-project/analyzer-d4-log/internal/compile"
	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/sshd"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Options configure a Daemon. Now, NewID and Jitter are injected so tests
// control time and randomness; zero values mean the real ones.
type Options struct {
	Config   *config.Config
	Log      *slog.Logger
	Registry *prometheus.Registry // private registry for /metrics; created when nil
	Version  string

	// Poll is how long to wait before claiming again when the D4 Redis
	// refuses to block (the -r flag).
	Poll time.Duration
	// Block is how long one blocking wait on the queue lasts; it bounds
	// how long a shutdown waits for an idle worker. Default 1s.
	Block time.Duration
	// BackoffMax caps the wait between retries during an outage.
	BackoffMax time.Duration
	// LockWait is how long a start waits for another daemon on the same
	// queue to stop before refusing to run. Default 15s.
	LockWait time.Duration

	Now    func() time.Time
	NewID  func() string
	Jitter func() float64 // in [0,1)
}

// Daemon is one analyzer process.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	version string

	poll, block, backoffMax, lockWait time.Duration
	now                               func() time.Time
	newID                             func() string
	jitter                            func() float64

	d4Pool    *redis.Pool
	store     *stats.Store
	compiler  *compile.Compiler
	d4Outage  *outage
	cntOutage *outage

	// lockKey and lockToken name the consumer lock every transaction
	// requires; set once at start, before the workers, when it was taken.
	lockKey, lockToken string

	lastCounted atomic.Int64 // unix nanoseconds of the last counted line
	lastCompile atomic.Int64 // unix nanoseconds of the last successful compile

	progress progress

	// parse is sshd.Parse; a test replaces it to prove that a parser panic
	// costs one line, not the daemon.
	parse func(line []byte, ref time.Time, loc *time.Location) (sshd.Event, sshd.Reason)
}

// New builds a daemon; it dials nothing yet.
func New(o Options) *Daemon {
	d := &Daemon{
		cfg: o.Config, log: o.Log, reg: o.Registry, version: o.Version,
		poll: o.Poll, block: o.Block, backoffMax: o.BackoffMax, lockWait: o.LockWait,
		now: o.Now, newID: o.NewID, jitter: o.Jitter,
	}
	d.parse = sshd.Parse
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.reg == nil {
		d.reg = prometheus.NewRegistry()
	}
	if d.poll <= 0 {
		d.poll = time.Second
	}
	if d.block <= 0 {
		d.block = time.Second
	}
	if d.lockWait <= 0 {
		d.lockWait = 15 * time.Second
	}
	if d.backoffMax <= 0 {
		d.backoffMax = 5 * time.Second
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.newID == nil {
		d.newID = randomID
	}
	if d.jitter == nil {
		d.jitter = rand.Float64
	}
	reasons := make([]string, 0, len(sshd.Reasons())+1)
	for _, r := range sshd.Reasons() {
		reasons = append(reasons, r.String())
	}
	reasons = append(reasons, reasonPanic)
	d.metrics = metrics.New(d.reg, d.version, reasons)
	cfg := d.cfg
	d.d4Outage = newOutage("d4", cfg.D4.Addr, d.log, d.metrics, d.now)
	d.cntOutage = newOutage("counting", cfg.Parsers, d.log, d.metrics, d.now)
	d.d4Pool = newPool(cfg.D4.Addr, cfg.D4.DB, cfg.Pool+4, d.d4Outage)
	// Workers count through DB 0 connections (the transaction starts
	// there), one each; compiles and health checks read DB 1 through a few
	// of their own, so a long compile never holds up counting.
	// Drawing waits mostly on fsync and Redis round trips, so four at once
	// finish a big compile several times sooner without taking much CPU.
	const parallel = 4
	d.store = &stats.Store{
		Stats:    newPool(cfg.Parsers, stats.StatsDB, parallel+2, d.cntOutage),
		Attempts: newPool(cfg.Parsers, stats.AttemptsDB, cfg.Pool+1, d.cntOutage),
	}
	d.compiler = &compile.Compiler{
		Store:    d.store,
		Dir:      SSHDDir(cfg.OutputDir),
		ChartTop: cfg.ChartTop,
		Log:      d.log,
		Parallel: parallel,
	}
	return d
}

// reasonPanic labels lines whose parsing panicked.
const reasonPanic = "panic"

// SSHDDir is where the sshd parser's output goes under the output dir.
func SSHDDir(outputDir string) string { return outputDir + "/sshd" }

// Close releases the pools.
func (d *Daemon) Close() {
	d.d4Pool.Close()
	d.store.Stats.Close()
	d.store.Attempts.Close()
}

// Registry is the daemon's private metrics registry.
func (d *Daemon) Registry() *prometheus.Registry { return d.reg }

// newPool makes a pool whose idle connections are checked before reuse
// when they predate the server's last failure: after a Redis restart every
// idle socket is dead, and handing them out one by one would turn one
// outage into a string of short ones.
func newPool(addr string, db, max int, o *outage) *redis.Pool {
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialContext(ctx, "tcp", addr,
				redis.DialDatabase(db),
				redis.DialConnectTimeout(5*time.Second),
				redis.DialReadTimeout(10*time.Second),
				redis.DialWriteTimeout(10*time.Second),
			)
		},
		MaxIdle:     max,
		MaxActive:   max,
		Wait:        true,
		IdleTimeout: 5 * time.Minute,
		TestOnBorrow: func(c redis.Conn, t time.Time) error {
			if time.Since(t) < time.Minute && t.UnixNano() > o.lastFail.Load() {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

func randomID() string {
	var b [16]byte
	// crypto/rand never fails on Linux; a failure would panic rather than
	// hand out a predictable ID.
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sleep waits d or until ctx is done; it reports whether the full wait
// happened.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff is the wait before retry n (0-based): exponential from 50 ms,
// capped, with jitter so that many workers do not retry in step.
func (d *Daemon) backoff(n int) time.Duration {
	base := 50 * time.Millisecond
	w := base << min(n, 16)
	if w > d.backoffMax || w <= 0 {
		w = d.backoffMax
	}
	return time.Duration(float64(w) * (0.5 + d.jitter()/2))
}

// outage tracks one Redis' reachability so that an outage is logged once
// when it starts and once when it ends, however many workers hit it.
type outage struct {
	server, addr string
	log          *slog.Logger
	m            *metrics.Metrics
	now          func() time.Time

	lastFail atomic.Int64 // unix nanoseconds of the last failure, wall clock

	mu    sync.Mutex
	down  bool
	since time.Time
}

func newOutage(server, addr string, log *slog.Logger, m *metrics.Metrics, now func() time.Time) *outage {
	m.RedisUp.WithLabelValues(server).Set(1)
	return &outage{server: server, addr: addr, log: log, m: m, now: now}
}

func (o *outage) fail(what string, err error) {
	o.lastFail.Store(time.Now().UnixNano())
	o.m.RedisErrors.WithLabelValues(o.server).Inc()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		return
	}
	o.down, o.since = true, o.now()
	o.m.RedisUp.WithLabelValues(o.server).Set(0)
	o.log.Error("redis outage: retrying with backoff; nothing is taken from the queue meanwhile",
		"server", o.server, "addr", o.addr, "while", what, "err", err)
}

func (o *outage) ok() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down {
		return
	}
	o.down = false
	o.m.RedisUp.WithLabelValues(o.server).Set(1)
	o.log.Info("redis outage over", "server", o.server, "addr", o.addr,
		"lasted", o.now().Sub(o.since).Round(time.Millisecond).String())
}

func (o *outage) isDown() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}

// isServerError tells a Redis error reply (the server answered) from a
// network failure.
func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
