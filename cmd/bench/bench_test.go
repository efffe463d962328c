package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

func TestParseBenchmarkCSV(t *testing.T) {
	// As redis-benchmark 7 prints it with --csv.
	good := "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n" +
		"\"zincrby k 1 __rand_int__\",\"80612.66\",\"38.516\",\"2.248\",\"31.791\",\"83.199\",\"158.591\",\"167.295\"\n"
	rps, err := parseBenchmarkCSV([]byte(good))
	if err != nil || rps != 80612.66 {
		t.Fatalf("parseBenchmarkCSV = %v, %v; want 80612.66", rps, err)
	}
	// Progress lines written with \r before the result do not confuse it.
	noisy := "\rzincrby: rps=1000.0 (overall: 1000.0)\r" + good
	if rps, err := parseBenchmarkCSV([]byte(noisy)); err != nil || rps != 80612.66 {
		t.Fatalf("with progress noise: %v, %v", rps, err)
	}
	// Column order is read from the header, not assumed.
	swapped := "\"rps\",\"test\"\n\"123.5\",\"zincrby\"\n"
	if rps, err := parseBenchmarkCSV([]byte(swapped)); err != nil || rps != 123.5 {
		t.Fatalf("swapped columns: %v, %v", rps, err)
	}
	for name, bad := range map[string]string{
		"empty":     "",
		"no result": "\"test\",\"rps\"\n",
		"no rps":    "\"test\",\"qps\"\n\"x\",\"1\"\n",
		"not float": "\"test\",\"rps\"\n\"x\",\"fast\"\n",
		"zero":      "\"test\",\"rps\"\n\"x\",\"0\"\n",
		"short row": "\"test\",\"rps\"\n\"x\"\n",
		"error msg": "Could not connect to Redis at 127.0.0.1:1: Connection refused\n",
	} {
		if rps, err := parseBenchmarkCSV([]byte(bad)); err == nil {
			t.Errorf("%s: got %v, want an error", name, rps)
		}
	}
}

func TestParseInfo(t *testing.T) {
	info := "# CPU\r\nused_cpu_sys:0.138697\r\nused_cpu_user:1.643298\r\n\r\n# Memory\r\nused_memory:11987752\r\nused_memory_human:11.43M\r\n"
	m := parseInfo(info)
	if got, err := infoSum(m, "used_cpu_user", "used_cpu_sys"); err != nil || got != 1.643298+0.138697 {
		t.Fatalf("cpu = %v, %v", got, err)
	}
	if got, err := infoSum(m, "used_memory"); err != nil || got != 11987752 {
		t.Fatalf("used_memory = %v, %v", got, err)
	}
	if m["used_memory_human"] != "11.43M" {
		t.Fatalf("a value keeps its text: %q", m["used_memory_human"])
	}
	if _, err := infoSum(m, "used_memory_peak"); err == nil {
		t.Fatal("a missing field must be an error, not zero")
	}
	if _, err := infoSum(m, "used_memory_human"); err == nil {
		t.Fatal("a non-numeric field must be an error")
	}
}

// The daemon logs with log/slog's text handler; the bench must read what
// that handler really writes, quoting and escaping included.
func TestParseLogfmtReadsSlogText(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("file done", "file", "/var/log/auth log", "lines", 1000000, "counted", 700000,
		"skipped", "not_sshd=3 too_long=1", "seconds", "9.84")
	log.Info("flush: recounted", "attempts", 700020, "seconds", "4.8")
	log.Error("compile failed", "err", `write "x": no space`, "empty", "")
	log.Info("compiled", "charts", 939, "seconds", "5.718")

	var recs []logRecord
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		recs = append(recs, parseLogfmt(line))
	}
	if len(recs) != 4 {
		t.Fatalf("%d records from:\n%s", len(recs), buf.String())
	}
	done, ok := lastRecord(recs, "file done")
	if !ok {
		t.Fatalf("no file done record in %v", recs)
	}
	for k, want := range map[string]string{
		"level": "INFO", "file": "/var/log/auth log", "lines": "1000000",
		"skipped": "not_sshd=3 too_long=1", "seconds": "9.84",
	} {
		if done[k] != want {
			t.Errorf("file done %s = %q, want %q", k, done[k], want)
		}
	}
	if n, err := done.float("counted"); err != nil || n != 700000 {
		t.Errorf("counted = %v, %v", n, err)
	}
	if _, err := done.time(); err != nil {
		t.Errorf("time: %v", err)
	}
	if _, err := done.float("charts"); err == nil {
		t.Error("a missing field must be an error")
	}
	if _, err := done.float("file"); err == nil {
		t.Error("a non-numeric field must be an error")
	}
	failed, _ := lastRecord(recs, "compile failed")
	if failed["err"] != `write "x": no space` || failed["empty"] != "" {
		t.Errorf("escaped values: %q", failed)
	}
	if _, ok := lastRecord(recs, "stopped"); ok {
		t.Error("found a record that is not there")
	}
}

