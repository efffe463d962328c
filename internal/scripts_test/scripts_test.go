// Package scripts_test checks the operations files at the repository root:
// install_server.sh, launch_server.sh and redis.conf (SPEC §8). It holds
// only tests. They run the scripts as an operator would: syntax and
// shellcheck, the installer on a throwaway module, and launch/stop of the
// real daemon under screen beside a throwaway D4 Redis.
//
// A test that needs a tool skips when the tool is missing, except under
// CI=true, where the tool is installed and a skip would prove nothing.
package scripts_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// root is the repository root, seen from this package's directory.
const root = "../.."

var scripts = []string{"install_server.sh", "launch_server.sh", "contrib/d4-sensor.sh", "contrib/ha/start.sh", "contrib/ha/stop.sh"}

// needTool returns the path of a program the test cannot do without.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed, and CI must install it: %v", name, err)
	}
	t.Skipf("%s is not installed: %v", name, err)
	return ""
}

// result is what a finished command left.
type result struct {
	out  string // standard output and standard error, interleaved
	code int
}

// run runs a command in dir with extra environment and a time limit; a
// command that cannot start or overruns fails the test.
func run(t *testing.T, dir string, env []string, limit time.Duration, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = nil
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// The scripts start screen, whose server outlives them; without
	// WaitDelay a pipe it inherited would keep Wait from returning.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s did not finish within %v; output:\n%s", name, strings.Join(args, " "), limit, out.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %s: %v; output:\n%s", name, err, out.String())
		}
		code = ee.ExitCode()
	}
	return result{out: out.String(), code: code}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("mkdir for %s: %v", path, err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// copyFile copies src to dst, keeping the executable bits.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	st, err := os.Stat(src)
	if err != nil {
		t.Fatalf("stat %s: %v", src, err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("read %s: %v", src, err)
	}
	if err := os.WriteFile(dst, b, st.Mode().Perm()); err != nil {
		t.Fatalf("write %s: %v", dst, err)
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var portLine = regexp.MustCompile(`(?m)^port\s+(\d+)\s*$`)

// confPort is the port line of a redis.conf.
func confPort(t *testing.T, conf string) int {
	t.Helper()
	m := portLine.FindAllStringSubmatch(conf, -1)
	if len(m) != 1 {
		t.Fatalf("redis.conf has %d port lines, want 1", len(m))
	}
	p, _ := strconv.Atoi(m[0][1])
	return p
}

// withPort rewrites the port line of a redis.conf.
func withPort(conf string, port int) string {
	return portLine.ReplaceAllString(conf, "port "+strconv.Itoa(port))
}

func TestScriptsParse(t *testing.T) {
	bash := needTool(t, "bash")
	for _, s := range scripts {
		r := run(t, root, nil, 10*time.Second, bash, "-n", s)
		if r.code != 0 {
			t.Errorf("bash -n %s: exit %d:\n%s", s, r.code, r.out)
		}
	}
}

func TestScriptsExecutable(t *testing.T) {
	for _, s := range scripts {
		st, err := os.Stat(filepath.Join(root, s))
		if err != nil {
			t.Fatalf("stat %s: %v", s, err)
		}
		if st.Mode().Perm()&0o111 != 0o111 {
			t.Errorf("%s has mode %v; operators run it as ./%s, so it must be executable", s, st.Mode().Perm(), s)
		}
	}
}

func TestShellcheck(t *testing.T) {
	sc := needTool(t, "shellcheck")
	r := run(t, root, nil, 60*time.Second, sc, scripts...)
	if r.code != 0 {
		t.Errorf("shellcheck %s: exit %d:\n%s", strings.Join(scripts, " "), r.code, r.out)
	}
}

// The counting Redis port appears in two shipped files that must agree, and
// SPEC §8 fixes it.
func TestShippedPortsAgree(t *testing.T) {
	conf := readFile(t, filepath.Join(root, "redis.conf"))
	if got := confPort(t, conf); got != 6500 {
		t.Errorf("redis.conf: port %d, want 6500", got)
	}
	parsers := strings.TrimSpace(readFile(t, filepath.Join(root, "conf.sample", "redis_parsers")))
	if !strings.HasPrefix(parsers, "localhost:6500/") && !strings.HasPrefix(parsers, "127.0.0.1:6500/") {
		t.Errorf("conf.sample/redis_parsers is %q; want the counting Redis of redis.conf, localhost:6500/N", parsers)
	}
}

// The settings the daemon's guarantees rest on: a change to any of them is
// a change to what the project promises, so it must show up here.
func TestRedisConf(t *testing.T) {
	conf := readFile(t, filepath.Join(root, "redis.conf"))
	settings := map[string]string{}
	saves := []string{}
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, _ := strings.Cut(line, " ")
		if key == "save" {
			saves = append(saves, value)
			continue
		}
		if prev, dup := settings[key]; dup {
			t.Errorf("redis.conf sets %s twice (%q, then %q)", key, prev, value)
		}
		settings[key] = value
	}
	want := map[string]string{
		"port":                 "6500",
		"bind":                 "127.0.0.1 -::1",
		"protected-mode":       "yes",
		"databases":            "16",
		"dir":                  "./db/",
		"daemonize":            "no",
		"logfile":              `""`,
		"appendonly":           "yes",
		"appendfsync":          "always",
		"aof-use-rdb-preamble": "yes",
		"maxmemory-policy":     "noeviction",
	}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("redis.conf: %s is %q, want %q", k, settings[k], v)
		}
	}
	if got := strings.Join(saves, " "); got != "900 1 300 10 60 10000" {
		t.Errorf("redis.conf: save points %q, want 900 1 300 10 60 10000", got)
	}
}

