package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzParseSentinelAddr(f *testing.F) {
	for _, s := range []string{
		"sentinel://10.0.0.1:26379,10.0.0.2:26379/counting/16", "sentinel://[::1]:26379/m/1",
		"sentinel:///m/1", "sentinel://a:1/m", "sentinel://a:1,a:1/m/2", "sentinel://a:1/m m/2", "localhost:6500/16", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, master, n, err := ParseSentinelAddr(s)
		if err != nil {
			if hosts != nil || master != "" || n != 0 {
				t.Fatalf("ParseSentinelAddr(%q) = %q, %q, %d with error %v", s, hosts, master, n, err)
			}
			checkMessage(t, err.Error(), "sentinel address ")
			return
		}
		if len(hosts) == 0 || master == "" || n < 0 {
			t.Fatalf("ParseSentinelAddr(%q) = %q, %q, %d", s, hosts, master, n)
		}
		for _, h := range hosts {
			if strings.ContainsAny(h, " \t\r\n\x00/@,") {
				t.Fatalf("ParseSentinelAddr(%q): accepted sentinel %q", s, h)
			}
		}
		if strings.ContainsAny(master, " \t\r\n\x00/\"'") {
			t.Fatalf("ParseSentinelAddr(%q): accepted master %q", s, master)
		}
		// What was accepted parses again to the same thing.
		again := SentinelScheme + strings.Join(hosts, ",") + "/" + master + "/" + strconv.Itoa(n)
		hosts2, master2, n2, err := ParseSentinelAddr(again)
		if err != nil || strings.Join(hosts2, ",") != strings.Join(hosts, ",") || master2 != master || n2 != n {
			t.Fatalf("ParseSentinelAddr(%q) = %q, %q, %d, %v; reparsed from %q", again, hosts2, master2, n2, err, s)
		}
	})
}

func FuzzParseRedisAddr(f *testing.F) {
	for _, s := range []string{
		"localhost:6380/2", "[::1]:6500/16", "[fe80::1%eth0]:1/0", "localhost:6380",
		":6380/2", "localhost:0/2", "::1:6380/2", "a:b/c/d", "[127.0.0.1]:1/1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, n, err := ParseRedisAddr(s)
		if err != nil {
			if addr != "" || n != 0 {
				t.Fatalf("ParseRedisAddr(%q) = %q, %d with error %v", s, addr, n, err)
			}
			checkMessage(t, err.Error(), "redis address ")
			return
		}
		if n < 0 {
			t.Fatalf("ParseRedisAddr(%q): negative n %d", s, n)
		}
		if !strings.HasPrefix(s, addr+"/") {
			t.Fatalf("ParseRedisAddr(%q): addr %q is not what was given", s, addr)
		}
		if strings.ContainsAny(addr, " \t\r\n\x00/@") {
			t.Fatalf("ParseRedisAddr(%q): accepted addr %q", s, addr)
		}
		// What was accepted parses again to the same thing.
		addr2, n2, err := ParseRedisAddr(addr + "/" + strconv.Itoa(n))
		if err != nil || addr2 != addr || n2 != n {
			t.Fatalf("ParseRedisAddr(%q) = %q, %d; its canonical form gives %q, %d, %v", s, addr, n, addr2, n2, err)
		}
	})
}

