package scripts_test

import (
	"fmt"
	"math/rand/v2"
	"net"
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

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// The shipped high-availability files (contrib/ha, README "High
// availability") started as an operator starts them: start.sh brings up a
// master, a replica and three Sentinels, the daemon counts through the
// Sentinels with min_replicas = 1 as the README says, the master is
// SIGKILLed while lines flow, start.sh brings it back and the Sentinels
// make it a replica; every statistic is exact on the promoted master and
// on its new replica, and stop.sh stops the five servers.

// haPorts are the ports of the shipped files, master and replica first.
var haPorts = []int{6500, 6501, 26379, 26380, 26381}

// haOffset picks an HA_PORT_OFFSET whose five ports were all free a moment
// ago, so that the test runs beside any Redis of the machine. The ports
// stay below 32768, where Linux picks the ports of outgoing connections
// and of other tests' listeners on port 0, so that none takes one between
// this check and start.sh.
func haOffset(t *testing.T) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		off := 1000 + rand.IntN(5300)
		free := true
		for _, p := range haPorts {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+off))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return off
		}
	}
	t.Fatal("no HA_PORT_OFFSET with five free ports in 50 tries")
	return 0
}

// sentinelView is what one Sentinel says of the master "counting".
type sentinelView struct {
	master             string // host:port
	replicas, others   []string
	replicaFlagsByPort map[string]string
}

func askSentinel(port int) (sentinelView, error) {
	v := sentinelView{replicaFlagsByPort: map[string]string{}}
	c, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port),
		redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(2*time.Second))
	if err != nil {
		return v, err
	}
	defer c.Close()
	addr, err := redis.Strings(c.Do("SENTINEL", "get-master-addr-by-name", "counting"))
	if err != nil || len(addr) != 2 {
		return v, fmt.Errorf("get-master-addr-by-name: %v %v", addr, err)
	}
	v.master = addr[0] + ":" + addr[1]
	reps, err := redis.Values(c.Do("SENTINEL", "replicas", "counting"))
	if err != nil {
		return v, err
	}
	for _, r := range reps {
		m, err := redis.StringMap(r, nil)
		if err != nil {
			return v, err
		}
		v.replicas = append(v.replicas, m["port"])
		v.replicaFlagsByPort[m["port"]] = m["flags"]
	}
	others, err := redis.Values(c.Do("SENTINEL", "sentinels", "counting"))
	if err != nil {
		return v, err
	}
	for _, o := range others {
		m, err := redis.StringMap(o, nil)
		if err != nil {
			return v, err
		}
		v.others = append(v.others, m["port"])
	}
	return v, nil
}

// replicaOf tells whether the server on port is a replica connected to
// the master on masterPort, by its ROLE.
func replicaOf(port, masterPort int) bool {
	c, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port),
		redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(2*time.Second))
	if err != nil {
		return false
	}
	defer c.Close()
	role, err := redis.Values(c.Do("ROLE"))
	if err != nil || len(role) < 4 {
		return false
	}
	kind, _ := redis.String(role[0], nil)
	mport, _ := redis.Int(role[2], nil)
	state, _ := redis.String(role[3], nil)
	return kind == "slave" && mport == masterPort && state == "connected"
}

// statsOf reads every "<period>:stats<kind>" set of DB 1 of the Redis on port.
func statsOf(port int) (map[string]map[string]float64, error) {
	c, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), redis.DialDatabase(1),
		redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return redistest.ReadRankings(c)
}

// yearAttempts sums the yearly host sets: one increment per attempt.
func yearAttempts(s map[string]map[string]float64) int {
	n := 0
	for k, set := range s {
		if len(k) == len("2006:statshost") && strings.HasSuffix(k, ":statshost") {
			for _, v := range set {
				n += int(v)
			}
		}
	}
	return n
}