// Redis itself must accept the file: a directive it does not know stops it
// at start, which only the end-to-end test would otherwise notice.
func TestRedisConfLoads(t *testing.T) {
	server := needTool(t, "redis-server")
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "redis.conf"), filepath.Join(dir, "redis.conf"))
	// --test-memory is not available everywhere; starting on a free port
	// and shutting down is the real check.
	port := freePort(t)
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	srv := startRedis(t, dir, server, port, "./redis.conf")
	c := dialRedis(t, port, 0)
	got := configGet(t, c, "appendfsync")
	if got != "always" {
		t.Errorf("running with redis.conf: appendfsync %q, want always", got)
	}
	wantDir, _ := filepath.EvalSymlinks(filepath.Join(dir, "db"))
	if got := configGet(t, c, "dir"); got != wantDir {
		t.Errorf("running with redis.conf from %s: dir %q, want %q", dir, got, wantDir)
	}
	srv.stop(t)
}

func TestInstallHelp(t *testing.T) {
	bash := needTool(t, "bash")
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "install_server.sh"), filepath.Join(dir, "install_server.sh"))
	for _, arg := range []string{"-h", "--help"} {
		r := run(t, dir, nil, 10*time.Second, bash, filepath.Join(dir, "install_server.sh"), arg)
		if r.code != 0 {
			t.Errorf("install_server.sh %s: exit %d:\n%s", arg, r.code, r.out)
		}
		for _, want := range []string{"Usage:", "--no-packages", "redis-server", "screen"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("install_server.sh %s does not mention %q:\n%s", arg, want, r.out)
			}
		}
	}
	// Help must not start installing.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("install_server.sh -h left files behind: %v", entries)
	}
	r := run(t, dir, nil, 10*time.Second, bash, filepath.Join(dir, "install_server.sh"), "--no-such-option")
	if r.code != 2 || !strings.Contains(r.out, `unknown option "--no-such-option"`) {
		t.Errorf("install_server.sh --no-such-option: exit %d, want 2 and the option named:\n%s", r.code, r.out)
	}
}

