package stats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"
)

// Store is the counting Redis. Stats is a pool dialled to DB 1, Attempts
// one dialled to DB 0; both point at the same server.
type Store struct {
	Stats    *redis.Pool
	Attempts *redis.Pool
}

// Applied names the batch a transaction applies, so that a batch whose
// outcome is unknown (the daemon died, or Redis did, around EXEC) can be
// looked up instead of applied twice. When Token is set, the transaction
// also requires the consumer lock LockKey to still hold it.
type Applied struct {
	Queue string
	Slot  int
	ID    string

	LockKey, Token string
}

// Errors of Apply that are not outages.
var (
	// ErrAlreadyApplied: the record says this batch was applied.
	ErrAlreadyApplied = errors.New("batch already applied")
	// ErrConflict: a guarded key changed between the check and EXEC; the
	// outcome is known (nothing applied), and the record must be asked
	// again before another try.
	ErrConflict = errors.New("a guarded key changed during the transaction; nothing was applied")
)

// minMaxScript moves oldest and newest only outwards. Two workers
// committing batches of different days in either order leave the right
// answer, which SET alone would not.
const minMaxScript = `
local o = redis.call('GET', KEYS[1])
if not o or ARGV[1] < o then redis.call('SET', KEYS[1], ARGV[1]) end
local n = redis.call('GET', KEYS[2])
if not n or ARGV[2] > n then redis.call('SET', KEYS[2], ARGV[2]) end
return 0`

// Apply counts the batch in one MULTI/EXEC: the rankings, the totals, the
// toupdate sets, oldest/newest, the first-seen days, the DB 0 attempt
// records and, when rec is not nil, the applied-batch record. Either all
// of it happens or none.
//
// With a record, the transaction is guarded (WATCH): it is refused when
// the record already names this batch (ErrAlreadyApplied), when a flush is
// rebuilding the statistics (ErrUnfit), or when the consumer lock is no
// longer rec.Token's (ErrLocked); and it is discarded (ErrConflict) when
// any of those keys changes before EXEC. A daemon that lost its queue to
// another therefore cannot count a batch the other has counted.
//
// The connection is one of the DB 0 pool: the transaction switches to DB 1
// and back inside MULTI, so it is left on DB 0 whatever happens (queued
// SELECTs run all or not at all).
func (s *Store) Apply(ctx context.Context, b *Batch, rec *Applied) error {
	if b.Len() == 0 && rec == nil {
		return nil
	}
	p := b.plan()
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	if rec != nil {
		if err := guard(conn, rec); err != nil {
			return err
		}
	}

	sent := 0
	send := func(cmd string, args ...interface{}) {
		if err == nil {
			err = conn.Send(cmd, args...)
			sent++
		}
	}
	send("MULTI")
	send("SELECT", StatsDB)
	for _, in := range p.incrs {
		send("ZINCRBY", in.key, in.by, in.member)
	}
	for _, g := range Granularities() {
		if keys := p.toupdate[g]; len(keys) > 0 {
			args := make([]interface{}, 0, len(keys)+1)
			args = append(args, ToUpdateKey(g))
			for _, k := range keys {
				args = append(args, k)
			}
			send("SADD", args...)
		}
	}
	for k, pairs := range p.firstSeen {
		if len(pairs) > 0 {
			args := make([]interface{}, 0, len(pairs)+2)
			args = append(args, FirstSeenKey(kindNames[k]), "LT")
			args = append(args, pairs...)
			send("ZADD", args...)
		}
	}
	if len(p.totals) > 0 {
		for period, n := range p.totals {
			send("HINCRBY", TotalsKey, period, n)
		}
		send("EVAL", minMaxScript, 2, OldestKey, NewestKey, p.oldest, p.newest)
	}
	send("SELECT", AttemptsDB)
	for day, elems := range p.records {
		args := make([]interface{}, 0, len(elems)+1)
		args = append(args, AttemptsKey(day))
		for _, e := range elems {
			args = append(args, e)
		}
		send("RPUSH", args...)
	}
	if rec != nil {
		send("SET", AppliedKey(rec.Queue, rec.Slot), rec.ID)
	}
	send("EXEC")
	if err != nil {
		return fmt.Errorf("send transaction to counting redis: %w", err)
	}
	replies, err := redis.Values(conn.Do(""))
	if err != nil {
		return fmt.Errorf("apply batch of %d attempts: %w", b.Len(), err)
	}
	if len(replies) != sent {
		return fmt.Errorf("apply batch: %d replies to %d commands", len(replies), sent)
	}
	// Queueing errors (OOM, MISCONF, a read-only replica) abort the whole
	// transaction; EXEC then answers EXECABORT, which surfaces here.
	switch r := replies[len(replies)-1].(type) {
	case redis.Error:
		// EXECABORT says only that something was refused; the first
		// refusal (OOM, MISCONF, READONLY) says what the operator must fix.
		for _, q := range replies[:len(replies)-1] {
			if e, ok := q.(redis.Error); ok {
				return fmt.Errorf("apply batch of %d attempts: transaction refused: %w", b.Len(), e)
			}
		}
		return fmt.Errorf("apply batch of %d attempts: %w", b.Len(), r)
	case nil:
		return fmt.Errorf("apply batch of %d attempts: %w", b.Len(), ErrConflict)
	case []interface{}:
		for i, x := range r {
			if e, ok := x.(redis.Error); ok {
				// A command failed at run time inside EXEC. That needs a
				// foreign writer (a key of the wrong type); say which.
				return fmt.Errorf("apply batch: command %d failed inside the transaction: %w", i+1, e)
			}
		}
	}
	return nil
}

