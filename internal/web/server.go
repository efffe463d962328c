package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Server timeouts. The header timeout is what stops slow-loris clients; the
// others bound a body read, a response write (a large CSV to a slow reader)
// and an idle keep-alive connection.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10

	// shutdownGrace is how long in-flight requests may run after Serve's
	// context ends, before their connections are closed.
	shutdownGrace = 5 * time.Second
)

// Server is an HTTP server bound to its address. Create it with Listen, then
// call Serve once.
type Server struct {
	ln    net.Listener
	srv   *http.Server
	grace time.Duration
}

// Listen binds addr now, so that a daemon whose port is taken refuses to
// start with an error that tells the operator which setting to change;
// configFile names the file the address came from. The server's own errors
// (failed handshakes, panics in handlers) are discarded until SetLogger.
func Listen(addr, configFile string, h http.Handler) (*Server, error) {
	if addr == "" {
		// net.Listen would pick a random port on every interface.
		return nil, fmt.Errorf("http_server is empty; set host:port in %s", configFile)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(addr, configFile, err)
	}
	return &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          log.New(io.Discard, "", 0),
		},
		grace: shutdownGrace,
	}, nil
}

// SetLogger routes the HTTP server's own error messages to l at level Warn.
// Call it before Serve; a nil l keeps them discarded.
func (s *Server) SetLogger(l *slog.Logger) {
	if l == nil {
		return
	}
	s.srv.ErrorLog = slog.NewLogLogger(l.With("component", "http").Handler(), slog.LevelWarn)
}

// Addr is the address the server is bound to (useful when addr had port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting, closes idle connections and gives in-flight requests a few
// seconds. It returns nil on a clean stop (or after Close), and an error if
// serving failed or requests were still running when the grace period ended.
func (s *Server) Serve(ctx context.Context) error {
	done := make(chan error, 1) // written once by the serving goroutine
	go func() { done <- s.srv.Serve(s.ln) }()

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
// through Serve's context.
func (s *Server) Close() error {
	// http.Server.Close does not know the listener until Serve is called.
	lerr := s.ln.Close()
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("close http server: %w", err)
	}
	if lerr != nil && !errors.Is(lerr, net.ErrClosed) {
		return fmt.Errorf("close http listener: %w", lerr)
	}
	return nil
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
