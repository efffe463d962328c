// Command bench measures analyzer-d4-log on the machine it runs on and
// holds the figures to the project's performance targets. The targets are
// ratios to figures from the same run (the naive Redis ceiling, the live
// counting rate), so a slow or busy machine moves the figures, not the
// verdict.
//
// It owns everything it measures: it builds the daemon from this
// repository, starts its own two redis-servers on free loopback ports (the
// counting one with the shipped durability, append-only with fsync on
// every write), works in a temporary directory, and kills what it started
// when it ends, is interrupted or fails. Its output is a table on standard
// output, the same figures in bench.json, and a headline as the last line.
//
// Exit status: 0 when every count was exact, 1 when a count or an output
// was wrong or the run could not be done, 2 for bad flags. A missed speed
// target is shown as MISSED and does not fail the run: on a shared machine
// a person decides what a miss means.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// sectionNames are the parts of a run, in the order they run; -skip takes
// any of them.
var sectionNames = []string{"parser", "ceiling", "queue", "latency", "flush", "storage", "file", "compile", "incremental", "dedupe", "backlog", "trickle", "geoip", "retention", "multi", "investigate"}

type options struct {
	lines, backlog, pool, batch int
	investigate                 int
	out                         string
	keep                        bool
	skip                        map[string]bool
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	b := &bench{o: o, stdout: stdout, stderr: stderr, began: time.Now()}
	b.rep = &report{
		Date:      time.Now().UTC().Format(time.RFC3339),
		NProc:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		Settings:  settings{Lines: o.lines, Investigate: o.investigate, Backlog: o.backlog, Pool: o.pool, Batch: o.batch, Skip: sortedKeys(o.skip)},
	}
	runErr := b.setup(ctx)
	if runErr == nil {
		runErr = b.runSections(ctx)
	}
	b.teardown()

	if errors.Is(runErr, context.Canceled) {
		runErr = fmt.Errorf("interrupted (%w)", runErr)
	}
	if runErr != nil {
		b.rep.Error = runErr.Error()
	}
	b.rep.Headline = headline(b.rep.Queue, b.rep.Ceiling)
	fmt.Fprintln(stdout)
	if err := b.rep.writeTable(stdout); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
	}
	if err := b.rep.writeJSON(o.out); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
	} else {
		fmt.Fprintf(stdout, "\nfigures written to %s\n", o.out)
	}
	for _, f := range b.rep.Failures {
		fmt.Fprintf(stdout, "FAILED: %s\n", f)
	}
	if runErr != nil {
		fmt.Fprintf(stdout, "ERROR: %v\n", runErr)
	}
	fmt.Fprintln(stdout, b.rep.Headline)
	if runErr != nil || len(b.rep.Failures) > 0 {
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.lines, "lines", 1000000, "log lines in the queue, file and parser runs")
	fs.IntVar(&o.investigate, "investigate", 3000000, "attempts of the investigate section's year (the issue's size; fewer for a quick run)")
	fs.IntVar(&o.backlog, "backlog", 0, "lines of the backlog run (0 = no backlog run; 10000000 for the long run by hand)")
	fs.StringVar(&o.out, "out", "bench.json", "write the figures to `file` as JSON")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (daemon logs, Redis data, output) and print its path")
	fs.IntVar(&o.pool, "pool", 4, "workers and counting-Redis connections of the daemon (N of redis_parsers)")
	fs.IntVar(&o.batch, "batch", config.DefaultBatchSize, "batch_size of the daemon")
	skip := fs.String("skip", "", "comma-separated `sections` to skip: "+strings.Join(sectionNames, ","))
	fs.Usage = func() {
		fmt.Fprintf(stderr, `bench measures analyzer-d4-log end to end and checks its performance targets.

Run it from the repository root (it builds ./cmd/analyzer-d4-log):

    go run ./cmd/bench [flags]

It needs redis-server and redis-benchmark on PATH (Debian: apt-get install
redis-server redis-tools); it starts its own servers on free loopback ports
and never touches a running one. The default run takes a few minutes on two
cores; -skip shortens it. It prints a table, writes the figures as JSON and
ends with the headline "queue lines/s = X (= R × naive ceiling)". It exits 1
when a count is wrong, not when a speed target is missed.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q; see -h", fs.Arg(0))
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return o, err
	}
	var err error
	if o.skip, err = parseSkip(*skip); err == nil {
		err = validate(o)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return o, err
	}
	return o, nil
}

// parseSkip reads the -skip list, refusing names that are not sections so
// a typo does not quietly run everything.
func parseSkip(s string) (map[string]bool, error) {
	skip := map[string]bool{}
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(sectionNames, name) {
			return nil, fmt.Errorf("-skip: no section %q; sections: %s", name, strings.Join(sectionNames, ","))
		}
		skip[name] = true
	}
	return skip, nil
}

func validate(o options) error {
	switch {
	case o.lines < 1000:
		return fmt.Errorf("-lines %d: want at least 1000", o.lines)
	case o.investigate < 10000:
		return fmt.Errorf("-investigate %d: want at least 10000 attempts", o.investigate)
	case o.backlog < 0:
		return fmt.Errorf("-backlog %d: want 0 (no backlog run) or more", o.backlog)
	case o.pool < 1 || o.pool > 64:
		return fmt.Errorf("-pool %d: want 1 to 64", o.pool)
	case o.batch < 1 || o.batch > 100000:
		return fmt.Errorf("-batch %d: want 1 to 100000, as batch_size allows", o.batch)
	case o.out == "":
		return errors.New("-out: want a file name")
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// queueUUID names the bench's analyzer queue; any UUID v4 does.
const queueUUID = "3f6a1c2e-8b4d-4e7f-9a0b-1c2d3e4f5a6b"

// d4DB is where the D4 server keeps analyzer queues (SPEC §2).
const d4DB = 2

// bench is one run: the servers and files it owns and what it measured.
type bench struct {
	o              options
	stdout, stderr io.Writer
	began          time.Time

	root, tmp, bin, conf string
	cnt, d4              *redisServer

	// lines and want are the generated workload and its independently
	// computed statistics; extra are the attempts the latency probe added.
	lines []workload.Line
	want  workload.Expected
	extra []workload.Line

	rep *report

	// busyReplies counts the BUSY replies the counting Redis gave the
	// bench's watch (see drain).
	busyReplies int
}

// say prints a progress line, so a person sees the run working.
func (b *bench) say(format string, args ...any) {
	fmt.Fprintf(b.stderr, "[%6.1fs] %s\n", time.Since(b.began).Seconds(), fmt.Sprintf(format, args...))
}

func (b *bench) runs(section string) bool {
	if section == "backlog" && b.o.backlog == 0 {
		return false
	}
	return !b.o.skip[section]
}

// needsServers tells whether any section runs the daemon or a Redis.
func (b *bench) needsServers() bool {
	for _, s := range sectionNames {
		if s != "parser" && b.runs(s) {
			return true
		}
	}
	return false
}

// setup finds the tools and the repository, builds the daemon and starts
// the two Redis servers.
func (b *bench) setup(ctx context.Context) error {
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("find the working directory: %w", err)
	}
	if b.root, err = moduleRoot(wd); err != nil {
		return err
	}
	b.rep.Revision = gitRevision(b.root)
	if b.tmp, err = os.MkdirTemp("", "alog-bench-"); err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	if !b.needsServers() {
		return nil
	}
	redisBin, err := exec.LookPath("redis-server")
	if err != nil {
		return errors.New("redis-server not found on PATH: install it (Debian: apt-get install redis-server)")
	}
	if b.runs("ceiling") {
		if _, err := exec.LookPath("redis-benchmark"); err != nil {
			return errors.New("redis-benchmark not found on PATH: install it (Debian: apt-get install redis-tools), or -skip ceiling")
		}
	}
	b.bin = filepath.Join(b.tmp, "analyzer-d4-log")
	b.say("building the daemon (go build ./cmd/analyzer-d4-log)")
	build := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "./cmd/analyzer-d4-log")
	build.Dir = b.root
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the daemon: %w\n%s", err, out)
	}
	// The counting Redis runs with the durability of the shipped
	// redis.conf, since that is what every batch pays for; the D4 Redis
	// keeps its queue in memory only, as the measurement needs no more.
	b.say("starting the counting and D4 redis-servers")
	if b.cnt, err = startRedis(redisBin, "counting", filepath.Join(b.tmp, "redis-counting"),
		"--save", "", "--appendonly", "yes", "--appendfsync", "always"); err != nil {
		return err
	}
	if b.d4, err = startRedis(redisBin, "D4", filepath.Join(b.tmp, "redis-d4"),
		"--save", "", "--appendonly", "no"); err != nil {
		return err
	}
	if m, err := b.cnt.info("server"); err == nil {
		b.rep.RedisVersion = m["redis_version"]
	}
	b.conf = filepath.Join(b.tmp, "conf")
	return writeConf(b.conf, b.d4.addr(), queueUUID, b.cnt.addr(), b.o.pool, b.o.batch)
}

// teardown stops the servers and removes the temporary directory unless
// -keep asks to look at it.
func (b *bench) teardown() {
	b.d4.stop()
	b.cnt.stop()
	if b.tmp == "" {
		return
	}
	if b.o.keep {
		b.say("kept %s", b.tmp)
		return
	}
	if err := os.RemoveAll(b.tmp); err != nil {
		b.say("remove temporary directory: %v", err)
	}
}

// moduleRoot walks up from dir to this repository's go.mod.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil &&
			strings.Contains(string(b), "module github.com/D4-project/analyzer-d4-log\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("not inside the analyzer-d4-log repository: run it from the repository root (go run ./cmd/bench)")
		}
	}
}

// gitRevision names the measured code: the short commit, "+dirty" when
// the work tree has changes. Empty when git is not there.
func gitRevision(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += "+dirty"
	}
	return rev
}
