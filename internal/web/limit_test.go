package web

import (
	"bufio"
	"fmt"
	"github.com/D4-project/analyzer-d4-log/internal/testlog"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConnCap(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, minConns},
		{20, minConns},
		{1024, 170},  // a common default: 512 kept, 512/3 connections
		{4096, 682},  // 2048 kept
		{8192, 1024}, // the ceiling
		{1 << 20, maxConns},
		{^uint64(0), maxConns}, // "unlimited"
	} {
		if got := connCap(tc.nofile); got != tc.want {
			t.Errorf("connCap(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
		// The reserve: whatever the web server holds, at least half the
		// descriptors stay with the daemon (above the floor).
		if got := connCap(tc.nofile); got > minConns && uint64(got*fdsPerConn) > tc.nofile/2 {
			t.Errorf("connCap(%d) = %d uses more than half the descriptors", tc.nofile, got)
		}
	}
}

// countingListener counts the connections the server holds, below and
// independently of the limiter under test.
type countingListener struct {
	net.Listener
	accepted   chan struct{} // if not nil, gets a value for every connection accepted
	closes     chan struct{} // if not nil, gets a value for every connection closed
	mu         sync.Mutex
	open, peak int
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.open++
	l.peak = max(l.peak, l.open)
	l.mu.Unlock()
	if l.accepted != nil {
		l.accepted <- struct{}{}
	}
	return &countedConn{Conn: c, l: l}, nil
}

func (l *countingListener) counts() (open, peak int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.peak
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		c.l.open--
		c.l.mu.Unlock()
		if c.l.closes != nil {
			c.l.closes <- struct{}{}
		}
	})
	return err
}

// startCapped runs the handler under a connection cap of n whose timeouts
// for idle and silent connections are far beyond the test, so that only the
// cap can free a connection. accepted, if not nil, gets a value for every
// connection the server accepts. The server logs to s.logs.
func startCapped(t *testing.T, h http.Handler, n int, accepted chan struct{}) (*running, *countingListener) {
	t.Helper()
	var cl *countingListener
	logs := new(testlog.Buffer)
	s := start(t, h, func(s *Server) {
		s.SetLogger(slog.New(slog.NewTextHandler(logs, nil)))
		cl = &countingListener{Listener: s.ln, accepted: accepted}
		s.lim = newLimitListener(cl, n)
		s.srv.ReadHeaderTimeout = time.Hour
		s.srv.IdleTimeout = time.Hour
	})
	s.logs = logs
	return s, cl
}

// dialAll opens n connections to addr, closed when the test ends.
func dialAll(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		conns = append(conns, c)
	}
	return conns
}

