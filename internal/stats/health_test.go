package stats_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func infoField(t *testing.T, c redis.Conn, section, field string) string {
	t.Helper()
	info, err := redis.String(c.Do("INFO", section))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

func someBatch() *stats.Batch {
	b := stats.NewBatch()
	b.Add(at("2026-11-25T10:00:00Z"), []byte("h"), []byte("u"), []byte("s"))
	return b
}

func TestCanCountChangesNoStatistics(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	if err := s.Apply(ctx, someBatch(), nil); err != nil {
		t.Fatal(err)
	}
	before := dumpAll(t, srv)
	if err := s.CanCount(ctx, stats.LockKey("q")); err != nil {
		t.Fatalf("CanCount of a healthy redis: %v", err)
	}
	after := dumpAll(t, srv)
	delete(after, "0/"+stats.HealthKey)
	if d := diff(before, after); len(d) > 0 {
		t.Fatalf("CanCount changed:\n%s", strings.Join(d, "\n"))
	}
	ttl, err := redis.Int(srv.Conn(0).Do("PTTL", stats.HealthKey))
	if err != nil || ttl <= 0 {
		t.Fatalf("the probe key does not expire: PTTL = %d, %v", ttl, err)
	}
}

func TestCanCountNamesForeignKeys(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	lock := stats.LockKey("q")
	cases := []struct {
		db        int
		key, want string
	}{
		{0, lock, "string"},
		{1, "oldest", "string"},
		{1, "newest", "string"},
		{1, stats.TotalsKey, "hash"},
		{1, stats.ToUpdateKey(stats.Daily), "set"},
		{1, stats.ToUpdateKey(stats.Monthly), "set"},
		{1, stats.ToUpdateKey(stats.Yearly), "set"},
		{1, stats.FirstSeenKey(stats.KindUser), "zset"},
		{1, stats.FirstSeenKey(stats.KindSrc), "zset"},
		{1, stats.FirstSeenKey(stats.KindHost), "zset"},
	}
	for _, tc := range cases {
		c := srv.Conn(tc.db)
		do(t, c, "RPUSH", tc.key, "x")
		err := s.CanCount(ctx, lock)
		var fe *stats.ForeignKeyError
		if !errors.As(err, &fe) || fe.DB != tc.db || fe.Key != tc.key || fe.Type != "list" || fe.Want != tc.want {
			t.Errorf("CanCount with %s a list in DB %d = %v", tc.key, tc.db, err)
		}
		do(t, c, "DEL", tc.key)
		if err := s.CanCount(ctx, lock); err != nil {
			t.Fatalf("CanCount after repairing %s: %v", tc.key, err)
		}
	}
	do(t, srv.Conn(0), "SET", stats.RebuildingKey, "1")
	if err := s.CanCount(ctx, lock); !errors.Is(err, stats.ErrUnfit) {
		t.Errorf("CanCount during a flush = %v, want ErrUnfit", err)
	}
}

// TestCanCountOutOfMemory: a counting redis past its maxmemory (with the
// shipped noeviction policy) refuses to count; CanCount says so, and Apply
// writes nothing.
func TestCanCountOutOfMemory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Extra: []string{"--maxmemory-policy", "noeviction"}})
	s := newStore(t, srv)
	ctx := context.Background()
	c := srv.Conn(2)
	do(t, c, "SET", "filler", strings.Repeat("x", 2<<20))
	do(t, c, "CONFIG", "SET", "maxmemory", "1mb")
	before := dumpAll(t, srv)
	err := s.CanCount(ctx, "")
	if !errors.Is(err, stats.ErrWritesRefused) || !strings.Contains(err.Error(), "OOM") || !strings.Contains(err.Error(), "raise its maxmemory") {
		t.Fatalf("CanCount out of memory = %v", err)
	}
	if err := s.Apply(ctx, someBatch(), &stats.Applied{Queue: "q", Slot: 0, ID: "x"}); err == nil || !strings.Contains(err.Error(), "OOM") {
		t.Fatalf("Apply out of memory = %v", err)
	}
	if d := diff(before, dumpAll(t, srv)); len(d) > 0 {
		t.Fatalf("written out of memory:\n%s", strings.Join(d, "\n"))
	}
	do(t, c, "CONFIG", "SET", "maxmemory", "0")
	if err := s.CanCount(ctx, ""); err != nil {
		t.Fatalf("CanCount with the limit lifted: %v", err)
	}
}

