//go:build unix

package config

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestLoadRefusesSpecialFiles puts a named pipe (and a device) where each
// configuration file belongs. Opening a pipe for reading blocks until a
// writer comes, so a Load that opens it the ordinary way never returns and
// the daemon hangs at start, deaf to SIGTERM; it must refuse at once.
func TestLoadRefusesSpecialFiles(t *testing.T) {
	for _, name := range []string{FileRedisD4, FileRedisQueue, FileRedisParsers, FileHTTPServer, FileAnalyzerTOML} {
		want := map[string]string{
			FileRedisD4:      "a file holding just the value",
			FileRedisQueue:   "a file holding just the value",
			FileRedisParsers: "a file holding just the value",
			FileHTTPServer:   "a file holding just the value",
			FileAnalyzerTOML: "a few lines of TOML settings",
		}[name]
		for _, kind := range []struct {
			what string
			make func(path string) error
		}{
			{"a named pipe (FIFO)", func(path string) error { return syscall.Mkfifo(path, 0o644) }},
			{"a character device", func(path string) error { return os.Symlink(os.DevNull, path) }},
		} {
			t.Run(name+"/"+kind.what, func(t *testing.T) {
				dir := t.TempDir()
				writeFiles(t, dir, validFiles())
				path := filepath.Join(dir, name)
				if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				if err := kind.make(path); err != nil {
					t.Fatalf("make %s: %v", kind.what, err)
				}
				type result struct {
					cfg *Config
					err error
				}
				done := make(chan result, 1)
				go func() {
					cfg, err := Load(dir)
					done <- result{cfg, err}
				}()
				var res result
				select {
				case res = <-done:
				case <-time.After(10 * time.Second):
					// A watchdog, not a wait for a condition: Load has
					// nothing to wait for, and a hang is the bug.
					t.Fatalf("Load still blocked after 10s on %s as %s", kind.what, name)
				}
				wantMsg := path + ": is " + kind.what + ", not a regular file; want " + want
				if res.err == nil || res.err.Error() != wantMsg {
					t.Fatalf("Load: %+v, %v; want error %s", res.cfg, res.err, wantMsg)
				}
				if res.cfg != nil {
					t.Errorf("Load returned a config along with its error")
				}
			})
		}
	}
}

// TestLoadFollowsSymlinkToRegularFile checks that the type check looks at
// the file opened, not at the link: a configuration file that is a link to
// a regular file (as configuration management tools make them) still loads.
func TestLoadFollowsSymlinkToRegularFile(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, validFiles())
	target := filepath.Join(t.TempDir(), "parsers")
	if err := os.WriteFile(target, []byte("localhost:6500/8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileRedisParsers)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Pool != 8 {
		t.Errorf("pool %d; want 8 from the linked file", cfg.Pool)
	}
}
