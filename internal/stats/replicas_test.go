package stats_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// A batch is confirmed only once a replica has its counts and record; a
// short WAIT fails Apply with ErrNotReplicated, and the record is then
// confirmed by IsApplied once the replica is back, never applied twice.
func TestMinReplicasWaitsForTheReplica(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	replica := redistest.StartReplica(t, master, redistest.Options{})
	s := newStore(t, master)
	// With the replica up, the wait is generous: a loaded machine may take
	// a while to forward a write; only the waits without a replica are short.
	s.MinReplicas, s.ReplicaWait = 1, 10*time.Second
	replica.WaitLinkUp()
	master.WaitReplicas(1)
	ctx := context.Background()
	now := time.Now().UTC()

	batch := func() *stats.Batch {
		b := stats.NewBatch()
		b.Add(now, []byte("h"), []byte("root"), []byte("192.0.2.1"))
		return b
	}
	rec := func(id string) stats.Applied { return stats.Applied{Queue: "q", Slot: 0, ID: id} }

	r := rec("a")
	if err := s.Apply(ctx, batch(), &r); err != nil {
		t.Fatalf("apply with a replica up: %v", err)
	}
	// Apply returned after WAIT: the replica has the record already.
	if id, err := redis.String(replica.Conn(0).Do("GET", stats.AppliedKey("q", 0))); err != nil || id != "a" {
		t.Fatalf("replica's record = %q, %v; want a", id, err)
	}

	replica.Kill()
	s.ReplicaWait = 300 * time.Millisecond
	r = rec("b")
	err := s.Apply(ctx, batch(), &r)
	if !errors.Is(err, stats.ErrNotReplicated) {
		t.Fatalf("apply without a replica: err %v, want ErrNotReplicated", err)
	}
	// The record says applied, but it is not confirmed while no replica
	// has it: IsApplied and a second Apply both say so.
	if ok, err := s.IsApplied(ctx, r); !errors.Is(err, stats.ErrNotReplicated) || ok {
		t.Fatalf("IsApplied without a replica = %v, %v; want ErrNotReplicated", ok, err)
	}
	if err := s.Apply(ctx, batch(), &r); !errors.Is(err, stats.ErrNotReplicated) {
		t.Fatalf("second apply without a replica: err %v, want ErrNotReplicated", err)
	}

	replica.Restart() // empty: a full resync brings everything
	replica.WaitLinkUp()
	master.WaitReplicas(1)
	s.ReplicaWait = 10 * time.Second
	if ok, err := s.IsApplied(ctx, r); err != nil || !ok {
		t.Fatalf("IsApplied with the replica back = %v, %v; want true", ok, err)
	}
	if err := s.Apply(ctx, batch(), &r); !errors.Is(err, stats.ErrAlreadyApplied) {
		t.Fatalf("apply of a confirmed batch: err %v, want ErrAlreadyApplied", err)
	}
	// Master and replica agree, and "b" was applied once.
	for name, srv := range map[string]*redistest.Server{"master": master, "replica": replica} {
		want := redistest.Dump(t, master.Conn(stats.StatsDB))
		got := redistest.Dump(t, srv.Conn(stats.StatsDB))
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("%s has %d stats keys, master %d", name, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s %s = %q, master %q", name, k, got[k], v)
			}
		}
	}
	total, err := redis.Int(master.Conn(stats.StatsDB).Do("ZSCORE", stats.StatsKey(now.Format("20060102"), "username"), "root"))
	if err != nil || total != 2 {
		t.Fatalf("root counted %d times (%v); want 2 (batches a and b, once each)", total, err)
	}
}

// Without min_replicas nothing waits: a master with no replica counts.
func TestNoMinReplicasDoesNotWait(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	s := newStore(t, master)
	r := stats.Applied{Queue: "q", Slot: 0, ID: "a"}
	b := stats.NewBatch()
	b.Add(time.Now(), []byte("h"), []byte("root"), []byte("192.0.2.1"))
	if err := s.Apply(context.Background(), b, &r); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if ok, err := s.IsApplied(context.Background(), r); err != nil || !ok {
		t.Fatalf("IsApplied = %v, %v", ok, err)
	}
}
