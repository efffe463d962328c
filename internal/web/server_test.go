package web

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// running is a Server being run by start.
type running struct {
	*Server
	cancel context.CancelFunc
	done   chan struct{}   // closed when Run has returned
	logs   *testlog.Buffer // the server's log, when a test routes it there
	err    error           // what Run returned; read only after done
}

// wait returns Run's result, failing the test if it does not come soon.
func (r *running) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(within):
		t.Fatalf("Run did not return within %v", within)
		return nil
	}
}

// start listens on a free loopback port and serves until the test ends.
// adjust may shorten timeouts before serving.
func start(t *testing.T, h http.Handler, adjust func(*Server)) *running {
	t.Helper()
	s, err := Listen("127.0.0.1:0", "conf.sample/http_server", h)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if adjust != nil {
		adjust(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Server: s, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = s.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

func TestListenSetsTimeouts(t *testing.T) {
	s, err := Listen("127.0.0.1:0", "conf.sample/http_server", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// No deadline for a whole response: writes get one each.
	if s.srv.ReadHeaderTimeout != 5*time.Second || s.srv.ReadTimeout != 30*time.Second ||
		s.srv.WriteTimeout != 0 || s.writeStall != 30*time.Second || s.srv.IdleTimeout != 30*time.Second ||
		s.srv.MaxHeaderBytes != 64<<10 || s.srv.ErrorLog == nil {
		t.Errorf("server settings: %+v, per-write deadline %v", s.srv, s.writeStall)
	}
	if n := s.MaxConns(); n < minConns || n > maxConns {
		t.Errorf("MaxConns %d, want between %d and %d", n, minConns, maxConns)
	}
}

func TestListenAddressInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()

	s, err := Listen(addr, "conf.sample/http_server", http.NotFoundHandler())
	if err == nil {
		s.Close()
		t.Fatal("Listen on a taken port succeeded")
	}
	want := fmt.Sprintf("http_server %s: address already in use; free the port or change conf.sample/http_server", addr)
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v does not wrap EADDRINUSE", err)
	}
}

func TestListenRefusesEmptyAddress(t *testing.T) {
	_, err := Listen("", "conf.sample/http_server", http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "conf.sample/http_server") {
		t.Errorf("empty address: error %v, want one naming the setting", err)
	}
}

func TestRunAnswersThenStopsOnCancel(t *testing.T) {
	h := newHandler(t, fixture(t), nil, nil)
	s := start(t, h, nil)
	url := "http://" + s.Addr().String()

	resp, err := http.Get(url + "/sshd/dailystatistics.html")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || body != dailyHTML {
		t.Errorf("status %d body %q", resp.StatusCode, body)
	}

	// The real stack must not clean a traversal into something served.
	for _, target := range []string{"/../secret", "/%2e%2e/secret", "/..%2fsecret", "//etc/passwd", "/sshd/..%5c..%5csecret"} {
		got := rawGet(t, s.Addr().String(), target)
		if !strings.HasPrefix(got, "HTTP/1.1 400") && !strings.HasPrefix(got, "HTTP/1.1 404") {
			t.Errorf("GET %s over the wire: %q", target, firstLine(got))
		}
		if strings.Contains(got, secret) {
			t.Errorf("GET %s leaked the secret", target)
		}
	}

	s.cancel()
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Errorf("Run after cancel: %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("still accepting connections after Run returned")
	}
}

func TestRunLetsInFlightRequestFinish(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	s := start(t, h, nil)

	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + "/")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	<-entered
	s.cancel()
	select {
	case <-s.done:
		t.Fatalf("Run returned %v with a request in flight", s.err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-got; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight request: body %q err %v", r.body, r.err)
	}
	if err := s.wait(t, 5*time.Second); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
}

func TestRunGivesUpAfterGrace(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	s := start(t, h, func(s *Server) { s.grace = 100 * time.Millisecond })
	go func() {
		resp, err := http.Get("http://" + s.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	s.cancel()
	if err := s.wait(t, 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run: %v, want a deadline error", err)
	}
}

func TestSlowHeadersAreCutOff(t *testing.T) {
	h := newHandler(t, t.TempDir(), nil, nil)
	s := start(t, h, func(s *Server) { s.srv.ReadHeaderTimeout = 200 * time.Millisecond })

	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Headers begun, never finished.
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 1024))
	elapsed := time.Since(began)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v; the header timeout did not fire", elapsed)
	}
	if n != 0 {
		t.Errorf("server answered %d bytes to unfinished headers", n)
	}
	if elapsed > 3*time.Second {
		t.Errorf("connection closed after %v, want about 200ms", elapsed)
	}
}

func TestCloseBeforeServe(t *testing.T) {
	s, err := Listen("127.0.0.1:0", "conf.sample/http_server", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Errorf("Run after Close: %v, want nil", err)
	}
	// The port is free again for a restarted daemon.
	s2, err := Listen(addr, "conf.sample/http_server", http.NotFoundHandler())
	if err != nil {
		t.Fatalf("Listen again on %s: %v", addr, err)
	}
	s2.Close()
}

// rawGet sends target exactly as given, bypassing any client-side cleaning.
func rawGet(t *testing.T, addr, target string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("read response to %s: %v", target, err)
	}
	return string(b)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

func TestSetLoggerReceivesServerErrors(t *testing.T) {
	var buf testlog.Buffer
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	s := start(t, h, func(s *Server) {
		s.SetLogger(slog.New(slog.NewTextHandler(&buf, nil)))
	})
	resp, err := http.Get("http://" + s.Addr().String() + "/")
	if err == nil {
		resp.Body.Close()
	}
	s.cancel()
	_ = s.wait(t, 5*time.Second)
	got := buf.String()
	if !strings.Contains(got, "level=WARN") || !strings.Contains(got, "component=http") || !strings.Contains(got, "boom") {
		t.Errorf("server error not routed to the logger: %q", got)
	}
}

// smallBuffers shrinks the kernel's send buffer of every accepted connection,
// so that a client that stops reading blocks the server's writes after some
// kilobytes rather than after the megabytes loopback buffers hold.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

// throttled reads at most chunk bytes per Read, pausing before each: a client
// on a slow link that keeps reading.
type throttled struct {
	r     io.Reader
	chunk int
	pause time.Duration
}

func (t *throttled) Read(p []byte) (int, error) {
	time.Sleep(t.pause)
	return t.r.Read(p[:min(len(p), t.chunk)])
}

// startDownloads serves a directory holding sshd/big.csv of size bytes with
// a per-write deadline of stall, and returns the file's content and a channel
// that gets a value whenever the server closes a connection.
func startDownloads(t *testing.T, size int, stall time.Duration) (*running, []byte, <-chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	content := bytes.Repeat([]byte("203.0.113.7,12345\n"), size/18+1)[:size]
	if err := os.MkdirAll(filepath.Join(dir, "sshd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sshd", "big.csv"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	closes := make(chan struct{}, 16)
	s := start(t, newHandler(t, dir, nil, nil), func(s *Server) {
		s.lim = newLimitListener(&countingListener{Listener: smallBuffers{s.ln}, closes: closes}, 16)
		s.writeStall = stall
		// Shorter than the download too: the read deadline must not
		// end a response either.
		s.srv.ReadTimeout = stall
	})
	return s, content, closes
}

// requestBig sends a GET for the big file on a connection whose receive
// buffer is small, for the same reason as smallBuffers.
func requestBig(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.(*net.TCPConn).SetReadBuffer(32 << 10)
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, "GET /sshd/big.csv HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSlowReaderGetsWholeFile(t *testing.T) {
	// The deadline leaves room for a loaded machine (the race detector,
	// other tests) to pause a goroutine for a while: the test is about a
	// client that keeps reading, not about scheduling.
	const stall = time.Second
	s, content, _ := startDownloads(t, 4<<20, stall)
	c := requestBig(t, s.Addr().String())

	// 16 KiB every 10 ms: slow, and the download lasts over twice the
	// per-write deadline, but every write makes progress well within it.
	began := time.Now()
	resp, err := http.ReadResponse(bufio.NewReaderSize(&throttled{r: c, chunk: 16 << 10, pause: 10 * time.Millisecond}, 16<<10), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("after %d of %d bytes: %v", len(got), len(content), err)
	}
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, content) {
		t.Errorf("status %d, %d bytes, want 200 and the %d-byte file", resp.StatusCode, len(got), len(content))
	}
	if took := time.Since(began); took < 2*stall {
		// Then the file fit in the buffers and the test proved nothing.
		t.Errorf("download took %v, want it longer than twice the per-write deadline %v", took, stall)
	}
}

func TestStalledReaderIsCut(t *testing.T) {
	s, content, closes := startDownloads(t, 4<<20, 200*time.Millisecond)
	c := requestBig(t, s.Addr().String())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The client stops reading; the server must give up on it.
	select {
	case <-closes:
	case <-time.After(20 * time.Second):
		t.Fatal("server still holds the connection of a client that stopped reading")
	}
	got, _ := io.ReadAll(resp.Body)
	if len(got) >= len(content) {
		t.Errorf("stalled client got all %d bytes", len(got))
	}
}