// fakeCheckout is a directory laid out like the repository but whose
// command is a tiny program, so the installer's build takes a second.
func fakeCheckout(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "install_server.sh"), filepath.Join(dir, "install_server.sh"))
	copyFile(t, filepath.Join(root, "redis.conf"), filepath.Join(dir, "redis.conf"))
	goLine := regexp.MustCompile(`(?m)^go\s+\S+$`).FindString(readFile(t, filepath.Join(root, "go.mod")))
	if goLine == "" {
		t.Fatal("go.mod has no go line")
	}
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/fake\n\n"+goLine+"\n")
	writeFile(t, filepath.Join(dir, "cmd", "analyzer-d4-log", "main.go"), "package main\n\nfunc main() {}\n")
	// A free port, so that a counting Redis running on this machine does
	// not change what the installer reports.
	conf := withPort(readFile(t, filepath.Join(dir, "redis.conf")), freePort(t))
	writeFile(t, filepath.Join(dir, "redis.conf"), conf)
	return dir
}

func TestInstallBuildsOnceAndIsIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon twice; runs without -short")
	}
	bash := needTool(t, "bash")
	needTool(t, "go")
	dir := fakeCheckout(t)
	// Started from elsewhere: the script must find its own directory.
	elsewhere := t.TempDir()
	script := filepath.Join(dir, "install_server.sh")

	first := run(t, elsewhere, nil, 3*time.Minute, bash, script, "--no-packages")
	if first.code != 0 {
		t.Fatalf("first install_server.sh --no-packages: exit %d:\n%s", first.code, first.out)
	}
	for _, want := range []string{"==> packages: skipped", "is free for the counting Redis", "built ./analyzer-d4-log", "created db/"} {
		if !strings.Contains(first.out, want) {
			t.Errorf("first run does not say %q:\n%s", want, first.out)
		}
	}
	bin := filepath.Join(dir, "analyzer-d4-log")
	st1, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("the installer did not build the binary: %v", err)
	}
	if st1.Mode().Perm()&0o100 == 0 {
		t.Errorf("binary mode %v is not executable", st1.Mode())
	}
	if st, err := os.Stat(filepath.Join(dir, "db")); err != nil || !st.IsDir() {
		t.Errorf("db/ not created: %v", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("the installer wrote into the directory it was started from: %v", entries)
	}

	// A later mtime would show a rewrite that the 1 s resolution of a
	// second-granular file system hides, so wait it out.
	time.Sleep(1100 * time.Millisecond)
	second := run(t, elsewhere, nil, 3*time.Minute, bash, script, "--no-packages")
	if second.code != 0 {
		t.Fatalf("second install_server.sh --no-packages: exit %d:\n%s", second.code, second.out)
	}
	for _, want := range []string{"./analyzer-d4-log is up to date", "db/ exists"} {
		if !strings.Contains(second.out, want) {
			t.Errorf("second run does not say %q:\n%s", want, second.out)
		}
	}
	st2, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !st2.ModTime().Equal(st1.ModTime()) || !os.SameFile(st1, st2) {
		t.Errorf("second run rewrote the binary (mtime %v, then %v)", st1.ModTime(), st2.ModTime())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "analyzer-d4-log cmd db go.mod install_server.sh redis.conf"; got != want {
		t.Errorf("after two runs the checkout holds %q, want %q", got, want)
	}

	// A source change is built again.
	writeFile(t, filepath.Join(dir, "cmd", "analyzer-d4-log", "main.go"), "package main\n\nfunc main() { println(1) }\n")
	third := run(t, elsewhere, nil, 3*time.Minute, bash, script, "--no-packages")
	if third.code != 0 || !strings.Contains(third.out, "built ./analyzer-d4-log") {
		t.Errorf("after a source change: exit %d, want a rebuild:\n%s", third.code, third.out)
	}
}

func TestInstallNamesTheFailedStep(t *testing.T) {
	bash := needTool(t, "bash")
	needTool(t, "go")
	dir := fakeCheckout(t)
	writeFile(t, filepath.Join(dir, "cmd", "analyzer-d4-log", "main.go"), "package main\n\nthis does not compile\n")
	r := run(t, dir, nil, 3*time.Minute, bash, filepath.Join(dir, "install_server.sh"), "--no-packages")
	if r.code == 0 {
		t.Fatalf("a broken build succeeded:\n%s", r.out)
	}
	if !strings.Contains(r.out, `failed during step "build ./analyzer-d4-log"`) {
		t.Errorf("the failure does not name the build step:\n%s", r.out)
	}
	if _, err := os.Stat(filepath.Join(dir, "analyzer-d4-log")); err == nil {
		t.Errorf("a failed build left a binary")
	}
	if _, err := os.Stat(filepath.Join(dir, "analyzer-d4-log.new")); err == nil {
		t.Errorf("a failed build left its temporary file")
	}
}

func TestInstallRefusesOldGo(t *testing.T) {
	bash := needTool(t, "bash")
	dir := fakeCheckout(t)
	// Debian 12's golang-go.
	oldGo := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(oldGo, []byte("#!/bin/sh\necho 'go version go1.19.8 linux/amd64'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, []string{"GO=" + oldGo}, 30*time.Second, bash, filepath.Join(dir, "install_server.sh"), "--no-packages")
	if r.code == 0 {
		t.Fatalf("install_server.sh accepted Go 1.19:\n%s", r.out)
	}
	need := strings.TrimPrefix(regexp.MustCompile(`(?m)^go\s+(\S+)$`).FindString(readFile(t, filepath.Join(dir, "go.mod"))), "go ")
	for _, want := range []string{
		"needs Go " + need + " or newer",
		oldGo + " (1.19.8)",
		"https://go.dev/dl/",
		"tar -C /usr/local -xzf go" + need + ".linux-",
		"export PATH=/usr/local/go/bin:$PATH",
	} {
		if !strings.Contains(r.out, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, r.out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "analyzer-d4-log")); err == nil {
		t.Errorf("a binary was built with a Go that is too old")
	}
}

func TestInstallWarnsWhenPortTaken(t *testing.T) {
	bash := needTool(t, "bash")
	dir := fakeCheckout(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	writeFile(t, filepath.Join(dir, "redis.conf"), withPort(readFile(t, filepath.Join(dir, "redis.conf")), port))
	// Stop before the build: the port check comes first, and an old Go
	// ends the run without compiling anything.
	oldGo := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(oldGo, []byte("#!/bin/sh\necho 'go version go1.19.8 linux/amd64'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, []string{"GO=" + oldGo}, 30*time.Second, bash, filepath.Join(dir, "install_server.sh"), "--no-packages")
	if want := "port " + strconv.Itoa(port) + " is in use by another program"; !strings.Contains(r.out, want) {
		t.Errorf("install_server.sh does not warn %q:\n%s", want, r.out)
	}
}

func TestLaunchHelp(t *testing.T) {
	bash := needTool(t, "bash")
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "launch_server.sh"), filepath.Join(dir, "launch_server.sh"))
	copyFile(t, filepath.Join(root, "redis.conf"), filepath.Join(dir, "redis.conf"))
	r := run(t, dir, nil, 10*time.Second, bash, filepath.Join(dir, "launch_server.sh"), "-h")
	if r.code != 0 {
		t.Fatalf("launch_server.sh -h: exit %d:\n%s", r.code, r.out)
	}
	for _, want := range []string{`screen session "alog"`, "alog-redis", "alog-ingester", "port 6500", "-k", "-s ", "-F ", "-c DIR", "conf.sample, the shipped reference"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("launch_server.sh -h does not mention %q:\n%s", want, r.out)
		}
	}
	r = run(t, dir, nil, 10*time.Second, bash, filepath.Join(dir, "launch_server.sh"), "-x")
	if r.code != 2 {
		t.Errorf("launch_server.sh -x: exit %d, want 2:\n%s", r.code, r.out)
	}
}

func TestLaunchWithoutBinary(t *testing.T) {
	bash := needTool(t, "bash")
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "launch_server.sh"), filepath.Join(dir, "launch_server.sh"))
	copyFile(t, filepath.Join(root, "redis.conf"), filepath.Join(dir, "redis.conf"))
	r := run(t, dir, []string{"ALOG_SESSION=alog-nobinary-" + strconv.Itoa(os.Getpid())}, 10*time.Second,
		bash, filepath.Join(dir, "launch_server.sh"))
	if r.code != 1 || !strings.Contains(r.out, "run ./install_server.sh") {
		t.Errorf("launch without a binary: exit %d, want 1 and a pointer to ./install_server.sh:\n%s", r.code, r.out)
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); err == nil {
		t.Errorf("a launch that failed created db/")
	}
}

func TestStopWhenNothingRuns(t *testing.T) {
	bash := needTool(t, "bash")
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "launch_server.sh"), filepath.Join(dir, "launch_server.sh"))
	copyFile(t, filepath.Join(root, "redis.conf"), filepath.Join(dir, "redis.conf"))
	env := []string{
		"ALOG_SESSION=alog-idle-" + strconv.Itoa(os.Getpid()),
		"ALOG_REDIS_PORT=" + strconv.Itoa(freePort(t)),
	}
	for i := 0; i < 2; i++ {
		r := run(t, dir, env, 20*time.Second, bash, filepath.Join(dir, "launch_server.sh"), "-k")
		if r.code != 0 {
			t.Fatalf("launch_server.sh -k with nothing running: exit %d:\n%s", r.code, r.out)
		}
		for _, want := range []string{"analyzer-d4-log is not running", "the counting Redis is not running", "no screen session"} {
			if !strings.Contains(r.out, want) {
				t.Errorf("launch_server.sh -k does not say %q:\n%s", want, r.out)
			}
		}
	}
}

