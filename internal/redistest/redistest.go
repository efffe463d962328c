// Package redistest starts real redis-server processes on free loopback
// ports for tests, and stops, kills and restarts them on the same port and
// data directory so that tests can exercise outages and crash recovery.
//
// It is imported only by tests. A test that needs Redis fails (it does not
// skip) when redis-server is missing: the project's CI installs it, and a
// skipped test proves nothing.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// Server is one redis-server process under a test's control.
type Server struct {
	t    testing.TB
	Port int
	Dir  string
	args []string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Options tune the server. The zero value is an in-memory Redis without
// persistence.
type Options struct {
	// AOF turns on the append-only file with appendfsync always, as the
	// shipped redis.conf runs the counting Redis.
	AOF bool
	// RDB keeps a snapshot on shutdown, as a D4 server runs its Redis.
	RDB bool
	// Extra are further "--key value" arguments.
	Extra []string
}

// Start launches a redis-server and waits until it answers PING. The server
// is killed when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH (install it with apt-get install redis-server): %v", err)
	}
	dir := t.TempDir()
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "no",
		"--databases", "16",
		"--loglevel", "warning",
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	if o.RDB {
		args = append(args, "--save", "3600 1", "--dbfilename", "dump.rdb")
	}
	if o.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	args = append(args, o.Extra...)
	s := &Server{t: t, Dir: dir, args: append([]string{bin}, args...)}
	s.startOnFreePort()
	t.Cleanup(s.Kill)
	return s
}

func (s *Server) startOnFreePort() {
	s.t.Helper()
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		s.Port = freePort(s.t)
		if last = s.start(); last == nil {
			return
		}
	}
	s.t.Fatalf("start redis-server: %v", last)
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	args := append(append([]string(nil), s.args[1:]...), "--port", strconv.Itoa(s.Port))
	cmd := exec.Command(s.args[0], args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited at start: %v; log: %s", err, s.logTail())
		default:
		}
		c, err := redis.Dial("tcp", s.Addr(), redis.DialConnectTimeout(time.Second))
		if err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				s.cmd = cmd
				// Keep reaping: the goroutine above owns Wait.
				go func() { <-exited }()
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return fmt.Errorf("redis-server on %s did not answer PING within 10s; log: %s", s.Addr(), s.logTail())
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Kill stops the server with SIGKILL, as a crash would, and waits until the
// port is free.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	s.waitPortFree()
}

// Shutdown stops the server cleanly (SHUTDOWN, which saves when
// persistence is on).
func (s *Server) Shutdown() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	c, err := redis.Dial("tcp", s.Addr(), redis.DialConnectTimeout(time.Second))
	if err == nil {
		_, _ = c.Do("SHUTDOWN")
		c.Close()
	}
	s.waitPortFree()
}

// Restart starts the server again on the same port and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server on %s: %v", s.Addr(), err)
}

func (s *Server) waitPortFree() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
}

// Conn dials a connection to db, closed when the test ends.
func (s *Server) Conn(db int) redis.Conn {
	s.t.Helper()
	c, err := redis.Dial("tcp", s.Addr(), redis.DialDatabase(db), redis.DialConnectTimeout(2*time.Second))
	if err != nil {
		s.t.Fatalf("dial redis %s db %d: %v", s.Addr(), db, err)
	}
	s.t.Cleanup(func() { c.Close() })
	return c
}

// Dump returns every key of db with a canonical rendering of its value, for
// comparing whole databases in tests. Sorted sets render as member=score
// pairs in member order, sets as sorted members, lists in order, hashes as
// sorted field=value pairs.
func Dump(t testing.TB, c redis.Conn) map[string]string {
	t.Helper()
	out := map[string]string{}
	keys, err := redis.Strings(c.Do("KEYS", "*"))
	if err != nil {
		t.Fatalf("dump keys: %v", err)
	}
	for _, k := range keys {
		typ, err := redis.String(c.Do("TYPE", k))
		if err != nil {
			t.Fatalf("dump type %q: %v", k, err)
		}
		var b strings.Builder
		switch typ {
		case "string":
			v, _ := redis.String(c.Do("GET", k))
			if strings.HasPrefix(k, "alog:links:") {
				// Drill-down chunks: their bytes depend on how the
				// attempts were batched, their meaning does not.
				v = canonicalLinks(v)
			}
			b.WriteString(v)
		case "zset":
			v, _ := redis.Strings(c.Do("ZRANGE", k, 0, -1, "WITHSCORES"))
			pairs := make([]string, 0, len(v)/2)
			for i := 0; i+1 < len(v); i += 2 {
				pairs = append(pairs, strconv.Quote(v[i])+"="+v[i+1])
			}
			sort.Strings(pairs)
			b.WriteString(strings.Join(pairs, " "))
		case "set":
			v, _ := redis.Strings(c.Do("SMEMBERS", k))
			sort.Strings(v)
			for i := range v {
				v[i] = strconv.Quote(v[i])
			}
			b.WriteString(strings.Join(v, " "))
		case "list":
			v, _ := redis.Strings(c.Do("LRANGE", k, 0, -1))
			for i := range v {
				v[i] = strconv.Quote(v[i])
			}
			b.WriteString(strings.Join(v, " "))
		case "hash":
			v, _ := redis.StringMap(c.Do("HGETALL", k))
			pairs := make([]string, 0, len(v))
			for f, x := range v {
				pairs = append(pairs, strconv.Quote(f)+"="+x)
			}
			sort.Strings(pairs)
			b.WriteString(strings.Join(pairs, " "))
		default:
			b.WriteString("<" + typ + ">")
		}
		out[k] = typ + ":" + b.String()
	}
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// LogLines reads the server's log, for diagnosing a failed test.
func (s *Server) LogLines() []string {
	f, err := os.Open(filepath.Join(s.Dir, "redis.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// canonicalLinks renders drill-down chunks (stats.DecodeLinks) as their
// tuples summed, in order, or says why they cannot be read.
func canonicalLinks(v string) string {
	sum := map[string]int64{}
	err := stats.DecodeLinks([]byte(v), func(kinds []string, n int64, vals [][]byte) error {
		parts := make([]string, len(vals))
		for i, x := range vals {
			parts[i] = kinds[i] + ":" + strconv.Quote(string(x))
		}
		sum[strings.Join(parts, " ")] += n
		return nil
	})
	if err != nil {
		return "<" + err.Error() + ">"
	}
	out := make([]string, 0, len(sum))
	for t, n := range sum {
		out = append(out, "("+t+")="+strconv.FormatInt(n, 10))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// ReadRankings reads every ranking of the database c is on, "<period>:stats<kind>"
// sorted sets: key → member → score.
func ReadRankings(c redis.Conn) (map[string]map[string]float64, error) {
	keys, err := redis.Strings(c.Do("KEYS", "*:stats*"))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]float64{}
	for _, k := range keys {
		if strings.HasPrefix(k, "alog:") || strings.HasPrefix(k, "toupdate:") {
			continue
		}
		v, err := redis.Values(c.Do("ZRANGE", k, 0, -1, "WITHSCORES"))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		m := make(map[string]float64, len(v)/2)
		for i := 0; i+1 < len(v); i += 2 {
			member, _ := redis.String(v[i], nil)
			score, err := redis.Float64(v[i+1], nil)
			if err != nil {
				return nil, fmt.Errorf("score in %s: %w", k, err)
			}
			m[member] = score
		}
		out[k] = m
	}
	return out, nil
}
