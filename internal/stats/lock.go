package stats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// A consumer lock makes a daemon a member of a queue: member m owns the
// slots d4queue.MemberSlot(m, …), and every guarded transaction requires
// the member's lock to hold the daemon's token, so two daemons can never
// count through the same slot. Member 0's lock is LockKey (the one key of a
// lone daemon, as it always was), member m's is MemberKey. The locks also
// keep a flush from rebuilding the statistics under a running daemon.
//
// A lock is a key in DB 0 holding a random token, and the holder keeps a
// connection named after the token. A holder is alive while both hold:
//
//   - a client of that name is connected (asked of Redis itself, CLIENT
//     LIST), so a daemon killed with SIGKILL, or a machine whose kernel
//     resets its sockets, frees its lock at once;
//   - the key still exists: it carries a lease (Store.Lease, 15 s by
//     default) that the holder's keeper renews every second. A daemon cut
//     off by the network (power loss, a cable) leaves a half-open socket
//     that Redis may list for many minutes; the lease frees its lock when
//     it expires, whatever the socket does.
//
// A live daemon that finds a dead member's slots in flight takes that
// member's lock (TakeOver) with its own token, finishes the batches under
// it, and releases it: taking over is the same conditional write as taking
// a lock at start, so two live daemons never both take one member, and a
// daemon that was only cut off finds its lock gone or taken and stops
// counting (its transactions fail on the token).

// LockKey is the consumer lock of one queue (member 0).
func LockKey(queue string) string { return "alog:lock:" + queue }

// MemberKey is the lock of member m of queue; member 0's is LockKey.
func MemberKey(queue string, m int) string {
	if m == 0 {
		return LockKey(queue)
	}
	return LockKey(queue) + ":" + strconv.Itoa(m)
}

// MembersKey is the set of the member numbers above 0 that joined queue
// and may still have slots in flight: a lone daemon (member 0) finds it
// missing and knows, without asking the D4 Redis, that no other daemon's
// batch can be waiting for it. Member 0 is never in it, so a lone daemon's
// keys are what they always were.
func MembersKey(queue string) string { return "alog:members:" + queue }

// MaxMembers bounds the members of one queue.
const MaxMembers = 64

// DefaultLease is the lease of a lock whose holder stopped renewing it.
const DefaultLease = 15 * time.Second

func (s *Store) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return DefaultLease
}

func (s *Store) leaseMS() int64 { return s.lease().Milliseconds() }

// lockPattern matches every LockKey.
const lockPattern = "alog:lock:*"

func clientName(token string) string { return "alog-" + token }

// ErrLocked says another live daemon holds the lock.
var ErrLocked = errors.New("another analyzer-d4-log is running")

// takeoverScript replaces a dead holder's token, only if it is still the
// one seen dead: two starting daemons cannot both take over. ARGV[3] is the
// lease in milliseconds.
const takeoverScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else
    redis.call('SET', KEYS[1], ARGV[2])
  end
  return 1
end
return 0`

// leaseArg is the lease in milliseconds for the scripts, 0 for none.
func (l *Lock) leaseArg() int64 {
	if !l.leased {
		return 0
	}
	return l.store.leaseMS()
}

// renewScript renews the lease (ARGV[2] ms, 0 for none) of a lock still
// held by ARGV[1] and returns the holder (nil when the key is gone). It
// writes only once a third of the lease has run out: the keeper asks every
// second, and a write each time would cost the counting Redis an fsync a
// second (appendfsync always) for nothing.
const renewScript = `
local v = redis.call('GET', KEYS[1])
local ms = tonumber(ARGV[2])
if v == ARGV[1] and ms > 0 and redis.call('PTTL', KEYS[1]) < ms * 2 / 3 then
  redis.call('PEXPIRE', KEYS[1], ms)
