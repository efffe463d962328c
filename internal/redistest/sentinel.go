package redistest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// StartReplica launches a redis-server replicating master, with o as Start
// takes it, and waits until its link to the master is up.
func StartReplica(t testing.TB, master *Server, o Options) *Server {
	t.Helper()
	// Redis waits 5 s by default before a diskless full sync, for more
	// replicas to join it; tests have one at a time.
	if _, err := master.Conn(0).Do("CONFIG", "SET", "repl-diskless-sync-delay", "0"); err != nil {
		t.Fatalf("configure master %s: %v", master.Addr(), err)
	}
	o.Extra = append(append([]string(nil), o.Extra...), "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	o.Extra = append(o.Extra, "--repl-diskless-sync-delay", "0")
	s := Start(t, o)
	s.WaitLinkUp()
	master.WaitReplicas(1)
	return s
}

// WaitReplicas waits until the master counts n replicas online, as WAIT
// counts them (a replica whose link is up is counted only after its first
// acknowledgement).
func (s *Server) WaitReplicas(n int) {
	s.t.Helper()
	c, err := redis.Dial("tcp", s.Addr(), redis.DialConnectTimeout(time.Second))
	if err != nil {
		s.t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		// A connection that wrote nothing waits for offset 0: WAIT then
		// counts the replicas online, blocking up to 100 ms for more.
		got, err := redis.Int(c.Do("WAIT", n, 100))
		if err == nil && got >= n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %d replicas online after 20s, want %d (%v)", s.Addr(), got, n, err)
		}
	}
}

// WaitLinkUp waits until the server is a replica whose link to its master
// is up.
func (s *Server) WaitLinkUp() {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c, err := redis.Dial("tcp", s.Addr(), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
		if err == nil {
			info, _ := redis.String(c.Do("INFO", "replication"))
			c.Close()
			if strings.Contains(info, "master_link_status:up") {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("replica %s: link to its master not up within 20s; log: %s", s.Addr(), s.logTail())
}

// RestartReplicaOf starts a killed server again on its port and data
// directory as a replica of master, as an operator brings an old master
// back after a failover.
func (s *Server) RestartReplicaOf(master string) {
	s.t.Helper()
	host, port, ok := strings.Cut(master, ":")
	if !ok {
		s.t.Fatalf("restart %s as replica: master %q is not host:port", s.Addr(), master)
	}
	s.mu.Lock()
	args := s.args
	for i := 0; i+2 < len(args); i++ {
		if args[i] == "--replicaof" {
			args = append(args[:i:i], args[i+3:]...)
			break
		}
	}
	s.args = append(args, "--replicaof", host, port)
	s.mu.Unlock()
	s.Restart()
}

// SentinelOptions tune a Sentinel. Zero values are short, test-friendly
// timings.
type SentinelOptions struct {
	Quorum          int           // default 2
	DownAfter       time.Duration // default 500ms
	FailoverTimeout time.Duration // default 2s
}

// StartSentinel launches redis-server --sentinel monitoring master under
// name, with a generated configuration file (a Sentinel rewrites it, so it
// lives in the test's directory). It is killed when the test ends.
func StartSentinel(t testing.TB, name string, master *Server, o SentinelOptions) *Server {
	t.Helper()
	if o.Quorum == 0 {
		o.Quorum = 2
	}
	if o.DownAfter == 0 {
		o.DownAfter = 500 * time.Millisecond
	}
	if o.FailoverTimeout == 0 {
		o.FailoverTimeout = 2 * time.Second
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH (install it with apt-get install redis-server): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	text := fmt.Sprintf(`bind 127.0.0.1
protected-mode no
dir %s
logfile %s
loglevel notice
sentinel monitor %s 127.0.0.1 %d %d
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, dir, filepath.Join(dir, "redis.log"), name, master.Port, o.Quorum,
		name, o.DownAfter.Milliseconds(), name, o.FailoverTimeout.Milliseconds(), name)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatalf("write sentinel config: %v", err)
	}
	s := &Server{t: t, Dir: dir, args: []string{bin, conf, "--sentinel"}}
	s.startOnFreePort()
	t.Cleanup(s.Kill)
	return s
}

// MasterOf asks the Sentinel for the address of the master it knows as
// name, "" when it knows none.
func (s *Server) MasterOf(name string) string {
	s.t.Helper()
	c, err := redis.Dial("tcp", s.Addr(), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
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
