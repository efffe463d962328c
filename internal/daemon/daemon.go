// Package daemon is wiring only: it builds the parts of the analyzer (the
// Redis pools, the ingest workers, the lock keeper, the progress reporter,
// the compile loop, the web server), runs them, and stops them in the
// order written in shutdownOrder.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/D4-project/analyzer-d4-log/internal/api"
	"github.com/D4-project/analyzer-d4-log/internal/blocklist"
	"github.com/D4-project/analyzer-d4-log/internal/compile"
	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/geoip"
	"github.com/D4-project/analyzer-d4-log/internal/ingest"
	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/misp"
	"github.com/D4-project/analyzer-d4-log/internal/parsers"
	"github.com/D4-project/analyzer-d4-log/internal/retention"
	"github.com/D4-project/analyzer-d4-log/internal/sentinel"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Options configure a Daemon. Clock, NewID and Jitter are injected so tests
// control time and randomness; zero values mean the real ones.
type Options struct {
	Config   *config.Config
	Log      *slog.Logger
	Registry *prometheus.Registry // private registry for /metrics; created when nil
	Version  string
	// Parsers are the parsers to run (-a, -o); all of them when nil.
	Parsers []parsers.Entry

	// Poll is how long to wait before claiming again when the D4 Redis
	// refuses to block (the -r flag).
	Poll time.Duration
	// Block, Linger, BackoffMax, LockWait and StartWait: see
	// ingest.Options.
	Block, Linger, BackoffMax, LockWait, StartWait time.Duration
	// File says the daemon reads a file (-f): outages then hold up the
	// file, not the queue, and the log says so.
	File bool

	Clock  clockwork.Clock
	NewID  func() string
	Jitter func() float64 // in [0,1)

	// ArchiveDir is where pruned days are archived (SPEC §12); "archive"
	// in the working directory when empty.
	ArchiveDir string
	// GeoIP are the databases of SPEC §13 (nil: none configured).
	GeoIP *geoip.Databases

	// wrapParse lets a test replace the parser (see ingest).
	wrapParse func(parsers.Parser) parsers.Parser
}

// Daemon is one analyzer process.
type Daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	clock   clockwork.Clock

	d4Pool    *redis.Pool
	store     *stats.Store
	compiler  *compile.Compiler
	loop      *compile.Loop
	ingester  *ingest.Ingester
	d4Outage  *ingest.Outage
	cntOutage *ingest.Outage
	archive   *retention.Archive
	pruner    *retention.Pruner
	geoip     *geoip.Databases
	// sentinel finds the counting master when redis_parsers names
	// Sentinels (SPEC §14); nil for one counting Redis.
	sentinel *sentinel.Client
	// lease is the compile lease of a running daemon (nil before Run has
	// the consumer lock), for /healthz.
	lease atomic.Pointer[compile.Lease]
	// inv is the investigation API when Listen built the web server.
	inv *api.API
}

// compileParallel is how many charts a compile draws at once: drawing
// waits mostly on fsync and Redis round trips, so four at once finish a big
// compile several times sooner without taking much CPU.
const compileParallel = 4

// shutdownCompile bounds the compile at shutdown.
const shutdownCompile = 8 * time.Second

