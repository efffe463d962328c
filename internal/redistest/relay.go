package redistest

import (
	"net"
	"sync/atomic"
)

// RelayReplies copies a Redis server's replies from s to the client c
// until either closes. Once mute is set, it drops them instead and closes
// replied at the first: a test proxy uses it to lose the reply of a
// command Redis has run, as a cut connection does.
func RelayReplies(c, s net.Conn, mute *atomic.Bool, replied chan struct{}) {
	buf := make([]byte, 1<<16)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			if mute.Load() {
				close(replied)
				return
			}
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
