package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
)

// -check-config validates and prints, and touches nothing: the Redis
// addresses name a port where nothing listens, and the working directory
// stays empty (no log file, no output directory).
func TestCheckConfig(t *testing.T) {
	work := t.TempDir()
	t.Chdir(work)
	conf := t.TempDir()
	for name, v := range map[string]string{
		"redis_d4":      "127.0.0.1:1/2",
		"redis_queue":   "C9C3281C-F140-4B2E-B243-7C7CDF87AA0C",
		"redis_parsers": "127.0.0.1:1/4",
		"analyzer.toml": "timezone = \"UTC\"\nchart_top = 30\n",
	} {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	c := Command{ConfigDir: conf, CheckConfig: true, Out: &out, Poll: 1500 * time.Millisecond, Log: NewLogSink(io.Discard)}
	if err := Main(context.Background(), c); err != nil {
		t.Fatalf("-check-config on a valid directory: %v", err)
	}
	for _, want := range []string{
		"redis_d4", "127.0.0.1:1/2",
		"c9c3281c-f140-4b2e-b243-7c7cdf87aa0c", // canonical form, as the daemon uses it
		"127.0.0.1:1/4", `"" (no web server)`, "UTC", "chart_top", "30",
		"compile_interval", "1m0s", "batch_size", "4000", "[sshd]", "1.5s",
		"configuration OK: " + conf,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-check-config output lacks %q:\n%s", want, out.String())
		}
	}
	// Every key of analyzer.toml is shown, so a new key cannot be left out.
	for _, key := range config.Keys() {
		if !strings.Contains(out.String(), key+" ") {
			t.Errorf("-check-config output lacks the key %s:\n%s", key, out.String())
		}
	}
	if entries, _ := os.ReadDir(work); len(entries) != 0 {
		t.Errorf("-check-config wrote into the working directory: %v", entries)
	}

	if err := os.WriteFile(filepath.Join(conf, "analyzer.toml"), []byte("chart_top = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err := Main(context.Background(), c)
	var usage *UsageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "chart_top") {
		t.Errorf("-check-config on chart_top = 0: %v, want a usage error (exit 2) naming chart_top", err)
	}
	if out.Len() != 0 {
		t.Errorf("a refused configuration was printed as effective:\n%s", out.String())
	}
}