// guard watches the keys that decide whether rec may be applied and checks
// them; on a refusal it unwatches, so the pooled connection is clean.
func guard(conn redis.Conn, rec *Applied) error {
	keys := []interface{}{AppliedKey(rec.Queue, rec.Slot), RebuildingKey}
	if rec.Token != "" {
		keys = append(keys, rec.LockKey)
	}
	err := conn.Send("WATCH", keys...)
	if err == nil {
		err = conn.Send("GET", AppliedKey(rec.Queue, rec.Slot))
	}
	if err == nil {
		err = conn.Send("EXISTS", RebuildingKey)
	}
	if err == nil && rec.Token != "" {
		err = conn.Send("GET", rec.LockKey)
	}
	if err != nil {
		return fmt.Errorf("check batch record: %w", err)
	}
	v, err := redis.Values(conn.Do(""))
	if err != nil {
		return fmt.Errorf("check batch record: %w", err)
	}
	applied, _ := redis.String(v[1], nil)
	rebuilding, _ := redis.Int(v[2], nil)
	var refuse error
	switch {
	case applied == rec.ID:
		refuse = ErrAlreadyApplied
	case rebuilding == 1:
		refuse = fmt.Errorf("%w: a flush (-F) is rebuilding the statistics", ErrUnfit)
	case rec.Token != "":
		if holder, _ := redis.String(v[3], nil); holder != rec.Token {
			refuse = fmt.Errorf("%w: this daemon no longer holds %s", ErrLocked, rec.LockKey)
		}
	}
	if refuse != nil {
		if _, err := conn.Do("UNWATCH"); err != nil {
			return fmt.Errorf("check batch record: %w", err)
		}
		return refuse
	}
	return nil
}

// IsApplied reports whether rec is the last batch applied from its slot.
func (s *Store) IsApplied(ctx context.Context, rec Applied) (bool, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	id, err := redis.String(conn.Do("GET", AppliedKey(rec.Queue, rec.Slot)))
	if errors.Is(err, redis.ErrNil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read applied record of slot %d: %w", rec.Slot, err)
	}
	return id == rec.ID, nil
}

// Forget drops the applied record of rec's slot, for records that only
// mattered while a run lasted (a file's chunks).
func (s *Store) Forget(ctx context.Context, rec Applied) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Do("DEL", AppliedKey(rec.Queue, rec.Slot)); err != nil {
		return fmt.Errorf("drop applied record of slot %d: %w", rec.Slot, err)
	}
	return nil
}

// ErrUnfit marks a counting Redis this daemon must not count into until
// an operator acts: too old a version, or a flush left half done.
var ErrUnfit = errors.New("counting redis not fit for counting")

// minVersion is the oldest Redis with every command the transaction uses
// (ZADD LT, ZMSCORE came with 6.2).
var minVersion = [3]int{6, 2, 0}

// Check tells whether the counting Redis can be counted into. A failure to
// reach it is returned as is (an outage to wait out); a permanent problem
// wraps ErrUnfit and says what to do.
func (s *Store) Check(ctx context.Context) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	info, err := redis.String(conn.Do("INFO", "server"))
	if err != nil {
		return fmt.Errorf("read counting redis version: %w", err)
	}
	if v, ok := redisVersion(info); ok && less(v, minVersion) {
		return fmt.Errorf("%w: it runs redis %d.%d.%d; this daemon needs %d.%d or newer (use the redis-server of install_server.sh and redis.conf)",
			ErrUnfit, v[0], v[1], v[2], minVersion[0], minVersion[1])
	}
	n, err := redis.Int(conn.Do("EXISTS", RebuildingKey))
	if err != nil {
		return fmt.Errorf("check for an interrupted flush: %w", err)
	}
	if n == 1 {
		return fmt.Errorf("%w: a flush (-F) was interrupted and the statistics are half rebuilt; run analyzer-d4-log -F again to finish it", ErrUnfit)
	}
	return nil
}

func redisVersion(info string) ([3]int, bool) {
	var v [3]int
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		parts := strings.SplitN(rest, ".", 3)
		for i := range parts {
			n, err := strconv.Atoi(parts[i])
			if err != nil {
				return v, false
			}
			v[i] = n
		}
		return v, true
	}
	return v, false
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Ping checks that the counting Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Do("PING")
	return err
}

// itoa avoids fmt in the hot path.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
