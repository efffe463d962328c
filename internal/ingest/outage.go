package ingest

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Outage tracks one Redis' reachability so that an outage is logged once
// when it starts and once when it ends, however many workers hit it.
type Outage struct {
	server, addr string
	// meanwhile says what the outage holds up, for the log line.
	meanwhile string
	log       *slog.Logger
	m         *metrics.Metrics
	clock     clockwork.Clock

	lastFail atomic.Int64 // unix nanoseconds of the last failure, wall clock

	mu    sync.Mutex
	down  bool
	since time.Time
	// epoch counts the outages begun. A success ends an outage only when
	// the operation began during it (Begin returned its epoch): a reply
	// that was on its way when the server died says nothing of whether
	// it is back.
	epoch uint64
}

// NewOutage tracks the Redis server ("d4" or "counting", the metric label)
// at addr. meanwhile ends the outage's log line ("nothing is taken from the
// queue meanwhile").
func NewOutage(server, addr, meanwhile string, log *slog.Logger, m *metrics.Metrics, c clockwork.Clock) *Outage {
	if c == nil {
		c = clockwork.NewRealClock()
	}
	m.RedisUp.WithLabelValues(server).Set(1)
	return &Outage{server: server, addr: addr, meanwhile: meanwhile, log: log, m: m, clock: c}
}

// Fail records a failure while doing what.
func (o *Outage) Fail(what string, err error) {
	o.lastFail.Store(time.Now().UnixNano())
	o.m.RedisErrors.WithLabelValues(o.server).Inc()
	if errors.Is(err, stats.ErrNotReplicated) {
		o.m.ReplicaWaitTimeouts.Inc()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down {
		o.log.Debug("redis still unreachable", "server", o.server, "addr", o.addr, "while", what, "err", err)
		return
	}
	o.down, o.since = true, o.clock.Now()
	o.epoch++
	o.m.RedisUp.WithLabelValues(o.server).Set(0)
	o.log.Error("redis outage: retrying with backoff; "+o.meanwhile,
		"server", o.server, "addr", o.addr, "while", what, "err", err)
}

// Begin marks the start of an operation whose success is then reported
// with OK.
func (o *Outage) Begin() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.epoch
}

// OK records the success of an operation begun when Begin returned began,
// ending the outage when the operation began during it.
func (o *Outage) OK(began uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down || began != o.epoch {
		return
	}
	o.down = false
	o.m.RedisUp.WithLabelValues(o.server).Set(1)
	o.log.Info("redis outage over", "server", o.server, "addr", o.addr,
		"lasted", o.clock.Since(o.since).Round(time.Millisecond).String())
}

// Down reports whether an outage is in progress.
func (o *Outage) Down() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}

// FailedSince reports whether a failure was recorded after t: a pooled
// connection idle since before then may be dead.
func (o *Outage) FailedSince(t time.Time) bool { return o.lastFail.Load() >= t.UnixNano() }

// Addr is the server's address.
func (o *Outage) Addr() string { return o.addr }
