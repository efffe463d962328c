// Package web owns the daemon's HTTP face: the published parts of the output
// directory served read-only, /healthz and /metrics, and the server's limits,
// timeouts and graceful stop.
//
// Contract:
//   - Only what the daemon writes for people is served: the parser directory
//     sshd/ and the published directories misp/ and feeds/, each through its
//     own os.Root, so that nothing else under the output directory (whatever it
//     is configured to, "." included, with the daemon's configuration, dump
//     and log) and nothing outside it can be read, whatever the request path
//     and whatever symlinks the directories hold (symlinks that stay inside a
//     published directory are followed, the others are 404).
//   - Only regular files, never directory listings or dot-files, only with GET
//     and HEAD, each with an explicit content type chosen by extension (never
//     sniffed) and a restrictive Content-Security-Policy, because the charts
//     and rankings display strings chosen by attackers. A Range header with
//     more than maxRanges ranges or with overlapping ranges is refused (416),
//     so a small request cannot ask for many copies of a file.
//   - /healthz answers within healthTimeout even when the health function
//     hangs.
//   - Web clients cannot starve the daemon: the server holds at most MaxConns
//     connections, derived from the open-file limit with half of it kept for
//     compiles and Redis pools, and closes the longest-idle one to make room,
//     so a monitor is answered while others hold thousands of connections
//     open. Every write of a response must progress within a deadline, so a
//     slow reader gets a large file whole and a stalled one is dropped.
//
// Redirects use relative locations so the pages keep working behind a reverse
// proxy that mounts them under any path.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Status is what /healthz reports.
type Status struct {
	D4Redis                 bool       `json:"d4_redis"`                   // reachable
	CountingRedis           bool       `json:"counting_redis"`             // accepts counting now
	CountingError           string     `json:"counting_error,omitempty"`   // why not, when it does not
	QueueLength             int64      `json:"queue_length"`               // lines waiting in the D4 queue
	SecondsSinceLastCounted *float64   `json:"seconds_since_last_counted"` // null before the first counted line
	LastCompile             *time.Time `json:"last_compile"`               // null before the first compile
	// CountingRole is what the counting Redis in use answers to ROLE
	// ("master"; omitted when it did not answer), CountingAddress its
	// address (with Sentinels, the master they named last).
	CountingRole    string `json:"counting_role,omitempty"`
	CountingAddress string `json:"counting_address,omitempty"`
	// CompileLease says whether this daemon holds its queue's compile
	// lease (of several daemons on one queue, only the holder compiles);
	// Member is its member number on the queue (0 for a lone daemon).
	// Both are omitted before the daemon has joined its queue.
	CompileLease *bool `json:"compile_lease,omitempty"`
	Member       *int  `json:"member,omitempty"`
	// Error says why the answer is unhealthy when a sentence helps the
	// operator more than the flags (a check that did not finish in time);
	// omitted when empty.
	Error string `json:"error,omitempty"`
}

// HealthFunc reports the daemon's current state. It is called with a context
// that ends after healthCheckTimeout and should then return at once with what
// it knows. Concurrent /healthz requests share one call, so a Redis that
// hangs cannot pile up calls; if it does not return in time, /healthz answers
// 503 without it.
type HealthFunc func(ctx context.Context) Status

const (
	// healthTimeout is the documented bound on a /healthz answer; monitors
	// usually give up near 10 s.
	healthTimeout = 5 * time.Second
	// healthWait is how long a request waits for the health function, and
	// healthCheckTimeout the deadline the function itself gets: a
	// well-behaved function returns what it knows before the request stops
	// waiting, and the margin to healthTimeout covers writing the answer.
	healthWait         = healthTimeout - 500*time.Millisecond
	healthCheckTimeout = healthTimeout - time.Second

	// maxScrapesInFlight keeps a scrape storm from eating the daemon's CPU.
	maxScrapesInFlight = 4

	// indexPage is where a request for the output root lands.
	indexPage = "index.html"
	// parserDir is the one parser's output directory (SPEC §7).
	parserDir = "sshd"
)

// publishedDirs are the directories of the output directory that are served:
// the parser's pages, the MISP feed and the blocklists (SPEC §11). The last
// two need not exist; everything else in the output directory is 404.
var publishedDirs = []string{parserDir, "misp", "feeds"}

const (
	cspDefault = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; " +
		"script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
	// An SVG opened on its own is a document that could run script; charts
	// need nothing but their inline styles.
	cspSVG = "default-src 'none'; style-src 'unsafe-inline'"
)

// contentType is the Content-Type a file is served with, by its lowercase
// extension; anything unknown is application/octet-stream so that a browser
// never renders an unexpected file as a page.
func contentType(ext string) string {
	switch ext {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".json":
		return "application/json"
	case ".png":
		return "image/png"
	default:
		return "application/octet-stream"
	}
}

