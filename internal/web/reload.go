package web

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// reloadCheckEvery is the longest a changed certificate or password file
// goes unnoticed. Checks run on use (a TLS handshake, a request), not on a
// timer, so an idle server does no work; a stat of two files every few
// seconds costs nothing besides.
const reloadCheckEvery = 3 * time.Second

// reloaded holds a value loaded from files and loads it again when one of
// them changes (modification time, size or inode: renewal tools write a new
// file and rename it over the old one). A load that fails keeps the last
// good value, so a renewal caught half written, or a bad file, never takes
// the server down; the failure is logged once per state of the files, and
// the next change is tried again. Safe for concurrent use.
type reloaded[T any] struct {
	what  string   // what the files are, for the log: "tls certificate"
	files []string // watched
	load  func() (T, error)
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	log     *slog.Logger // nil: failures are not logged
	cur     T
	stamp   string    // of the files cur was loaded from
	failed  string    // of the files that last failed to load; "" if none
	checked time.Time // last look at the files
}

// newReloaded loads the value once; an error here is the caller's to
// refuse the start with.
func newReloaded[T any](what string, files []string, load func() (T, error)) (*reloaded[T], error) {
	r := &reloaded[T]{what: what, files: files, load: load, every: reloadCheckEvery, now: time.Now}
	r.stamp = r.stampNow()
	v, err := load()
	if err != nil {
		return nil, err
	}
	r.cur = v
	r.checked = r.now()
	return r, nil
}

func (r *reloaded[T]) setLogger(l *slog.Logger) {
	r.mu.Lock()
	r.log = l
	r.mu.Unlock()
}

// get returns the current value, first reloading it if the files changed
// and the last look is more than every ago.
func (r *reloaded[T]) get() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.every {
		return r.cur
	}
	r.checked = now
	st := r.stampNow()
	if st == r.stamp || st == r.failed {
		return r.cur
	}
	v, err := r.load()
	if err != nil {
		r.failed = st
		if r.log != nil {
			r.log.Warn("reload "+r.what+" failed; still using the previous one until the files change again",
				"files", strings.Join(r.files, ","), "err", err)
		}
		return r.cur
	}
	r.cur, r.stamp, r.failed = v, st, ""
	if r.log != nil {
		r.log.Info("reloaded "+r.what, "files", strings.Join(r.files, ","))
	}
	return r.cur
}

// stampNow describes the files' current state; a file that cannot be
// stat'ed says so, so that its return is a change too.
func (r *reloaded[T]) stampNow() string {
	var b strings.Builder
	for _, f := range r.files {
		fi, err := os.Stat(f)
		if err != nil {
			b.WriteString("missing;")
			continue
		}
		var ino uint64
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = s.Ino
		}
		fmt.Fprintf(&b, "%d/%d/%d;", fi.ModTime().UnixNano(), fi.Size(), ino)
	}
	return b.String()
}
