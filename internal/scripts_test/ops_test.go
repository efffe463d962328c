package scripts_test

import (
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The alert rules load, and each fires on the failure it is for and stays
// silent on a healthy instance (contrib/prometheus/alerts_test.yml).
func TestAlertRules(t *testing.T) {
	promtool := needTool(t, "promtool")
	dir := filepath.Join(root, "contrib", "prometheus")
	if r := run(t, dir, nil, 30*time.Second, promtool, "check", "rules", "alerts.yml"); r.code != 0 {
		t.Errorf("promtool check rules: exit %d:\n%s", r.code, r.out)
	}
	if r := run(t, dir, nil, 2*time.Minute, promtool, "test", "rules", "alerts_test.yml"); r.code != 0 {
		t.Errorf("promtool test rules: exit %d:\n%s", r.code, r.out)
	}
	// Every alert has a test: an alert without one could be broken unseen.
	rules := readFile(t, filepath.Join(dir, "alerts.yml"))
	tests := readFile(t, filepath.Join(dir, "alerts_test.yml"))
	for _, line := range strings.Split(rules, "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "- alert: ")
		if ok && !strings.Contains(tests, "alertname: "+name+"\n") {
			t.Errorf("alert %s has no test in alerts_test.yml", name)
		}
	}
}

// verifyUnits runs systemd-analyze verify on the unit files of dir; any
// message (an unknown key is only a warning) fails.
func verifyUnits(t *testing.T, dir string) {
	t.Helper()
	sa := needTool(t, "systemd-analyze")
	units := []string{"analyzer-d4-log-redis.service", "analyzer-d4-log.service"}
	args := []string{"verify"}
	for _, u := range units {
		args = append(args, filepath.Join(dir, u))
	}
	r := run(t, dir, []string{"SYSTEMD_LOG_LEVEL=notice"}, 60*time.Second, sa, args...)
	if r.code != 0 || strings.TrimSpace(r.out) != "" {
		t.Errorf("systemd-analyze verify %s: exit %d:\n%s", dir, r.code, r.out)
	}
}

func TestSystemdUnits(t *testing.T) {
	needTool(t, "redis-server") // the Redis unit's ExecStart must exist
	dir := t.TempDir()
	for _, u := range []string{"analyzer-d4-log-redis.service", "analyzer-d4-log.service"} {
		copyFile(t, filepath.Join(root, "contrib", "systemd", u), filepath.Join(dir, u))
	}
	verifyUnits(t, dir)
	for unit, wants := range map[string][]string{
		"analyzer-d4-log-redis.service": {"Restart=on-failure", "User=alog", "WorkingDirectory=/opt/analyzer-d4-log",
			"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/opt/analyzer-d4-log/db", "Type=notify"},
		"analyzer-d4-log.service": {"Restart=on-failure", "Requires=analyzer-d4-log-redis.service",
			"After=analyzer-d4-log-redis.service", "User=alog", "WorkingDirectory=/opt/analyzer-d4-log",
			"-c conf", "ExecReload=/bin/kill -HUP $MAINPID", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=",
			"/opt/analyzer-d4-log/data", "/opt/analyzer-d4-log/archive"},
	} {
		text := readFile(t, filepath.Join(dir, unit))
		for _, w := range wants {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q", unit, w)
			}
		}
	}
}

