// Package e2e runs the built binary against real redis-server processes,
// as an operator would: the D4 side pushes lines, the daemon counts them,
// and the test compares every statistics key with an independent
// computation.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

const queueUUID = "5b3c8f0e-2d6a-4c1b-9e7f-0a1b2c3d4e5f"

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "alog-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "analyzer-d4-log")
	build := exec.Command("go", "build", "-race", "-o", binary, "../../cmd/analyzer-d4-log")
	if os.Getenv("E2E_NO_RACE") != "" {
		build = exec.Command("go", "build", "-o", binary, "../../cmd/analyzer-d4-log")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build analyzer-d4-log:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one installation: a D4 Redis, a counting Redis and a working
// directory with a configuration.
type env struct {
	t       *testing.T
	d4, cnt *redistest.Server
	dir     string // working directory of the daemon
	conf    string // configuration directory
	toml    string
}

func newEnv(t *testing.T, toml string) *env {
	e := &env{t: t, toml: toml}
	e.d4 = redistest.Start(t, redistest.Options{RDB: true})
	e.cnt = redistest.Start(t, redistest.Options{AOF: true})
	e.dir = t.TempDir()
	e.conf = filepath.Join(e.dir, "conf")
	e.writeConf(4)
	return e
}

func (e *env) writeConf(pool int) {
	must(e.t, os.MkdirAll(e.conf, 0o755))
	files := map[string]string{
		"redis_d4":      e.d4.Addr() + "/2\n",
		"redis_queue":   queueUUID + "\n",
		"redis_parsers": fmt.Sprintf("%s/%d\n", e.cnt.Addr(), pool),
	}
	if e.toml != "" {
		files["analyzer.toml"] = e.toml
	}
	for name, v := range files {
		must(e.t, os.WriteFile(filepath.Join(e.conf, name), []byte(v), 0o644))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// push LPUSHes lines as the D4 server does, in order, pipelined.
func (e *env) push(lines []workload.Line) {
	e.t.Helper()
	c := e.d4.Conn(2)
	for i, l := range lines {
		must(e.t, c.Send("LPUSH", "analyzer:3:"+queueUUID, l.Raw))
		if i%1000 == 999 {
			_, err := c.Do("")
			must(e.t, err)
		}
	}
	_, err := c.Do("")
	must(e.t, err)
}

// proc is one running daemon.
type proc struct {
	cmd    *exec.Cmd
	out    *testlog.Buffer
	exited chan error
}

func (e *env) start(args ...string) *proc {
	e.t.Helper()
	return e.startWithStdin(nil, args...)
}

func (e *env) startWithStdin(stdin io.Reader, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"-c", e.conf}, args...)...)
	cmd.Stdin = stdin
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	must(e.t, cmd.Start())
	p := &proc{cmd: cmd, out: out, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	e.t.Cleanup(func() { _ = cmd.Process.Kill() })
	return p
}

// run runs the binary to completion and returns its exit code.
func (e *env) run(args ...string) (int, string) {
	e.t.Helper()
	return e.runWithStdin(nil, args...)
}

func (e *env) runWithStdin(stdin io.Reader, args ...string) (int, string) {
	e.t.Helper()
	p := e.startWithStdin(stdin, args...)
	select {
	case err := <-p.exited:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), p.out.String()
		}
		must(e.t, err)
		return 0, p.out.String()
	case <-time.After(3 * time.Minute):
		e.t.Fatalf("analyzer-d4-log %v did not finish; output:\n%s", args, tail(p.out.String()))
	}
	return -1, ""
}

// stop sends SIGTERM and requires exit 0 within limit. It first waits for
// the daemon's start line: a signal that arrives before the process has
// set up its handlers (a race-enabled binary on a loaded machine starts
// slowly) kills it, which says nothing about its stop.
func (p *proc) stop(t *testing.T, limit time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(limit); !strings.Contains(p.out.String(), "msg=start "); {
		if time.Now().After(deadline) {
			t.Fatalf("no start line within %v; output:\n%s", limit, tail(p.out.String()))
		}
		select {
		case err := <-p.exited:
			t.Fatalf("exited before its start line: %v; output:\n%s", err, tail(p.out.String()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	must(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; output:\n%s", err, tail(p.out.String()))
		}
	case <-time.After(limit):
		t.Fatalf("no exit within %v of SIGTERM; output:\n%s", limit, tail(p.out.String()))
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// waitDrained waits until the queue and every processing list are empty
// and DB 1 holds want attempts in its year totals.
func (e *env) waitDrained(want int, limit time.Duration) {
	e.t.Helper()
	d4 := e.d4.Conn(2)
	cnt := e.cnt.Conn(1)
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		q, _ := redis.Int(d4.Do("LLEN", "analyzer:3:"+queueUUID))
		procs, _ := redis.Strings(d4.Do("KEYS", "alog:processing:*"))
		got := countedAttempts(cnt)
		last = fmt.Sprintf("queue %d, processing lists %d, counted %d of %d", q, len(procs), got, want)
		if q == 0 && len(procs) == 0 && got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("not drained within %v: %s", limit, last)
}

// countedAttempts sums the yearly host sets: one member increment per
// attempt, read without the daemon's own totals.
func countedAttempts(c redis.Conn) int {
	keys, _ := redis.Strings(c.Do("KEYS", "????:statshost"))
	total := 0
	for _, k := range keys {
		v, _ := redis.Int64Map(c.Do("ZRANGE", k, 0, -1, "WITHSCORES"))
		for _, n := range v {
			total += int(n)
		}
	}
	return total
}

// readStats reads every statistics set of DB 1.
func readStats(t *testing.T, c redis.Conn) map[string]map[string]float64 {
	t.Helper()
	out, err := redistest.ReadRankings(c)
	must(t, err)
	return out
}

// checkStats compares DB 1 with the expected statistics, oldest and newest
// included, and reports every difference.
func checkStats(t *testing.T, c redis.Conn, want workload.Expected) {
	t.Helper()
	diffs := want.Diff(readStats(t, c))
	o, _ := redis.String(c.Do("GET", "oldest"))
	n, _ := redis.String(c.Do("GET", "newest"))
	if o != want.Oldest {
		diffs = append(diffs, fmt.Sprintf("oldest = %q, want %q", o, want.Oldest))
	}
	if n != want.Newest {
		diffs = append(diffs, fmt.Sprintf("newest = %q, want %q", n, want.Newest))
	}
	if len(diffs) > 0 {
		if len(diffs) > 40 {
			diffs = append(diffs[:40], fmt.Sprintf("… and %d more", len(diffs)-40))
		}
		t.Fatalf("DB 1 differs from the expected statistics:\n%s", strings.Join(diffs, "\n"))
	}
}

func writeLines(t *testing.T, path string, lines []workload.Line) {
	t.Helper()
	var b bytes.Buffer
	for _, l := range lines {
		b.Write(l.Raw)
		b.WriteByte('\n')
	}
	must(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