// New builds a daemon; it dials nothing yet.
func New(o Options) *Daemon {
	d := &Daemon{cfg: o.Config, log: o.Log, reg: o.Registry, clock: o.Clock, geoip: o.GeoIP}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.reg == nil {
		d.reg = prometheus.NewRegistry()
	}
	if d.clock == nil {
		d.clock = clockwork.NewRealClock()
	}
	if o.Parsers == nil {
		o.Parsers = parsers.Registry()
	}
	d.metrics = metrics.New(d.reg, o.Version, ingest.SkipReasons(o.Parsers))
	cfg := d.cfg
	d4Meanwhile, cntMeanwhile := "nothing is taken from the queue meanwhile", "nothing is taken from the queue meanwhile"
	if o.File {
		cntMeanwhile = "reading the file waits meanwhile"
	}
	d.d4Outage = ingest.NewOutage(metrics.ServerD4, cfg.D4.Addr, d4Meanwhile, d.log, d.metrics, d.clock)
	d.cntOutage = ingest.NewOutage(metrics.ServerCounting, cfg.Parsers, cntMeanwhile, d.log, d.metrics, d.clock)
	d.d4Pool = newPool(directDial(cfg.D4.Addr), nil, cfg.D4.DB, cfg.Pool+4, d.d4Outage)
	d.sentinel = d.newSentinel()
	// Workers count through DB 0 connections (the transaction starts
	// there), one each; compiles and health checks read DB 1 through a few
	// of their own, so a long compile never holds up counting.
	d.store = &stats.Store{
		Stats:       d.countingPool(stats.StatsDB, compileParallel+2),
		Attempts:    d.countingPool(stats.AttemptsDB, cfg.Pool+2),
		NoDrill:     !cfg.Drilldown,
		MinReplicas: cfg.MinReplicas,
	}
	d.compiler = &compile.Compiler{
		Store:    d.store,
		Dir:      SSHDDir(cfg.OutputDir),
		ChartTop: cfg.ChartTop,
		Log:      d.log,
		Parallel: compileParallel,
		Kinds:    activeKinds(o.GeoIP),
	}
	d.loop = &compile.Loop{
		Compiler: d.compiler, Interval: cfg.CompileInterval, Final: shutdownCompile,
		Clock: d.clock, Log: d.log, Metrics: d.metrics, CountingDown: d.cntOutage.Down,
		Shares:   shares(cfg, d.store, d.clock, d.log),
		Location: cfg.Location, Zone: cfg.TimezoneName,
	}
	io := ingest.Options{
		Store: d.store, D4: d.d4Pool, Queue: cfg.Queue, Workers: cfg.Pool,
		BatchSize: cfg.BatchSize, MaxLine: cfg.MaxLineBytes,
		Parsers: o.Parsers,
		Parse:   parsers.Options{Location: cfg.Location, MaxAge: cfg.MaxAge(), MaxValueBytes: cfg.MaxValueBytes},
		Metrics: d.metrics, Log: d.log,
		Memory:   stats.Memory{Days: cfg.DedupeDays},
		D4Outage: d.d4Outage, CountingOutage: d.cntOutage,
		Block: o.Block, Poll: o.Poll, Linger: o.Linger, BackoffMax: o.BackoffMax,
		LockWait: o.LockWait, StartWait: o.StartWait,
		Clock: d.clock, NewID: o.NewID, Jitter: o.Jitter,
		WrapParse: o.wrapParse,
		GeoIP:     o.GeoIP,
	}
	d.ingester = ingest.New(io)
	d.loop.LastCounted = d.ingester.LastCounted
	d.archive = &retention.Archive{Dir: o.ArchiveDir}
	if d.archive.Dir == "" {
		d.archive.Dir = retention.DirName
	}
	d.pruner = &retention.Pruner{
		Store: d.store, Archive: d.archive, Days: cfg.RetainDays, Location: cfg.Location,
		Clock: d.clock, Log: d.log, Metrics: metrics.NewRetention(d.reg),
	}
	// Attempts of days before the window or already archived count into
	// months and years only, in every mode (queue, -f, -F).
	d.store.Pruned = d.pruner.Pruned
	return d
}