// Handler serves the published directories of dataDir read-only (see the
// package comment), GET /healthz (200 with the Status as JSON when both Redis
// servers are reachable, else 503 with the same JSON) and GET /metrics (the
// gatherer's metrics in the Prometheus text format). dataDir need not exist
// yet, so that a daemon can bind its port before it creates anything; until
// it does, every file is 404.
//
// Each of routes serves the paths under its Prefix (the investigation API),
// behind the same method check and headers, and within the same server
// limits and timeouts, as the files.
func Handler(dataDir string, health HealthFunc, gatherer prometheus.Gatherer, routes ...Route) (http.Handler, error) {
	return buildHandler(dataDir, health, gatherer, healthWait, healthCheckTimeout, routes...)
}

// Route is a handler for every path under Prefix (which ends in "/").
type Route struct {
	Prefix  string
	Handler http.Handler
}

// buildHandler is Handler with the health timing as parameters, for tests.
func buildHandler(dataDir string, health HealthFunc, gatherer prometheus.Gatherer, wait, checkTimeout time.Duration, routes ...Route) (http.Handler, error) {
	for _, rt := range routes {
		if !strings.HasPrefix(rt.Prefix, "/") || !strings.HasSuffix(rt.Prefix, "/") || rt.Handler == nil {
			return nil, fmt.Errorf("web handler: route %q needs a prefix starting and ending in / and a handler", rt.Prefix)
		}
	}
	if health == nil {
		return nil, fmt.Errorf("web handler: no health function")
	}
	if gatherer == nil {
		return nil, fmt.Errorf("web handler: no metrics gatherer")
	}
	// Opened once here only to refuse a directory that cannot be served
	// (not a directory, unreadable) at start; requests open their own Root
	// so that the directory being created or replaced while the daemon runs
	// is picked up rather than served stale.
	root, err := os.OpenRoot(dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Created later by the daemon.
	case err != nil:
		return nil, fmt.Errorf("open output directory %q: %w", dataDir, err)
	default:
		if err := root.Close(); err != nil {
			return nil, fmt.Errorf("close output directory %q: %w", dataDir, err)
		}
	}

	metrics := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		// A broken collector must not blank the whole scrape.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
	})
	files := &fileServer{dir: dataDir}
	hc := &healthCheck{fn: health, wait: wait, checkTimeout: checkTimeout}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// Exact matches only: a ServeMux would answer unclean paths
		// with redirects, and traversal attempts must get an error.
		switch r.URL.Path {
		case "/healthz":
			hc.ServeHTTP(w, r)
		case "/metrics":
			metrics.ServeHTTP(w, r)
		default:
			for _, rt := range routes {
				if strings.HasPrefix(r.URL.Path, rt.Prefix) {
					rt.Handler.ServeHTTP(w, r)
					return
				}
			}
			files.ServeHTTP(w, r)
		}
	}), nil
}

// healthCheck answers /healthz within its deadline whatever the health
// function does.
type healthCheck struct {
	fn           HealthFunc
	wait         time.Duration // how long a request waits for fn
	checkTimeout time.Duration // the deadline of fn's context

	mu  sync.Mutex
	cur *healthCall // the call in flight, joined by concurrent requests; nil when none
}

// healthCall is one run of the health function.
type healthCall struct {
	done chan struct{} // closed by the running goroutine once st is set
	st   Status
}

// call returns the call in flight, starting one if there is none.
func (h *healthCheck) call() *healthCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur != nil {
		return h.cur
	}
	c := &healthCall{done: make(chan struct{})}
	h.cur = c
	go func() {
		// Not the request's context: the call is shared, and it must
		// end by its own deadline even if its first client goes away.
		ctx, cancel := context.WithTimeout(context.Background(), h.checkTimeout)
		defer cancel()
		defer func() {
			if p := recover(); p != nil {
				// Outside the handler goroutine a panic would
				// take the daemon down; report it as unhealthy.
				c.st = Status{Error: fmt.Sprintf("health check failed: %v", p)}
			}
			h.mu.Lock()
			h.cur = nil
			h.mu.Unlock()
			close(c.done)
		}()
		c.st = h.fn(ctx)
	}()
	return c
}

