package stats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// A consumer lock keeps a second daemon off a queue this one consumes: two
// of them would share slot numbers, take over each other's batches in
// flight and count them twice. It also keeps a flush from rebuilding the
// statistics under a running daemon.
//
// The lock is a key in DB 0 holding a random token, and the holder keeps a
// connection named after the token. Whether the holder still lives is asked
// of Redis itself (is a client of that name connected?), so a daemon killed
// with SIGKILL frees the lock the moment the kernel closes its socket, with
// no lease to wait out.

// LockKey is the consumer lock of one queue.
func LockKey(queue string) string { return "alog:lock:" + queue }

// lockPattern matches every LockKey.
const lockPattern = "alog:lock:*"

func clientName(token string) string { return "alog-" + token }

// ErrLocked says another live daemon holds the lock.
var ErrLocked = errors.New("another analyzer-d4-log is running")

// takeoverScript replaces a dead holder's token, only if it is still the
// one seen dead: two starting daemons cannot both take over.
const takeoverScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0`

// Lock is a held consumer lock.
type Lock struct {
	conn  redis.Conn // named clientName(token); owned by Lock
	store *Store
	key   string
	token string
}

// Lock takes the consumer lock of queue, waiting up to wait for a holder
// that still lives (a daemon that is stopping) before giving up with
// ErrLocked. The returned Lock keeps a connection open: Keep must be
// called regularly, Release at the end.
func (s *Store) Lock(ctx context.Context, queue, token string, wait time.Duration) (*Lock, error) {
	l := &Lock{store: s, key: LockKey(queue), token: token}
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		ok, err := l.try()
		if err != nil {
			l.conn.Close()
			return nil, err
		}
		if ok {
			return l, nil
		}
		if time.Now().After(deadline) {
			l.conn.Close()
			return nil, fmt.Errorf("%w on queue %s: it holds %s in the counting redis; stop it first (./launch_server.sh -k) or give this one another queue", ErrLocked, queue, l.key)
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			l.conn.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (l *Lock) connect(ctx context.Context) error {
	conn, err := dial(ctx, l.store.Attempts)
	if err != nil {
		return fmt.Errorf("connect to counting redis for the consumer lock: %w", err)
	}
	if _, err := conn.Do("CLIENT", "SETNAME", clientName(l.token)); err != nil {
		conn.Close()
		return fmt.Errorf("name the consumer lock connection: %w", err)
	}
	l.conn = conn
	return nil
}

// try takes the lock if it is free or its holder is gone.
func (l *Lock) try() (bool, error) {
	r, err := l.conn.Do("SET", l.key, l.token, "NX")
	if err != nil {
		return false, fmt.Errorf("take consumer lock: %w", err)
	}
	if r != nil {
		return true, nil
	}
	holder, err := redis.String(l.conn.Do("GET", l.key))
	if errors.Is(err, redis.ErrNil) {
		return false, nil // released meanwhile; try again
	}
	if err != nil {
		return false, fmt.Errorf("read consumer lock: %w", foreignLock(l.conn, l.key, err))
	}
	if holder == l.token {
		return true, nil
	}
	alive, err := l.store.clientConnected(l.conn, holder)
	if err != nil || alive {
		return false, err
	}
	n, err := redis.Int(l.conn.Do("EVAL", takeoverScript, 1, l.key, holder, l.token))
	if err != nil {
		return false, fmt.Errorf("take over consumer lock: %w", err)
	}
	return n == 1, nil
}

// dial opens a connection of p's kind that is not the pool's to reuse.
func dial(ctx context.Context, p *redis.Pool) (redis.Conn, error) {
	if p.DialContext != nil {
		return p.DialContext(ctx)
	}
	return p.Dial()
}

// clientConnected asks Redis whether a connection named after token is
// open.
func (s *Store) clientConnected(conn redis.Conn, token string) (bool, error) {
	list, err := redis.String(conn.Do("CLIENT", "LIST"))
	if err != nil {
		return false, fmt.Errorf("list counting redis clients: %w", err)
	}
	want := " name=" + clientName(token) + " "
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(" "+line+" ", want) {
			return true, nil
		}
	}
	return false, nil
}

// Key is the lock's key.
func (l *Lock) Key() string { return l.key }

// Token is the holder's token, which every guarded transaction requires.
func (l *Lock) Token() string { return l.token }

// Keep checks the lock on its connection and, when the connection was lost
// (the counting Redis restarted), reconnects and checks that the lock is
// still this daemon's. It returns ErrLocked when another daemon took it
// meanwhile: the caller must stop consuming.
func (l *Lock) Keep(ctx context.Context) error {
	if l.conn != nil && l.conn.Err() == nil {
		holder, err := redis.String(l.conn.Do("GET", l.key))
		switch {
		case err == nil && holder == l.token:
			return nil
		case err == nil:
			return fmt.Errorf("%w: the consumer lock %s was taken over", ErrLocked, l.key)
		case errors.Is(err, redis.ErrNil):
			// Gone (a FLUSHALL, a Redis without persistence): take it
			// again unless another daemon has.
			return l.retake()
		}
	}
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
	if err := l.connect(ctx); err != nil {
		return err
	}
	// Back after an outage: the key survived (AOF) and is ours, or it is
	// gone (a Redis without persistence) and is taken again.
	return l.retake()
}

// retake takes the lock again if it is free, ours, or its holder is gone.
func (l *Lock) retake() error {
	ok, err := l.try()
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: the consumer lock %s was taken over", ErrLocked, l.key)
	}
	return nil
}

// Release frees the lock if it is still this daemon's.
func (l *Lock) Release(ctx context.Context) error {
	defer func() {
		if l.conn != nil {
			l.conn.Close()
		}
	}()
	conn, err := l.store.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	_, err = conn.Do("EVAL", `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, l.key, l.token)
	if err != nil {
		return fmt.Errorf("release consumer lock: %w", err)
	}
	return nil
}

// LiveConsumers lists the queues whose lock is held by a live daemon, so
// that a flush can refuse to run under one.
func (s *Store) LiveConsumers(ctx context.Context) ([]string, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	keys, err := redis.Strings(conn.Do("KEYS", lockPattern))
	if err != nil {
		return nil, fmt.Errorf("list consumer locks: %w", err)
	}
	var live []string
	for _, k := range keys {
		holder, err := redis.String(conn.Do("GET", k))
		if errors.Is(err, redis.ErrNil) {
			continue
		}
		var fe *ForeignKeyError
		if errors.As(foreignLock(conn, k, err), &fe) {
			// No daemon can hold a lock that is not a string: a foreign
			// key is no reason to refuse a flush (the daemon's start
			// names it).
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		alive, err := s.clientConnected(conn, holder)
		if err != nil {
			return nil, err
		}
		if alive {
			live = append(live, strings.TrimPrefix(k, "alog:lock:"))
		}
	}
	return live, nil
}

// foreignLock turns a WRONGTYPE error on lock key into a *ForeignKeyError
// naming the key and its type; other errors are returned as they are.
func foreignLock(conn redis.Conn, key string, err error) error {
	var re redis.Error
	if !errors.As(err, &re) || !strings.HasPrefix(string(re), "WRONGTYPE") {
		return err
	}
	typ, terr := redis.String(conn.Do("TYPE", key))
	if terr != nil {
		return err
	}
	if fe := checkType(AttemptsDB, key, typ, typeString); fe != nil {
		return fe
	}
	return err
}
