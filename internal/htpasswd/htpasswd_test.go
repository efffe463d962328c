package htpasswd

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// hash makes a bcrypt hash at the minimum cost, so tests stay fast; the
// "$2y$" prefix is what htpasswd -B writes.
func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return "$2y$" + string(h[4:])
}

func TestCheck(t *testing.T) {
	data := "# operators\n\nalice:" + hash(t, "s3cret") + "\r\nbob:" + hash(t, "hunter2") + "\n"
	u, err := Parse("users", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 {
		t.Fatalf("Len = %d, want 2", u.Len())
	}
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{
		{"alice", "s3cret", true},
		{"bob", "hunter2", true},
		{"alice", "hunter2", false},
		{"bob", "s3cret", false},
		{"carol", "s3cret", false},
		{"", "", false},
		{"alice", "", false},
		{"Alice", "s3cret", false},
		{"alic", "s3cret", false},
	} {
		if got := u.Check(c.user, c.pw); got != c.ok {
			t.Errorf("Check(%q, %q) = %v, want %v", c.user, c.pw, got, c.ok)
		}
	}
	var none *Users
	if none.Check("alice", "s3cret") {
		t.Error("nil Users accepted a user")
	}
}

func TestParseRefuses(t *testing.T) {
	good := hash(t, "pw")
	for _, c := range []struct {
		name, data, msg string
	}{
		{"md5", "a:" + good + "\nb:$apr1$abc$def\n", `users: line 2 (user "b"): MD5 hash ($apr1$), not bcrypt; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"sha", "b:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", `users: line 1 (user "b"): SHA-1 hash ({SHA}), not bcrypt; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"plain", "b:password\n", `users: line 1 (user "b"): not a bcrypt hash (plain text or crypt); want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"sha512", "b:$6$salt$x\n", `users: line 1 (user "b"): SHA-crypt hash, not bcrypt; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"truncated", "b:" + good[:50] + "\n", `users: line 1 (user "b"): malformed bcrypt hash: 50 characters, want 60; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"cost", "b:$2y$18$" + good[7:] + "\n", `users: line 1 (user "b"): bcrypt cost 18 is above 17; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"no colon", "# c\nalice\n", `users: line 2 has no ":"; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"empty user", ":" + good + "\n", `users: line 1 has an empty user name; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"empty hash", "a:\n", `users: line 1 (user "a"): empty hash; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"duplicate", "a:" + good + "\na:" + good + "\n", `users: line 2 repeats user "a" of line 1; keep one line per user`},
		{"empty", "# nobody\n\n", `users: no user; want "user:hash" lines with bcrypt hashes as written by htpasswd -B (htpasswd -B -c FILE USER creates one)`},
		{"control", "a\x01:" + good + "\n", `users: line 1 has control characters in its user name; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
		{"long user", strings.Repeat("u", 256) + ":" + good + "\n", `users: line 1 has a user name longer than 255 bytes; want "user:hash" lines with bcrypt hashes as written by htpasswd -B`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("users", []byte(c.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Error() != c.msg {
				t.Errorf("message\n got %s\nwant %s", err, c.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Error("message spans lines")
			}
		})
	}
}

// FuzzParse feeds arbitrary files: Parse must not panic, must refuse with
// one line naming the file, and whatever it accepts must check its users'
// names without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte("alice:" + hash(f, "pw") + "\n"))
	f.Add([]byte("a:$apr1$x$y\n"))
	f.Add([]byte("#c\n\n:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := Parse("users", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "users: ") {
				t.Errorf("message does not name the file: %s", err)
			}
			return
		}
		if u.Len() == 0 {
			t.Error("accepted a file without users")
		}
	})
}