func (h *healthCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.call()
	t := time.NewTimer(h.wait)
	defer t.Stop()
	var st Status
	select {
	case <-c.done:
		st = c.st
	case <-t.C:
		// Nothing is known about either Redis; the flags say so.
		st = Status{Error: fmt.Sprintf("health check did not finish within %s", h.wait)}
	case <-r.Context().Done():
		return // the client is gone
	}
	body, err := json.Marshal(st)
	if err != nil {
		http.Error(w, "encode health status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	code := http.StatusOK
	if !st.D4Redis || !st.CountingRedis {
		code = http.StatusServiceUnavailable
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// fileServer serves regular files beneath the published directories of dir.
type fileServer struct {
	dir string
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", cspDefault)

	name, isDir, code := requestFile(r)
	if code != 0 {
		http.Error(w, http.StatusText(code), code)
		return
	}
	top, rest, _ := strings.Cut(name, "/")
	if name != "" && !slices.Contains(publishedDirs, top) {
		http.NotFound(w, r)
		return
	}
	if isDir || rest == "" {
		s.serveDir(w, name)
		return
	}

	f, fi, ok := s.open(top, rest)
	if !ok {
		// A plain 404 whether the file is missing, not a regular file,
		// a symlink leaving its directory or unreadable, so that
		// probing learns nothing.
		http.NotFound(w, r)
		return
	}
	defer f.Close()

	if rh := r.Header.Get("Range"); rh != "" {
		if err := checkRanges(rh, fi.Size()); err != nil {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", fi.Size()))
			http.Error(w, err.Error(), http.StatusRequestedRangeNotSatisfiable)
			return
		}
	}

	ext := strings.ToLower(path.Ext(rest))
	h := w.Header()
	h.Set("Content-Type", contentType(ext))
	if ext == ".svg" {
		h.Set("Content-Security-Policy", cspSVG)
	}
	// The compile loop rewrites pages and charts in place: make browsers
	// revalidate (cheap, If-Modified-Since) instead of showing stale charts.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, fi.Name(), fi.ModTime(), f)
}

// open opens the regular file rest inside the published directory top of the
// output directory. Each published directory is its own os.Root, so a symlink
// in sshd/ cannot reach the daemon's other files beside it.
func (s *fileServer) open(top, rest string) (*os.File, os.FileInfo, bool) {
	outer, err := os.OpenRoot(s.dir)
	if err != nil {
		return nil, nil, false
	}
	root, err := outer.OpenRoot(top)
	outer.Close()
	if err != nil {
		return nil, nil, false
	}
	defer root.Close()
	// Stat before opening: opening a FIFO or device would block or worse.
	if fi, err := root.Stat(rest); err != nil || !fi.Mode().IsRegular() {
		return nil, nil, false
	}
	f, err := root.Open(rest)
	if err != nil {
		return nil, nil, false
	}
	// Checked again on the open file: it may have been replaced between.
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, false
	}
	return f, fi, true
}

// serveDir answers a directory request. Listings are never produced: the
// output root and the parser directory lead to the daily page, every other
// directory is 404. Locations are relative so the redirect stays under
// whatever prefix a reverse proxy mounts the output at.
func (s *fileServer) serveDir(w http.ResponseWriter, name string) {
	var loc string
	switch name {
	case "": // "/"
		loc = parserDir + "/" + indexPage
	case parserDir: // "/sshd", relative to "/"
		loc = parserDir + "/" + indexPage
	case parserDir + "/": // "/sshd/", relative to itself
		loc = indexPage
	default:
		http.Error(w, http.StatusText(http.StatusNotFound), http.StatusNotFound)
		return
	}
	// Not http.Redirect: it turns relative locations into absolute paths.
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusFound)
}

// requestFile turns the request path into a name relative to the output
// directory. isDir is set for paths ending in "/" (name then keeps the slash,
// or is empty for the root). A non-zero code rejects the request: 400 for
// anything that is not a plain path (traversal, encoded slashes, backslashes,
// empty segments, control bytes), 404 for dot-files. os.Root would stop an
// escape anyway; rejecting early keeps odd names out of every later step.
func requestFile(r *http.Request) (name string, isDir bool, code int) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		return "", false, http.StatusBadRequest
	}
	// An encoded "/" or "\" inside a segment would otherwise be decoded
	// into a separator the client pretended was not one.
	if esc := strings.ToLower(r.URL.EscapedPath()); strings.Contains(esc, "%2f") || strings.Contains(esc, "%5c") {
		return "", false, http.StatusBadRequest
	}
	p = p[1:]
	if p == "" {
		return "", true, 0
	}
	isDir = strings.HasSuffix(p, "/")
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	for _, seg := range segs {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return "", false, http.StatusBadRequest
		case strings.ContainsFunc(seg, func(c rune) bool { return c < 0x20 || c == 0x7f || c == '\\' }):
			return "", false, http.StatusBadRequest
		case seg[0] == '.':
			return "", false, http.StatusNotFound
		}
	}
	return p, isDir, 0
}