// install_server.sh creates conf/ once and never overwrites it, and
// --systemd installs units and the logrotate file naming this checkout,
// which systemd-analyze and logrotate accept.
func TestInstallConfAndSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon; runs without -short")
	}
	bash := needTool(t, "bash")
	needTool(t, "go")
	needTool(t, "redis-server")
	dir := fakeCheckout(t)
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "conf.sample"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"redis_d4", "redis_queue", "redis_parsers"} {
		copyFile(t, filepath.Join(root, "conf.sample", f), filepath.Join(dir, "conf.sample", f))
	}
	for _, f := range []string{"systemd/analyzer-d4-log-redis.service", "systemd/analyzer-d4-log.service", "logrotate/analyzer-d4-log"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, "contrib", f)), 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, filepath.Join(root, "contrib", f), filepath.Join(dir, "contrib", f))
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	units, rotate := t.TempDir(), t.TempDir()
	env := []string{"ALOG_USER=" + me.Username, "ALOG_SYSTEMD_DIR=" + units, "ALOG_LOGROTATE_DIR=" + rotate}
	script := filepath.Join(dir, "install_server.sh")
	r := run(t, dir, env, 3*time.Minute, bash, script, "--no-packages", "--systemd")
	if r.code != 0 {
		t.Fatalf("install_server.sh --no-packages --systemd: exit %d:\n%s", r.code, r.out)
	}
	if !strings.Contains(r.out, "created conf/ from conf.sample/") {
		t.Errorf("the first run does not say it created conf/:\n%s", r.out)
	}
	if got := readFile(t, filepath.Join(dir, "conf", "redis_queue")); got != readFile(t, filepath.Join(dir, "conf.sample", "redis_queue")) {
		t.Errorf("conf/redis_queue is %q, not a copy of conf.sample's", got)
	}
	for _, u := range []string{"analyzer-d4-log-redis.service", "analyzer-d4-log.service"} {
		text := readFile(t, filepath.Join(units, u))
		if strings.Contains(text, "/opt/analyzer-d4-log") || !strings.Contains(text, "WorkingDirectory="+dir+"\n") ||
			!strings.Contains(text, "User="+me.Username+"\n") {
			t.Errorf("installed %s does not name the checkout %s and user %s:\n%s", u, dir, me.Username, text)
		}
	}
	verifyUnits(t, units)
	// systemd refuses to start a unit whose ReadWritePaths names a path
	// that does not exist, and the daemon cannot write outside them.
	for _, u := range []string{"analyzer-d4-log-redis.service", "analyzer-d4-log.service"} {
		for _, line := range strings.Split(readFile(t, filepath.Join(units, u)), "\n") {
			paths, ok := strings.CutPrefix(line, "ReadWritePaths=")
			if !ok {
				continue
			}
			for _, p := range strings.Fields(paths) {
				if _, err := os.Stat(strings.TrimPrefix(p, "-")); err != nil && !strings.HasPrefix(p, "-") {
					t.Errorf("%s names ReadWritePaths %s, which install_server.sh --systemd did not create: %v", u, p, err)
				}
			}
		}
	}
	rot := filepath.Join(rotate, "analyzer-d4-log")
	if text := readFile(t, rot); !strings.Contains(text, dir+"/analyzer-d4-log.log {") || strings.Contains(text, "/opt/") {
		t.Errorf("installed logrotate file does not name the checkout's log:\n%s", text)
	}
	if lr, err := exec.LookPath("logrotate"); err == nil || os.Getenv("CI") == "true" {
		lr = needTool(t, "logrotate")
		// -d: reads and checks the file, rotates nothing.
		r := run(t, dir, nil, 30*time.Second, lr, "-d", "-s", filepath.Join(t.TempDir(), "state"), rot)
		if r.code != 0 || strings.Contains(r.out, "error") {
			t.Errorf("logrotate -d on the installed file: exit %d:\n%s", r.code, r.out)
		}
	}

	// An edited conf/ survives a second run.
	writeFile(t, filepath.Join(dir, "conf", "redis_d4"), "10.0.0.9:6380/2\n")
	r = run(t, dir, env, 3*time.Minute, bash, script, "--no-packages")
	if r.code != 0 || !strings.Contains(r.out, "conf/ exists: left as it is") {
		t.Errorf("second run: exit %d, want conf/ left alone:\n%s", r.code, r.out)
	}
	if got := readFile(t, filepath.Join(dir, "conf", "redis_d4")); got != "10.0.0.9:6380/2\n" {
		t.Errorf("the second run overwrote conf/redis_d4: %q", got)
	}
}

