// Package ingest is the exactly-once consume loop: it claims lines from the
// D4 queue (or reads them from a file), parses them, counts them in the
// counting Redis and acknowledges them, riding out outages of either Redis.
//
// # The guarantee
//
// Every line the D4 server pushed onto the queue is counted exactly once,
// whenever the daemon is killed and whichever Redis restarts, as long as
// both Redis keep what they acknowledged. It holds because a line is never
// only in the daemon's memory, and never counted without a record:
//
//  1. A claim moves lines from the queue into a slot's processing list and
//     tags them as one batch, atomically (d4queue).
//  2. The batch is counted in one guarded transaction that also records
//     "slot S applied batch ID" (stats.Store.Apply). The guard refuses it
//     when the record already names the batch, when the consumer lock is
//     no longer this daemon's, or when a flush is running.
//  3. Only then is the batch acknowledged, which removes exactly its lines.
//
// Whenever the outcome of an earlier attempt is unknown (a batch found in
// flight after a crash, or an apply whose reply was lost), the record is
// asked before anything is applied, and the batch is applied only on a
// definite "not applied" (countOnce). A batch that cannot be applied (an
// outage, a foreign key of the wrong type) is not acknowledged: it stays in
// its processing list and is tried again.
//
// Several daemons may consume one queue (SPEC §14). Each is a member of it
// (TakeLock: the first free member's consumer lock, kept and renewed by
// LockKeeper) and owns that member's slots (d4queue.MemberSlot), and every
// counting script requires the member's lock to hold the daemon's token.
// The batches in flight of a member that died (its connection gone, or its
// lease expired after a network cut; see stats.Lock) are finished by
// another daemon's Takeover under that member's lock.
//
// # Load on the D4 server's Redis
//
// Workers take turns: only the worker holding the turn claims or blocks
// on the queue, so an idle daemon costs the D4 Redis one blocking wait per
// Options.Block, whatever the number of workers. After a claim that came
// back short of a batch (a trickle), the next claim waits Options.Linger
// first, so that lines pushed one at a time are counted together: one
// counting transaction (one fsync under appendfsync always) per linger,
// not per line.
package ingest

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
	"github.com/jonboulle/clockwork"

	"github.com/D4-project/analyzer-d4-log/internal/geoip"
	"github.com/D4-project/analyzer-d4-log/internal/metrics"
	"github.com/D4-project/analyzer-d4-log/internal/parsers"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Store is what ingest needs of the counting Redis.
type Store interface {
	// Apply counts a batch in one guarded transaction under rec.
	Apply(ctx context.Context, b *stats.Batch, rec *stats.Applied) error
	// SaveNames keeps the names beside a batch's derived values (the AS
	// organisations of SPEC §13); it comes before Apply.
	SaveNames(ctx context.Context, b *stats.Batch) error
	// IsApplied asks the record whether rec's batch was applied.
	IsApplied(ctx context.Context, rec stats.Applied) (bool, error)
	// Forget drops a record that is no longer needed.
	Forget(ctx context.Context, rec stats.Applied) error
	// Check refuses a counting Redis that is not fit to count into.
	Check(ctx context.Context) error
	// Lock takes a consumer lock, waiting up to wait for a live holder.
	Lock(ctx context.Context, queue, token string, wait time.Duration) (*stats.Lock, error)
	// Join takes the lock of the first free member of queue, waiting up
	// to wait while every member has a live holder.
	Join(ctx context.Context, queue, token string, wait time.Duration) (*stats.Lock, error)
	// MemberAlive tells whether member m of queue has a live holder.
	MemberAlive(ctx context.Context, queue string, m int) (bool, error)
	// TakeOver takes the lock of dead member m with token; nil when m
	// lives or another daemon took it first.
	TakeOver(ctx context.Context, queue string, m int, token string) (*stats.Lock, error)
	// Members lists the registered members above 0 of queue;
	// ForgetMember drops one whose lock is free.
	Members(ctx context.Context, queue string) ([]int, error)
	ForgetMember(ctx context.Context, queue string, m int) error
}

// Options configure an Ingester; zero durations and nil funcs take the
// defaults documented at each field.
type Options struct {
	Store   Store
	D4      *redis.Pool // dialled to the DB of the analyzer queues; nil for files only
	Queue   string      // the queue UUID
	Workers int         // workers, one slot and one counting connection each

	BatchSize int // lines claimed per batch
	MaxLine   int // longest line parsed, in bytes

	Parsers []parsers.Entry // what lines are parsed with
	Parse   parsers.Options

	Metrics *metrics.Metrics
	Log     *slog.Logger

	D4Outage, CountingOutage *Outage

	// Block is one blocking wait on an idle queue (default 1s); it bounds
	// how long a stop waits for the worker holding the turn.
	Block time.Duration
	// Poll is the wait between claims when the D4 Redis refuses to block
	// (the -r flag; default 1s).
	Poll time.Duration
	// Linger is how long a claim waits after a short one, to gather a
	// trickle into one transaction (default 20ms).
	Linger time.Duration
	// BackoffMax caps the wait between retries in an outage (default 5s).
	BackoffMax time.Duration
	// LockWait is how long a start waits for another daemon on the queue
	// to stop (default 15s).
	LockWait time.Duration
	// StartWait bounds how long a file run waits for the counting Redis
	// at start before giving up (default 30s).
	StartWait time.Duration
	// TakeoverEvery is how often a daemon looks for the batches in flight
	// of dead daemons on its queue (default 5s).
	TakeoverEvery time.Duration

	Clock  clockwork.Clock // default: the real clock
	NewID  func() string   // batch IDs and lock tokens; default: 128 random bits
	Jitter func() float64  // in [0,1); default: math/rand

	// Memory is how long counted lines are remembered, so that a line
	// sent again (a restarted sensor's tail -n2000) is skipped as
	// "duplicate" instead of counted twice; zero remembers nothing.
	Memory stats.Memory

	// WrapParse, when set, wraps every parser built; tests use it to make
	// the parser panic and prove that a panic costs one line.
	WrapParse func(parsers.Parser) parsers.Parser

	// GeoIP, when it holds a database, adds the country and AS kinds of
	// SPEC §13 to every attempt counted.
	GeoIP *geoip.Databases
}

