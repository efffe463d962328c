// Package web owns the daemon's HTTP face: the compiled output directory served
// read-only, /healthz and /metrics, and the server's timeouts and graceful stop.
//
// Contract: nothing outside the output directory can ever be read, whatever the
// request path and whatever symlinks the directory holds (every open goes
// through an os.Root; symlinks that stay inside it are followed, symlinks that
// leave it are 404). Only regular files are served, never directory listings
// or dot-files, only with GET and HEAD, each with an explicit content type
// chosen by extension (never sniffed) and a restrictive Content-Security-Policy,
// because the charts and rankings display strings chosen by attackers.
// Redirects use relative locations so the pages keep working behind a reverse
// proxy that mounts them under any path.
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
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
}

// HealthFunc reports the daemon's current state. It is called once per
// /healthz request with a context that ends when the client goes away or
// after healthTimeout, so a Redis that hangs cannot pile up requests.
type HealthFunc func(ctx context.Context) Status

const (
	// healthTimeout bounds one /healthz; monitors usually time out near 10 s.
	healthTimeout = 5 * time.Second

	// maxScrapesInFlight keeps a scrape storm from eating the daemon's CPU.
	maxScrapesInFlight = 4

	// indexPage is where a request for the output root lands.
	indexPage = "index.html"
	// parserDir is the one parser's output directory (SPEC §7).
	parserDir = "sshd"
)

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

// Handler serves dataDir read-only at "/", GET /healthz (200 with the Status
// as JSON when both Redis servers are reachable, else 503 with the same JSON)
// and GET /metrics (the gatherer's metrics in the Prometheus text format).
// dataDir must exist: the caller creates it before.
func Handler(dataDir string, health HealthFunc, gatherer prometheus.Gatherer) (http.Handler, error) {
	if health == nil {
		return nil, fmt.Errorf("web handler: no health function")
	}
	if gatherer == nil {
		return nil, fmt.Errorf("web handler: no metrics gatherer")
	}
	// Opened once here only to refuse a missing or unreadable directory at
	// start; requests open their own Root so that the directory being
	// replaced while the daemon runs is picked up rather than served stale.
	root, err := os.OpenRoot(dataDir)
	if err != nil {
		return nil, fmt.Errorf("open output directory %q: %w", dataDir, err)
	}
	if err := root.Close(); err != nil {
		return nil, fmt.Errorf("close output directory %q: %w", dataDir, err)
	}

	metrics := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		// A broken collector must not blank the whole scrape.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxScrapesInFlight,
	})
	files := &fileServer{dir: dataDir}

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
			serveHealth(w, r, health)
		case "/metrics":
			metrics.ServeHTTP(w, r)
		default:
			files.ServeHTTP(w, r)
		}
	}), nil
}

func serveHealth(w http.ResponseWriter, r *http.Request, health HealthFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	st := health(ctx)
	body, err := json.Marshal(st)
	if err != nil {
		http.Error(w, "encode health status: "+err.Error(), http.StatusInternalServerError)
		return
	}
	code := http.StatusOK
	if !st.D4Redis || !st.CountingRedis {
		code = http.StatusServiceUnavailable
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// fileServer serves regular files beneath dir.
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
	if isDir {
		s.serveDir(w, name)
		return
	}

	root, err := os.OpenRoot(s.dir)
	if err != nil {
		http.Error(w, "output directory unavailable", http.StatusServiceUnavailable)
		return
	}
	defer root.Close()

	// Stat before opening: opening a FIFO or device would block or worse.
	// Every failure is a plain 404, whether the file is missing, a symlink
	// leaving the directory or unreadable, so that probing learns nothing.
	if fi, err := root.Stat(name); err != nil || !fi.Mode().IsRegular() {
		if err == nil && fi.IsDir() && name == parserDir {
			s.serveDir(w, name)
			return
		}
		http.NotFound(w, r)
		return
	}
	f, err := root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}

	ext := strings.ToLower(path.Ext(name))
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
