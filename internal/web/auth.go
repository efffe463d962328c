package web

import (
	"crypto/sha256"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/htpasswd"
)

const (
	// authRealm is what browsers show in their password prompt.
	authRealm = `Basic realm="analyzer-d4-log", charset="UTF-8"`
	// authCacheTTL is how long a user and password that matched are
	// accepted without another bcrypt comparison: a page loads a dozen
	// charts, and at htpasswd -C 12 each comparison is a quarter second.
	authCacheTTL = 5 * time.Minute
	// authCacheMax bounds the remembered logins; the cache is emptied
	// when full.
	authCacheMax = 1024
)

// Counter is the part of a Prometheus counter that RequireAuth uses.
type Counter interface{ Inc() }

// Auth asks for HTTP basic auth against an htpasswd file of bcrypt hashes
// (see package htpasswd) on every path but /healthz, which monitors probe
// without credentials. Create it with NewAuth.
type Auth struct {
	users    *reloaded[*htpasswd.Users]
	failures Counter
	// slots bounds the bcrypt comparisons running at once, so a flood of
	// wrong passwords queues instead of taking every core from counting.
	slots chan struct{}
	now   func() time.Time

	mu    sync.Mutex
	gen   *htpasswd.Users        // the users the cache was filled from
	cache map[[32]byte]time.Time // sha256(user NUL password) → accepted until
}

// NewAuth reads usersFile now, refusing a file that does not parse (see
// config.LoadUsers), and re-reads it when it changes. failures is
// incremented for every request refused for missing or wrong credentials.
func NewAuth(usersFile string, failures Counter) (*Auth, error) {
	r, err := newReloaded("http users", []string{usersFile}, func() (*htpasswd.Users, error) {
		return config.LoadUsers(usersFile)
	})
	if err != nil {
		return nil, err
	}
	return &Auth{
		users:    r,
		failures: failures,
		slots:    make(chan struct{}, runtime.GOMAXPROCS(0)),
		now:      time.Now,
		cache:    make(map[[32]byte]time.Time),
	}, nil
}

// Wrap returns h behind the password check.
func (a *Auth) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		user, pw, ok := r.BasicAuth()
		if ok && a.check(r, user, pw) {
			h.ServeHTTP(w, r)
			return
		}
		if a.failures != nil {
			a.failures.Inc()
		}
		w.Header().Set("WWW-Authenticate", authRealm)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.Error(w, "401 unauthorized: this server needs a user name and password", http.StatusUnauthorized)
	})
}

// check compares the credentials, from the cache of recent successes or
// with one bcrypt comparison.
func (a *Auth) check(r *http.Request, user, pw string) bool {
	users := a.users.get()
	// NUL cannot be in a user name of the file (htpasswd.Parse refuses
	// control characters), so no other pair maps to an accepted key.
	key := sha256.Sum256([]byte(user + "\x00" + pw))
	now := a.now()
	a.mu.Lock()
	if a.gen != users {
		// The file changed: a removed user or changed password must
		// not stay accepted.
		a.gen = users
		clear(a.cache)
	}
	until, hit := a.cache[key]
	a.mu.Unlock()
	if hit && now.Before(until) {
		return true
	}

	select {
	case a.slots <- struct{}{}:
	case <-r.Context().Done():
		return false
	}
	ok := users.Check(user, pw)
	<-a.slots
	if !ok {
		return false
	}
	a.mu.Lock()
	if a.gen == users {
		if len(a.cache) >= authCacheMax {
			clear(a.cache)
		}
		a.cache[key] = now.Add(authCacheTTL)
	}
	a.mu.Unlock()
	return true
}