// freshHealthz asks /healthz on a new connection, as a monitor does, and
// gives up after the documented health window plus a margin. It returns the
// status, or -1 for no answer (logged), so goroutines can call it.
func freshHealthz(t *testing.T, addr string) int {
	client := &http.Client{
		Timeout:   healthTimeout + 5*time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Logf("fresh /healthz: %v", err)
		return -1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestIdleKeepAlivesCannotLockOutMonitor(t *testing.T) {
	const limit, clients = 32, 200
	s, cl := startCapped(t, newHandler(t, fixture(t), nil, nil), limit, nil)
	addr := s.Addr().String()

	// Each client in turn gets its page and then holds its keep-alive
	// connection.
	for i := range clients {
		c := dialAll(t, addr, 1)[0]
		if _, err := io.WriteString(c, "GET /sshd/dailystatistics.html HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatalf("client %d: write: %v", i, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || body != dailyHTML {
			t.Fatalf("client %d: status %d body %q", i, resp.StatusCode, body)
		}
	}

	if code := freshHealthz(t, addr); code != http.StatusOK {
		t.Errorf("fresh /healthz with %d idle connections held: status %d, want 200", clients, code)
	}
	_, peak := cl.counts()
	if peak > limit {
		t.Errorf("server held %d connections at once, cap %d", peak, limit)
	}
	// Otherwise the cap was never tested.
	if peak < limit {
		t.Errorf("server held at most %d connections; %d clients should have filled the cap of %d", peak, clients, limit)
	}
}

func TestSilentConnectionsCannotLockOutMonitor(t *testing.T) {
	const limit, clients = 32, 200
	s, cl := startCapped(t, newHandler(t, t.TempDir(), nil, nil), limit, nil)
	addr := s.Addr().String()

	// Connections that never send a request (the header timeout is an hour
	// here, so only the cap frees them).
	conns := dialAll(t, addr, clients)
	if code := freshHealthz(t, addr); code != http.StatusOK {
		t.Errorf("fresh /healthz with %d silent connections: status %d, want 200", clients, code)
	}
	if _, peak := cl.counts(); peak > limit {
		t.Errorf("server held %d connections at once, cap %d", peak, limit)
	}
	// The operator hears of it, once for the whole storm.
	if got := strings.Count(s.logs.String(), "http connection limit reached"); got != 1 {
		t.Errorf("%d warnings about the connection limit, want 1; log:\n%s", got, s.logs.String())
	}
	// The oldest silent connections were closed to make room: the first
	// one reads end of file.
	_ = conns[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := conns[0].Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("oldest silent connection: read %d bytes, err %v; want it closed by the server", n, err)
	}
}

func TestBusyConnectionsAreNeverEvicted(t *testing.T) {
	const limit = 4
	var entered sync.WaitGroup
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			entered.Done()
			<-release
		}
		_, _ = io.WriteString(w, "done "+r.URL.Path)
	})
	accepted := make(chan struct{}, limit)
	s, cl := startCapped(t, h, limit, accepted)
	url := "http://" + s.Addr().String()

	// Every serving slot busy with a request in progress.
	type result struct {
		body string
		err  error
	}
	get := func(path string, out chan<- result) {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
		resp, err := client.Get(url + path)
		if err != nil {
			out <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- result{string(b), err}
	}
	busy := make(chan result, limit-1)
	entered.Add(limit - 1)
	for range limit - 1 {
		go get("/busy", busy)
	}
	entered.Wait()

	// A newcomer waits for a busy one to finish rather than cutting it.
	late := make(chan result, 1)
	go get("/late", late)
	for range limit {
		<-accepted // the newcomer is in, with only busy connections to evict
	}
	close(release)
	for range limit - 1 {
		if r := <-busy; r.err != nil || r.body != "done /busy" {
			t.Errorf("busy request: body %q err %v", r.body, r.err)
		}
	}
	if r := <-late; r.err != nil || r.body != "done /late" {
		t.Errorf("late request: body %q err %v", r.body, r.err)
	}
	if _, peak := cl.counts(); peak > limit {
		t.Errorf("server held %d connections at once, cap %d", peak, limit)
	}
}

func TestNewcomerEvictsConnectionThatTurnsIdle(t *testing.T) {
	// All slots busy, a newcomer waiting; when one request finishes and its
	// connection stays open (keep-alive), the newcomer takes its place at
	// once rather than after the idle timeout.
	const limit = 3
	var entered sync.WaitGroup
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			entered.Done()
			<-release
		}
		_, _ = fmt.Fprint(w, "ok")
	})
	accepted := make(chan struct{}, limit)
	s, _ := startCapped(t, h, limit, accepted)
	addr := s.Addr().String()

	conns := dialAll(t, addr, limit-1)
	entered.Add(limit - 1)
	for _, c := range conns {
		if _, err := io.WriteString(c, "GET /busy HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	entered.Wait()
	done := make(chan int, 1)
	go func() { done <- freshHealthz(t, addr) }()
	for range limit {
		<-accepted // the newcomer is in, with nothing to evict
	}
	close(release) // both finish; their connections stay open, idle, for an hour
	for _, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("busy request: %v", err)
		}
		resp.Body.Close()
	}
	if code := <-done; code != http.StatusOK {
		t.Errorf("newcomer: status %d, want 200", code)
	}
}
