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
	"strings"
	"syscall"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/daemon"
	"github.com/D4-project/analyzer-d4-log/internal/parsers"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stderr)) }

func run(args []string, stdin io.Reader, stderr io.Writer) int {
	// Signals first, so that a SIGTERM arriving while the configuration is
	// read is an orderly stop, not a kill; a second one forces the exit.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reopens the log file (log rotation); caught from the start,
	// since its default action would end the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fs := flag.NewFlagSet("analyzer-d4-log", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := daemon.Command{Stdin: stdin, Out: os.Stdout, Log: daemon.NewLogSink(stderr), Version: buildVersion()}
	fs.StringVar(&c.ConfigDir, "c", "conf.sample", "configuration `directory`")
	all := fs.Bool("a", false, "run all parsers (the default; today: "+strings.Join(parsers.Names(), ", ")+")")
	fs.StringVar(&c.Parser, "o", "", "run only the parser `name` (one of: "+strings.Join(parsers.Names(), ", ")+")")
	fs.BoolVar(&c.Debug, "d", false, "debug information in the log: every batch, compile and outage retry")
	fs.Func("f", "parse lines from `file` instead of the D4 queue (- = standard input), compile, exit",
		func(s string) error { c.File, c.FileGiven = s, true; return nil })
	retry := fs.String("r", "1s", config.RetryUsage)
	fs.BoolVar(&c.Flush, "F", false, "flush: drop the statistics, recount them from the stored attempts,\nrecompile all output, exit")
	fs.BoolVar(&c.CheckConfig, "check-config", false, "validate the configuration directory, print the effective configuration,\nexit 0 (valid) or 2; touches no Redis and no file")
	// The flag package prints its usage on any error; only -h shows it.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, stderr)
			return 0
		}
		fmt.Fprintf(stderr, "analyzer-d4-log: %v (-h lists the flags)\n", err)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "analyzer-d4-log: unexpected argument %q (-h lists the flags)\n", fs.Arg(0))
		return 2
	case *all && c.Parser != "":
		fmt.Fprintln(stderr, "analyzer-d4-log: -a and -o exclude each other; give one")
		return 2
	}
	var err error
	if c.Poll, err = config.ParseRetry(*retry); err != nil {
		fmt.Fprintf(stderr, "analyzer-d4-log: -r: %v\n", err)
		return 2
	}
	go forceOnSecondSignal(ctx, stop, stderr)
	go reopenOnHangup(hup, c.Log, stderr)

	err = daemon.Main(ctx, c)
	defer c.Log.Close()
	if err == nil {
		return 0
	}
	if c.Log.Attached() {
		slog.New(slog.NewTextHandler(c.Log, nil)).Error("stopped on error", "err", err)
	} else {
		fmt.Fprintf(stderr, "analyzer-d4-log: %v\n", err)
	}
	var usageErr *daemon.UsageError
	if errors.As(err, &usageErr) {
		return 2
	}
	return 1
}

// forceOnSecondSignal exits at a second signal: the operator means it.
func forceOnSecondSignal(ctx context.Context, stop func(), stderr io.Writer) {
	<-ctx.Done()
	stop()
	second := make(chan os.Signal, 1)
	signal.Notify(second, syscall.SIGINT, syscall.SIGTERM)
	<-second
	fmt.Fprintln(stderr, "analyzer-d4-log: second signal: exiting without finishing")
	os.Exit(1)
}

// reopenOnHangup reopens the log file at each SIGHUP, after logrotate (or
// an operator) renamed it; the daemon keeps running.
func reopenOnHangup(hup <-chan os.Signal, sink *daemon.LogSink, stderr io.Writer) {
	for range hup {
		if err := sink.Reopen(); err != nil {
			fmt.Fprintf(stderr, "analyzer-d4-log: SIGHUP: %v\n", err)
			continue
		}
		slog.New(slog.NewTextHandler(sink, nil)).Info("log file reopened (SIGHUP)")
	}
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, `analyzer-d4-log counts sshd "Invalid user" attempts from a D4 analyzer queue
and compiles charts, rankings and pages into <output_dir>/sshd.

Usage: analyzer-d4-log [-c DIR] [-a | -o NAME] [-d] [-r D] [-f FILE | -F | -check-config]

%s
Flags:
`, config.Files())
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprintf(w, "\nThe log is %s in the working directory; SIGHUP reopens it (log rotation).\n", daemon.LogFile)
	fmt.Fprintln(w, "The -c default is conf.sample, the shipped reference; ./launch_server.sh runs -c conf")
	fmt.Fprintln(w, "(made by ./install_server.sh from conf.sample) when it exists.")
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