func TestParseLogfmtOddInput(t *testing.T) {
	for _, line := range []string{"", "   ", "word", "=", "a=", `a="unterminated`, `a="\"`, "a==b c", `msg="x\" y=1`} {
		_ = parseLogfmt(line) // must return, not loop or panic
	}
	if r := parseLogfmt(`a=1 junk b="two words" c=`); r["a"] != "1" || r["b"] != "two words" || r["c"] != "" {
		t.Fatalf("got %q", r)
	}
}

func TestRefineSeconds(t *testing.T) {
	recs := []logRecord{
		{"time": "2026-01-22T11:59:30.000Z", "msg": "start"},
		{"time": "2026-01-22T11:59:37.100Z", "msg": "flush: dropping"},
		{"time": "2026-01-22T11:59:37.350Z", "msg": "flush: recounted", "seconds": "0.2"},
	}
	if got := refineSeconds(recs, "flush:", recs[2], 0.2); got < 0.2499 || got > 0.2501 {
		t.Fatalf("refined = %v, want 0.25", got)
	}
	bad := logRecord{"time": "not a time", "msg": "flush: recounted"}
	if got := refineSeconds(recs, "flush:", bad, 0.2); got != 0.2 {
		t.Fatalf("unreadable time: %v, want the coarse 0.2", got)
	}
	if got := refineSeconds(recs[:1], "flush:", recs[2], 0.2); got != 0.2 {
		t.Fatalf("no start record: %v, want the coarse 0.2", got)
	}
}

