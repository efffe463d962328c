package stats

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomodule/redigo/redis"
)

// The compile lease says which of the daemons on one queue compiles the
// output, writes the MISP feed and the blocklist, and prunes: exactly one at
// a time (SPEC §14). It is a key in DB 0 holding the holder's token with a
// TTL (Store.Lease); the holder renews it every second. When the holder
// dies its lease is taken over by the next daemon to ask, like a consumer
// lock: at once when no connection named after its token is open any more
// (SIGKILL, a reset socket: a lone daemon restarted after a kill compiles
// at once), and when the TTL runs out otherwise (a network cut). A holder
// that loses the lease while its connection is re-dialled after a blip
// sees it at its next renewal and stops compiling after the compile under
// way.

// CompileLeaseKey is the compile lease of the daemons on queue.
func CompileLeaseKey(queue string) string { return "alog:compile:" + queue }

// holdScript: KEYS lease; ARGV token, lease ms. It renews the lease of its
// holder (once a third of it has run out, as renewScript does) or takes a
// free one, and answers 1 when token holds it.
const holdScript = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) * 2 / 3 then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
  return 1
end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`

// HoldCompile takes or renews the compile lease of queue for token and
// reports whether token holds it now.
func (s *Store) HoldCompile(ctx context.Context, queue, token string) (bool, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to counting redis for the compile lease: %w", err)
	}
	defer conn.Close()
	key := CompileLeaseKey(queue)
	n, err := redis.Int(conn.Do("EVAL", holdScript, 1, key, token, s.leaseMS()))
	if err != nil {
		return false, fmt.Errorf("hold the compile lease %s: %w", key, foreignLock(conn, key, err))
	}
	if n == 1 {
		return true, nil
	}
	holder, err := redis.String(conn.Do("GET", key))
	if errors.Is(err, redis.ErrNil) {
		return false, nil // released meanwhile: the next renewal takes it
	}
	if err != nil {
		return false, fmt.Errorf("read the compile lease %s: %w", key, err)
	}
	alive, err := s.clientConnected(conn, holder)
	if err != nil || alive {
		return false, err
	}
	n, err = redis.Int(conn.Do("EVAL", takeoverScript, 1, key, holder, token, s.leaseMS()))
	if err != nil {
		return false, fmt.Errorf("take over the compile lease %s: %w", key, err)
	}
	return n == 1, nil
}

// ReleaseCompile frees the compile lease if token holds it, so that another
// daemon compiles at once instead of after the lease.
func (s *Store) ReleaseCompile(ctx context.Context, queue, token string) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	_, err = conn.Do("EVAL", `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, CompileLeaseKey(queue), token)
	if err != nil {
		return fmt.Errorf("release the compile lease %s: %w", CompileLeaseKey(queue), err)
	}
	return nil
}

// CompileHolder is the token holding the compile lease of queue, "" when
// none does.
func (s *Store) CompileHolder(ctx context.Context, queue string) (string, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return "", fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	v, err := redis.String(conn.Do("GET", CompileLeaseKey(queue)))
	if errors.Is(err, redis.ErrNil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the compile lease %s: %w", CompileLeaseKey(queue), err)
	}
	return v, nil
}

// Role is what the counting Redis says it is (ROLE: "master", "slave"),
// for /healthz.
func (s *Store) Role(ctx context.Context) (string, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return "", fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	v, err := redis.Values(redis.DoContext(conn, ctx, "ROLE"))
	if err != nil || len(v) == 0 {
		return "", fmt.Errorf("ask the counting redis its role: %w", err)
	}
	role, err := redis.String(v[0], nil)
	if err != nil {
		return "", fmt.Errorf("ask the counting redis its role: %w", err)
	}
	return role, nil
}