// shares builds the MISP feed (when misp is on) and the blocklist, which
// the compile loop writes after each compile.
func shares(cfg *config.Config, store *stats.Store, clock clockwork.Clock, log *slog.Logger) []func(context.Context) error {
	var out []func(context.Context) error
	if cfg.MISP {
		feed := &misp.Feed{
			Store: store, Dir: cfg.OutputDir + "/misp", Location: cfg.Location, Now: clock.Now, Log: log,
			Settings: misp.Settings{
				OrgName: cfg.MISPOrgName, OrgUUID: cfg.MISPOrgUUID, InfoPrefix: cfg.MISPEventInfo,
				Tags: cfg.MISPTags, Distribution: cfg.MISPDistribution, Published: cfg.MISPPublished,
				Top: cfg.MISPTop, Days: cfg.MISPDays,
			},
		}
		out = append(out, func(ctx context.Context) error { _, err := feed.Write(ctx); return err })
	}
	if cfg.BlocklistDays > 0 { // always, in a loaded configuration (1 to 3660)
		list := &blocklist.List{
			Store: store, Dir: cfg.OutputDir + "/feeds", Days: cfg.BlocklistDays, Min: int64(cfg.BlocklistMin),
			Location: cfg.Location, Now: clock.Now, Log: log,
		}
		out = append(out, func(ctx context.Context) error { _, err := list.Write(ctx); return err })
	}
	return out
}

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

// dialOptions are the timeouts of every Redis connection.
var dialOptions = []redis.DialOption{
	redis.DialConnectTimeout(5 * time.Second),
	redis.DialReadTimeout(10 * time.Second),
	redis.DialWriteTimeout(10 * time.Second),
}

// dialer dials a connection to database db.
type dialer func(ctx context.Context, db int) (redis.Conn, error)

// directDial dials the one Redis at addr.
func directDial(addr string) dialer {
	return func(ctx context.Context, db int) (redis.Conn, error) {
		return redis.DialContext(ctx, "tcp", addr, append(append([]redis.DialOption(nil), dialOptions...), redis.DialDatabase(db))...)
	}
}

// newSentinel builds the Sentinel client when redis_parsers names
// Sentinels: each failover it sees is logged and counted.
func (d *Daemon) newSentinel() *sentinel.Client {
	if len(d.cfg.Sentinels) == 0 {
		return nil
	}
	return &sentinel.Client{
		Sentinels: d.cfg.Sentinels, Master: d.cfg.SentinelMaster, Options: dialOptions,
		OnSwitch: func(old, new string) {
			d.metrics.CountingFailovers.Inc()
			d.log.Warn("counting redis failover: the sentinels name a new master; counting goes on there",
				"master", d.cfg.SentinelMaster, "old", old, "new", new)
		},
	}
}

// countingPool is a pool of connections to database db of the counting
// Redis: the one server of redis_parsers, or the master the Sentinels name.
func (d *Daemon) countingPool(db, max int) *redis.Pool {
	if d.sentinel == nil {
		return newPool(directDial(d.cfg.Parsers), nil, db, max, d.cntOutage)
	}
	return newPool(d.sentinel.Dial, d.sentinel, db, max, d.cntOutage)
}

// newPool makes a pool whose idle connections are checked before reuse
// when they predate the server's last failure: after a Redis restart every
// idle socket is dead, and handing them out one by one would turn one
// outage into a string of short ones. With Sentinels (s not nil), an idle
// connection made before a failover is dropped, and one checked after a
// failure must still reach a master: a demoted master answers PING but
// refuses writes with READONLY.
func newPool(dial dialer, s *sentinel.Client, db, max int, o *ingest.Outage) *redis.Pool {
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) { return dial(ctx, db) },
		MaxIdle:     max,
		MaxActive:   max,
		Wait:        true,
		IdleTimeout: 5 * time.Minute,
		TestOnBorrow: func(c redis.Conn, t time.Time) error {
			if s != nil && s.SwitchedSince(t) {
				return errors.New("made before a failover")
			}
			if time.Since(t) < time.Minute && !o.FailedSince(t) {
				return nil
			}
			if s != nil {
				return sentinel.IsMaster(c)
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

// Compile compiles once, everything when all is set; for -f and -F.
func (d *Daemon) Compile(ctx context.Context, all bool) error {
	if err := d.loop.Once(ctx, all); err != nil {
		return fmt.Errorf("compile the output: %w", err)
	}
	return nil
}