end
return v`

// Lock is a held consumer lock.
type Lock struct {
	conn   redis.Conn // named clientName(token); owned by Lock
	store  *Store
	queue  string
	member int
	key    string
	token  string
	// leased locks expire when not renewed (the members of a queue); a
	// file run's lock, with no keeper, lives as long as its connection.
	leased bool
	// takeover is set while TakeOver takes the lock: finding it held by
	// the same token means this daemon is draining the member already.
	takeover bool
}

// px is the expiry arguments of a SET of the lock.
func (l *Lock) px() []interface{} {
	if !l.leased {
		return nil
	}
	return []interface{}{"PX", l.store.leaseMS()}
}

// Lock takes the consumer lock of queue, waiting up to wait for a holder
// that still lives (a daemon that is stopping) before giving up with
// ErrLocked. The returned Lock keeps a connection open: Keep must be
// called regularly, Release at the end.
func (s *Store) Lock(ctx context.Context, queue, token string, wait time.Duration) (*Lock, error) {
	return s.join(ctx, queue, token, wait, 1, false)
}

// Join makes this daemon a member of queue: it takes the lock of the first
// member (from 0) that is free or whose holder is dead, so that a lone
// daemon is member 0 as it always was and a second one on the same queue
// becomes member 1. It waits up to wait while all MaxMembers are held by
// live daemons before giving up with ErrLocked.
func (s *Store) Join(ctx context.Context, queue, token string, wait time.Duration) (*Lock, error) {
	return s.join(ctx, queue, token, wait, MaxMembers, true)
}

func (s *Store) join(ctx context.Context, queue, token string, wait time.Duration, members int, leased bool) (*Lock, error) {
	l := &Lock{store: s, queue: queue, key: LockKey(queue), token: token, leased: leased}
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(wait)
	for {
		for m := 0; m < members; m++ {
			l.member, l.key = m, MemberKey(queue, m)
			ok, err := l.try()
			if err != nil {
				l.conn.Close()
				return nil, err
			}
			if ok {
				return l, nil
			}
		}
		l.member, l.key = 0, LockKey(queue)
		if time.Now().After(deadline) {
			l.conn.Close()
			if members > 1 {
				return nil, fmt.Errorf("%w on queue %s %d times: live daemons hold all %d members (%s…%s) in the counting redis; stop one first or give this one another queue",
					ErrLocked, queue, members, members, MemberKey(queue, 0), MemberKey(queue, members-1))
			}
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
	r, err := l.conn.Do("SET", append([]interface{}{l.key, l.token, "NX"}, l.px()...)...)
	if err != nil {
		return false, fmt.Errorf("take consumer lock: %w", err)
	}
	if r != nil {
		return l.register()
	}
	holder, err := redis.String(l.conn.Do("GET", l.key))
	if errors.Is(err, redis.ErrNil) {
		return false, nil // released meanwhile; try again
	}
	if err != nil {
		return false, fmt.Errorf("read consumer lock: %w", foreignLock(l.conn, l.key, err))
	}
	if holder == l.token {
		if l.takeover {
			return false, nil
		}
		if l.leased {
			_, err := l.conn.Do("PEXPIRE", l.key, l.store.leaseMS())
			return err == nil, err
		}
		return true, nil
	}
	alive, err := l.store.clientConnected(l.conn, holder)
	if err != nil || alive {
		return false, err
	}
	n, err := redis.Int(l.conn.Do("EVAL", takeoverScript, 1, l.key, holder, l.token, l.leaseArg()))
	if err != nil {
		return false, fmt.Errorf("take over consumer lock: %w", err)
	}
	if n != 1 {
		return false, nil
	}
	return l.register()
}

// register adds a member above 0 to MembersKey once its lock is taken,
// before it claims anything.
func (l *Lock) register() (bool, error) {
	if l.member == 0 || !l.leased {
		return true, nil
	}
	if _, err := l.conn.Do("SADD", MembersKey(l.queue), l.member); err != nil {
		return false, fmt.Errorf("register member %d of queue %s: %w", l.member, l.queue, err)
	}
	return true, nil
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

// Member is the member number the lock makes its holder: its slots are
// d4queue.MemberSlot(Member(), …).
func (l *Lock) Member() int { return l.member }

// Token is the holder's token, which every guarded transaction requires.
func (l *Lock) Token() string { return l.token }

// Keep checks the lock on its connection and, when the connection was lost
// (the counting Redis restarted), reconnects and checks that the lock is
// still this daemon's. It returns ErrLocked when another daemon took it
// meanwhile: the caller must stop consuming.
func (l *Lock) Keep(ctx context.Context) error {
	if l.conn != nil && l.conn.Err() == nil {
		holder, err := redis.String(l.conn.Do("EVAL", renewScript, 1, l.key, l.token, l.leaseArg()))
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
			// A queue with several members is named once.
			q := strings.TrimPrefix(k, "alog:lock:")
			if i := strings.IndexByte(q, ':'); i >= 0 {
				q = q[:i]
			}
			if !slices.Contains(live, q) {
				live = append(live, q)
			}
		}
	}
	slices.Sort(live)
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

// MemberAlive reports whether member m of queue has a live holder: its lock
// exists (the lease runs) and a connection named after its token is open.
func (s *Store) MemberAlive(ctx context.Context, queue string, m int) (bool, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	holder, err := redis.String(conn.Do("GET", MemberKey(queue, m)))
	if errors.Is(err, redis.ErrNil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", MemberKey(queue, m), foreignLock(conn, MemberKey(queue, m), err))
	}
	return s.clientConnected(conn, holder)
}

// TakeOver takes the lock of member m of queue, whose holder is dead, with
// token (the taker's own), so that the taker may finish m's batches in
// flight. It returns nil when m is held by a live daemon (or was taken by
// another meanwhile). The Lock is kept and released like any other.
func (s *Store) TakeOver(ctx context.Context, queue string, m int, token string) (*Lock, error) {
	l := &Lock{store: s, queue: queue, member: m, key: MemberKey(queue, m), token: token, leased: true, takeover: true}
	if err := l.connect(ctx); err != nil {
		return nil, err
	}
	ok, err := l.try()
	if err != nil || !ok {
		l.conn.Close()
		return nil, err
	}
	l.takeover = false // from now on it is kept like any other lock
	return l, nil
}

// Members lists the member numbers in MembersKey(queue).
func (s *Store) Members(ctx context.Context, queue string) ([]int, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	ms, err := redis.Ints(conn.Do("SMEMBERS", MembersKey(queue)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MembersKey(queue), err)
	}
	slices.Sort(ms)
	return ms, nil
}

// ForgetMember drops member m from MembersKey(queue), only while m's lock
// is free: the caller saw none of m's slots in flight, and a daemon joining
// as m meanwhile (its lock is taken before it registers) stays registered.
func (s *Store) ForgetMember(ctx context.Context, queue string, m int) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	_, err = conn.Do("EVAL", `if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) end return 0`,
		2, MemberKey(queue, m), MembersKey(queue), m)
	if err != nil {
		return fmt.Errorf("forget member %d of queue %s: %w", m, queue, err)
	}
	return nil
}
