package redistest

import (
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
)

// KillClientsNamed closes, server side, every connection named name: what
// the kernel does to the sockets of a process killed with SIGKILL. It
// fails the test when there is none, since a test that meant to cut a
// holder off would otherwise pass without cutting anything.
func KillClientsNamed(t testing.TB, c redis.Conn, name string) {
	t.Helper()
	list, err := redis.String(c.Do("CLIENT", "LIST"))
	if err != nil {
		t.Fatalf("list clients: %v", err)
	}
	n := 0
	for _, line := range strings.Split(list, "\n") {
		if !strings.Contains(line+" ", " name="+name+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if id, ok := strings.CutPrefix(f, "id="); ok {
				if _, err := c.Do("CLIENT", "KILL", "ID", id); err != nil {
					t.Fatalf("kill client %s: %v", id, err)
				}
				n++
			}
		}
	}
	if n == 0 {
		t.Fatalf("no connection named %s", name)
	}
}