func FuzzLoadTOML(f *testing.F) {
	for _, s := range []string{
		"",
		"timezone = \"Europe/Luxembourg\"\ncompile_interval = \"5m\"\noutput_dir = \"out\"\nchart_top = 10\nbatch_size = 500\nmax_line_bytes = 4096\n",
		"compile_interval = 90\n",
		"compile_interval = \"-1s\"\n",
		"compile_intervall = 1\n",
		"[chart_top]\nx = 1\n",
		"Chart_Top = 5\nchart_top = 6\n",
		"timezone = \"../../etc/passwd\"\n",
		"timezone = \"Local\"\n",
		"output_dir = \"\\u0000\"\n",
		"batch_size = 1e3\n",
		"a = [1, {b = 2}]\n[[c]]\nd = 1969-07-20T20:17:00Z\n",
		"chart_top = = 3\n",
		"max_age_days = 0\nmax_value_bytes = 64\n",
		"max_age_days = -1\n",
		"max_value_bytes = 1e6\n",
		"x = \"\xff\"\n",
		strings.Repeat("a.", 300) + "b = 1\n",
		"a = " + strings.Repeat("{b = ", 100),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		writeFiles(t, dir, validFiles())
		path := filepath.Join(dir, FileAnalyzerTOML)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(dir)
		if err != nil {
			if cfg != nil {
				t.Fatalf("Load returned a config with error %v", err)
			}
			checkMessage(t, err.Error(), path+": ")
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted an invalid config: %v\n%s", err, data)
		}
		// Validate is the package's own; check the contract directly too.
		switch {
		case cfg.Location == nil:
			t.Fatalf("no location for %q", data)
		case cfg.CompileInterval < time.Second:
			t.Fatalf("compile_interval %v accepted from %q", cfg.CompileInterval, data)
		case cfg.ChartTop < 1 || cfg.ChartTop > 200:
			t.Fatalf("chart_top %d accepted from %q", cfg.ChartTop, data)
		case cfg.BatchSize < 1 || cfg.BatchSize > 100000:
			t.Fatalf("batch_size %d accepted from %q", cfg.BatchSize, data)
		case cfg.MaxLineBytes < 1024 || cfg.MaxLineBytes > 64<<20:
			t.Fatalf("max_line_bytes %d accepted from %q", cfg.MaxLineBytes, data)
		case cfg.MaxAgeDays < 0 || cfg.MaxAgeDays > 36500 || cfg.MaxAge() < 0:
			t.Fatalf("max_age_days %d accepted from %q", cfg.MaxAgeDays, data)
		case cfg.MaxValueBytes < 64 || cfg.MaxValueBytes > 1<<20:
			t.Fatalf("max_value_bytes %d accepted from %q", cfg.MaxValueBytes, data)
		case cfg.OutputDir == "" || strings.IndexByte(cfg.OutputDir, 0) >= 0:
			t.Fatalf("output_dir %q accepted from %q", cfg.OutputDir, data)
		case cfg.TimezoneName == "" && cfg.Location != time.Local:
			t.Fatalf("empty timezone resolved to %v", cfg.Location)
		}
	})
}

func FuzzParseRetry(f *testing.F) {
	for _, s := range []string{"1", "30s", "1m30s", "0", "-5", "abc", "", "+3", "153722868", "1.5h", "-0s", "1ns", "99ms", "100ms", "0.1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseRetry(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseRetry(%q) = %v with error %v", s, d, err)
			}
			checkMessage(t, err.Error(), "retry wait ")
			return
		}
		if d < MinRetry {
			t.Fatalf("ParseRetry(%q) = %v; want at least %v", s, d, MinRetry)
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && d != time.Duration(n)*time.Minute {
			t.Fatalf("ParseRetry(%q) = %v; a bare integer is minutes", s, d)
		}
	})
}

// checkMessage holds every error to what an operator's log needs: it starts
// where it should, is one line of valid UTF-8 whatever the input, and is
// short enough to read.
func checkMessage(t *testing.T, msg, prefix string) {
	t.Helper()
	if !strings.HasPrefix(msg, prefix) {
		t.Fatalf("message %q does not start with %q", msg, prefix)
	}
	if strings.ContainsAny(msg, "\n\r") || !utf8.ValidString(msg) {
		t.Fatalf("message %q is not one line of UTF-8", msg)
	}
	if len(msg) > 1024+len(prefix) {
		t.Fatalf("message of %d bytes: %q", len(msg), msg)
	}
}
