// Package sentinel finds the counting Redis master through Redis Sentinel
// (SPEC §14) and follows its failovers. redigo has no Sentinel client; this
// is the whole of one, kept to what the daemon needs:
//
//   - Dial asks the Sentinels, in turn, for the master's address
//     (SENTINEL get-master-addr-by-name), dials it and checks with ROLE that
//     it is a master: a Sentinel that has not yet noticed a failover would
//     otherwise send writes to a replica, which answers READONLY.
//   - Watch subscribes to the Sentinels' +switch-master and records the
//     moment of each switch, so that pools drop connections made before it
//     (SwitchedSince) instead of handing them out one by one.
//
// What a failover means for counting is not this package's: a lost
// connection or a READONLY reply is an outage to the daemon, which retries
// through the applied-batch record, and every retry dials here again.
package sentinel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Timeouts of one question to one Sentinel: a Sentinel that does not answer
// within them is skipped for the next one.
const (
	askTimeout = 2 * time.Second
	// resubscribe is how long Watch waits before trying the next Sentinel
	// after losing its subscription.
	resubscribe = 500 * time.Millisecond
)

// Client asks a set of Sentinels about one master.
type Client struct {
	Sentinels []string // host:port of each Sentinel
	Master    string   // the master's name in the Sentinels' configuration

	// Dial options for the master (timeouts); DialDatabase is added by
	// Dial.
	Options []redis.DialOption

	// OnSwitch is called, when set, each time the master's address changes
	// (seen by Dial or announced by +switch-master), with the old address
	// ("" the first time one is learnt, when it is not called) and the new.
	OnSwitch func(old, new string)

	mu     sync.Mutex
	master string // the last address known

	switched atomic.Int64 // unix nanoseconds of the last switch
}

// ErrNoMaster says no Sentinel named a master that answered as one.
var ErrNoMaster = errors.New("no sentinel named a reachable master")

// Addr is the master's address as last learnt, "" before the first Dial.
func (c *Client) Addr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.master
}

// SwitchedSince reports whether the master changed after t: a connection
// made before then may reach the old master, now a replica or gone.
func (c *Client) SwitchedSince(t time.Time) bool {
	return c.switched.Load() >= t.UnixNano()
}

// setMaster records addr as the master and reports a change.
func (c *Client) setMaster(addr string) {
	c.mu.Lock()
	old := c.master
	c.master = addr
	c.mu.Unlock()
	if old == addr {
		return
	}
	if old != "" {
		c.switched.Store(time.Now().UnixNano())
		if c.OnSwitch != nil {
			c.OnSwitch(old, addr)
		}
	}
}

// Dial connects to the current master's database db. It asks every
// Sentinel in turn until one names a master that ROLE confirms.
func (c *Client) Dial(ctx context.Context, db int) (redis.Conn, error) {
	var errs []string
	for _, s := range c.Sentinels {
		addr, err := c.ask(ctx, s)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		conn, err := redis.DialContext(ctx, "tcp", addr, append(append([]redis.DialOption(nil), c.Options...), redis.DialDatabase(db))...)
		if err != nil {
			errs = append(errs, fmt.Sprintf("master %s named by sentinel %s: %v", addr, s, err))
			continue
		}
		if err := IsMaster(conn); err != nil {
			conn.Close()
			errs = append(errs, fmt.Sprintf("%s named by sentinel %s: %v", addr, s, err))
			continue
		}
		c.setMaster(addr)
		return conn, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("%w %q (%s); check that the sentinels run and monitor it", ErrNoMaster, c.Master, strings.Join(errs, "; "))
}

// ask asks the Sentinel at s for the master's address.
func (c *Client) ask(ctx context.Context, s string) (string, error) {
	conn, err := redis.DialContext(ctx, "tcp", s,
		redis.DialConnectTimeout(askTimeout), redis.DialReadTimeout(askTimeout), redis.DialWriteTimeout(askTimeout))
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", s, err)
	}
	defer conn.Close()
	r, err := redis.Strings(conn.Do("SENTINEL", "get-master-addr-by-name", c.Master))
	if errors.Is(err, redis.ErrNil) || (err == nil && len(r) != 2) {
		return "", fmt.Errorf("sentinel %s does not monitor a master named %q", s, c.Master)
	}
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", s, err)
	}
	return net.JoinHostPort(r[0], r[1]), nil
}

// IsMaster checks with ROLE that conn reaches a master.
func IsMaster(conn redis.Conn) error {
	r, err := redis.Values(conn.Do("ROLE"))
	if err != nil {
		return fmt.Errorf("ask role: %w", err)
	}
	if len(r) == 0 {
		return errors.New("empty reply to ROLE")
	}
	role, err := redis.String(r[0], nil)
	if err != nil {
		return fmt.Errorf("read role: %w", err)
	}
	if role != "master" {
		return fmt.Errorf("is a %s, not the master (a failover in progress)", role)
	}
	return nil
}

// Watch follows the Sentinels' +switch-master announcements of the master
// until ctx ends, moving to the next Sentinel when one stops answering. It
// returns nil when ctx ends: losing every Sentinel is no reason to stop the
// daemon, since Dial asks them again on the next connection anyway.
func (c *Client) Watch(ctx context.Context) error {
	for i := 0; ctx.Err() == nil; i++ {
		c.listen(ctx, c.Sentinels[i%len(c.Sentinels)])
		t := time.NewTimer(resubscribe)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	return nil
}

// listen subscribes to +switch-master on the Sentinel at s until the
// connection fails or ctx ends.
func (c *Client) listen(ctx context.Context, s string) {
	conn, err := redis.DialContext(ctx, "tcp", s, redis.DialConnectTimeout(askTimeout), redis.DialWriteTimeout(askTimeout))
	if err != nil {
		return
	}
	psc := redis.PubSubConn{Conn: conn}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if err := psc.Subscribe("+switch-master"); err != nil {
		return
	}
	for {
		switch m := psc.Receive().(type) {
		case error:
			return
		case redis.Message:
			if addr, ok := c.parseSwitch(string(m.Data)); ok {
				c.setMaster(addr)
			}
		}
	}
}

// parseSwitch reads "<name> <old ip> <old port> <new ip> <new port>" and
// returns the new address when the message is about this master.
func (c *Client) parseSwitch(msg string) (string, bool) {
	f := strings.Fields(msg)
	if len(f) != 5 || f[0] != c.Master {
		return "", false
	}
	if p, err := strconv.Atoi(f[4]); err != nil || p < 1 || p > 65535 {
		return "", false
	}
	return net.JoinHostPort(f[3], f[4]), true
}
