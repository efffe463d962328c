package sshd_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// checkCapped checks got, the stored form of whole under a cap of max
// bytes, against the documented form: the first bytes of whole, then
// "…[+N bytes, sha256:H]" with N the bytes left out and H the first 16 hex
// digits of whole's SHA-256. It returns the prefix kept.
func checkCapped(t testing.TB, got []byte, whole string, max int) string {
	t.Helper()
	if len(got) > max {
		t.Fatalf("capped value is %d bytes, more than the cap %d: %.100q", len(got), max, got)
	}
	i := bytes.LastIndex(got, []byte("…[+"))
	if i < 0 {
		t.Fatalf("capped value %.200q has no marker", got)
	}
	prefix, marker := string(got[:i]), string(got[i+len("…[+"):])
	if !strings.HasPrefix(whole, prefix) {
		t.Fatalf("capped value's prefix %.100q is not the start of the value %.100q", prefix, whole)
	}
	n, rest, ok := strings.Cut(marker, " bytes, sha256:")
	if !ok {
		t.Fatalf("capped value %.200q: marker %q is not \"…[+N bytes, sha256:H]\"", got, marker)
	}
	sum := sha256.Sum256([]byte(whole))
	if want := strconv.Itoa(len(whole) - len(prefix)); n != want {
		t.Fatalf("capped value %.200q says %s bytes left out; want %s", got, n, want)
	}
	if want := hex.EncodeToString(sum[:])[:16] + "]"; rest != want {
		t.Fatalf("capped value %.200q ends %q; want %q", got, rest, want)
	}
	// The cut gives up at most the three bytes of a rune it would split.
	fixed := len("…[+ bytes, sha256:]") + 16 + len(strconv.Itoa(len(whole)))
	if len(prefix) < max-fixed-(utf8.UTFMax-1) {
		t.Fatalf("capped value keeps %d bytes of the value; want at least %d", len(prefix), max-fixed-(utf8.UTFMax-1))
	}
	if utf8.ValidString(whole) && !utf8.ValidString(prefix) {
		t.Fatalf("capped value %.200q cuts a rune of valid UTF-8", got)
	}
	return prefix
}

func TestParseCapsValues(t *testing.T) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	const max = 64
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name   string
		user   string
		prefix string // the prefix kept; "" with capped false
		capped bool
	}{
		{name: "at the cap", user: a(max)},
		{name: "one byte over", user: a(max + 1), capped: true,
			// 64 - 37 marker bytes - 2 digits of 65.
			prefix: a(25)},
		{name: "far over", user: a(300 << 10), capped: true,
			// 64 - 37 - 6 digits of 307200.
			prefix: a(21)},
		{name: "two-byte runes cut whole", user: strings.Repeat("é", 40), capped: true,
			// The budget of 25 bytes would split the 13th é.
			prefix: strings.Repeat("é", 12)},
		{name: "four-byte rune cut whole", user: a(23) + "😀" + a(60), capped: true, prefix: a(23)},
		{name: "four-byte rune three bytes before the cut", user: a(22) + "😀" + a(60), capped: true, prefix: a(22)},
		{name: "rune ending at the cut kept", user: a(21) + "😀" + a(60), capped: true, prefix: a(21) + "😀"},
		{name: "invalid bytes cut at the budget", user: strings.Repeat("\xff", 80), capped: true, prefix: strings.Repeat("\xff", 25)},
		{name: "continuation bytes without a start cut at the budget", user: strings.Repeat("\x80", 80), capped: true, prefix: strings.Repeat("\x80", 25)},
		{name: "truncated rune at the cut cut at the budget", user: a(24) + "\xe2\x80" + a(60), capped: true, prefix: a(24) + "\xe2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := []byte("Jan 22 11:59:37 h sshd[1]: Invalid user " + tc.user + " from 192.0.2.1 port 22")
			ev, r := sshd.New(sshd.Options{MaxValueBytes: max}).Parse(line, ref)
			if r != sshd.OK {
				t.Fatalf("reason %s, want ok: a long value still counts", r)
			}
			if string(ev.Host) != "h" || string(ev.Src) != "192.0.2.1" {
				t.Errorf("host %q src %q; want h and 192.0.2.1 untouched", ev.Host, ev.Src)
			}
			if !tc.capped {
				if string(ev.User) != tc.user || !aliases(line, ev.User) {
					t.Errorf("user %.100q; want the value itself, aliasing the line", ev.User)
				}
				return
			}
			if got := checkCapped(t, ev.User, tc.user, max); got != tc.prefix {
				t.Errorf("prefix %q; want %q", got, tc.prefix)
			}
		})
	}
}

// TestParseCapsEveryField caps host, user and source of one line at once:
// each lives in the scratch buffer without overwriting the others.
func TestParseCapsEveryField(t *testing.T) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	host, user, src := "h"+strings.Repeat("H", 5000), "u"+strings.Repeat("U", 900), "s"+strings.Repeat("S", 70)
	line := []byte("Jan 22 11:59:37 " + host + " sshd[1]: Invalid user " + user + " from " + src + " port 22")
	p := sshd.New(sshd.Options{MaxValueBytes: 64})
	for round := range 2 { // the second round reuses the scratch buffer
		ev, r := p.Parse(line, ref)
		if r != sshd.OK {
			t.Fatalf("round %d: reason %s, want ok", round, r)
		}
		for _, f := range []struct {
			name  string
			got   []byte
			whole string
		}{{"host", ev.Host, host}, {"user", ev.User, user}, {"src", ev.Src, src}} {
			checkCapped(t, f.got, f.whole, 64)
			if cap(f.got) != len(f.got) {
				t.Errorf("round %d: %s has capacity %d past its length %d: an append would overwrite the next field", round, f.name, cap(f.got), len(f.got))
			}
		}
	}
}

