package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// redisServer is one redis-server process the bench started and owns.
type redisServer struct {
	name string
	port int
	dir  string
	cmd  *exec.Cmd
	// exited is closed by the goroutine that owns cmd.Wait.
	exited chan struct{}
}

// startRedis starts redis-server on a free loopback port with its data in
// dir. extra are further "--key value" arguments (persistence). A port
// taken between choosing it and binding it is retried on another.
func startRedis(bin, name, dir string, extra ...string) (*redisServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory of the %s redis: %w", name, err)
	}
	var last error
	for try := 0; try < 5; try++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &redisServer{name: name, port: port, dir: dir}
		if last = s.start(bin, extra); last == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("start the %s redis: %w", name, last)
}

func (s *redisServer) start(bin string, extra []string) error {
	args := append([]string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--databases", "16",
		"--loglevel", "warning",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}, extra...)
	s.cmd = exec.Command(bin, args...)
	// The servers must not outlive the bench, even when it is killed.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("run %s: %w", bin, err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("redis-server on port %d exited at start; its log: %s", s.port, s.logTail())
		default:
		}
		if c, err := s.dial(0); err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()
	return fmt.Errorf("redis-server on port %d did not answer PING within 10s; its log: %s", s.port, s.logTail())
}

func (s *redisServer) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

// addr is host:port, as the daemon's configuration files want it.
func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// dial connects to one database. Timeouts are long because FLUSHALL of a
// ten-million-line backlog takes seconds.
func (s *redisServer) dial(db int) (redis.Conn, error) {
	c, err := redis.Dial("tcp", s.addr(), redis.DialDatabase(db),
		redis.DialConnectTimeout(5*time.Second),
		redis.DialReadTimeout(2*time.Minute),
		redis.DialWriteTimeout(2*time.Minute))
	if err != nil {
		return nil, fmt.Errorf("connect to the %s redis (%s, db %d): %w", s.name, s.addr(), db, err)
	}
	return c, nil
}

// stop kills the server: its data is the bench's own and thrown away.
func (s *redisServer) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
	}
}

// do runs one command on a fresh connection to db.
func (s *redisServer) do(db int, cmd string, args ...any) (any, error) {
	c, err := s.dial(db)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	v, err := c.Do(cmd, args...)
	if err != nil {
		return nil, fmt.Errorf("%s on the %s redis: %w", cmd, s.name, err)
	}
	return v, nil
}

// info returns one INFO section as key → value.
func (s *redisServer) info(section string) (map[string]string, error) {
	v, err := redis.String(s.do(0, "INFO", section))
	if err != nil {
		return nil, fmt.Errorf("read INFO %s: %w", section, err)
	}
	return parseInfo(v), nil
}

// cpuSeconds is the server's user+system CPU time so far (main and
// background threads; forked children such as an AOF rewrite are not in
// it).
func (s *redisServer) cpuSeconds() (float64, error) {
	m, err := s.info("cpu")
	if err != nil {
		return 0, err
	}
	return infoSum(m, "used_cpu_user", "used_cpu_sys")
}

// usedMemory is Redis' own accounting of its data (used_memory), after
// asking the allocator to return what it can, so two readings differ by
// what was stored rather than by allocator caching.
func (s *redisServer) usedMemory() (int64, error) {
	// MEMORY PURGE exists only with jemalloc; without it the reading is
	// just a little noisier.
	_, _ = s.do(0, "MEMORY", "PURGE")
	m, err := s.info("memory")
	if err != nil {
		return 0, err
	}
	f, err := infoSum(m, "used_memory")
	return int64(f), err
}

// parseInfo reads the text INFO answers: "# Section" headers, blank lines
// and "key:value" lines with CRLF endings.
func parseInfo(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = v
		}
	}
	return m
}

// infoSum adds numeric INFO fields; a missing or malformed one is an error,
// since a silently zero figure would be a wrong figure.
func infoSum(m map[string]string, keys ...string) (float64, error) {
	var sum float64
	for _, k := range keys {
		v, ok := m[k]
		if !ok {
			return 0, fmt.Errorf("INFO has no field %s", k)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO field %s = %q: %w", k, v, err)
		}
		sum += f
	}
	return sum, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// scanKeys lists the keys of the connection's database matching pattern.
func scanKeys(c redis.Conn, pattern string) ([]string, error) {
	var keys []string
	cursor := "0"
	for {
		v, err := redis.Values(c.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 1000))
		if err != nil {
			return nil, fmt.Errorf("scan keys %q: %w", pattern, err)
		}
		if len(v) != 2 {
			return nil, errors.New("scan keys: unexpected reply shape")
		}
		cursor, _ = redis.String(v[0], nil)
		page, _ := redis.Strings(v[1], nil)
		keys = append(keys, page...)
		if cursor == "0" {
			return keys, nil
		}
	}
}

