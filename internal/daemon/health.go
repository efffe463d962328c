package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/web"
)

// healthCheckTimeout bounds each Redis check of /healthz. The checks run
// side by side, each with its own deadline, so a hung D4 Redis cannot use
// up the time of the counting Redis' check: the answer comes within this
// bound plus a little, well inside the web server's own limit.
const healthCheckTimeout = 2 * time.Second

// health answers /healthz: whether each Redis does its job now (the D4
// queue can be read; the counting Redis accepts counting, not only PING),
// how long ago a line was counted and when the last compile finished.
func (d *Daemon) health(ctx context.Context) web.Status {
	var st web.Status
	st.CountingAddress = d.cfg.Parsers
	if d.sentinel != nil {
		if a := d.sentinel.Addr(); a != "" {
			st.CountingAddress = a
		}
	}
	if l := d.lease.Load(); l != nil {
		held, m := l.Held(), d.ingester.Member()
		st.CompileLease, st.Member = &held, &m
	}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		cctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
		defer cancel()
		st.CountingRole, _ = d.store.Role(cctx)
	}()
	go func() {
		defer wg.Done()
		cctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
		defer cancel()
		// A pooled connection may predate a Redis restart and fail once;
		// the pool drops it, so a second try tells an outage from a stale
		// socket.
		q, _, err := d4queue.Lengths(cctx, d.d4Pool, d.cfg.Queue, 0)
		if err != nil && cctx.Err() == nil {
			q, _, err = d4queue.Lengths(cctx, d.d4Pool, d.cfg.Queue, 0)
		}
		st.D4Redis = err == nil
		st.QueueLength = q
	}()
	go func() {
		defer wg.Done()
		cctx, cancel := context.WithTimeout(ctx, healthCheckTimeout)
		defer cancel()
		// Idle pooled connections may predate a Redis restart; each one
		// that fails is dropped by the pool, so a connection error is
		// tried again (within the deadline) until a fresh connection
		// answers. An answer from Redis is final.
		var err error
		for try := 0; try <= compileParallel+2; try++ {
			err = d.store.CanCount(cctx, stats.LockKey(d.cfg.Queue))
			var re redis.Error
			var fe *stats.ForeignKeyError
			if err == nil || cctx.Err() != nil || errors.As(err, &re) || errors.As(err, &fe) ||
				errors.Is(err, stats.ErrWritesRefused) || errors.Is(err, stats.ErrUnfit) {
				break
			}
		}
		st.CountingRedis = err == nil && d.ingester.RefusedForForeignKey() == 0
		if err != nil {
			st.CountingError = err.Error()
		} else if !st.CountingRedis {
			st.CountingError = "a key a batch writes holds another type, or a drill-down string is full; see the log"
		}
	}()
	wg.Wait()
	if t := d.ingester.LastCounted(); !t.IsZero() {
		s := d.clock.Since(t).Seconds()
		st.SecondsSinceLastCounted = &s
	}
	if t := d.loop.LastCompile(); !t.IsZero() {
		t = t.UTC()
		st.LastCompile = &t
	}
	return st
}