// TestParseCapKeepsValuesApart checks that two long values that share
// their first bytes stay two values, and that the same value is always
// stored the same way, so its attempts add up.
func TestParseCapKeepsValuesApart(t *testing.T) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	p := sshd.New(sshd.Options{MaxValueBytes: 1024})
	stored := func(user string) string {
		ev, r := p.Parse([]byte("Jan 22 11:59:37 h sshd[1]: Invalid user "+user+" from 192.0.2.1"), ref)
		if r != sshd.OK {
			t.Fatalf("reason %s, want ok", r)
		}
		return string(ev.User)
	}
	common := strings.Repeat("x", 4000)
	one, two := stored(common+"1"), stored(common+"2")
	if one == two {
		t.Errorf("two distinct long user names are stored alike: %.60q…", one)
	}
	if again := stored(common + "1"); again != one {
		t.Errorf("the same long user name is stored as %.60q… and then %.60q…", one, again)
	}
	checkCapped(t, []byte(one), common+"1", 1024)
}

// TestParseCapRaisedToMinimum checks that a cap too small to hold the
// marker is raised to MinValueBytes rather than producing values over it.
func TestParseCapRaisedToMinimum(t *testing.T) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	user := strings.Repeat("z", 200)
	for _, limit := range []int{1, 10, sshd.MinValueBytes - 1} {
		ev, r := sshd.New(sshd.Options{MaxValueBytes: limit}).Parse([]byte("Jan 22 11:59:37 h sshd[1]: Invalid user "+user+" from 192.0.2.1"), ref)
		if r != sshd.OK {
			t.Fatalf("cap %d: reason %s, want ok", limit, r)
		}
		checkCapped(t, ev.User, user, sshd.MinValueBytes)
		if string(ev.Host) != "h" {
			t.Errorf("cap %d: host %q; a value under MinValueBytes is kept whole", limit, ev.Host)
		}
	}
}

// TestParseCapREADMEExample holds the README's example of a capped value to
// what the parser stores.
func TestParseCapREADMEExample(t *testing.T) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	line := "Jan 22 11:59:37 h sshd[1]: Invalid user " + strings.Repeat("A", 307200) + " from 192.0.2.1"
	ev, r := sshd.New(sshd.Options{MaxValueBytes: 64}).Parse([]byte(line), ref)
	const want = "AAAAAAAAAAAAAAAAAAAAA…[+307179 bytes, sha256:4e015e8df8f6b666]"
	if r != sshd.OK || string(ev.User) != want {
		t.Errorf("reason %s user %q; want ok and %q", r, ev.User, want)
	}
}

// TestScreen checks that an attempt from elsewhere (a stored record read
// back) gets the age rule and the value cap exactly as a parsed line does.
func TestScreen(t *testing.T) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	lux := mustZone(t, "Europe/Luxembourg")
	p := sshd.New(sshd.Options{Location: lux, MaxAge: 10 * 24 * time.Hour, MaxValueBytes: 64})
	long := strings.Repeat("u", 500)
	for _, tc := range []struct {
		name   string
		when   time.Time
		reason sshd.Reason
	}{
		{"now", ref, sshd.OK},
		{"a day ahead", ref.Add(24 * time.Hour), sshd.OK},
		{"forged 2099", time.Date(2099, time.January, 1, 0, 0, 0, 0, time.UTC), sshd.Future},
		{"year 10000", time.Date(10000, time.January, 1, 0, 0, 0, 0, time.UTC), sshd.Future},
		{"at MaxAge", ref.Add(-10 * 24 * time.Hour), sshd.OK},
		{"past MaxAge", ref.Add(-10*24*time.Hour - time.Second), sshd.TooOld},
		{"1970", time.Unix(0, 0), sshd.TooOld},
	} {
		ev, r := p.Screen(sshd.Event{Time: tc.when, Host: []byte("h"), User: []byte(long), Src: []byte("192.0.2.1")}, ref)
		if r != tc.reason {
			t.Errorf("%s: reason %s, want %s", tc.name, r, tc.reason)
			continue
		}
		if r != sshd.OK {
			continue
		}
		if !ev.Time.Equal(tc.when) || ev.Time.Location() != lux {
			t.Errorf("%s: time %v, want %v in %v", tc.name, ev.Time, tc.when, lux)
		}
		if string(ev.Host) != "h" || string(ev.Src) != "192.0.2.1" {
			t.Errorf("%s: host %q src %q changed", tc.name, ev.Host, ev.Src)
		}
		checkCapped(t, ev.User, long, 64)
		// The same attempt as a parsed line is stored the same way. The
		// copy is taken first: Parse reuses the scratch buffer ev.User is in.
		screened := string(ev.User)
		line := ev.Time.Format(time.RFC3339Nano) + " h sshd[1]: Invalid user " + long + " from 192.0.2.1"
		pe, pr := p.Parse([]byte(line), ref)
		if pr != sshd.OK || string(pe.User) != screened {
			t.Errorf("%s: parsed line gives %s %q; Screen gave %q", tc.name, pr, pe.User, screened)
		}
	}
}