// waitCtx sleeps d or until ctx ends.
func waitCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// scriptLog logs every command of the counting Redis that runs 10 ms or
// more, from now on, so that longestScript can find the longest counting
// script of a run afterwards.
func (s *redisServer) scriptLog() error {
	if _, err := s.do(0, "CONFIG", "SET", "slowlog-log-slower-than", 10000, "slowlog-max-len", 4096); err != nil {
		return err
	}
	_, err := s.do(0, "SLOWLOG", "RESET")
	return err
}

// fileScripts starts the batch record key (ARGV[3]) of the counting scripts
// of a -f run; queueScripts those of the bench's queue.
const (
	fileScripts  = "alog:applied:file-"
	queueScripts = "alog:applied:" + queueUUID + ":"
)

// longestScript is the longest counting script since scriptLog whose batch
// record key starts with prefix, in milliseconds (0 when none took 10 ms):
// while one runs, nothing else gets the counting Redis. The batch record
// key tells a run's scripts from the compile's and the other's. size is
// the number of arguments of that script (its batch's size).
func (s *redisServer) longestScript(prefix string) (ms float64, size int, err error) {
	entries, err := redis.Values(s.do(0, "SLOWLOG", "GET", -1))
	if err != nil {
		return 0, 0, fmt.Errorf("read the counting redis's SLOWLOG: %w", err)
	}
	var longest int64
	for _, e := range entries {
		f, err := redis.Values(e, nil)
		if err != nil || len(f) < 4 {
			continue
		}
		us, _ := redis.Int64(f[2], nil)
		args, _ := redis.Strings(f[3], nil)
		if len(args) > 5 && args[0] == "EVALSHA" && strings.HasPrefix(args[5], prefix) && us > longest {
			longest = us
			// SLOWLOG keeps 32 arguments, the last saying how many more.
			size = len(args) - 1
			if n, ok := strings.CutPrefix(args[len(args)-1], "... ("); ok {
				more, _ := strconv.Atoi(strings.Fields(n)[0])
				size += more
			}
		}
	}
	return float64(longest) / 1000, size, nil
}

// holdRewrites turns automatic AOF rewrites off until restore is called,
// which sets auto-aof-rewrite-percentage back to what it was. A timed
// comparison runs between the two: a rewrite starting in one of its runs
// and not the other (the AOF crossing its growth threshold) would slow
// that run alone by two to four times, whatever the runs compare.
func (s *redisServer) holdRewrites() (restore func() error, err error) {
	v, err := redis.Strings(s.do(0, "CONFIG", "GET", "auto-aof-rewrite-percentage"))
	if err != nil {
		return nil, fmt.Errorf("read auto-aof-rewrite-percentage of the %s redis: %w", s.name, err)
	}
	if len(v) != 2 {
		return nil, fmt.Errorf("read auto-aof-rewrite-percentage of the %s redis: answered %q", s.name, v)
	}
	if _, err := s.do(0, "CONFIG", "SET", "auto-aof-rewrite-percentage", "0"); err != nil {
		return nil, fmt.Errorf("hold the %s redis's AOF rewrites: %w", s.name, err)
	}
	return func() error {
		if _, err := s.do(0, "CONFIG", "SET", "auto-aof-rewrite-percentage", v[1]); err != nil {
			return fmt.Errorf("restore the %s redis's auto-aof-rewrite-percentage: %w", s.name, err)
		}
		return nil
	}, nil
}

// quietPersistence waits until no AOF rewrite runs or is scheduled, and
// returns how long that took. While Redis's forked child rewrites the
// AOF, every page the server writes is copied first: a transaction then
// takes seconds instead of milliseconds (see the README), which no
// timed phase should catch in one of its runs and not the other.
func (s *redisServer) quietPersistence(ctx context.Context, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for {
		m, err := s.info("persistence")
		if err != nil {
			return 0, err
		}
		if m["aof_rewrite_in_progress"] != "1" && m["aof_rewrite_scheduled"] != "1" {
			return time.Since(t0), nil
		}
		if time.Since(t0) > limit {
			return time.Since(t0), fmt.Errorf("an AOF rewrite of the %s redis still runs after %v", s.name, limit)
		}
		if err := waitCtx(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
}
