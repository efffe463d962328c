package sentinel

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
)

func TestFollowsFailover(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	replica := redistest.StartReplica(t, master, redistest.Options{})
	var sentinels []string
	for i := 0; i < 3; i++ {
		sentinels = append(sentinels, redistest.StartSentinel(t, "counting", master, redistest.SentinelOptions{}).Addr())
	}
	var mu sync.Mutex
	var switches []string
	c := &Client{
		Sentinels: append([]string{"127.0.0.1:1"}, sentinels...), // a dead one first: skipped
		Master:    "counting",
		Options:   []redis.DialOption{redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second)},
		OnSwitch: func(old, new string) {
			mu.Lock()
			switches = append(switches, old+">"+new)
			mu.Unlock()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched := make(chan error, 1)
	go func() { watched <- c.Watch(ctx) }()

	conn, err := c.Dial(ctx, 1)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if _, err := conn.Do("SET", "k", "v"); err != nil {
		t.Fatalf("write to master: %v", err)
	}
	// Replication is asynchronous: the key must be on the replica before
	// the master dies, or the promoted replica rightly lacks it.
	if n, err := redis.Int(conn.Do("WAIT", 1, 5000)); err != nil || n < 1 {
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}
	conn.Close()
	if c.Addr() != master.Addr() {
		t.Fatalf("master %q, want %q", c.Addr(), master.Addr())
	}
	before := time.Now()
	master.Kill()

	// Dials fail or reach the old address until the Sentinels promote the
	// replica; then they reach it, a master, with the key replicated.
	deadline := time.Now().Add(30 * time.Second)
	for c.Addr() != replica.Addr() {
		if time.Now().After(deadline) {
			t.Fatalf("no failover to %s within 30s (last master %q)", replica.Addr(), c.Addr())
		}
		if conn, err := c.Dial(ctx, 1); err == nil {
			conn.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn, err = c.Dial(ctx, 1)
	if err != nil {
		t.Fatalf("dial after failover: %v", err)
	}
	defer conn.Close()
	if v, err := redis.String(conn.Do("GET", "k")); err != nil || v != "v" {
		t.Fatalf("GET k on the new master = %q, %v", v, err)
	}
	if _, err := conn.Do("SET", "k", "w"); err != nil {
		t.Fatalf("write to the new master: %v", err)
	}
	if !c.SwitchedSince(before) {
		t.Fatalf("SwitchedSince(before the kill) = false after a failover")
	}
	if c.SwitchedSince(time.Now()) {
		t.Fatalf("SwitchedSince(now) = true")
	}
	mu.Lock()
	got := strings.Join(switches, ",")
	mu.Unlock()
	if got != master.Addr()+">"+replica.Addr() {
		t.Fatalf("switches %q, want one from %s to %s", got, master.Addr(), replica.Addr())
	}
	cancel()
	if err := <-watched; err != nil {
		t.Fatalf("watch: %v", err)
	}
}

func TestWatchSeesSwitchMaster(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	replica := redistest.StartReplica(t, master, redistest.Options{})
	s := redistest.StartSentinel(t, "counting", master, redistest.SentinelOptions{Quorum: 1})
	switched := make(chan string, 1)
	c := &Client{Sentinels: []string{s.Addr()}, Master: "counting",
		OnSwitch: func(old, new string) { switched <- new }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := c.Dial(ctx, 0)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.Close()
	go func() { _ = c.Watch(ctx) }()
	// A manual failover: no connection is lost, only +switch-master says
	// it. The Sentinel refuses it (NOGOODSLAVE) until it has seen the
	// replica answer for a while.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := s.Conn(0).Do("SENTINEL", "FAILOVER", "counting")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SENTINEL FAILOVER refused for 20s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case got := <-switched:
		if got != replica.Addr() {
			t.Fatalf("switched to %s, want %s", got, replica.Addr())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no +switch-master within 30s")
	}
}

func TestDialRefusals(t *testing.T) {
	master := redistest.Start(t, redistest.Options{})
	replica := redistest.StartReplica(t, master, redistest.Options{})
	s := redistest.StartSentinel(t, "counting", master, redistest.SentinelOptions{})

	c := &Client{Sentinels: []string{s.Addr()}, Master: "other"}
	_, err := c.Dial(context.Background(), 0)
	if !errors.Is(err, ErrNoMaster) || !strings.Contains(err.Error(), `does not monitor a master named "other"`) {
		t.Fatalf("unknown master name: err %v", err)
	}

	// ROLE refuses a replica, whoever names it.
	conn := replica.Conn(0)
	if err := IsMaster(conn); err == nil || !strings.Contains(err.Error(), "is a slave, not the master") {
		t.Fatalf("IsMaster(replica) = %v", err)
	}
	if err := IsMaster(master.Conn(0)); err != nil {
		t.Fatalf("IsMaster(master) = %v", err)
	}
	// A Sentinel is no master either.
	if err := IsMaster(s.Conn(0)); err == nil {
		t.Fatalf("IsMaster(sentinel) = nil")
	}
}
