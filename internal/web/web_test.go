package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/D4-project/analyzer-d4-log/internal/metrics"
)

// secret is the content of every file placed outside the data directory; no
// response may ever contain it.
const secret = "TOP-SECRET-OUTSIDE-DATA"

const (
	dailyHTML = "<!doctype html><title>daily</title>"
	chartSVG  = `<svg xmlns="http://www.w3.org/2000/svg"></svg>`
	rankCSV   = "username,count\nroot,3\n"
)

// fixture lays out base/{secret, conf.sample/redis_queue, data/...} and
// returns the data directory.
func fixture(t testing.TB) string {
	t.Helper()
	base := t.TempDir()
	data := filepath.Join(base, "data")
	files := map[string]string{
		"secret":                                        secret,
		"conf.sample/redis_queue":                       secret,
		"data/sshd/dailystatistics.html":                dailyHTML,
		"data/sshd/load.js":                             "console.log(1);",
		"data/sshd/style.css":                           "body{}",
		"data/sshd/20200122/20200122:statsusername.svg": chartSVG,
		"data/sshd/20200122/20200122:statsusername.csv": rankCSV,
		"data/sshd/info.json":                           "{}",
		"data/sshd/logo.PNG":                            "\x89PNG",
		"data/sshd/blob.bin":                            "<html><script>alert(1)</script>",
		"data/.hidden":                                  "hidden",
		"data/sshd/.dailystatistics.html.tmp":           "partial",
		"data/other/page.html":                          "other",
	}
	for name, content := range files {
		p := filepath.Join(base, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"data/sshd/out-relative": "../../secret",                // leaves data by ..
		"data/sshd/out-absolute": filepath.Join(base, "secret"), // absolute, to outside
		"data/up":                "..",                          // a directory outside
		"data/sshd/in.html":      "dailystatistics.html",        // stays inside: served
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

func okHealth(context.Context) Status { return Status{D4Redis: true, CountingRedis: true} }

func newHandler(t testing.TB, dataDir string, health HealthFunc, g prometheus.Gatherer) http.Handler {
	t.Helper()
	if health == nil {
		health = okHealth
	}
	if g == nil {
		g = prometheus.NewRegistry()
	}
	h, err := Handler(dataDir, health, g)
	if err != nil {
		t.Fatalf("Handler: %v", err)
	}
	return h
}

// do sends target verbatim, as a client on the wire could.
func do(h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestServesFilesWithTypesAndHeaders(t *testing.T) {
	h := newHandler(t, fixture(t), nil, nil)
	tests := []struct {
		path, ctype, csp, body string
	}{
		{"/sshd/dailystatistics.html", "text/html; charset=utf-8", cspDefault, dailyHTML},
		{"/sshd/load.js", "text/javascript; charset=utf-8", cspDefault, "console.log(1);"},
		{"/sshd/style.css", "text/css; charset=utf-8", cspDefault, "body{}"},
		{"/sshd/20200122/20200122:statsusername.svg", "image/svg+xml", cspSVG, chartSVG},
		{"/sshd/20200122/20200122%3Astatsusername.csv", "text/csv; charset=utf-8", cspDefault, rankCSV},
		{"/sshd/info.json", "application/json", cspDefault, "{}"},
		{"/sshd/logo.PNG", "image/png", cspDefault, "\x89PNG"},
		// HTML-looking content with an unknown extension must not be sniffed into a page.
		{"/sshd/blob.bin", "application/octet-stream", cspDefault, "<html><script>alert(1)</script>"},
		{"/sshd/in.html", "text/html; charset=utf-8", cspDefault, dailyHTML},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := do(h, http.MethodGet, tc.path, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d, want 200; body %q", rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got := rec.Header().Get("Content-Security-Policy"); got != tc.csp {
				t.Errorf("Content-Security-Policy %q, want %q", got, tc.csp)
			}
			if got := rec.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			if rec.Body.String() != tc.body {
				t.Errorf("body %q, want %q", rec.Body, tc.body)
			}
		})
	}
}

func TestHeadRangeAndConditional(t *testing.T) {
	h := newHandler(t, fixture(t), nil, nil)
	const page = "/sshd/dailystatistics.html"

	rec := do(h, http.MethodHead, page, nil)
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("HEAD: status %d body %q, want 200 and empty", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("HEAD Content-Type %q", got)
	}

	rec = do(h, http.MethodGet, page, map[string]string{"Range": "bytes=0-8"})
	if rec.Code != http.StatusPartialContent || rec.Body.String() != dailyHTML[:9] {
		t.Errorf("Range: status %d body %q, want 206 %q", rec.Code, rec.Body, dailyHTML[:9])
	}

	lm := do(h, http.MethodGet, page, nil).Header().Get("Last-Modified")
	if lm == "" {
		t.Fatal("no Last-Modified")
	}
	rec = do(h, http.MethodGet, page, map[string]string{"If-Modified-Since": lm})
	if rec.Code != http.StatusNotModified {
		t.Errorf("If-Modified-Since: status %d, want 304", rec.Code)
	}
}

func TestTraversalNeverEscapes(t *testing.T) {
	h := newHandler(t, fixture(t), nil, nil)
	for _, target := range []string{
		"/../secret",
		"/../conf.sample/redis_queue",
		"/%2e%2e/secret",
		"/%2E%2E/conf.sample/redis_queue",
		"/..%2fsecret",
		"/..%2Fconf.sample%2Fredis_queue",
		"/sshd/../../secret",
		"/sshd/%2e%2e/%2e%2e/secret",
		"/sshd/..%5c..%5csecret",
		"/sshd/..\\..\\secret",
		"//etc/passwd",
		"/sshd//etc/passwd",
		"/./sshd/dailystatistics.html",
		"/sshd/dailystatistics.html%00.png",
		"/sshd/out-relative",
		"/sshd/out-absolute",
		"/up/secret",
		"/up/conf.sample/redis_queue",
		"/up",
		"/.hidden",
		"/sshd/.dailystatistics.html.tmp",
		"/%2ehidden",
	} {
		t.Run(target, func(t *testing.T) {
			rec := do(h, http.MethodGet, target, nil)
			if rec.Code != http.StatusNotFound && rec.Code != http.StatusBadRequest {
				t.Errorf("status %d, want 404 or 400", rec.Code)
			}
			if strings.Contains(rec.Body.String(), secret) || strings.Contains(rec.Body.String(), "root:") {
				t.Errorf("body leaks outside content: %q", rec.Body)
			}
			if loc := rec.Header().Get("Location"); loc != "" {
				t.Errorf("redirected to %q; traversal must be refused, not cleaned", loc)
			}
		})
	}
}

func TestDirectoriesRedirectOrNotFound(t *testing.T) {
	h := newHandler(t, fixture(t), nil, nil)
	for _, tc := range []struct {
		path     string
		code     int
		location string
	}{
		{"/", http.StatusFound, "sshd/index.html"},
		{"/sshd", http.StatusFound, "sshd/index.html"},
		{"/sshd/", http.StatusFound, "index.html"},
		{"/sshd/20200122/", http.StatusNotFound, ""},
		{"/sshd/20200122", http.StatusNotFound, ""},
		{"/other/", http.StatusNotFound, ""},
		{"/other", http.StatusNotFound, ""},
		{"/sshd/dailystatistics.html/", http.StatusNotFound, ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := do(h, http.MethodGet, tc.path, nil)
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
			if got := rec.Header().Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			// A listing would name the files inside.
			for _, name := range []string{"load.js", "20200122", "page.html", "dailystatistics.html\"", "statsusername"} {
				if strings.Contains(rec.Body.String(), name) {
					t.Errorf("body lists %q: %q", name, rec.Body)
				}
			}
		})
	}

	// The relative Location must resolve under whatever prefix a proxy adds.
	base, _ := url.Parse("https://example.org/stats/sshd/")
	loc, _ := url.Parse(do(h, http.MethodGet, "/sshd/", nil).Header().Get("Location"))
	if got := base.ResolveReference(loc).String(); got != "https://example.org/stats/sshd/index.html" {
		t.Errorf("behind a proxy /sshd/ resolves to %s", got)
	}
}

func TestOnlyGetAndHead(t *testing.T) {
	h := newHandler(t, fixture(t), nil, nil)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
		for _, p := range []string{"/sshd/dailystatistics.html", "/healthz", "/metrics", "/"} {
			rec := do(h, m, p, nil)
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s: status %d, want 405", m, p, rec.Code)
			}
			if got := rec.Header().Get("Allow"); got != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q", m, p, got)
			}
		}
	}
}