func TestParseStatusBytes(t *testing.T) {
	status := []byte("Name:\tanalyzer-d4-log\nVmPeak:\t 1262412 kB\nVmHWM:\t   22736 kB\nVmRSS:\t   19100 kB\nThreads:\t7\n")
	if got, err := parseStatusBytes(status, "VmRSS"); err != nil || got != 19100*1024 {
		t.Fatalf("VmRSS = %v, %v", got, err)
	}
	if got, err := parseStatusBytes(status, "VmHWM"); err != nil || got != 22736*1024 {
		t.Fatalf("VmHWM = %v, %v", got, err)
	}
	if _, err := parseStatusBytes(status, "VmSwap"); err == nil {
		t.Fatal("missing field must be an error")
	}
	if _, err := parseStatusBytes([]byte("VmRSS:\t12 MB\n"), "VmRSS"); err == nil {
		t.Fatal("an unexpected unit must be an error")
	}
	// Read this very process, as the bench reads the daemon.
	if rss, err := readVmRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Fatalf("own VmRSS = %v, %v", rss, err)
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name may hold spaces and parentheses.
	stat := "4242 (we ird) (name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 7 0 12345 1262412 4775 18446744073709551615"
	u, s, err := parseProcStat(stat)
	if err != nil || u != 250 || s != 75 {
		t.Fatalf("parseProcStat = %d, %d, %v; want 250, 75", u, s, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 ten 75 0"} {
		if _, _, err := parseProcStat(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
	if _, err := readCPUSeconds(os.Getpid()); err != nil {
		t.Fatalf("own CPU time: %v", err)
	}
}

func TestSummarizeRSS(t *testing.T) {
	const mb = 1 << 20
	samples := []rssSample{
		{Bytes: 10 * mb, Progress: 0},
		{Bytes: 18 * mb, Progress: 0.05},
		{Bytes: 20 * mb, Progress: 0.12},
		{Bytes: 25 * mb, Progress: 0.5},
		{Bytes: 22 * mb, Progress: 0.95},
		{Bytes: 21 * mb, Progress: 1},
	}
	got := summarizeRSS(samples)
	want := rssSummary{Samples: 6, MinMiB: 10, MedianMiB: 20, MaxMiB: 25, At10MiB: 20, At50MiB: 25, At90MiB: 22, EndMiB: 21}
	if got != want {
		t.Fatalf("summarizeRSS =\n%+v\nwant\n%+v", got, want)
	}
	if (summarizeRSS(nil) != rssSummary{}) {
		t.Fatal("no samples must summarize to zero")
	}
	// A drain that never reached 90% reports its last reading there.
	if got := summarizeRSS(samples[:3]); got.At90MiB != 20 {
		t.Fatalf("at 90%% of a short drain = %v, want the last reading 20", got.At90MiB)
	}
}

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	for _, c := range []struct{ p, want float64 }{{0.5, 10}, {1, 20}, {0, 1}, {0.95, 19}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if percentile(nil, 0.5) != 0 {
		t.Error("empty percentile must be 0")
	}
}

func TestHeadline(t *testing.T) {
	q := &queueResult{LinesPerS: 49068.4}
	c := &ceilingResult{NaiveLinesPerS: 17432.1}
	if got, want := headline(q, c), "queue lines/s = 49068 (= 2.81 × naive ceiling)"; got != want {
		t.Fatalf("headline = %q, want %q", got, want)
	}
	if got := headline(q, nil); !strings.HasPrefix(got, "queue lines/s = 49068 ") {
		t.Fatalf("without ceiling: %q", got)
	}
	if got := headline(nil, c); !strings.HasPrefix(got, "queue lines/s = n/a") {
		t.Fatalf("without queue: %q", got)
	}
	if got := headline(&queueResult{}, c); !strings.HasPrefix(got, "queue lines/s = n/a") {
		t.Fatalf("unfinished queue: %q", got)
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1000000: "1,000,000", 49068.4: "49,068", -1234567: "-1,234,567"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-skip", "ceiling, backlog", "-lines", "5000"}, io.Discard)
	if err != nil || !o.skip["ceiling"] || !o.skip["backlog"] || len(o.skip) != 2 || o.lines != 5000 || o.pool != 4 || o.batch != config.DefaultBatchSize {
		t.Fatalf("parseFlags = %+v, %v", o, err)
	}
	var msg bytes.Buffer
	if _, err := parseFlags([]string{"-skip", "queue,celing"}, &msg); err == nil || !strings.Contains(msg.String(), `"celing"`) {
		t.Fatalf("a misspelt section must be refused by name; got %v, %q", err, msg.String())
	}
	for _, args := range [][]string{{"-pool", "0"}, {"-batch", "100001"}, {"-lines", "10"}, {"-backlog", "-1"}, {"-investigate", "9999"}, {"extra"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
	var usage bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &usage); !errors.Is(err, flag.ErrHelp) || !strings.Contains(usage.String(), "go run ./cmd/bench") {
		t.Fatalf("-h: %v; usage:\n%s", err, usage.String())
	}
}

func TestModuleRoot(t *testing.T) {
	root := t.TempDir()
	deep := filepath.Join(root, "cmd", "bench")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := moduleRoot(deep); err == nil {
		t.Fatal("outside the repository must be an error")
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module github.com/D4-project/analyzer-d4-log\n\ngo 1.26.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := moduleRoot(deep); err != nil || got != root {
		t.Fatalf("moduleRoot = %q, %v; want %q", got, err, root)
	}
}

// The configuration the bench writes must be one the daemon accepts, with
// the settings the figures assume.
func TestWriteConfLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	if err := writeConf(dir, "127.0.0.1:7001", queueUUID, "127.0.0.1:7002", 3, 2500); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(dir)
	if err != nil {
		t.Fatalf("the daemon refuses the bench's configuration: %v", err)
	}
	if cfg.Pool != 3 || cfg.BatchSize != 2500 || cfg.Location.String() != "UTC" || cfg.CompileInterval != time.Hour ||
		cfg.Parsers != "127.0.0.1:7002" || cfg.D4.DB != d4DB || cfg.Queue != queueUUID {
		t.Fatalf("loaded %+v", cfg)
	}
}

// The Redis helpers against a real server started the way the bench
// starts its own.
func TestRedisHelpers(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH (apt-get install redis-server): %v", err)
	}
	s, err := startRedis(bin, "test", t.TempDir(), "--save", "", "--appendonly", "no")
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	c, err := s.dial(stats.StatsDB)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, cmd := range [][]any{
		{"ZADD", stats.StatsKey("2025", stats.KindUser), 3, "root", 1, "a b"},
		{"ZADD", stats.StatsKey("20250101", stats.KindUser), 3, "root", 1, "a b"},
		{"ZADD", "not:statsfoo", 1, "x"},
		{"HSET", stats.TotalsKey, "2025", 4, "2026", 5, "20250101", 4},
	} {
		if _, err := c.Do(cmd[0].(string), cmd[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	got, err := readStats(c)
	if err != nil {
		t.Fatal(err)
	}
	want := workload.Expected{Sets: map[string]map[string]int64{
		stats.StatsKey("2025", stats.KindUser):     {"root": 3, "a b": 1},
		stats.StatsKey("20250101", stats.KindUser): {"root": 3, "a b": 1},
	}}
	if d := want.Diff(got); len(d) > 0 {
		t.Fatalf("readStats differs: %v", d)
	}
	if n, err := countedTotals(c, []string{"2025", "2026", "2027"}); err != nil || n != 9 {
		t.Fatalf("countedTotals = %d, %v; want 9 (days are not years)", n, err)
	}
	if y := yearsOf(want); len(y) != 1 || y[0] != "2025" {
		t.Fatalf("yearsOf = %v", y)
	}
	if mem, err := s.usedMemory(); err != nil || mem <= 0 {
		t.Fatalf("usedMemory = %d, %v", mem, err)
	}
	if _, err := s.cpuSeconds(); err != nil {
		t.Fatal(err)
	}
	s.stop()
	if _, err := s.do(0, "PING"); err == nil {
		t.Fatal("the server still answers after stop")
	}
	if err := waitCtx(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}

// TestInvestigateData checks the investigate section's year: the share of
// new sources, days and names within bounds, and the bench's own answers
// (ranking order with ties bytewise, attempts, distinct, drill, series) on
// attempts small enough to count by hand.
func TestInvestigateData(t *testing.T) {
	today := time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC)
	d := invGenerate(20000, today, 1)
	if share := float64(d.srcs) / 20000; share < 0.57 || share > 0.63 {
		t.Errorf("new sources: %.2f of attempts, want about %.2f", share, invNewSrc)
	}
	for _, a := range d.atts {
		if a.day >= invDays || a.user >= invUsers || a.host >= invHosts || int(a.src) >= d.srcs {
			t.Fatalf("attempt out of bounds: %+v", a)
		}
	}
	if got := d.dayName(0); got != "20290301" {
		t.Errorf("day 0 = %s, want 20290301 (365 days before today)", got)
	}

	h := &invData{first: today, atts: []invAttempt{
		{day: 0, user: 0, src: 1, host: 1}, // admin from src 1
		{day: 1, user: 0, src: 2, host: 1}, // admin from src 2
		{day: 1, user: 1, src: 2, host: 2}, // root from src 2
		{day: 2, user: 1, src: 2, host: 2}, // out of the range below
	}, srcs: 3}
	top, _ := invQuestion{ep: "top", kind: "username", from: 0, to: 1}.expect(h)
	if top.Attempts != 3 || top.Distinct != 2 || len(top.Top) != 2 ||
		top.Top[0] != (invEntry{Value: "admin", Count: 2}) || top.Top[1] != (invEntry{Value: "root", Count: 1}) {
		t.Errorf("top = %+v", top)
	}
	// Equal counts rank bytewise: "11.0.0.1" before "11.0.0.2".
	srcs, _ := invQuestion{ep: "drill", kind: "username", value: "admin", of: "src", from: 0, to: 1}.expect(h)
	if srcs.Attempts != 2 || srcs.Distinct != 2 || srcs.Top[0].Value != invSrcName(1) || srcs.Top[1].Value != invSrcName(2) {
		t.Errorf("drill = %+v", srcs)
	}
	_, days := invQuestion{ep: "series", kind: "src", value: invSrcName(2), from: 0, to: 3}.expect(h)
	if !slices.Equal(days, []int64{0, 2, 1, 0}) {
		t.Errorf("series = %v, want [0 2 1 0]", days)
	}
	body := []byte(`{"attempts":3,"distinct":2,"top":[{"value":"admin","count":2},{"value":"root","count":1}]}`)
	if msg := (invQuestion{ep: "top", kind: "username", from: 0, to: 1}).check(h, body); msg != "" {
		t.Errorf("a right answer was found wrong: %s", msg)
	}
	wrong := []byte(`{"attempts":3,"distinct":2,"top":[{"value":"root","count":1},{"value":"admin","count":2}]}`)
	if msg := (invQuestion{ep: "top", kind: "username", from: 0, to: 1}).check(h, wrong); msg == "" {
		t.Error("a wrong order was found right")
	}
}
