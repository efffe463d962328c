package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Server timeouts. No timeout covers a whole response: a 60 MB CSV sent to a
// client reading 200 KB/s takes five minutes, so instead every write to a
// connection (a file goes out 32 KiB at a time, see limitConn) must complete
// within writeStallTimeout, which drops a client that stopped reading and
// keeps one that reads slowly. The header timeout closes connections that
// never send a complete request (slow-loris); the read timeout bounds a
// request body, which no handler here reads; the idle timeout is short because
// every idle keep-alive connection holds a descriptor the daemon may need.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeStallTimeout = 30 * time.Second
	idleTimeout       = 30 * time.Second
	maxHeaderBytes    = 64 << 10

	// shutdownGrace is how long in-flight requests may run after Run's
	// context ends, before their connections are closed.
	shutdownGrace = 5 * time.Second

	// assumedFileLimit stands in for an open-file limit that cannot be read.
	assumedFileLimit = 1024

	// evictWarnEvery spaces the log lines about a full connection table.
	evictWarnEvery = time.Minute
)

// Server is an HTTP server bound to its address. Create it with Listen, then
// call Run once.
type Server struct {
	ln         net.Listener   // the bound socket, for Addr
	lim        *limitListener // ln under the connection cap; what Run serves
	srv        *http.Server
	grace      time.Duration
	writeStall time.Duration               // per-write deadline; handed to the connections by Run
	log        *slog.Logger                // nil until SetLogger
	cert       *reloaded[*tls.Certificate] // nil: plain HTTP; set by UseTLS

	warnMu   sync.Mutex
	lastWarn time.Time // last log line about evictions; under warnMu
}

// Listen binds addr now, so that a daemon whose port is taken refuses to
// start with an error that tells the operator which setting to change;
// configFile names the file the address came from. It raises the process's
// soft open-file limit to the hard limit and caps the connections served at
// once from it (see MaxConns). The server's own errors (failed handshakes,
// panics in handlers) are discarded until SetLogger.
func Listen(addr, configFile string, h http.Handler) (*Server, error) {
	if addr == "" {
		// net.Listen would pick a random port on every interface.
		return nil, fmt.Errorf("http_server is empty; set host:port in %s", configFile)
	}
	nofile, ok := openFileLimit()
	if !ok {
		nofile = assumedFileLimit
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(addr, configFile, err)
	}
	s := &Server{
		ln:         ln,
		lim:        newLimitListener(ln, connCap(nofile)),
		grace:      shutdownGrace,
		writeStall: writeStallTimeout,
	}
	s.srv = &http.Server{
		Handler:           withReadDeadline(h),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	return s, nil
}

// MaxConns is the number of connections the server holds open at once (one
// of them being admitted); at the cap, the longest-idle connection is closed
// to make room for a new client.
func (s *Server) MaxConns() int { return s.lim.max }

// SetLogger routes the HTTP server's own error messages to l at level Warn.
// It also receives a warning, at most once a minute, while the connection cap
// forces idle connections closed. Call it before Run; a nil l keeps them
// discarded.
func (s *Server) SetLogger(l *slog.Logger) {
	if l == nil {
		return
	}
	s.log = l.With("component", "http")
	s.srv.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	if s.cert != nil {
		s.cert.setLogger(s.log)
	}
}

// TLS reports whether the server speaks HTTPS (see UseTLS).
func (s *Server) TLS() bool { return s.cert != nil }

// Addr is the address the server is bound to (useful when addr had port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting, closes idle connections and gives in-flight requests a few
// seconds. It returns nil on a clean stop (or after Close), and an error if
// serving failed or requests were still running when the grace period ended.
func (s *Server) Run(ctx context.Context) error {
	s.lim.onEvict = s.warnEvicted
	s.lim.writeStall = s.writeStall
	s.srv.ConnState = s.lim.connState
	var ln net.Listener = s.lim
	if s.cert != nil {
		// Over the limit listener, so TLS connections count against the
		// cap and their writes keep the stall deadline.
		ln = tls.NewListener(s.lim, s.srv.TLSConfig)
	}
	done := make(chan error, 1) // written once by the serving goroutine
	go func() { done <- s.srv.Serve(ln) }()

	select {
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		_ = s.srv.Close() // the listener failed; do not leave connections behind
		return fmt.Errorf("serve http on %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	<-done // Serve returns as soon as Shutdown starts; wait so no goroutine outlives us
	if err != nil {
		_ = s.srv.Close()
		return fmt.Errorf("shut down http server on %s after %s: %w", s.ln.Addr(), s.grace, err)
	}
	return nil
}

// Close stops the server at once, closing the listener and every connection.
// It is for a daemon that fails to start after Listen; a running server stops
// through Run's context.
func (s *Server) Close() error {
	// http.Server.Close does not know the listener until Run is called.
	lerr := s.lim.Close()
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("close http server: %w", err)
	}
	if lerr != nil && !errors.Is(lerr, net.ErrClosed) {
		return fmt.Errorf("close http listener: %w", lerr)
	}
	return nil
}

// warnEvicted tells the operator, at most once a minute, that clients hold
// every connection the server allows, which is usually an attack or a
// misbehaving client rather than load.
func (s *Server) warnEvicted() {
	if s.log == nil {
		return
	}
	s.warnMu.Lock()
	now := time.Now()
	due := now.Sub(s.lastWarn) >= evictWarnEvery
	if due {
		s.lastWarn = now
	}
	s.warnMu.Unlock()
	if due {
		s.log.Warn("http connection limit reached; closing the longest-idle connections to make room",
			"max_conns", s.MaxConns())
	}
}

// withReadDeadline lifts the read deadline from requests that have been read
// whole: the server's read timeout would otherwise expire under a long
// download and cancel its context. A request with a body keeps it, so that a
// body dripped after the response cannot keep the connection busy. Writes
// have their own deadline each (limitConn.Write).
func withReadDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == http.NoBody {
			// ErrNotSupported only outside a real server (httptest).
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		h.ServeHTTP(w, r)
	})
}

// addrError keeps the operator-facing message short while still letting
// callers match the cause with errors.Is.
type addrError struct {
	msg string
	err error
}

func (e *addrError) Error() string { return e.msg }
func (e *addrError) Unwrap() error { return e.err }

func listenError(addr, configFile string, err error) error {
	var msg string
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		msg = fmt.Sprintf("http_server %s: address already in use; free the port or change %s", addr, configFile)
	case errors.Is(err, syscall.EACCES):
		msg = fmt.Sprintf("http_server %s: permission denied (ports below 1024 need privileges); choose another port in %s", addr, configFile)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		msg = fmt.Sprintf("http_server %s: no local interface has this address; change %s", addr, configFile)
	default:
		msg = fmt.Sprintf("http_server %s: %v; change %s", addr, err, configFile)
	}
	return &addrError{msg: msg, err: err}
}
