package stats

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gomodule/redigo/redis"
)

// ErrWritesRefused marks a counting Redis that answers but refuses writes:
// out of memory under noeviction, a read-only replica, a failed save with
// stop-writes-on-bgsave-error. Nothing can be counted until it is fixed;
// the wrapped Redis error says which.
var ErrWritesRefused = errors.New("counting redis refuses writes")

// CanCount tells whether a batch counted now would be written, without
// changing any statistics: a PING answers even when every write is refused,
// so health must ask for a write. It writes HealthKey in DB 0 (a bookkeeping
// key with a short expiry: the write Redis refuses with OOM, READONLY or
// MISCONF when counting would be refused too), checks that lockKey (when
// not "") is a string or absent, that no flush is rebuilding the statistics
// (ErrUnfit), and that the fixed bookkeeping keys of DB 1 (oldest, newest,
// the newest line,
// the toupdate sets, the totals, the first-seen sets) have their types.
//
// It answers nil, an error wrapping ErrWritesRefused or ErrUnfit, a
// *ForeignKeyError, or a connection error (an outage). The keys of single
// periods are not looked at (there are too many); Apply names them when a
// batch meets one. Every command honours ctx's deadline.
func (s *Store) CanCount(ctx context.Context, lockKey string) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	if _, err := redis.DoContext(conn, ctx, "SET", HealthKey, "1", "PX", 10000); err != nil {
		var re redis.Error
		if errors.As(err, &re) {
			return fmt.Errorf("%w: %w; %s", ErrWritesRefused, err, refusalHint(string(re)))
		}
		return fmt.Errorf("write %s to the counting redis: %w", HealthKey, err)
	}
	if err := conn.Send("EXISTS", RebuildingKey); err != nil {
		return fmt.Errorf("check counting redis: %w", err)
	}
	if lockKey != "" {
		if err := conn.Send("TYPE", lockKey); err != nil {
			return fmt.Errorf("check counting redis: %w", err)
		}
	}
	v, err := redis.Values(redis.DoContext(conn, ctx, ""))
	if err != nil {
		return fmt.Errorf("check counting redis: %w", err)
	}
	if n, _ := redis.Int(v[0], nil); n == 1 {
		return fmt.Errorf("%w: a flush (-F) is rebuilding the statistics, or was interrupted; let it finish, or run analyzer-d4-log -F again", ErrUnfit)
	}
	if lockKey != "" {
		typ, err := redis.String(v[1], nil)
		if err != nil {
			return fmt.Errorf("type of %s: %w", lockKey, err)
		}
		if err := checkType(AttemptsDB, lockKey, typ, typeString); err != nil {
			return err
		}
	}
	return s.checkStatsTypes(ctx)
}

// fixedStatsKeys are the DB 1 keys every batch writes, with their types.
func fixedStatsKeys() [][2]string {
	keys := [][2]string{{OldestKey, typeString}, {NewestKey, typeString}, {NewestLineKey, typeString}, {TotalsKey, typeHash}}
	for _, g := range Granularities() {
		keys = append(keys, [2]string{ToUpdateKey(g), typeSet})
	}
	for _, k := range Kinds() {
		keys = append(keys, [2]string{FirstSeenKey(k), typeZSet})
	}
	return keys
}

func (s *Store) checkStatsTypes(ctx context.Context) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	keys := fixedStatsKeys()
	for _, k := range keys {
		if err := conn.Send("TYPE", k[0]); err != nil {
			return fmt.Errorf("check counting redis: %w", err)
		}
	}
	v, err := redis.Strings(redis.DoContext(conn, ctx, ""))
	if err != nil {
		return fmt.Errorf("check counting redis: %w", err)
	}
	for i, k := range keys {
		if err := checkType(StatsDB, k[0], v[i], k[1]); err != nil {
			return err
		}
	}
	return nil
}

// refusalHint says what to do about a refused write.
func refusalHint(msg string) string {
	switch {
	case strings.HasPrefix(msg, "OOM"):
		return "it is out of memory: raise its maxmemory or free memory (never let it evict: evicting would lose statistics)"
	case strings.HasPrefix(msg, "READONLY"):
		return "it is a read-only replica: point the counting address at the master, or run REPLICAOF NO ONE on it"
	case strings.HasPrefix(msg, "MISCONF"):
		return "it cannot save to disk: see its log, free the disk or fix the permissions of its dir"
	}
	return "see the counting redis' log"
}