func TestShippedHAFilesFailOver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five Redis servers and the daemon, and fails the master over; runs without -short")
	}
	sh := needTool(t, "sh")
	server := needTool(t, "redis-server")
	needTool(t, "redis-cli")

	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// start.sh works from the directory two levels above itself, as from
	// the repository root.
	ha := filepath.Join(dir, "contrib", "ha")
	if err := os.MkdirAll(ha, 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := os.ReadDir(filepath.Join(root, "contrib", "ha"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		copyFile(t, filepath.Join(root, "contrib", "ha", f.Name()), filepath.Join(ha, f.Name()))
	}
	off := haOffset(t)
	master, replica := 6500+off, 6501+off
	sentinels := []int{26379 + off, 26380 + off, 26381 + off}
	// A second of silence makes the Sentinels call the master down; the
	// shipped files' 5 s are for production.
	env := []string{"HA_PORT_OFFSET=" + strconv.Itoa(off), "HA_DOWN_AFTER_MS=1000"}
	pidFiles := []string{"ha-master/redis.pid", "ha-replica/redis.pid", "ha-sentinel-1.pid", "ha-sentinel-2.pid", "ha-sentinel-3.pid"}
	var pids []int
	t.Cleanup(func() {
		// stop.sh is checked at the end; this stops whatever a failure
		// left behind, by the pids the servers wrote.
		for _, f := range pidFiles {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		for _, pid := range pids {
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "redis-server" {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			for _, f := range []string{"ha-master/redis.log", "ha-replica/redis.log", "ha-sentinel-1.log", "analyzer-d4-log.log"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
					s := string(b)
					if len(s) > 3000 {
						s = "…" + s[len(s)-3000:]
					}
					t.Logf("%s:\n%s", f, s)
				}
			}
		}
	})

	// The documented start.
	start := time.Now()
	r := run(t, dir, env, 60*time.Second, sh, filepath.Join(ha, "start.sh"))
	if r.code != 0 {
		t.Fatalf("contrib/ha/start.sh: exit %d:\n%s", r.code, r.out)
	}
	m := regexp.MustCompile(`conf/redis_parsers: (sentinel://\S+)`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("start.sh does not print the redis_parsers line:\n%s", r.out)
	}
	// The shipped redis_parsers, its ports moved by the offset, is the
	// line start.sh prints: the README's "cp contrib/ha/redis_parsers".
	shipped := strings.TrimSpace(readFile(t, filepath.Join(ha, "redis_parsers")))
	moved := regexp.MustCompile(`:(\d+)`).ReplaceAllStringFunc(shipped, func(s string) string {
		p, _ := strconv.Atoi(s[1:])
		return ":" + strconv.Itoa(p+off)
	})
	if moved != m[1] {
		t.Fatalf("contrib/ha/redis_parsers is %q; with HA_PORT_OFFSET=%d it reads %q, but start.sh started %q", shipped, off, moved, m[1])
	}

	// The Sentinels see the master, the replica and each other (a
	// failover needs a majority that knows its peers).
	want := "127.0.0.1:" + strconv.Itoa(master)
	var last string
	if !waitFor(30*time.Second, func() bool {
		for _, s := range sentinels {
			v, err := askSentinel(s)
			last = fmt.Sprintf("sentinel %d: %+v %v", s, v, err)
			if err != nil || v.master != want || len(v.replicas) != 1 || v.replicas[0] != strconv.Itoa(replica) ||
				strings.Contains(v.replicaFlagsByPort[strconv.Itoa(replica)], "down") || len(v.others) != 2 {
				return false
			}
		}
		return replicaOf(replica, master)
	}) {
		t.Fatalf("the Sentinels do not see master %s, replica %d and each other within 30 s; last: %s", want, replica, last)
	}
	t.Logf("master, replica and Sentinels up and agreed in %.1f s", time.Since(start).Seconds())

	// The daemon, configured as the README says.
	d4Port := freePort(t)
	startRedis(t, t.TempDir(), server, d4Port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	buildDaemon(t, dir)
	t.Logf("daemon built at %.1f s", time.Since(start).Seconds())
	conf := filepath.Join(dir, "conf")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	uuid := strings.TrimSpace(readFile(t, filepath.Join(root, "conf.sample", "redis_queue")))
	writeFile(t, filepath.Join(conf, "redis_d4"), "127.0.0.1:"+strconv.Itoa(d4Port)+"/2\n")
	writeFile(t, filepath.Join(conf, "redis_queue"), uuid+"\n")
	writeFile(t, filepath.Join(conf, "redis_parsers"), m[1]+"\n")
	writeFile(t, filepath.Join(conf, "analyzer.toml"), "min_replicas = 1\ntimezone = \"UTC\"\n")
	daemon := exec.Command(filepath.Join(dir, "analyzer-d4-log"), "-c", conf)
	daemon.Dir = dir
	daemon.Env = append(os.Environ(), "TZ=UTC")
	out := &testlog.Buffer{}
	daemon.Stdout, daemon.Stderr = out, out
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()
	t.Cleanup(func() { _ = daemon.Process.Kill() })

	lines := workload.Generate(workload.Options{
		Lines: 3000, Ref: time.Now(), Loc: time.UTC, Days: 20,
		Users: 50, Sources: 300, Hosts: 5, Noise: 0.2, Seed: uint64(off),
	})
	expected := workload.Expect(lines, time.UTC)
	queue := dialRedis(t, d4Port, 2)
	push := func(c redis.Conn, ls []workload.Line) error {
		for _, l := range ls {
			if err := c.Send("LPUSH", "analyzer:3:"+uuid, l.Raw); err != nil {
				return err
			}
		}
		_, err := c.Do("")
		return err
	}
	counted := func(port int) int {
		s, err := statsOf(port)
		if err != nil {
			return -1
		}
		return yearAttempts(s)
	}
	first := len(lines) / 3
	if err := push(queue, lines[:first]); err != nil {
		t.Fatal(err)
	}
	if !waitFor(60*time.Second, func() bool { return counted(master) > 0 }) {
		t.Fatalf("nothing counted on the master within 60 s; daemon output:\n%s", tailOf(out.String()))
	}

	// The rest flows in small waves while the master is killed.
	pusher := dialRedis(t, d4Port, 2)
	pushed := make(chan error, 1)
	go func() {
		rest := lines[first:]
		for i := 0; i < len(rest); i += 50 {
			if err := push(pusher, rest[i:min(i+50, len(rest))]); err != nil {
				pushed <- err
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
		pushed <- nil
	}()
	time.Sleep(300 * time.Millisecond)
	masterPid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(dir, "ha-master", "redis.pid"))))
	if err != nil {
		t.Fatal(err)
	}
	pids = append(pids, masterPid)
	killed := time.Now()
	if err := syscall.Kill(masterPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	// Failover: every Sentinel names the replica.
	promoted := "127.0.0.1:" + strconv.Itoa(replica)
	if !waitFor(30*time.Second, func() bool {
		for _, s := range sentinels {
			v, err := askSentinel(s)
			last = fmt.Sprintf("sentinel %d: %+v %v", s, v, err)
			if err != nil || v.master != promoted {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("no failover to %s within 30 s of the SIGKILL; last: %s", promoted, last)
	}
	t.Logf("failover %.1f s after the SIGKILL", time.Since(killed).Seconds())
	if err := <-pushed; err != nil {
		t.Fatalf("push to the D4 queue: %v", err)
	}

	// The old master comes back with the documented command; the
	// Sentinels make it a replica of the new one, and with min_replicas
	// = 1 counting goes on once it is.
	r = run(t, dir, env, 60*time.Second, sh, filepath.Join(ha, "start.sh"), "master")
	if r.code != 0 {
		t.Fatalf("contrib/ha/start.sh master: exit %d:\n%s", r.code, r.out)
	}
	if !waitFor(30*time.Second, func() bool { return replicaOf(master, replica) }) {
		t.Fatalf("the old master on %d is not a replica of %d within 30 s", master, replica)
	}
	t.Logf("old master back as a replica at %.1f s", time.Since(start).Seconds())
	if !waitFor(60*time.Second, func() bool {
		n, _ := redis.Int(queue.Do("LLEN", "analyzer:3:"+uuid))
		procs, _ := redis.Strings(queue.Do("KEYS", "alog:processing:*"))
		return n == 0 && len(procs) == 0 && counted(replica) == expected.Attempts
	}) {
		t.Fatalf("counted %d of %d attempts on the promoted master within 60 s; daemon output:\n%s",
			counted(replica), expected.Attempts, tailOf(out.String()))
	}

	// Exact on the promoted master, and on its new replica once it has
	// caught up.
	got, err := statsOf(replica)
	if err != nil {
		t.Fatal(err)
	}
	if d := expected.Diff(got); len(d) > 0 {
		t.Fatalf("statistics on the promoted master differ:\n%s", strings.Join(d[:min(len(d), 30)], "\n"))
	}
	var diffs []string
	if !waitFor(20*time.Second, func() bool {
		got, err := statsOf(master)
		if err != nil {
			return false
		}
		diffs = expected.Diff(got)
		return len(diffs) == 0
	}) {
		t.Fatalf("statistics on the old master, now a replica, differ:\n%s", strings.Join(diffs[:min(len(diffs), 30)], "\n"))
	}
	if !strings.Contains(out.String(), "counting redis failover") {
		t.Errorf("the daemon's log does not say `counting redis failover`:\n%s", tailOf(out.String()))
	}

	// Stop: the daemon, then the documented stop.
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the daemon's exit after SIGTERM: %v\n%s", err, tailOf(out.String()))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon did not exit within 30 s of SIGTERM")
	}
	var running []int
	for _, f := range pidFiles {
		pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, filepath.Join(dir, f))))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		running = append(running, pid)
	}
	r = run(t, dir, nil, 60*time.Second, sh, filepath.Join(ha, "stop.sh"))
	if r.code != 0 {
		t.Fatalf("contrib/ha/stop.sh: exit %d:\n%s", r.code, r.out)
	}
	for _, pid := range running {
		if alive(pid) {
			t.Errorf("redis-server %d still runs after stop.sh:\n%s", pid, r.out)
		}
	}
	for _, f := range pidFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s is left after stop.sh", f)
		}
	}
	t.Logf("%d attempts exact on both servers; %.1f s in all", expected.Attempts, time.Since(start).Seconds())
}

// alive tells whether pid is a running process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name's closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func tailOf(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}