// A Redis on the port that is not this checkout's (the system one, another
// checkout's) is neither used by launch nor shut down by -k.
func TestForeignRedisLeftAlone(t *testing.T) {
	bash := needTool(t, "bash")
	server := needTool(t, "redis-server")
	needTool(t, "redis-cli")
	needTool(t, "screen")
	dir := t.TempDir()
	copyFile(t, filepath.Join(root, "launch_server.sh"), filepath.Join(dir, "launch_server.sh"))
	copyFile(t, filepath.Join(root, "redis.conf"), filepath.Join(dir, "redis.conf"))
	// Any executable will do: launch must refuse before running it.
	writeFile(t, filepath.Join(dir, "analyzer-d4-log"), "")
	if err := os.Chmod(filepath.Join(dir, "analyzer-d4-log"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	other := t.TempDir()
	srv := startRedis(t, other, server, port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	defer srv.stop(t)
	env := []string{
		"ALOG_SESSION=alog-foreign-" + strconv.Itoa(os.Getpid()),
		"ALOG_REDIS_PORT=" + strconv.Itoa(port),
	}
	r := run(t, dir, env, 20*time.Second, bash, filepath.Join(dir, "launch_server.sh"))
	if r.code != 1 || !strings.Contains(r.out, "port "+strconv.Itoa(port)+" is in use by another program") {
		t.Errorf("launch beside a foreign Redis: exit %d, want 1 and the port named:\n%s", r.code, r.out)
	}
	r = run(t, dir, env, 20*time.Second, bash, filepath.Join(dir, "launch_server.sh"), "-k")
	if r.code != 0 || !strings.Contains(r.out, "left alone") {
		t.Errorf("launch_server.sh -k beside a foreign Redis: exit %d, want 0 and it left alone:\n%s", r.code, r.out)
	}
	c := dialRedis(t, port, 0)
	if _, err := c.Do("PING"); err != nil {
		t.Errorf("the foreign Redis was stopped: %v", err)
	}
}
