package scripts_test

import (
	"errors"
	"fmt"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// redisProc is a redis-server started by a test; it is killed when the
// test ends if it still runs.
type redisProc struct {
	port int
	cmd  *exec.Cmd
	out  *testlog.Buffer
	done chan struct{} // closed once the process has been waited for
}

// startRedis runs redis-server ARGS --port PORT in dir and waits until it
// answers PING.
func startRedis(t *testing.T, dir, bin string, port int, args ...string) *redisProc {
	t.Helper()
	args = append(args, "--port", strconv.Itoa(port))
	p := &redisProc{port: port, out: &testlog.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start redis-server %v: %v", args, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("redis-server %v exited at start:\n%s", args, p.out.String())
		default:
		}
		if c, err := redis.Dial("tcp", p.addr(), redis.DialConnectTimeout(time.Second)); err == nil {
			_, err = c.Do("PING")
			c.Close()
			if err == nil {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server %v did not answer PING within 10s:\n%s", args, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *redisProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// stop kills the server and waits for it.
func (p *redisProc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("redis-server on port %d did not die", p.port)
	}
}

// dialRedis connects to db of the Redis on port; closed when the test ends.
func dialRedis(t *testing.T, port, db int) redis.Conn {
	t.Helper()
	c, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), redis.DialDatabase(db),
		redis.DialConnectTimeout(2*time.Second), redis.DialReadTimeout(5*time.Second), redis.DialWriteTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("dial redis port %d db %d: %v", port, db, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func configGet(t *testing.T, c redis.Conn, key string) string {
	t.Helper()
	kv, err := redis.Strings(c.Do("CONFIG", "GET", key))
	if err != nil || len(kv) != 2 {
		t.Fatalf("CONFIG GET %s: %v %v", key, kv, err)
	}
	return kv[1]
}

// portOpen tells whether something accepts connections on the port.
func portOpen(port int) bool {
	c, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), redis.DialConnectTimeout(200*time.Millisecond))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// procsIn lists the PIDs of processes named name whose working directory
// is dir: how the test tells its own daemon and Redis from any other.
func procsIn(t *testing.T, name, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("list processes: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitFor polls cond until it holds or the limit passes.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenSession is the "PID.NAME" id of the session named exactly name,
// or "" when there is none.
func screenSession(t *testing.T, env []string, name string) string {
	t.Helper()
	r := run(t, "/", env, 10*time.Second, "screen", "-ls")
	m := regexp.MustCompile(`(?m)^\s+(\d+\.` + regexp.QuoteMeta(name) + `)\s`).FindStringSubmatch(r.out)
	if m == nil {
		return ""
	}
	return m[1]
}

// buildDaemon builds the daemon into dir, with the race detector when the
// tests have it, so that the build reuses what the test build compiled.
func buildDaemon(t *testing.T, dir string) {
	t.Helper()
	gobin := needTool(t, "go")
	args := []string{"build"}
	if raceBuild {
		args = append(args, "-race")
	}
	args = append(args, "-o", filepath.Join(dir, "analyzer-d4-log"), "./cmd/analyzer-d4-log")
	r := run(t, root, nil, 5*time.Minute, gobin, args...)
	if r.code != 0 {
		t.Fatalf("go %s: exit %d:\n%s", strings.Join(args, " "), r.code, r.out)
	}
}

// sshdLine is a line of the D4 analyzer queue, as a sensor ships it.
// sshdLine is one attempt; pid tells attempts apart, as sshd's process
// ids do (identical lines are one attempt sent twice, and count once).
func sshdLine(pid int, user, src string) string {
	return "Nov 25 10:00:00 web1 sshd[" + strconv.Itoa(pid) + "]: Invalid user " + user + " from " + src + " port 22"
}

// TestLaunchAndStop runs the shipped scripts, redis.conf and conf.sample
// as an operator would, against a throwaway D4 Redis: launch, count a few
// lines, launch again, stop, and find the counts again after a restart of
// the counting Redis from its append-only file alone.
func TestLaunchAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("launches the whole setup under screen; runs without -short")
	}
	bash := needTool(t, "bash")
	screenBin := needTool(t, "screen")
	server := needTool(t, "redis-server")
	needTool(t, "redis-cli")

	dir := t.TempDir()
	// The scripts and /proc speak of the physical path.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	buildDaemon(t, dir)
	for _, f := range []string{"launch_server.sh", "redis.conf"} {
		copyFile(t, filepath.Join(root, f), filepath.Join(dir, f))
	}
	if err := os.Mkdir(filepath.Join(dir, "conf.sample"), 0o755); err != nil {
		t.Fatal(err)
	}
	confFiles, err := os.ReadDir(filepath.Join(root, "conf.sample"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range confFiles {
		// No web server: its port could collide with anything, and
		// serving is not what this test is about.
		if e.Type().IsRegular() && e.Name() != "http_server" {
			copyFile(t, filepath.Join(root, "conf.sample", e.Name()), filepath.Join(dir, "conf.sample", e.Name()))
		}
	}
	uuid := strings.TrimSpace(readFile(t, filepath.Join(dir, "conf.sample", "redis_queue")))
	parsers := strings.TrimSpace(readFile(t, filepath.Join(dir, "conf.sample", "redis_parsers")))
	_, pool, ok := strings.Cut(parsers, "/")
	if !ok {
		t.Fatalf("conf.sample/redis_parsers %q has no /N", parsers)
	}

	// The throwaway D4 server's Redis.
	d4Port := freePort(t)
	d4 := startRedis(t, t.TempDir(), server, d4Port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	writeFile(t, filepath.Join(dir, "conf.sample", "redis_d4"), "127.0.0.1:"+strconv.Itoa(d4Port)+"/2\n")

	port := freePort(t)
	writeFile(t, filepath.Join(dir, "redis.conf"), withPort(readFile(t, filepath.Join(dir, "redis.conf")), port))
	writeFile(t, filepath.Join(dir, "conf.sample", "redis_parsers"), "127.0.0.1:"+strconv.Itoa(port)+"/"+pool+"\n")

	// A private screen directory keeps the test's session apart from any
	// session of the machine, and every trace of it inside the test.
	screenDir := t.TempDir()
	if err := os.Chmod(screenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	session := fmt.Sprintf("alog-test-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	env := []string{
		"SCREENDIR=" + screenDir,
		"ALOG_SESSION=" + session,
		"ALOG_REDIS_PORT=" + strconv.Itoa(port),
	}
	script := filepath.Join(dir, "launch_server.sh")
	elsewhere := t.TempDir()
	hardcopies := t.TempDir()

	t.Cleanup(func() {
		if t.Failed() {
			if id := screenSession(t, env, session); id != "" {
				for _, w := range []string{"alog-redis", "alog-ingester"} {
					f := filepath.Join(hardcopies, w)
					run(t, "/", env, 10*time.Second, screenBin, "-S", id, "-p", w, "-X", "hardcopy", f)
					if waitFor(2*time.Second, func() bool { _, err := os.Stat(f); return err == nil }) {
						t.Logf("window %s:\n%s", w, strings.TrimRight(readFile(t, f), "\n"))
					}
				}
			}
			if b, err := os.ReadFile(filepath.Join(dir, "analyzer-d4-log.log")); err == nil {
				t.Logf("analyzer-d4-log.log:\n%s", b)
			}
		}
		if id := screenSession(t, env, session); id != "" {
			run(t, "/", env, 10*time.Second, screenBin, "-S", id, "-X", "quit")
		}
		// Whatever survived the session: the daemon, then Redis.
		for _, p := range [][2]string{{"analyzer-d4-log", dir}, {"redis-server", filepath.Join(dir, "db")}} {
			for _, pid := range procsIn(t, p[0], p[1]) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			if !waitFor(10*time.Second, func() bool { return len(procsIn(t, p[0], p[1])) == 0 }) {
				t.Errorf("%s still runs after the test", p[0])
			}
		}
	})

	// Launch, from another directory.
	r := run(t, elsewhere, env, 60*time.Second, bash, script)
	if r.code != 0 {
		t.Fatalf("launch_server.sh: exit %d:\n%s", r.code, r.out)
	}
	if !strings.Contains(r.out, "conf/ does not exist: using conf.sample/") {
		t.Errorf("launch without conf/ does not say it uses conf.sample/:\n%s", r.out)
	}
	id := screenSession(t, env, session)
	if id == "" {
		t.Fatalf("no screen session %s after launch:\n%s", session, r.out)
	}
	windows := run(t, "/", env, 10*time.Second, screenBin, "-S", id, "-Q", "windows")
	for _, w := range []string{"alog-redis", "alog-ingester"} {
		if !strings.Contains(windows.out, w) {
			t.Errorf("screen session has windows %q, want %s", windows.out, w)
		}
	}
	daemons := procsIn(t, "analyzer-d4-log", dir)
	if len(daemons) != 1 {
		t.Fatalf("%d daemons run from the checkout after launch, want 1", len(daemons))
	}
	pidFile := strings.TrimSpace(readFile(t, filepath.Join(dir, "db", "analyzer-d4-log.pid")))
	if pidFile != strconv.Itoa(daemons[0]) {
		t.Errorf("db/analyzer-d4-log.pid holds %q, but the daemon is PID %d", pidFile, daemons[0])
	}

	// Count a few lines.
	queue := dialRedis(t, d4Port, 2)
	lines := []string{
		sshdLine(101, "admin", "192.0.2.1"), sshdLine(102, "admin", "192.0.2.1"), sshdLine(103, "admin", "192.0.2.2"),
		sshdLine(104, "root", "2001:db8::1"), sshdLine(105, "root", "192.0.2.1"),
		"Nov 25 10:00:01 web1 CRON[7]: (root) CMD (true)",
	}
	for _, l := range lines {
		if _, err := queue.Do("LPUSH", "analyzer:3:"+uuid, l); err != nil {
			t.Fatalf("LPUSH to the D4 queue: %v", err)
		}
	}
	counts := dialRedis(t, port, 1)
	var dayKey string
	counted := waitFor(15*time.Second, func() bool {
		keys, err := redis.Strings(counts.Do("KEYS", "20[0-9][0-9][0-9][0-9][0-9][0-9]:statsusername"))
		if err != nil || len(keys) != 1 {
			return false
		}
		n, err := redis.Int(counts.Do("ZSCORE", keys[0], "root"))
		if err != nil || n != 2 {
			return false
		}
		dayKey = keys[0]
		return true
	})
	if !counted {
		t.Fatalf("the counting Redis has no day key with the pushed attempts within 15 s")
	}
	wantCounts := map[string]int{"admin": 3, "root": 2}
	checkCounts := func(c redis.Conn, when string) {
		t.Helper()
		got, err := redis.IntMap(c.Do("ZRANGE", dayKey, 0, -1, "WITHSCORES"))
		if err != nil {
			t.Fatalf("%s: read %s: %v", when, dayKey, err)
		}
		if len(got) != len(wantCounts) || got["admin"] != wantCounts["admin"] || got["root"] != wantCounts["root"] {
			t.Errorf("%s: %s = %v, want %v", when, dayKey, got, wantCounts)
		}
	}
	checkCounts(counts, "while running")
	if n, err := redis.Int(queue.Do("LLEN", "analyzer:3:"+uuid)); err != nil || n != 0 {
		t.Errorf("the D4 queue holds %d lines after counting (err %v), want 0", n, err)
	}
	runID := func() string {
		info, err := redis.String(counts.Do("INFO", "server"))
		if err != nil {
			t.Fatalf("INFO server: %v", err)
		}
		return regexp.MustCompile(`run_id:(\w+)`).FindStringSubmatch(info)[1]
	}
	firstRun := runID()

	// Launch again: nothing new starts.
	r = run(t, elsewhere, env, 60*time.Second, bash, script)
	if r.code != 0 || !strings.Contains(r.out, "already running") {
		t.Errorf("second launch: exit %d, want 0 and 'already running':\n%s", r.code, r.out)
	}
	if got := runID(); got != firstRun {
		t.Errorf("second launch restarted the counting Redis (run_id %s, then %s)", firstRun, got)
	}
	if n := len(procsIn(t, "redis-server", filepath.Join(dir, "db"))); n != 1 {
		t.Errorf("%d counting Redis processes after the second launch, want 1", n)
	}
	if got := procsIn(t, "analyzer-d4-log", dir); len(got) != 1 || got[0] != daemons[0] {
		t.Errorf("daemons after the second launch: %v, want only %d", got, daemons[0])
	}
	if out := run(t, "/", env, 10*time.Second, screenBin, "-ls").out; strings.Count(out, "."+session+"\t") != 1 {
		t.Errorf("want one session %s after the second launch:\n%s", session, out)
	}

	// Log rotation: rename the log, SIGHUP; the daemon keeps running and
	// writes to a new file of the same name.
	logPath := filepath.Join(dir, "analyzer-d4-log.log")
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(daemons[0], syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool {
		b, err := os.ReadFile(logPath)
		return err == nil && strings.Contains(string(b), "log file reopened (SIGHUP)")
	}) {
		t.Errorf("no new analyzer-d4-log.log saying it was reopened within 10 s of SIGHUP")
	}
	if got := procsIn(t, "analyzer-d4-log", dir); len(got) != 1 || got[0] != daemons[0] {
		t.Errorf("daemons after SIGHUP: %v, want %d still running", got, daemons[0])
	}
	if !strings.Contains(readFile(t, logPath+".1"), "msg=start") {
		t.Errorf("the rotated log lost its start line")
	}

	// -s stops the daemon alone; the counting Redis keeps running.
	r = run(t, elsewhere, env, 60*time.Second, bash, script, "-s")
	if r.code != 0 || !strings.Contains(r.out, "analyzer-d4-log stopped") || !strings.Contains(r.out, "keeps running") {
		t.Errorf("launch_server.sh -s: exit %d:\n%s", r.code, r.out)
	}
	if got := procsIn(t, "analyzer-d4-log", dir); len(got) != 0 {
		t.Errorf("daemons after -s: %v, want none", got)
	}
	if got := runID(); got != firstRun {
		t.Errorf("-s restarted the counting Redis (run_id %s, then %s)", firstRun, got)
	}

	// -F: the rebuild runs against the running Redis, then the daemon
	// starts again; the counts are the same.
	r = run(t, elsewhere, env, 120*time.Second, bash, script, "-F")
	if r.code != 0 || !strings.Contains(r.out, "rebuild done; starting the daemon again") {
		t.Fatalf("launch_server.sh -F: exit %d:\n%s", r.code, r.out)
	}
	checkCounts(counts, "after launch_server.sh -F")
	if got := runID(); got != firstRun {
		t.Errorf("-F restarted the counting Redis (run_id %s, then %s)", firstRun, got)
	}
	daemons = procsIn(t, "analyzer-d4-log", dir)
	if len(daemons) != 1 {
		t.Fatalf("%d daemons after -F, want 1", len(daemons))
	}
	windows = run(t, "/", env, 10*time.Second, screenBin, "-S", id, "-Q", "windows")
	if n := strings.Count(windows.out, "alog-ingester"); n != 1 {
		t.Errorf("after -s and -F the session has %d windows alog-ingester, want 1: %q", n, windows.out)
	}

	// Stop.
	started := time.Now()
	r = run(t, elsewhere, env, 60*time.Second, bash, script, "-k")
	if r.code != 0 {
		t.Fatalf("launch_server.sh -k: exit %d:\n%s", r.code, r.out)
	}
	for _, want := range []string{"analyzer-d4-log stopped", "counting Redis stopped", "ended"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("launch_server.sh -k does not say %q:\n%s", want, r.out)
		}
	}
	t.Logf("stopped in %v", time.Since(started).Round(time.Millisecond))
	if id := screenSession(t, env, session); id != "" {
		t.Errorf("screen session %s still exists after -k", id)
	}
	if portOpen(port) {
		t.Errorf("the counting Redis port %d is still open after -k", port)
	}
	if err := syscall.Kill(daemons[0], 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the daemon (PID %d) still exists after -k: %v", daemons[0], err)
	}
	if got := procsIn(t, "redis-server", filepath.Join(dir, "db")); len(got) != 0 {
		t.Errorf("counting Redis processes after -k: %v", got)
	}
	for _, f := range []string{"analyzer-d4-log.pid", "redis-server.pid"} {
		if _, err := os.Stat(filepath.Join(dir, "db", f)); err == nil {
			t.Errorf("db/%s left behind after -k", f)
		}
	}
	if !portOpen(d4Port) {
		t.Errorf("-k stopped the D4 Redis, which is not ours")
	}

	// -k again is harmless.
	r = run(t, elsewhere, env, 60*time.Second, bash, script, "-k")
	if r.code != 0 || !strings.Contains(r.out, "analyzer-d4-log is not running") {
		t.Errorf("second -k: exit %d, want 0 and nothing to stop:\n%s", r.code, r.out)
	}

	// The counts survive in the append-only file alone.
	if err := os.Remove(filepath.Join(dir, "db", "dump.rdb")); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	restarted := startRedis(t, dir, server, port, "./redis.conf")
	checkCounts(dialRedis(t, port, 1), "after a restart from the AOF")
	restarted.stop(t)
	d4.stop(t)
}
