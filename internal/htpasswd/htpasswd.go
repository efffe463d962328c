// Package htpasswd owns the password file of the daemon's web server: an
// Apache htpasswd file whose every entry is a bcrypt hash, as
// "htpasswd -B" (Debian package apache2-utils) writes it.
//
// Contract: Parse accepts only lines "user:$2y$..." (or $2a$, $2b$), blank
// lines and "#" comments; any other line, including the MD5, SHA-1, crypt
// and plain-text forms htpasswd can also write, is refused with a message
// naming the file and the line, because those hashes are cheap to brute
// force and a file that silently lost a user would lock its operator out.
// Check takes the same time whether the user exists or not: user names are
// compared in constant time and a bcrypt comparison runs for unknown users
// too, so that timing does not reveal which names are valid.
package htpasswd

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// MaxFileBytes caps the file read: a few thousand users at ~70 bytes each.
const MaxFileBytes = 1 << 20

// maxCost is the highest bcrypt cost accepted, as htpasswd -C allows.
const maxCost = 17

// maxUserBytes bounds a user name; htpasswd itself refuses longer ones.
const maxUserBytes = 255

// Users is a parsed password file. The zero value accepts nobody.
type Users struct {
	entries []entry
	// dummy is compared against for unknown users, so that a miss costs a
	// bcrypt comparison like a hit does.
	dummy []byte
}

type entry struct {
	user string
	hash []byte
}

// want says what a line must look like, in every refusal.
const want = `want "user:hash" lines with bcrypt hashes as written by htpasswd -B`

// Parse reads the contents of a password file; name is the file's path for
// messages. The file must name at least one user.
func Parse(name string, data []byte) (*Users, error) {
	u := &Users{}
	seen := make(map[string]int)
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: line %d has no \":\"; %s", name, n, want)
		case user == "":
			return nil, fmt.Errorf("%s: line %d has an empty user name; %s", name, n, want)
		case len(user) > maxUserBytes:
			return nil, fmt.Errorf("%s: line %d has a user name longer than %d bytes; %s", name, n, maxUserBytes, want)
		case strings.ContainsFunc(user, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return nil, fmt.Errorf("%s: line %d has control characters in its user name; %s", name, n, want)
		}
		if prev, dup := seen[user]; dup {
			return nil, fmt.Errorf("%s: line %d repeats user %s of line %d; keep one line per user", name, n, strconv.Quote(user), prev)
		}
		if err := checkHash(hash); err != nil {
			return nil, fmt.Errorf("%s: line %d (user %s): %v; %s", name, n, strconv.Quote(user), err, want)
		}
		seen[user] = n
		u.entries = append(u.entries, entry{user: user, hash: []byte(hash)})
	}
	if len(u.entries) == 0 {
		return nil, fmt.Errorf("%s: no user; %s (htpasswd -B -c FILE USER creates one)", name, want)
	}
	// The dummy has the cost of the first real hash, so that a miss and a
	// hit take as long.
	cost, _ := bcrypt.Cost(u.entries[0].hash)
	dummy, err := bcrypt.GenerateFromPassword([]byte("analyzer-d4-log unknown user"), cost)
	if err != nil {
		return nil, fmt.Errorf("%s: prepare the comparison for unknown users: %w", name, err)
	}
	u.dummy = dummy
	return u, nil
}

// checkHash accepts a bcrypt hash and says what else it looks like.
func checkHash(h string) error {
	switch {
	case h == "":
		return errors.New("empty hash")
	case strings.HasPrefix(h, "$apr1$"):
		return errors.New("MD5 hash ($apr1$), not bcrypt")
	case strings.HasPrefix(h, "{SHA}"):
		return errors.New("SHA-1 hash ({SHA}), not bcrypt")
	case strings.HasPrefix(h, "$5$") || strings.HasPrefix(h, "$6$"):
		return errors.New("SHA-crypt hash, not bcrypt")
	case !(strings.HasPrefix(h, "$2y$") || strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$")):
		return errors.New("not a bcrypt hash (plain text or crypt)")
	}
	// A truncated hash would fail every comparison, locking the user out
	// without a word.
	if len(h) != 60 {
		return fmt.Errorf("malformed bcrypt hash: %d characters, want 60", len(h))
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil {
		return fmt.Errorf("malformed bcrypt hash: %v", err)
	}
	// Every request pays one comparison: a cost above what htpasswd -C
	// allows would let each request hold a CPU for seconds.
	if cost > maxCost {
		return fmt.Errorf("bcrypt cost %d is above %d", cost, maxCost)
	}
	return nil
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.entries) }

// Check reports whether user and password match an entry. Every entry's
// name is compared, in constant time, and exactly one bcrypt comparison
// runs whatever the outcome.
func (u *Users) Check(user, password string) bool {
	if u == nil || len(u.entries) == 0 {
		return false
	}
	hash := u.dummy
	found := 0
	for _, e := range u.entries {
		if subtle.ConstantTimeCompare([]byte(e.user), []byte(user)) == 1 {
			hash = e.hash
			found = 1
		}
	}
	ok := bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	return ok && found == 1
}
