package web

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// Connection cap. Every open connection costs the process descriptors, and a
// descriptor the web server holds is one a compile or a Redis pool cannot
// open: 20,000 idle keep-alive connections once made every compile fail with
// "too many open files". So half of the open-file limit always stays with the
// daemon, and the server's share is divided by what one connection can hold at
// once (its socket, the published directory it reads from, the file it sends).
const (
	fdsPerConn = 3
	// maxConns bounds memory too (some 20 KiB per idle connection); a server
	// for a few operators, browsers and monitors never needs more.
	maxConns = 1024
	// minConns keeps a daemon under a tiny limit reachable at all.
	minConns = 8
)

// connCap is the number of connections served at once under an open-file
// limit of nofile descriptors.
func connCap(nofile uint64) int {
	n := nofile / 2 / fdsPerConn
	switch {
	case n > maxConns:
		return maxConns
	case n < minConns:
		return minConns
	default:
		return int(n)
	}
}

// limitListener keeps at most max connections open: max-1 being served and
// one being admitted. When every serving slot is taken, it accepts the next
// client and then closes the connection that has waited longest without a
// request in progress (an idle keep-alive connection, or one that has not sent
// its request yet) to make room for it, so that clients holding connections
// open cannot lock out a monitor asking /healthz. Nothing is closed before a
// client actually waits, and connections with a request in progress are never
// closed: when all of them are busy, the newcomer waits until one finishes or
// turns idle, and clients behind it wait in the kernel's accept queue, which
// costs the process no descriptor.
type limitListener struct {
	net.Listener
	max int

	slots     chan struct{} // one token per connection being served (max-1); Accept sends, limitConn.Close receives
	idle      chan struct{} // size 1: a connection turned idle, so a waiting newcomer may evict it
	closed    chan struct{} // closed by Close, so that a waiting Accept returns
	closeOnce sync.Once

	// onEvict is called after a connection was closed to make room; set
	// before the first Accept, may be nil.
	onEvict func()
	// writeStall is the deadline of every write to a connection; zero for
	// none. Set before the first Accept.
	writeStall time.Duration

	mu    sync.Mutex
	conns map[*limitConn]connEntry // the open connections the server may still use
}

// connEntry is what the server last told about a connection through ConnState.
type connEntry struct {
	state http.ConnState
	since time.Time // when it entered state
}

// newLimitListener limits ln to n connections; n is at least 2 (one served,
// one admitted).
func newLimitListener(ln net.Listener, n int) *limitListener {
	n = max(n, 2)
	return &limitListener{
		Listener: ln,
		max:      n,
		slots:    make(chan struct{}, n-1),
		idle:     make(chan struct{}, 1),
		closed:   make(chan struct{}),
		conns:    make(map[*limitConn]connEntry),
	}
}

// Accept returns the next client. http.Server calls it from a single
// goroutine, so only this method takes slots.
func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	case l.slots <- struct{}{}:
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		return l.register(c), nil
	default:
	}
	// Every slot is taken: admit the newcomer, then make room for it.
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.slots <- struct{}{}:
			return l.register(c), nil
		default:
		}
		if l.evictOldestIdle() {
			if l.onEvict != nil {
				l.onEvict()
			}
			continue // its slot is free now
		}
		select {
		case l.slots <- struct{}{}:
			return l.register(c), nil
		case <-l.idle:
		case <-l.closed:
			_ = c.Close()
			return nil, net.ErrClosed
		}
	}
}

// register tracks c, which holds a slot, from its acceptance.
func (l *limitListener) register(c net.Conn) *limitConn {
	lc := &limitConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[lc] = connEntry{state: http.StateNew, since: time.Now()}
	l.mu.Unlock()
	return lc
}

// evictOldestIdle closes the connection that has been idle or new the longest
// and reports whether there was one. Its slot is free when it returns, because
// limitConn.Close releases it synchronously. A request arriving on the chosen
// connection at this very moment is cut; clients retry a request on a reused
// connection that closes, and http.Server.Shutdown takes the same risk.
func (l *limitListener) evictOldestIdle() bool {
	l.mu.Lock()
	var victim *limitConn
	var oldest time.Time
	for c, e := range l.conns {
		if e.state != http.StateNew && e.state != http.StateIdle {
			continue
		}
		if victim == nil || e.since.Before(oldest) {
			victim, oldest = c, e.since
		}
	}
	l.mu.Unlock()
	if victim == nil {
		return false
	}
	_ = victim.Close()
	return true
}

// connState is the http.Server's ConnState hook.
func (l *limitListener) connState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, open := l.conns[lc]; !open {
		return // already closed, perhaps by an eviction
	}
	switch st {
	case http.StateClosed, http.StateHijacked:
		// A hijacked connection is the handler's to close; its slot is
		// released then, but it is never a candidate for eviction.
		delete(l.conns, lc)
	default:
		l.conns[lc] = connEntry{state: st, since: time.Now()}
		if st == http.StateIdle {
			select {
			case l.idle <- struct{}{}:
			default: // a wake-up is already pending
			}
		}
	}
}

// Close stops Accept, including one waiting for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// open is the number of connections being served (slots taken, including
// one reserved by an Accept waiting for its client).
func (l *limitListener) open() int { return len(l.slots) }

// limitConn gives its slot back when it is closed, once however many times
// the server and an eviction close it, and gives every write its own
// deadline.
//
// The write deadline lives here, below http.Server, so that it covers
// everything written: headers, every piece of the body and the final flush
// after the handler returns. Because limitConn does not implement
// io.ReaderFrom, the server copies a file in writes of 32 KiB rather than one
// sendfile call, and each of those writes gets the whole deadline.
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
	err  error // the first Close's result; read after once
}

func (c *limitConn) Write(p []byte) (int, error) {
	if d := c.l.writeStall; d > 0 {
		if err := c.Conn.SetWriteDeadline(time.Now().Add(d)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

func (c *limitConn) Close() error {
	c.once.Do(func() {
		c.err = c.Conn.Close()
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		<-c.l.slots
	})
	return c.err
}
