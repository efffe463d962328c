package daemon

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/ingest"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
)

// confDir writes a configuration directory; httpServer may be empty.
func confDir(t *testing.T, d4, counting, httpServer, toml string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"redis_d4": d4 + "/2", "redis_queue": queue, "redis_parsers": counting + "/2",
		"http_server": httpServer, "analyzer.toml": toml,
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// leftBehind lists what a refused start left in the working directory.
func leftBehind(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, p := range []string{LogFile, "data"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// Starts refused for what can be checked without side effects leave
// neither the log file nor the output directory behind, and say why in
// one error.
func TestRefusedStartsLeaveNothingBehind(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name     string
		http     string
		file     string
		fileSet  bool
		flush    bool
		want     string
		usageErr bool
	}{
		{name: "port in use", http: busy.Addr().String(), want: "http_server"},
		{name: "address not on this machine", http: "192.0.2.1:8080", want: "http_server"},
		{name: "missing input file", file: "/nonexistent/auth.log", fileSet: true, want: "no such file"},
		{name: "empty -f", file: "", fileSet: true, want: "-f needs a file name", usageErr: true},
		{name: "-f with -F", file: "x", fileSet: true, flush: true, want: "exclude each other", usageErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			t.Chdir(work)
			// No Redis is needed: every refusal comes before one is asked.
			conf := confDir(t, "127.0.0.1:1", "127.0.0.1:1", tc.http, "")
			var stderr bytes.Buffer
			sink := NewLogSink(&stderr)
			defer sink.Close()
			err := Main(context.Background(), Command{ConfigDir: conf, File: tc.file, FileGiven: tc.fileSet,
				Flush: tc.flush, Poll: time.Second, Stdin: strings.NewReader(""), Log: sink})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Main = %v; want an error about %q", err, tc.want)
			}
			var ue *UsageError
			if errors.As(err, &ue) != tc.usageErr {
				t.Fatalf("Main = %v; usage error %v, want %v", err, !tc.usageErr, tc.usageErr)
			}
			if left := leftBehind(t, work); len(left) > 0 {
				t.Fatalf("a refused start left %v behind", left)
			}
		})
	}
}

// -f with an output directory that cannot be written is refused before a
// line is counted, so a rerun does not count the file twice.
func TestFileRefusedWhenOutputIsNotWritable(t *testing.T) {
	// A file where the output directory should be: refused for every
	// user, root included (root writes through permission bits).
	cnt := redistest.Start(t, redistest.Options{})
	work := t.TempDir()
	t.Chdir(work)
	if err := os.WriteFile(filepath.Join(work, "blocked"), []byte("a file, not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := confDir(t, "127.0.0.1:1", cnt.Addr(), "", `output_dir = "blocked"`)
	input := filepath.Join(work, "auth.log")
	if err := os.WriteFile(input, []byte(oneLine), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	sink := NewLogSink(&stderr)
	defer sink.Close()
	err := Main(context.Background(), Command{ConfigDir: conf, File: input, FileGiven: true, Poll: time.Second, Log: sink})
	if err == nil || !strings.Contains(err.Error(), "nothing was counted") {
		t.Fatalf("Main = %v; want the output directory refused", err)
	}
	if keys, _ := cnt.Conn(1).Do("DBSIZE"); keys.(int64) != 0 {
		t.Fatalf("%d keys counted before the output directory was refused", keys)
	}
}

// -f gives up after a bounded wait when the counting Redis does not
// answer at start, naming its address; nothing is counted.
func TestFileGivesUpWhenCountingRedisIsDown(t *testing.T) {
	cfg := &config.Config{
		D4: config.RedisAddr{Addr: "127.0.0.1:1", DB: 2}, Queue: queue,
		Parsers: "127.0.0.1:1", Pool: 1, Location: time.UTC, CompileInterval: time.Hour,
		OutputDir: t.TempDir(), ChartTop: 10, BatchSize: 50, MaxLineBytes: 1 << 20,
	}
	d := New(Options{Config: cfg, File: true, StartWait: 300 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	t.Cleanup(d.Close)
	_, err := d.RunFile(context.Background(), strings.NewReader(oneLine), time.Now())
	if !errors.Is(err, ingest.ErrCountingRedisDown) || !strings.Contains(err.Error(), "127.0.0.1:1") ||
		!strings.Contains(err.Error(), "launch_server.sh") {
		t.Fatalf("RunFile = %v; want a bounded wait naming the address and how to start it", err)
	}
}

// A log file that cannot be written never silences standard error: every
// message still reaches it, and the failure is said there once.
func TestLogSinkKeepsStderrWhenTheFileFails(t *testing.T) {
	var stderr bytes.Buffer
	s := NewLogSink(&stderr)
	dir := t.TempDir()
	if err := s.Attach(filepath.Join(dir, "log")); err != nil {
		t.Fatal(err)
	}
	s.Write([]byte("one\n"))
	// /dev/full fails every write with ENOSPC, as a full disk does.
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	s.mu.Lock()
	s.file.Close()
	s.file = full
	s.mu.Unlock()
	for _, m := range []string{"two\n", "three\n"} {
		if n, err := s.Write([]byte(m)); err != nil || n != len(m) {
			t.Fatalf("Write = %d, %v; the sink must never fail", n, err)
		}
	}
	out := stderr.String()
	for _, m := range []string{"one\n", "two\n", "three\n"} {
		if !strings.Contains(out, m) {
			t.Fatalf("stderr lacks %q:\n%s", m, out)
		}
	}
	if n := strings.Count(out, "cannot write the log file"); n != 1 {
		t.Fatalf("the failure was said %d times, want once:\n%s", n, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	if string(b) != "one\n" {
		t.Fatalf("log file = %q", b)
	}
}