// TestCanCountReadOnlyReplica: a counting redis turned into a replica
// refuses writes.
func TestCanCountReadOnlyReplica(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	// No delay before the first sync, which Redis otherwise waits 5 s for.
	master := redistest.Start(t, redistest.Options{Extra: []string{"--repl-diskless-sync-delay", "0"}})
	s := newStore(t, srv)
	ctx := context.Background()
	c := srv.Conn(0)
	do(t, c, "REPLICAOF", "127.0.0.1", master.Port)
	// Until the first sync is loaded the replica answers LOADING or
	// serves stale data; wait for the link, then ask.
	waitFor(t, "the replica link", func() bool { return infoField(t, c, "replication", "master_link_status") == "up" })
	err := s.CanCount(ctx, stats.LockKey("q"))
	if !errors.Is(err, stats.ErrWritesRefused) || !strings.Contains(err.Error(), "READONLY") || !strings.Contains(err.Error(), "REPLICAOF NO ONE") {
		t.Fatalf("CanCount on a replica = %v", err)
	}
	do(t, c, "REPLICAOF", "NO", "ONE")
	if err := s.CanCount(ctx, stats.LockKey("q")); err != nil {
		t.Fatalf("CanCount on a master again: %v", err)
	}
}

// TestCanCountFailedSave: with stop-writes-on-bgsave-error (the default), a
// snapshot that cannot be written stops every write.
func TestCanCountFailedSave(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Extra: []string{"--enable-protected-configs", "yes"}})
	s := newStore(t, srv)
	ctx := context.Background()
	c := srv.Conn(0)
	gone := filepath.Join(srv.Dir, "gone")
	if err := os.Mkdir(gone, 0o755); err != nil {
		t.Fatal(err)
	}
	do(t, c, "CONFIG", "SET", "save", "3600 1")
	do(t, c, "CONFIG", "SET", "dir", gone)
	// The snapshot is written in the working directory, which no longer
	// exists: the save fails whoever runs it.
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	do(t, c, "BGSAVE")
	waitFor(t, "the failed save", func() bool { return infoField(t, c, "persistence", "rdb_last_bgsave_status") == "err" })
	err := s.CanCount(ctx, "")
	if !errors.Is(err, stats.ErrWritesRefused) || !strings.Contains(err.Error(), "MISCONF") || !strings.Contains(err.Error(), "save to disk") {
		t.Fatalf("CanCount after a failed save = %v", err)
	}
	do(t, c, "CONFIG", "SET", "dir", srv.Dir)
	do(t, c, "BGSAVE")
	waitFor(t, "a good save", func() bool { return infoField(t, c, "persistence", "rdb_last_bgsave_status") == "ok" })
	if err := s.CanCount(ctx, ""); err != nil {
		t.Fatalf("CanCount after a good save: %v", err)
	}
}

// TestCanCountAnswersWithinItsDeadline: a counting redis that does not
// answer a write (CLIENT PAUSE) does not hold CanCount past its context.
func TestCanCountAnswersWithinItsDeadline(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	// A first check leaves a connection of each pool idle, as in a
	// running daemon.
	if err := s.CanCount(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	pauser := srv.Conn(3)
	// WRITE rather than ALL, so that UNPAUSE, which writes nothing, is
	// served at the end.
	do(t, pauser, "CLIENT", "PAUSE", 10000, "WRITE")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.CanCount(ctx, "")
	// redigo ends the wait either on the context or on a read deadline
	// set from it; either way it is an outage, not a refusal.
	if err == nil || errors.Is(err, stats.ErrWritesRefused) {
		t.Fatalf("CanCount of a paused redis = %v, want a timeout", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("CanCount took %v with a 300ms deadline", took)
	}
	do(t, pauser, "CLIENT", "UNPAUSE")
}

// TestLockNamesAForeignLockKey: a lock key that is not a string is named
// when a daemon tries to take it, and does not stop a flush.
func TestLockNamesAForeignLockKey(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	do(t, srv.Conn(0), "HSET", stats.LockKey("q"), "f", "v")
	_, err := s.Lock(ctx, "q", "tok", 0)
	var fe *stats.ForeignKeyError
	if !errors.As(err, &fe) || fe.Key != stats.LockKey("q") || fe.Type != "hash" || fe.Want != "string" {
		t.Fatalf("Lock with a foreign lock key = %v", err)
	}
	live, err := s.LiveConsumers(ctx)
	if err != nil || len(live) != 0 {
		t.Fatalf("LiveConsumers with a foreign lock key = %v, %v", live, err)
	}
}
