package compile

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
)

// leaseStore answers HoldCompile as told and records releases.
type leaseStore struct {
	mu       sync.Mutex
	ok       bool
	err      error
	released []string
}

func (s *leaseStore) HoldCompile(ctx context.Context, queue, token string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.err
}

func (s *leaseStore) ReleaseCompile(ctx context.Context, queue, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = append(s.released, token)
	return nil
}

func (s *leaseStore) set(ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok, s.err = ok, err
}

func gauge(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// The lease survives an unreachable counting Redis until it would have
// expired, is given up then, is lost at once when another daemon holds it,
// and is released at the stop only when held.
func TestCompileLeaseKeeper(t *testing.T) {
	clock := clockwork.NewFakeClock()
	store := &leaseStore{ok: true}
	m := metrics.New(prometheus.NewRegistry(), "test", nil)
	l := &Lease{Store: store, Queue: "q", Token: "me", Clock: clock, Log: slog.New(slog.DiscardHandler),
		Metrics: m, TTL: 10 * time.Second}
	ctx := context.Background()
	if !l.Try(ctx) || !l.Held() || gauge(t, m.CompileLeaseHeld) != 1 {
		t.Fatal("a free lease was not taken")
	}
	store.set(false, errors.New("connection refused"))
	clock.Advance(5 * time.Second)
	if !l.Try(ctx) {
		t.Fatal("the lease was given up on an error well within its TTL")
	}
	clock.Advance(4 * time.Second)
	if l.Try(ctx) || l.Held() || gauge(t, m.CompileLeaseHeld) != 0 {
		t.Fatal("the lease was kept on errors until it may have expired")
	}
	store.set(true, nil)
	if !l.Try(ctx) {
		t.Fatal("the lease was not taken back")
	}
	store.set(false, nil)
	if l.Try(ctx) {
		t.Fatal("the lease held by another daemon was kept")
	}
	// A daemon that does not hold the lease releases nothing at its stop;
	// one that does releases it.
	for _, hold := range []bool{false, true} {
		store.set(hold, nil)
		l.Try(ctx)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Run(rctx) }()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if len(store.released) != 1 || store.released[0] != "me" || l.Held() || gauge(t, m.CompileLeaseHeld) != 0 {
		t.Fatalf("released %v, held %v", store.released, l.Held())
	}
}

// A daemon without the compile lease compiles nothing and writes no share.
func TestLoopWithoutTheLeaseCompilesNothing(t *testing.T) {
	wrote := false
	l := &Loop{Leader: func() bool { return false }, Shares: []func(context.Context) error{
		func(context.Context) error { wrote = true; return nil },
	}}
	// A nil Compiler would panic if the loop compiled.
	if err := l.Once(context.Background(), true); err != nil || wrote || !l.LastCompile().IsZero() {
		t.Fatalf("Once without the lease: %v, share written %v", err, wrote)
	}
	if err := l.Last(context.Background()); err != nil || wrote {
		t.Fatalf("Last without the lease: %v, share written %v", err, wrote)
	}
}
