package render

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// findChromium looks the browser up under the names distributions give it.
// needChromium returns Chromium's path, failing the test in CI (which
// installs it) and skipping it elsewhere when it is missing.
func needChromium(t *testing.T) string {
	t.Helper()
	path, err := findChromium()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
	return path
}

func findChromium() (string, error) {
	var firstErr error
	for _, name := range []string{"chromium", "chromium-browser"} {
		path, err := exec.LookPath(name)
		if err == nil {
			return path, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", firstErr
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// dumpDOM runs headless Chromium on url and returns the DOM after the
// scripts ran, and the browser's log.
// extra are further Chromium flags (a window size, a colour scheme).
func dumpDOM(t *testing.T, chromium, url string, extra ...string) (dom, logs string) {
	t.Helper()
	return dumpDOMAfter(t, chromium, url, 5*time.Second, extra...)
}

// dumpDOMAfter is dumpDOM with the virtual time the page is given before
// its DOM is taken: Chromium runs the page's timers in virtual time, which
// jumps to the next timer whenever no request is pending, so a page with a
// one-minute refresh timer is dumped after a few minutes of its own time
// in a few seconds of ours.
func dumpDOMAfter(t *testing.T, chromium, url string, budget time.Duration, extra ...string) (dom, logs string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // generous: a loaded 2-core machine slows browsers down a lot
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--mute-audio",
		"--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0", "--virtual-time-budget=" + strconv.FormatInt(budget.Milliseconds(), 10),
		"--dump-dom"}, extra...)
	cmd := exec.CommandContext(ctx, chromium, append(args, url)...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium on %s: %v\n%s", url, err, stderr.String())
	}
	return stdout.String(), stderr.String()
}