// The sensor script sends only lines written after its start, only those
// matching, in order, and none is lost when the client ends and starts
// again (a dropped D4 connection).
func TestD4Sensor(t *testing.T) {
	bash := needTool(t, "bash")
	needTool(t, "tail")
	needTool(t, "grep")
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	out := filepath.Join(dir, "sent")
	starts := filepath.Join(dir, "starts")
	writeFile(t, log, "Nov 25 09:00:00 web1 sshd[1]: Invalid user old from 192.0.2.9\n")
	conf := filepath.Join(dir, "conf.sensor")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	// A client that takes two lines and exits, as one whose connection
	// dropped. bash's read takes a pipe byte by byte, so it reads no line
	// it does not write.
	client := filepath.Join(dir, "fake-client")
	writeFile(t, client, "#!/usr/bin/env bash\n[ \"$1\" = -c ] && [ -d \"$2\" ] || exit 9\necho start >>"+starts+"\n"+
		"for i in 1 2; do IFS= read -r l || exit 0; printf '%s\\n' \"$l\" >>"+out+"; done\n")
	if err := os.Chmod(client, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, filepath.Join(root, "contrib", "d4-sensor.sh"), "-c", conf, "-l", log, "-b", client, "-r", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var buf testlog.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	appendLine := func(l string) {
		f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	sent := func() string { b, _ := os.ReadFile(out); return string(b) }
	// tail starts at the end at some moment after the script: probe until
	// a line written now arrives.
	probes := 0
	if !waitFor(10*time.Second, func() bool {
		probes++
		appendLine("Nov 25 10:00:00 web1 sshd[1]: probe")
		return strings.Contains(sent(), "probe")
	}) {
		t.Fatalf("no line reached the client within 10 s; script output:\n%s", buf.String())
	}
	want := []string{}
	for i, l := range []string{
		"Nov 25 10:00:01 web1 sshd[1]: Invalid user a from 192.0.2.1",
		"Nov 25 10:00:02 web1 CRON[7]: (root) CMD (true)",
		"Nov 25 10:00:03 web1 sshd[1]: Invalid user b from 192.0.2.2",
		"Nov 25 10:00:04 web1 sshd[1]: Invalid user c from 192.0.2.3",
		"Nov 25 10:00:05 web1 sshd[1]: Invalid user d from 192.0.2.4",
		"Nov 25 10:00:06 web1 sshd[1]: Invalid user e from 192.0.2.5",
	} {
		appendLine(l)
		if i != 1 {
			want = append(want, l)
		}
	}
	last := want[len(want)-1]
	if !waitFor(10*time.Second, func() bool { return strings.Contains(sent(), last) }) {
		t.Fatalf("the last line did not reach the client within 10 s; sent:\n%s\nscript output:\n%s", sent(), buf.String())
	}
	got := sent()
	if strings.Contains(got, "Invalid user old") {
		t.Errorf("a line written before the start was sent:\n%s", got)
	}
	if strings.Contains(got, "CRON") {
		t.Errorf("a line that does not match was sent:\n%s", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	i := len(lines) - 1
	for i >= 0 && !strings.Contains(lines[i], "probe") {
		i--
	}
	if after := strings.Join(lines[i+1:], "\n"); after != strings.Join(want, "\n") {
		t.Errorf("after the probes the client got:\n%s\nwant:\n%s", after, strings.Join(want, "\n"))
	}
	if n := strings.Count(readFile(t, starts), "start"); n < 3 {
		t.Errorf("the client was started %d times for %d lines taken two at a time; want a restart after each exit", n, len(lines))
	}
	if !strings.Contains(buf.String(), "starting it again") {
		t.Errorf("the script does not say it restarts the client:\n%s", buf.String())
	}
}

func TestD4SensorHelpAndRefusals(t *testing.T) {
	bash := needTool(t, "bash")
	script, err := filepath.Abs(filepath.Join(root, "contrib", "d4-sensor.sh"))
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, root, nil, 10*time.Second, bash, script, "-h")
	for _, want := range []string{"Usage:", "tail -n0 -F", "grep --line-buffered", "-c DIR", "-b CLIENT", "d4-goclient"} {
		if r.code != 0 || !strings.Contains(r.out, want) {
			t.Errorf("d4-sensor.sh -h: exit %d, lacks %q:\n%s", r.code, want, r.out)
		}
	}
	r = run(t, root, nil, 10*time.Second, bash, script)
	if r.code != 1 || !strings.Contains(r.out, "-c DIR is required") {
		t.Errorf("d4-sensor.sh without -c: exit %d:\n%s", r.code, r.out)
	}
	r = run(t, root, nil, 10*time.Second, bash, script, "-c", t.TempDir(), "-b", "no-such-d4-client")
	if r.code != 1 || !strings.Contains(r.out, "no-such-d4-client is not found") {
		t.Errorf("d4-sensor.sh with a missing client: exit %d:\n%s", r.code, r.out)
	}
}
