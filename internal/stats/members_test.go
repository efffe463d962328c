package stats_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMembersJoinInOrderAndALoneDaemonKeepsTheLockKey(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	c0 := srv.Conn(0)

	a, err := s.Join(ctx, "q", "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release(ctx)
	if a.Member() != 0 || a.Key() != stats.LockKey("q") || a.Key() != "alog:lock:q" {
		t.Fatalf("first daemon: member %d key %s; want member 0 on alog:lock:q", a.Member(), a.Key())
	}
	if v, _ := redis.String(c0.Do("GET", "alog:lock:q")); v != "a" {
		t.Fatalf("alog:lock:q = %q, want the token", v)
	}
	if ttl, _ := redis.Int64(c0.Do("PTTL", a.Key())); ttl <= 0 || ttl > stats.DefaultLease.Milliseconds() {
		t.Fatalf("lock TTL %d ms; want a lease of at most %s", ttl, stats.DefaultLease)
	}
	// Keep renews the lease only once a third of it has run out: a write
	// (an fsync) every second would be for nothing.
	do(t, c0, "PEXPIRE", a.Key(), 14000)
	if err := a.Keep(ctx); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := redis.Int64(c0.Do("PTTL", a.Key())); ttl > 14000 {
		t.Fatalf("lease renewed at %d ms left, with more than two thirds to run", ttl)
	}
	do(t, c0, "PEXPIRE", a.Key(), 5000)
	if err := a.Keep(ctx); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := redis.Int64(c0.Do("PTTL", a.Key())); ttl < 14000 {
		t.Fatalf("lease not renewed: %d ms left", ttl)
	}
	b, err := s.Join(ctx, "q", "b", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release(ctx)
	if b.Member() != 1 || b.Key() != "alog:lock:q:1" {
		t.Fatalf("second daemon: member %d key %s; want member 1 on alog:lock:q:1", b.Member(), b.Key())
	}
	live, err := s.LiveConsumers(ctx)
	if err != nil || len(live) != 1 || live[0] != "q" {
		t.Fatalf("LiveConsumers = %v, %v; want the queue once", live, err)
	}
	// Only members above 0 are registered; one whose lock is held is not
	// forgotten.
	if ms, err := s.Members(ctx, "q"); err != nil || len(ms) != 1 || ms[0] != 1 {
		t.Fatalf("Members = %v, %v; want [1]", ms, err)
	}
	if err := s.ForgetMember(ctx, "q", 1); err != nil {
		t.Fatal(err)
	}
	if ms, _ := s.Members(ctx, "q"); len(ms) != 1 {
		t.Fatalf("a held member was forgotten: %v", ms)
	}
	// The old single-lock API still refuses a second holder of member 0.
	if l, err := s.Lock(ctx, "q", "c", 0); !errors.Is(err, stats.ErrLocked) {
		t.Fatalf("Lock of a held queue = %v, %v; want ErrLocked", l, err)
	}
	// A member freed by a stop is taken by the next to join.
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// With member 0 stopped, a flush still sees member 1 counting.
	if live, err := s.LiveConsumers(ctx); err != nil || len(live) != 1 || live[0] != "q" {
		t.Fatalf("LiveConsumers with only member 1 alive = %v, %v; want the queue", live, err)
	}
	c, err := s.Join(ctx, "q", "c", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release(ctx)
	if c.Member() != 0 {
		t.Fatalf("daemon after the first stopped: member %d, want 0", c.Member())
	}
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetMember(ctx, "q", 1); err != nil {
		t.Fatal(err)
	}
	if n, _ := redis.Int(c0.Do("EXISTS", stats.MembersKey("q"))); n != 0 {
		t.Fatal("a free member was not forgotten")
	}
}

// A member is dead when its connection is gone (SIGKILL) or, with its
// connection still listed (a network cut), when its lease ran out; a live
// one's lease is renewed by Keep.
func TestMemberDeadByConnectionOrByLease(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	s.Lease = 400 * time.Millisecond
	ctx := context.Background()
	c0 := srv.Conn(0)
	a, _ := s.Join(ctx, "q", "a", 0)
	b, _ := s.Join(ctx, "q", "b", 0)
	cut, _ := s.Join(ctx, "q", "cut", 0)
	defer a.Release(ctx)
	defer cut.Release(ctx)
	for m := 0; m < 3; m++ {
		if ok, err := s.MemberAlive(ctx, "q", m); !ok || err != nil {
			t.Fatalf("member %d alive = %v, %v right after joining", m, ok, err)
		}
	}
	redistest.KillClientsNamed(t, c0, "alog-b")
	if ok, err := s.MemberAlive(ctx, "q", b.Member()); ok || err != nil {
		t.Fatalf("member of a killed daemon alive = %v, %v; want dead at once", ok, err)
	}
	// a renews, cut does not: after the lease only cut is dead.
	deadline := time.Now().Add(3 * s.Lease)
	for time.Now().Before(deadline) {
		if err := a.Keep(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ok, _ := s.MemberAlive(ctx, "q", a.Member()); !ok {
		t.Fatal("a renewing member was judged dead")
	}
	if ok, _ := s.MemberAlive(ctx, "q", cut.Member()); ok {
		t.Fatal("a member whose lease ran out (its connection still open) was judged alive")
	}
	// The cut-off daemon, back, finds its lock gone; here no one took it, so
	// it takes it again.
	if err := cut.Keep(ctx); err != nil {
		t.Fatalf("Keep after the lease ran out, lock free: %v", err)
	}
}

// Two live daemons race to take over one dead member: exactly one gets it,
// and only its transactions pass the member's guard; the dead holder's
// token no longer does.
func TestTakeOverIsExclusiveAndGuardsTheDeadMembersSlots(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	c0 := srv.Conn(0)
	a, _ := s.Join(ctx, "q", "a", 0)
	defer a.Release(ctx)
	dead, _ := s.Join(ctx, "q", "dead", 0)
	m := dead.Member()
	redistest.KillClientsNamed(t, c0, "alog-dead")
	// Its key's lease still runs: only the connection says it is dead.
	if n, _ := redis.Int(c0.Do("EXISTS", stats.MemberKey("q", m))); n != 1 {
		t.Fatal("dead member's key gone before its lease")
	}
	var wg sync.WaitGroup
	got := make([]*stats.Lock, 2)
	for i, tok := range []string{"x", "y"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.TakeOver(ctx, "q", m, tok)
			if err != nil {
				t.Error(err)
			}
			got[i] = l
		}()
	}
	wg.Wait()
	if (got[0] == nil) == (got[1] == nil) {
		t.Fatalf("takers: %v, %v; want exactly one", got[0] != nil, got[1] != nil)
	}
	taker := got[0]
	if taker == nil {
		taker = got[1]
	}
	if taker.Member() != m || taker.Key() != stats.MemberKey("q", m) {
		t.Fatalf("taken lock: member %d key %s", taker.Member(), taker.Key())
	}
	// A live member is not taken over.
	if l, err := s.TakeOver(ctx, "q", a.Member(), "z"); l != nil || err != nil {
		t.Fatalf("TakeOver of a live member = %v, %v; want nil", l, err)
	}
	batch := stats.NewBatch()
	batch.Add(time.Now().UTC(), []byte("h"), []byte("root"), []byte("192.0.2.1"))
	rec := stats.Applied{Queue: "q", Slot: 10000*m + 0, ID: "B1", LockKey: taker.Key(), Token: "dead"}
	if err := s.Apply(ctx, batch, &rec); !errors.Is(err, stats.ErrLocked) {
		t.Fatalf("apply with the dead holder's token: %v; want ErrLocked", err)
	}
	rec.Token = taker.Token()
	if err := s.Apply(ctx, batch, &rec); err != nil {
		t.Fatalf("apply by the taker: %v", err)
	}
	if err := taker.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := redis.Int(c0.Do("EXISTS", stats.MemberKey("q", m))); n != 0 {
		t.Fatal("member lock still there after the taker released it")
	}
}

func TestCompileLeaseOneHolderAndTakenOverWhenItDies(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	s.Lease = 400 * time.Millisecond
	ctx := context.Background()
	c0 := srv.Conn(0)
	// Tokens are the members' own, whose named connections say they live.
	a, _ := s.Join(ctx, "q", "a", 0)
	b, _ := s.Join(ctx, "q", "b", 0)
	c, _ := s.Join(ctx, "q", "c", 0)
	defer a.Release(ctx)
	defer b.Release(ctx)
	defer c.Release(ctx)
	hold := func(tok string) bool {
		t.Helper()
		ok, err := s.HoldCompile(ctx, "q", tok)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !hold("a") || hold("b") || !hold("a") {
		t.Fatal("the first to ask must hold the lease, renew it, and keep others off")
	}
	if h, _ := s.CompileHolder(ctx, "q"); h != "a" {
		t.Fatalf("holder %q, want a", h)
	}
	// SIGKILL: the holder's connection is gone, the lease moves at once.
	redistest.KillClientsNamed(t, c0, "alog-a")
	if !hold("b") {
		t.Fatal("the lease of a killed holder was not taken over at once")
	}
	if hold("c") {
		t.Fatal("two holders")
	}
	// A network cut: b's connection stays listed but b stops renewing;
	// c gets the lease once it expires, not before.
	if hold("c") {
		t.Fatal("c took the lease of a live holder")
	}
	waitUntil(t, 5*s.Lease, "the lease to expire", func() bool { return hold("c") })
	if hold("b") {
		t.Fatal("the cut-off holder still holds the lease after c took it")
	}
	if err := s.ReleaseCompile(ctx, "q", "b"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.CompileHolder(ctx, "q"); h != "c" {
		t.Fatalf("a release by a non-holder freed the lease (holder %q)", h)
	}
	if err := s.ReleaseCompile(ctx, "q", "c"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.CompileHolder(ctx, "q"); h != "" {
		t.Fatalf("holder %q after release", h)
	}
	if role, err := s.Role(ctx); role != "master" || err != nil {
		t.Fatalf("Role = %q, %v", role, err)
	}
}