// Ingester counts lines from the queue or a file.
type Ingester struct {
	o       Options
	clock   clockwork.Clock
	reasons []string // index 0 is counted; see newBatchParser
	tooLong int      // index of "too_long" in reasons
	panicR  int      // index of "panic" in reasons
	dupR    int      // index of "duplicate" in reasons

	progress *Progress

	lastCounted atomic.Int64 // unix nanoseconds of the last counted line
	// member is this daemon's member number on the queue, set when the
	// lock is taken: its slots start at d4queue.MemberSlot(member, 0).
	member atomic.Int64

	// foreign remembers the keys of the wrong type already logged, so
	// that a retry every few seconds logs a broken key once.
	foreignMu sync.Mutex
	foreign   map[string]bool
	foreignN  atomic.Int64 // batches currently refused for a foreign key
}

// Reasons are the ingest-level skip reasons that every parser set gets.
const (
	ReasonTooLong = "too_long"
	ReasonPanic   = "panic"
	// ReasonDuplicate: the line is identical to one counted within
	// Options.Memory (SPEC §15).
	ReasonDuplicate = "duplicate"
)

// SkipReasons lists the skip labels of entries plus ingest's own, for the
// metrics registered before an Ingester exists.
func SkipReasons(entries []parsers.Entry) []string {
	return withOwnReasons(parsers.ReasonNames(entries))
}

func withOwnReasons(rs []string) []string {
	out := append([]string(nil), rs...)
	for _, own := range []string{ReasonTooLong, ReasonPanic, ReasonDuplicate} {
		found := false
		for _, r := range out {
			found = found || r == own
		}
		if !found {
			out = append(out, own)
		}
	}
	return out
}

// New builds an Ingester; it dials nothing.
func New(o Options) *Ingester {
	if o.Block <= 0 {
		o.Block = time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Linger <= 0 {
		o.Linger = 20 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Second
	}
	if o.LockWait <= 0 {
		o.LockWait = 15 * time.Second
	}
	if o.StartWait <= 0 {
		o.StartWait = 30 * time.Second
	}
	if o.TakeoverEvery <= 0 {
		o.TakeoverEvery = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clockwork.NewRealClock()
	}
	if o.NewID == nil {
		o.NewID = RandomID
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	in := &Ingester{o: o, clock: o.Clock, foreign: map[string]bool{}}
	in.reasons = append([]string{""}, withOwnReasons(parsers.ReasonNames(o.Parsers))...)
	for i, r := range in.reasons {
		switch r {
		case ReasonTooLong:
			in.tooLong = i
		case ReasonPanic:
			in.panicR = i
		case ReasonDuplicate:
			in.dupR = i
		}
	}
	in.progress = &Progress{skipped: make([]int64, len(in.reasons))}
	return in
}

// LastCounted is when a line was last counted; zero before the first.
func (in *Ingester) LastCounted() time.Time {
	n := in.lastCounted.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// RefusedForForeignKey reports how many batches are currently held back
// because a key they would write has the wrong type.
func (in *Ingester) RefusedForForeignKey() int64 { return in.foreignN.Load() }

// RandomID is a random 128-bit hex ID.
func RandomID() string {
	var b [16]byte
	// crypto/rand never fails on Linux; a failure would panic rather than
	// hand out a predictable ID.
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sleep waits d on the injected clock or until ctx is done; it reports
// whether the full wait happened.
func (in *Ingester) sleep(ctx context.Context, d time.Duration) bool {
	return Sleep(ctx, in.clock, d)
}

// Sleep waits d on c or until ctx is done; it reports whether the full
// wait happened.
func Sleep(ctx context.Context, c clockwork.Clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

// Backoff is the wait before retry n (0-based): exponential from 50 ms,
// capped at max, with jitter in [0.5, 1) of it so that many workers do not
// retry in step.
func Backoff(n int, max time.Duration, jitter func() float64) time.Duration {
	base := 50 * time.Millisecond
	w := base << min(n, 16)
	if w > max || w <= 0 {
		w = max
	}
	return time.Duration(float64(w) * (0.5 + jitter()/2))
}

func (in *Ingester) backoff(n int) time.Duration { return Backoff(n, in.o.BackoffMax, in.o.Jitter) }

// untilDone calls fn until it succeeds or fails for good (permanent says
// which errors are), riding out an outage of o with backoff. It returns nil
// when ctx ends first.
func (in *Ingester) untilDone(ctx context.Context, o *Outage, what string, fn func() error, permanent func(error) bool) error {
	for fails := 0; ; fails++ {
		began := o.Begin()
		err := fn()
		if err == nil {
			o.OK(began)
			return nil
		}
		if permanent(err) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		o.Fail(what, err)
		if !in.sleep(ctx, in.backoff(fails)) {
			return nil
		}
	}
}

// never is the permanent test of work whose every error is an outage.
func never(error) bool { return false }

// isServerError tells a Redis error reply (the server answered) from a
// network failure.
func isServerError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}
