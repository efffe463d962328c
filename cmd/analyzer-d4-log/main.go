// Command analyzer-d4-log counts sshd "Invalid user" attempts from a D4
// server's analyzer queue (or a log file) and compiles charts and pages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/daemon"
)

// logFile is where operators tail the daemon, in its working directory.
const logFile = "analyzer-d4-log.log"

// parsers lists the parsers -o accepts.
var parsers = []string{"sshd"}

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stderr)) }

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	// Signals first, so that a SIGTERM arriving while the configuration is
	// read is an orderly stop, not a kill.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("analyzer-d4-log", flag.ContinueOnError)
	fs.SetOutput(stderr)
	confDir := fs.String("c", "conf.sample", "configuration `directory`")
	all := fs.Bool("a", false, "run all parsers (the default; today: sshd)")
	only := fs.String("o", "", "run only the parser `name` (one of: "+strings.Join(parsers, ", ")+")")
	debugLog := fs.Bool("d", false, "write debug information to the log")
	file := fs.String("f", "", "parse lines from `file` instead of the D4 queue (- = standard input), compile, exit")
	retry := fs.String("r", "1s", "wait `d` before polling the queue again when the D4 Redis refuses to block;\na bare integer means minutes, or a Go duration such as 30s")
	flush := fs.Bool("F", false, "flush: drop the statistics, recount them from the stored attempts,\nrecompile all output, exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `analyzer-d4-log counts sshd "Invalid user" attempts from a D4 analyzer queue
and compiles charts, rankings and pages into <output_dir>/sshd.

Usage: analyzer-d4-log [-c DIR] [-a | -o NAME] [-d] [-r D] [-f FILE | -F]

%s
Flags:
`, config.Files())
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nThe log is %s in the working directory.\n", logFile)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "analyzer-d4-log: unexpected argument %q; see -h\n", fs.Arg(0))
		return 2
	}
	if *all && *only != "" {
		fmt.Fprintln(stderr, "analyzer-d4-log: -a and -o exclude each other; give one")
		return 2
	}
	if *only != "" && !slices.Contains(parsers, *only) {
		fmt.Fprintf(stderr, "analyzer-d4-log: -o %q: no such parser; parsers: %s\n", *only, strings.Join(parsers, ", "))
		return 2
	}
	if *file != "" && *flush {
		fmt.Fprintln(stderr, "analyzer-d4-log: -f and -F exclude each other; give one")
		return 2
	}
	poll, err := config.ParseRetry(*retry)
	if err != nil {
		fmt.Fprintf(stderr, "analyzer-d4-log: -r: %v\n", err)
		return 2
	}
	cfg, err := config.Load(*confDir)
	if err != nil {
		fmt.Fprintf(stderr, "analyzer-d4-log: %v\n", err)
		return 2
	}

	lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintf(stderr, "analyzer-d4-log: open log file: %v\n", err)
		return 1
	}
	defer lf.Close()
	level := slog.LevelInfo
	if *debugLog {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(lf, stderr), &slog.HandlerOptions{Level: level}))

	go func() {
		// A second signal forces the exit: the operator means it.
		<-ctx.Done()
		stop()
		second := make(chan os.Signal, 1)
		signal.Notify(second, syscall.SIGINT, syscall.SIGTERM)
		<-second
		log.Error("second signal: exiting without finishing")
		os.Exit(1)
	}()

	version := buildVersion()
	log.Info("start", "version", version, "config", cfg.Dir, "d4", fmt.Sprintf("%s/%d", cfg.D4.Addr, cfg.D4.DB),
		"queue", cfg.Queue, "counting", cfg.Parsers, "pool", cfg.Pool, "http_server", cfg.HTTPServer,
		"timezone", cfg.Location.String(), "compile_interval", cfg.CompileInterval.String(),
		"output_dir", cfg.OutputDir, "chart_top", cfg.ChartTop, "batch_size", cfg.BatchSize,
		"max_line_bytes", cfg.MaxLineBytes, "poll", poll.String())

	d := daemon.New(daemon.Options{Config: cfg, Log: log, Version: version, Poll: poll})
	defer d.Close()

	switch {
	case *flush:
		if err := d.Flush(ctx); err != nil {
			log.Error("flush failed", "err", err)
			return 1
		}
		return 0
	case *file != "":
		return runFile(ctx, d, log, *file, stdin)
	}
	if err := d.Run(ctx); err != nil {
		log.Error("stopped on error", "err", err)
		return 1
	}
	return 0
}

func runFile(ctx context.Context, d *daemon.Daemon, log *slog.Logger, name string, stdin io.Reader) int {
	in, ref := stdin, time.Now()
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			log.Error("open input", "err", err)
			return 1
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			log.Error("stat input", "err", err)
			return 1
		}
		// A rotated log's stamps are dated against when it was last
		// written, so last year's file lands in last year.
		in, ref = f, st.ModTime()
	}
	log.Info("reading", "file", name, "reference_time", ref.Format(time.RFC3339))
	sum, err := d.RunFile(ctx, in, ref)
	log.Info("file done", "file", name, "lines", sum.Lines, "counted", sum.Counted,
		"skipped", sum.Skipped, "seconds", fmt.Sprintf("%.2f", sum.Duration.Seconds()))
	if err != nil {
		log.Error("file not fully counted", "err", err)
		return 1
	}
	if err := d.Compile(ctx, false); err != nil {
		log.Error("compile after file", "err", err)
		return 1
	}
	return 0
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
		if bi.Main.Version != "" {
			return bi.Main.Version
		}
	}
	return "devel"
}
