package web

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

type countingCounter struct{ n int }

func (c *countingCounter) Inc() { c.n++ }

func writeUsers(t *testing.T, file string, users map[string]string) {
	t.Helper()
	var b strings.Builder
	for u, pw := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(u + ":" + string(h) + "\n")
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

func TestAuth(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	writeUsers(t, file, map[string]string{"alice": "s3cret"})
	var fails countingCounter
	a, err := NewAuth(file, &fails)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a.users.now = func() time.Time { return now }
	a.now = func() time.Time { return now }
	h := a.Wrap(newHandler(t, fixture(t), nil, nil))

	get := func(path, user, pw string) *http.Response {
		t.Helper()
		hdr := map[string]string{}
		if user != "" || pw != "" {
			req, _ := http.NewRequest("GET", "/", nil)
			req.SetBasicAuth(user, pw)
			hdr["Authorization"] = req.Header.Get("Authorization")
		}
		return do(h, "GET", path, hdr).Result()
	}
	page := "/sshd/dailystatistics.html"
	for _, c := range []struct {
		name, path, user, pw string
		code                 int
	}{
		{"no credentials", page, "", "", 401},
		{"wrong password", page, "alice", "guess", 401},
		{"unknown user", page, "mallory", "s3cret", 401},
		{"metrics need them too", "/metrics", "", "", 401},
		{"right password", page, "alice", "s3cret", 200},
		{"right password, cached", page, "alice", "s3cret", 200},
		{"metrics", "/metrics", "alice", "s3cret", 200},
		{"healthz open", "/healthz", "", "", 200},
	} {
		resp := get(c.path, c.user, c.pw)
		if resp.StatusCode != c.code {
			t.Errorf("%s: %s → %d, want %d", c.name, c.path, resp.StatusCode, c.code)
		}
		if c.code == 401 && resp.Header.Get("WWW-Authenticate") != authRealm {
			t.Errorf("%s: WWW-Authenticate %q", c.name, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if fails.n != 4 {
		t.Errorf("failures counted %d, want 4", fails.n)
	}

	// A changed file is picked up after the check interval, and a
	// password that was cached stops working.
	writeUsers(t, file, map[string]string{"alice": "n3w", "bob": "b0b"})
	now = now.Add(reloadCheckEvery)
	if code := get(page, "alice", "s3cret").StatusCode; code != 401 {
		t.Errorf("old password after the change: %d, want 401", code)
	}
	if code := get(page, "alice", "n3w").StatusCode; code != 200 {
		t.Errorf("new password: %d, want 200", code)
	}
	if code := get(page, "bob", "b0b").StatusCode; code != 200 {
		t.Errorf("new user: %d, want 200", code)
	}

	// A broken file keeps the last good users.
	if err := os.WriteFile(file, []byte("alice:$apr1$x$y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(reloadCheckEvery)
	if code := get(page, "bob", "b0b").StatusCode; code != 200 {
		t.Errorf("after a bad edit: %d, want the previous users kept", code)
	}
}

func TestNewAuthRefuses(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(file, []byte("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewAuth(file, nil)
	if err == nil || !strings.Contains(err.Error(), file+": line 1 (user \"alice\"): SHA-1 hash ({SHA}), not bcrypt") {
		t.Errorf("got %v", err)
	}
}
