package render

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// findChromium looks the browser up under the names distributions give it.
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

// TestPagesInChromium loads the pages in a real browser, served from a
// nested path as any static server would, and checks that each shows the
// right chart (or says why not) without a single script error.
func TestPagesInChromium(t *testing.T) {
	chromium, err := findChromium()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}

	root := t.TempDir()
	const base = "/a/b/data/sshd/"
	dir := filepath.Join(root, "a", "b", "data", "sshd")
	idx := goldenIndex()
	if err := WritePages(dir, idx); err != nil {
		t.Fatal(err)
	}
	if err := WritePages(filepath.Join(root, "empty", "sshd"), Index{}); err != nil {
		t.Fatal(err)
	}
	writeTestStatus(t, root)
	var periods []string
	periods = append(append(append(periods, idx.Days...), idx.Months...), idx.Years...)
	for _, p := range periods {
		for _, k := range kindNames() {
			c := Chart{Period: p, Kind: k, Top: []Entry{{"root", 3}, {"<b>", 1}}, Total: 4, Distinct: 2}
			if err := WriteFileAtomic(filepath.Join(dir, ChartPath(p, k)), func(w io.Writer) error { return WriteSVG(w, c) }); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The server records every request, so that a chart URL the page gets
	// wrong shows up as a 404 even though Chromium does not log it.
	var mu sync.Mutex
	served := map[string]int{}
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(rec, r)
		mu.Lock()
		served[r.URL.Path] = rec.status
		mu.Unlock()
	}))
	defer srv.Close()

	tests := []struct {
		name, page, fragment string
		wantSrc              string // chart shown, "" for none
		wantStatus           string // text expected in the status line
	}{
		{name: "daily newest", page: "dailystatistics.html", wantSrc: "20261125/20261125%3Astatsusername.svg"},
		{name: "daily fragment", page: "dailystatistics.html", fragment: "#20261123/src", wantSrc: "20261123/20261123%3Astatssrc.svg"},
		{name: "daily without data", page: "dailystatistics.html", fragment: "#20261124/host", wantStatus: "No attempts were recorded on 2026-11-24."},
		{name: "monthly newest", page: "monthlystatistics.html", wantSrc: "202611/202611%3Astatsusername.svg"},
		{name: "monthly fragment", page: "monthlystatistics.html", fragment: "#202510/host", wantSrc: "202510/202510%3Astatshost.svg"},
		{name: "yearly newest", page: "yearlystatistics.html", wantSrc: "2026/2026%3Astatsusername.svg"},
		{name: "yearly invalid fragment", page: "yearlystatistics.html", fragment: "#20x6/%3Cscript%3E", wantSrc: "2026/2026%3Astatsusername.svg"},
		{name: "no data at all", page: "../../../../empty/sshd/dailystatistics.html", fragment: "#20261125/src", wantStatus: "No data yet"},
	}
	// Browsers spend most of their time waiting, so more of them run at
	// once than -parallel would allow on a small machine.
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(tt.name, func(t *testing.T) {
				dom, logs := dumpDOM(t, chromium, srv.URL+base+tt.page+tt.fragment)
				for _, line := range strings.Split(logs, "\n") {
					if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
						t.Errorf("browser console: %s", line)
					}
				}
				if m := regexp.MustCompile(`(?s)<pre id="js-error"[^>]*>(.*?)</pre>`).FindStringSubmatch(dom); m == nil || m[1] != "" {
					t.Errorf("script error element: %q", m)
				}
				figureShown := strings.Contains(dom, `<figure id="chart">`)
				src := regexp.MustCompile(`<img id="chart-img"[^>]*?\ssrc="([^"]*)"`).FindStringSubmatch(dom)
				if tt.wantSrc != "" {
					if src == nil || src[1] != tt.wantSrc || !figureShown {
						t.Errorf("chart img src %q (figure shown: %v), want %q", src, figureShown, tt.wantSrc)
					}
					if !strings.Contains(dom, `href="`+strings.TrimSuffix(tt.wantSrc, ".svg")+`.csv"`) {
						t.Errorf("no link to the CSV of %s", tt.wantSrc)
					}
				} else if src != nil || figureShown {
					t.Errorf("a chart is shown (%q) where the page should say there is none", src)
				}
				status := regexp.MustCompile(`<p id="status"[^>]*>([^<]*)</p>`).FindStringSubmatch(dom)
				if status == nil || !strings.Contains(status[1], tt.wantStatus) || (tt.wantStatus == "" && status[1] != "") {
					t.Errorf("status %q, want %q", status, tt.wantStatus)
				}
			})
		}()
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for path, status := range served {
		if status != http.StatusOK && status != http.StatusNotModified {
			t.Errorf("the pages requested %s: HTTP %d", path, status)
		}
	}
	for _, tt := range tests {
		if tt.wantSrc == "" {
			continue
		}
		p := base + strings.ReplaceAll(tt.wantSrc, "%3A", ":")
		if served[p] != http.StatusOK {
			t.Errorf("the chart %s was not fetched (status %d)", p, served[p])
		}
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // generous: a loaded 2-core machine slows browsers down a lot
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--mute-audio",
		"--user-data-dir=" + t.TempDir(),
		"--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000",
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
