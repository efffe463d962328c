package daemon

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// The counting master is SIGKILLed while lines flow; the Sentinels promote
// its replica, the daemon follows without a restart, the old master comes
// back as a replica, and every statistics key is exact on both: nothing
// acknowledged was lost (min_replicas = 1), nothing counted twice.
func TestSentinelFailoverCountsExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a master, a replica and three sentinels; runs without -short")
	}
	const name = "counting"
	h := &harness{t: t, log: &testlog.Buffer{}}
	h.d4 = redistest.Start(t, redistest.Options{RDB: true})
	master := redistest.Start(t, redistest.Options{AOF: true})
	replica := redistest.StartReplica(t, master, redistest.Options{AOF: true})
	var sentinels []string
	for i := 0; i < 3; i++ {
		sentinels = append(sentinels, redistest.StartSentinel(t, name, master, redistest.SentinelOptions{}).Addr())
	}
	h.cnt = master
	cfg := &config.Config{
		D4: config.RedisAddr{Addr: h.d4.Addr(), DB: 2}, Queue: queue,
		Parsers: "sentinel://" + strings.Join(sentinels, ",") + "/" + name, Sentinels: sentinels, SentinelMaster: name,
		Pool: 3, MinReplicas: 1,
		Location: time.UTC, CompileInterval: time.Hour,
		OutputDir: t.TempDir(), ChartTop: 10, BatchSize: 50, MaxLineBytes: 1 << 20,
	}
	h.d = New(Options{
		Config: cfg, Log: slog.New(slog.NewTextHandler(h.log, nil)),
		BackoffMax: 200 * time.Millisecond, Block: 200 * time.Millisecond,
		ArchiveDir: t.TempDir(),
	})
	t.Cleanup(h.d.Close)
	h.d.store.ReplicaWait = 300 * time.Millisecond

	ls := lines(3000, 18)
	want := workload.Expect(ls, time.UTC)
	switches := watchSwitches(t, sentinels)
	h.run()

	// Lines flow in chunks; the master dies once some are counted.
	pushed := make(chan struct{})
	go func() {
		defer close(pushed)
		for i := 0; i < 2000; i += 100 {
			h.push(ls[i : i+100])
			time.Sleep(50 * time.Millisecond) // the pace of a sensor, not a wait for a condition
		}
	}()
	h.waitFor(20*time.Second, "some lines counted on the first master", func() bool { return h.counted() > 200 })
	master.Kill()
	h.waitFor(30*time.Second, "the sentinels to promote the replica", func() bool {
		return redistestMaster(sentinels, name) == replica.Addr()
	})
	h.cnt = replica
	<-pushed
	// The new master has no replica yet: a WAIT times out and the batch
	// stays on the queue, not acknowledged.
	h.push(ls[2000:2500])
	h.waitFor(20*time.Second, "a WAIT timeout on the new master", func() bool {
		return testutil.ToFloat64(h.d.metrics.ReplicaWaitTimeouts) >= 1
	})
	master.RestartReplicaOf(replica.Addr())
	master.WaitLinkUp()
	h.push(ls[2500:])
	h.waitCounted(want.Attempts, 30*time.Second)
	h.stop()
	h.check(want)

	// On a loaded machine the Sentinels may judge the new master down
	// too and fail over again: the daemon counts each switch it follows,
	// at least the one the test caused and never more than the Sentinels
	// announced.
	if n, most := testutil.ToFloat64(h.d.metrics.CountingFailovers), switches(); n < 1 || n > float64(most) {
		t.Fatalf("counting_failovers_total = %v, want 1 to %d (the switches the sentinels announced)", n, most)
	}
	if !strings.Contains(h.log.String(), "counting redis failover") {
		t.Fatalf("no failover in the log:\n%s", h.log.String())
	}
	// The old master, now a replica, holds the same statistics.
	replica.WaitReplicas(1)
	got, wantDump := redistest.Dump(t, master.Conn(stats.StatsDB)), redistest.Dump(t, replica.Conn(stats.StatsDB))
	if len(got) != len(wantDump) {
		t.Fatalf("old master has %d stats keys, new master %d", len(got), len(wantDump))
	}
	for k, v := range wantDump {
		if got[k] != v {
			t.Fatalf("old master %s = %q, new master %q", k, got[k], v)
		}
	}
}

// redistestMaster asks the Sentinels for the master, "" when none answers.
// watchSwitches counts each Sentinel's +switch-master announcements until
// the test ends; the returned func gives the most any one Sentinel made.
func watchSwitches(t *testing.T, sentinels []string) func() int {
	var mu sync.Mutex
	counts := make([]int, len(sentinels))
	for i, s := range sentinels {
		c, err := redis.Dial("tcp", s, redis.DialConnectTimeout(time.Second))
		if err != nil {
			t.Fatalf("connect to sentinel %s: %v", s, err)
		}
		psc := redis.PubSubConn{Conn: c}
		if err := psc.Subscribe("+switch-master"); err != nil {
			t.Fatalf("subscribe to sentinel %s: %v", s, err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			for {
				switch psc.Receive().(type) {
				case redis.Message:
					mu.Lock()
					counts[i]++
					mu.Unlock()
				case error:
					return
				}
			}
		}()
	}
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		most := 0
		for _, n := range counts {
			most = max(most, n)
		}
		return most
	}
}

func redistestMaster(sentinels []string, name string) string {
	for _, s := range sentinels {
		if a := sentinelMasterOf(s, name); a != "" {
			return a
		}
	}
	return ""
}

func sentinelMasterOf(addr, name string) string {
	c, err := redis.Dial("tcp", addr, redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
	if err != nil {
		return ""
	}
	defer c.Close()
	r, err := redis.Strings(c.Do("SENTINEL", "get-master-addr-by-name", name))
	if err != nil || len(r) != 2 {
		return ""
	}
	return r[0] + ":" + r[1]
}