func TestFilesAppearingAfterStartAreServed(t *testing.T) {
	// The daemon binds its port, then creates the directory, and compiles
	// later.
	data := filepath.Join(t.TempDir(), "data")
	h := newHandler(t, data, nil, nil)
	if rec := do(h, http.MethodGet, "/sshd/dailystatistics.html", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("before the directory exists: status %d, want 404", rec.Code)
	}
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if rec := do(h, http.MethodGet, "/sshd/dailystatistics.html", nil); rec.Code != http.StatusNotFound {
		t.Fatalf("before compile: status %d, want 404", rec.Code)
	}
	if err := os.MkdirAll(filepath.Join(data, "sshd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "sshd", "dailystatistics.html"), []byte(dailyHTML), 0o644); err != nil {
		t.Fatal(err)
	}
	if rec := do(h, http.MethodGet, "/sshd/dailystatistics.html", nil); rec.Code != http.StatusOK {
		t.Errorf("after compile: status %d, want 200", rec.Code)
	}
}

func TestHandlerRefusesBadArguments(t *testing.T) {
	reg := prometheus.NewRegistry()
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Handler(notDir, okHealth, reg); err == nil {
		t.Error("a regular file accepted as the data directory")
	}
	if _, err := Handler(t.TempDir(), nil, reg); err == nil {
		t.Error("nil health accepted")
	}
	if _, err := Handler(t.TempDir(), okHealth, nil); err == nil {
		t.Error("nil gatherer accepted")
	}
}

func TestHealthz(t *testing.T) {
	last := time.Date(2026, 1, 22, 11, 59, 37, 0, time.UTC)
	secs := 12.5
	for _, tc := range []struct {
		name string
		st   Status
		code int
		want string
	}{
		{
			name: "healthy",
			st:   Status{D4Redis: true, CountingRedis: true, QueueLength: 42, SecondsSinceLastCounted: &secs, LastCompile: &last},
			code: http.StatusOK,
			want: `{"d4_redis":true,"counting_redis":true,"queue_length":42,"seconds_since_last_counted":12.5,"last_compile":"2026-01-22T11:59:37Z"}`,
		},
		{
			name: "fresh start",
			st:   Status{D4Redis: true, CountingRedis: true},
			code: http.StatusOK,
			want: `{"d4_redis":true,"counting_redis":true,"queue_length":0,"seconds_since_last_counted":null,"last_compile":null}`,
		},
		{
			name: "d4 down",
			st:   Status{D4Redis: false, CountingRedis: true, QueueLength: 7},
			code: http.StatusServiceUnavailable,
			want: `{"d4_redis":false,"counting_redis":true,"queue_length":7,"seconds_since_last_counted":null,"last_compile":null}`,
		},
		{
			name: "counting down",
			st:   Status{D4Redis: true, CountingRedis: false},
			code: http.StatusServiceUnavailable,
			want: `{"d4_redis":true,"counting_redis":false,"queue_length":0,"seconds_since_last_counted":null,"last_compile":null}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sawDeadline bool
			h := newHandler(t, t.TempDir(), func(ctx context.Context) Status {
				_, sawDeadline = ctx.Deadline()
				return tc.st
			}, nil)
			rec := do(h, http.MethodGet, "/healthz", nil)
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
			if got := strings.TrimSpace(rec.Body.String()); got != tc.want {
				t.Errorf("body\n got %s\nwant %s", got, tc.want)
			}
			var decoded Status
			if err := json.Unmarshal(rec.Body.Bytes(), &decoded); err != nil {
				t.Errorf("body is not JSON: %v", err)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if !sawDeadline {
				t.Error("health function called without a deadline")
			}
		})
	}
}

func TestMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, "v1.2.3", []string{"not_sshd", "bad_timestamp"})
	m.Popped.Add(10)
	m.Counted.Add(7)
	m.Skipped.WithLabelValues("not_sshd").Add(3)
	m.QueueLength.Set(99)
	m.RedisUp.WithLabelValues("d4").Set(1)
	m.CompileSeconds.Observe(1.5)

	h := newHandler(t, t.TempDir(), nil, reg)
	rec := do(h, http.MethodGet, "/metrics", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}

	value := func(name string, typ dto.MetricType, lbl ...string) float64 {
		t.Helper()
		mf, ok := mfs[name]
		if !ok {
			t.Fatalf("%s missing", name)
		}
		if mf.GetType() != typ {
			t.Errorf("%s type %v, want %v", name, mf.GetType(), typ)
		}
	series:
		for _, s := range mf.GetMetric() {
			for i := 0; i+1 < len(lbl); i += 2 {
				found := false
				for _, lp := range s.GetLabel() {
					if lp.GetName() == lbl[i] && lp.GetValue() == lbl[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch typ {
			case dto.MetricType_COUNTER:
				return s.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				return s.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
		t.Fatalf("%s%v: no such series", name, lbl)
		return 0
	}

	checks := []struct {
		name string
		typ  dto.MetricType
		lbl  []string
		want float64
	}{
		{"analyzer_d4_log_lines_popped_total", dto.MetricType_COUNTER, nil, 10},
		{"analyzer_d4_log_lines_counted_total", dto.MetricType_COUNTER, nil, 7},
		{"analyzer_d4_log_lines_skipped_total", dto.MetricType_COUNTER, []string{"reason", "not_sshd"}, 3},
		{"analyzer_d4_log_lines_skipped_total", dto.MetricType_COUNTER, []string{"reason", "bad_timestamp"}, 0},
		{"analyzer_d4_log_queue_length", dto.MetricType_GAUGE, nil, 99},
		{"analyzer_d4_log_redis_up", dto.MetricType_GAUGE, []string{"server", "d4"}, 1},
		{"analyzer_d4_log_redis_up", dto.MetricType_GAUGE, []string{"server", "counting"}, 0},
		{"analyzer_d4_log_redis_errors_total", dto.MetricType_COUNTER, []string{"server", "counting"}, 0},
		{"analyzer_d4_log_compile_duration_seconds", dto.MetricType_HISTOGRAM, nil, 1},
		{"analyzer_d4_log_batch_duration_seconds", dto.MetricType_HISTOGRAM, nil, 0},
		{"analyzer_d4_log_build_info", dto.MetricType_GAUGE, []string{"version", "v1.2.3"}, 1},
	}
	for _, c := range checks {
		if got := value(c.name, c.typ, c.lbl...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.lbl, got, c.want)
		}
	}
	// Only the private registry is exposed: the daemon's metrics and the
	// runtime and process collectors registered on it.
	for name := range mfs {
		if !strings.HasPrefix(name, "analyzer_d4_log_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("unexpected metric %s on /metrics", name)
		}
	}
}

// FuzzRequestPath feeds arbitrary request targets to the handler: whatever
// the bytes, nothing outside the data directory is served.
func FuzzRequestPath(f *testing.F) {
	data := fixture(f)
	h := newHandler(f, data, nil, nil)
	for _, s := range []string{
		"/", "/sshd/", "/../secret", "/%2e%2e/secret", "/..%2fsecret", "//etc/passwd",
		"/sshd/..%5c..%5csecret", "/up/secret", "/sshd/out-relative", "/%00", "/sshd/%ff%fe",
		"/sshd/dailystatistics.html", "/up/../secret",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}, RequestURI: target}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("%q served outside content (status %d)", target, rec.Code)
		}
		if loc := rec.Header().Get("Location"); loc != "" && loc != "index.html" && loc != "sshd/index.html" {
			t.Fatalf("%q redirected to %q", target, loc)
		}
		if rec.Code == http.StatusOK && rec.Header().Get("Content-Type") == "" {
			t.Fatalf("%q served without a content type", target)
		}
	})
}

// readAll is io.ReadAll that fails the test instead of returning an error.
func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

// TestOnlyPublishedDirectoriesAreServed lays out an output directory the way
// output_dir = "." leaves it: the daemon's configuration, Redis dump and log
// beside the published directories.
func TestOnlyPublishedDirectoriesAreServed(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"conf/redis_d4":          secret,
		"conf/analyzer.toml":     secret,
		"db/dump.rdb":            secret,
		"analyzer-d4-log.log":    secret,
		"index.html":             secret,
		"sshd.html":              secret,
		"sshd/index.html":        dailyHTML,
		"misp/manifest.json":     `{"m":1}`,
		"feeds/sources.txt":      "192.0.2.1\n",
		"archive/2026/x.gz":      secret,
		"sshdx/index.html":       secret,
		"misp-old/manifest.json": secret,
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Links that stay inside the output directory but leave the published
	// directory they are in.
	for name, target := range map[string]string{
		"sshd/conf.txt":  "../conf/redis_d4",
		"feeds/dump.rdb": "../db/dump.rdb",
		"misp/log.json":  filepath.Join(dir, "analyzer-d4-log.log"),
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			t.Fatal(err)
		}
	}
	h := newHandler(t, dir, nil, nil)

	for target, want := range map[string]string{
		"/sshd/index.html":        dailyHTML,
		"/misp/manifest.json":     `{"m":1}`,
		"/feeds/sources.txt":      "192.0.2.1\n",
		"/sshd/../sshd/x":         "",
		"/conf/redis_d4":          "",
		"/conf/analyzer.toml":     "",
		"/db/dump.rdb":            "",
		"/analyzer-d4-log.log":    "",
		"/index.html":             "",
		"/sshd.html":              "",
		"/archive/2026/x.gz":      "",
		"/sshdx/index.html":       "",
		"/misp-old/manifest.json": "",
		"/sshd/conf.txt":          "",
		"/feeds/dump.rdb":         "",
		"/misp/log.json":          "",
		"/misp/":                  "",
		"/feeds":                  "",
		"/conf/":                  "",
	} {
		rec := do(h, http.MethodGet, target, nil)
		if want != "" {
			if rec.Code != http.StatusOK || rec.Body.String() != want {
				t.Errorf("GET %s: status %d body %q, want 200 %q", target, rec.Code, rec.Body, want)
			}
			continue
		}
		if rec.Code != http.StatusNotFound && rec.Code != http.StatusBadRequest {
			t.Errorf("GET %s: status %d, want 404", target, rec.Code)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("GET %s served a file the daemon does not publish", target)
		}
	}

	// Published directories that do not exist yet are simply 404.
	if err := os.RemoveAll(filepath.Join(dir, "misp")); err != nil {
		t.Fatal(err)
	}
	if rec := do(h, http.MethodGet, "/misp/manifest.json", nil); rec.Code != http.StatusNotFound {
		t.Errorf("missing misp/: status %d, want 404", rec.Code)
	}
}

func TestRangeLimits(t *testing.T) {
	h := newHandler(t, fixture(t), nil, nil)
	const page = "/sshd/dailystatistics.html" // dailyHTML, 35 bytes
	size := len(dailyHTML)
	many := "bytes=" + strings.TrimSuffix(strings.Repeat("0-1,", 3000), ",")
	for _, tc := range []struct {
		rng  string
		code int
	}{
		{"bytes=0-8", http.StatusPartialContent},
		{"bytes=-5", http.StatusPartialContent},
		{"bytes=0-1,4-5", http.StatusPartialContent},
		{"bytes=0-0,2-2,4-4,6-6,8-8", http.StatusPartialContent}, // maxRanges, apart
		{"bytes=0-0, ,2-2,,4-4", http.StatusPartialContent},      // empty elements do not count
		{"bytes=0-0,2-2,4-4,6-6,8-8,10-10", http.StatusRequestedRangeNotSatisfiable},
		{many, http.StatusRequestedRangeNotSatisfiable},
		{"bytes=0-1,0-1", http.StatusRequestedRangeNotSatisfiable},
		{"bytes=0-10,5-20", http.StatusRequestedRangeNotSatisfiable},
		{"bytes=0-,-3", http.StatusRequestedRangeNotSatisfiable},     // the suffix is inside the first
		{"bytes=30-40,34-", http.StatusRequestedRangeNotSatisfiable}, // both clipped to the end
		{"bytes=5-9,0-4", http.StatusPartialContent},                 // out of order, not overlapping
		{"bytes=1000-2000", http.StatusRequestedRangeNotSatisfiable}, // beyond the end: ServeContent's answer
		{"bytes=1000-2000,1000-2000", http.StatusRequestedRangeNotSatisfiable},
	} {
		rec := do(h, http.MethodGet, page, map[string]string{"Range": tc.rng})
		if rec.Code != tc.code {
			t.Errorf("Range %.40q: status %d, want %d", tc.rng, rec.Code, tc.code)
		}
		if rec.Code == http.StatusRequestedRangeNotSatisfiable {
			if got, want := rec.Header().Get("Content-Range"), fmt.Sprintf("bytes */%d", size); got != want {
				t.Errorf("Range %.40q: Content-Range %q, want %q", tc.rng, got, want)
			}
		}
		// No answer is bigger than a few copies of the file.
		if rec.Body.Len() > maxRanges*(size+200) {
			t.Errorf("Range %.40q: %d bytes for a %d-byte file", tc.rng, rec.Body.Len(), size)
		}
	}
}

// FuzzRangeHeader sends arbitrary Range headers: whatever the bytes, the
// answer is never more than maxRanges copies of the file plus their part
// headers, and a refusal says the file's size.
func FuzzRangeHeader(f *testing.F) {
	data := fixture(f)
	h := newHandler(f, data, nil, nil)
	const page = "/sshd/dailystatistics.html"
	for _, s := range []string{
		"bytes=0-1", "bytes=-5", "bytes=0-", "bytes=0-1,0-1,0-1", "bytes=0-0,2-2,4-4,6-6,8-8,10-10",
		"bytes=5-1", "bytes= 1 - 2 , 3-4", "bytes=,,,", "items=0-1", "bytes=-0", "bytes=9223372036854775807-",
		"bytes=0-1,-1", "bytes=+1-2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rng string) {
		rec := do(h, http.MethodGet, page, map[string]string{"Range": rng})
		if n := rec.Body.Len(); n > maxRanges*(len(dailyHTML)+200) {
			t.Fatalf("Range %q: %d bytes for a %d-byte file (status %d)", rng, n, len(dailyHTML), rec.Code)
		}
		if rec.Code == http.StatusPartialContent && strings.Count(rec.Body.String(), "Content-Range:") > maxRanges {
			t.Fatalf("Range %q: more than %d parts", rng, maxRanges)
		}
	})
}

func TestHealthTimingFitsTheDocumentedWindow(t *testing.T) {
	// The README promises an answer within 5 s.
	if healthTimeout != 5*time.Second {
		t.Errorf("healthTimeout %v; the README documents 5 s", healthTimeout)
	}
	if !(0 < healthCheckTimeout && healthCheckTimeout < healthWait && healthWait < healthTimeout) {
		t.Errorf("check deadline %v, wait %v, window %v: want 0 < check < wait < window",
			healthCheckTimeout, healthWait, healthTimeout)
	}
}

// healthzWithin sends GET /healthz to h and fails the test if no answer comes
// within the documented window.
func healthzWithin(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- do(h, http.MethodGet, "/healthz", nil) }()
	select {
	case rec := <-done:
		return rec
	case <-time.After(healthTimeout):
		t.Fatalf("/healthz gave no answer within %v", healthTimeout)
		return nil
	}
}

func TestHealthzAnswersWhenCheckHangs(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var calls atomic.Int32
	hang := func(context.Context) Status {
		calls.Add(1)
		<-release // ignores its deadline, as a stuck call would
		return Status{D4Redis: true, CountingRedis: true}
	}
	h, err := buildHandler(t.TempDir(), hang, prometheus.NewRegistry(), 300*time.Millisecond, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}

	// Concurrent requests, as from several monitors.
	const n = 3
	recs := make(chan *httptest.ResponseRecorder, n)
	for range n {
		go func() { recs <- do(h, http.MethodGet, "/healthz", nil) }()
	}
	for range n {
		var rec *httptest.ResponseRecorder
		select {
		case rec = <-recs:
		case <-time.After(healthTimeout):
			t.Fatalf("/healthz gave no answer within %v", healthTimeout)
		}
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", rec.Code)
		}
		var st Status
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatalf("body %q: %v", rec.Body, err)
		}
		if st.D4Redis || st.CountingRedis || !strings.Contains(st.Error, "did not finish within 300ms") {
			t.Errorf("body %s: want both servers unknown and the timeout said", rec.Body)
		}
	}
	// They shared the one stuck call instead of piling up more.
	if got := calls.Load(); got != 1 {
		t.Errorf("health function called %d times, want 1", got)
	}
}

func TestHealthzReportsWhatTheCheckKnowsAtItsDeadline(t *testing.T) {
	const checkTimeout = 200 * time.Millisecond
	var deadlineIn time.Duration
	partial := func(ctx context.Context) Status {
		dl, _ := ctx.Deadline()
		deadlineIn = time.Until(dl)
		<-ctx.Done() // the counting Redis never answers
		return Status{D4Redis: true, QueueLength: 3, Error: "counting redis: no answer"}
	}
	h, err := buildHandler(t.TempDir(), partial, prometheus.NewRegistry(), 2*time.Second, checkTimeout)
	if err != nil {
		t.Fatal(err)
	}
	rec := healthzWithin(t, h)
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rec.Code)
	}
	want := `{"d4_redis":true,"counting_redis":false,"queue_length":3,"seconds_since_last_counted":null,"last_compile":null,"error":"counting redis: no answer"}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	if deadlineIn <= 0 || deadlineIn > checkTimeout {
		t.Errorf("health function's deadline %v away, want within %v", deadlineIn, checkTimeout)
	}
}

func TestHealthzSurvivesPanickingCheck(t *testing.T) {
	var calls atomic.Int32
	h := newHandler(t, t.TempDir(), func(context.Context) Status {
		calls.Add(1)
		panic("nil pool")
	}, nil)
	rec := healthzWithin(t, h)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "nil pool") {
		t.Errorf("status %d body %q, want 503 naming the failure", rec.Code, rec.Body)
	}
	// The next request starts a new call.
	if rec := healthzWithin(t, h); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("second request: status %d", rec.Code)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("health function called %d times for two requests in turn, want 2", got)
	}
}

// A route answers its paths, behind the same method check; every other
// path is still a file.
func TestRouteServesItsPrefix(t *testing.T) {
	dir := t.TempDir()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "api:"+r.URL.Path) })
	h, err := Handler(dir, func(context.Context) Status { return Status{} }, prometheus.NewRegistry(), Route{Prefix: "/api/v1/", Handler: api})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/api/v1/top", 200, "api:/api/v1/top"},
		{"POST", "/api/v1/top", 405, ""},
		{"GET", "/api/v2/top", 404, ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.code || c.body != "" && w.Body.String() != c.body {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, w.Code, w.Body.String(), c.code, c.body)
		}
	}
	if _, err := Handler(dir, func(context.Context) Status { return Status{} }, prometheus.NewRegistry(), Route{Prefix: "api", Handler: api}); err == nil {
		t.Error("a route prefix without slashes was accepted")
	}
}
