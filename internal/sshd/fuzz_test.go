package sshd_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// The reference below is the corpus checker (testdata/corpus/check_expected.py)
// ported statement by statement to Go strings, with the standard library's
// time.Parse deciding whether a stamp can exist. It is deliberately naive
// (splits, slices, no care for speed) so that it shares no code and no
// shortcuts with the parser it checks.

var refMonths = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

const refWS = " \t\n\r\x0b\x0c"

func refAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func refIsClock(s string) bool {
	return len(s) == 8 && s[2] == ':' && s[5] == ':' && refAllDigits(s[0:2]+s[3:5]+s[6:8])
}

func refSlice(s string, i, j int) string {
	if i > len(s) {
		i = len(s)
	}
	if j > len(s) {
		j = len(s)
	}
	return s[i:j]
}

// refClassic returns the classic stamp's length, or 0, and the stamp
// rewritten for time.Parse with a zero-padded day.
func refClassic(line string) (int, string) {
	if len(line) < 4 || !contains(refMonths, line[:3]) || line[3] != ' ' {
		return 0, ""
	}
	i := 4
	for i < len(line) && line[i] == ' ' {
		i++
	}
	j := i
	for j < len(line) && line[j] >= '0' && line[j] <= '9' {
		j++
	}
	if j-i < 1 || j-i > 2 {
		return 0, ""
	}
	if refSlice(line, j, j+1) != " " || !refIsClock(refSlice(line, j+1, j+9)) {
		return 0, ""
	}
	day := line[i:j]
	if len(day) == 1 {
		day = "0" + day
	}
	return j + 9, line[:3] + " " + day + " " + line[j+1:j+9]
}

// refRFC3339 returns the RFC 3339 stamp's length, or 0. Unlike the checker,
// a stamp that ends the line is accepted, so that the parser's not_syslog can
// be told from its no_timestamp.
func refRFC3339(line string) int {
	end := strings.IndexByte(line, ' ')
	if end < 0 {
		end = len(line)
	}
	s := line[:end]
	if len(s) < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' {
		return 0
	}
	if !refAllDigits(s[0:4]+s[5:7]+s[8:10]) || !refIsClock(s[11:19]) {
		return 0
	}
	rest := s[19:]
	if strings.HasPrefix(rest, ".") {
		k := 1
		for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
			k++
		}
		if k == 1 {
			return 0
		}
		rest = rest[k:]
	}
	if rest == "" || rest == "Z" {
		return end
	}
	if len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' && refAllDigits(rest[1:3]+rest[4:6]) {
		return end
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// refVerdict is what the reference says about a line.
type refVerdict struct {
	reason          sshd.Reason
	host, user, src string
	when            time.Time // RFC 3339 stamps: the instant
	classic         string    // classic stamps: "Jan 02 15:04:05"
}

func refParse(line string, loc *time.Location) refVerdict {
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return refVerdict{reason: sshd.Empty}
	}
	var v refVerdict
	n, classic := refClassic(line)
	if n > 0 {
		if n < len(line) && line[n] != ' ' {
			return refVerdict{reason: sshd.NoTimestamp}
		}
		if _, err := time.Parse("Jan 02 15:04:05", classic); err != nil {
			return refVerdict{reason: sshd.BadTimestamp}
		}
		v.classic = classic
	} else if n = refRFC3339(line); n > 0 {
		s := line[:n]
		var err error
		if strings.HasSuffix(s, "Z") || strings.Contains(s[19:], "+") || strings.Contains(s[19:], "-") {
			v.when, err = time.Parse(time.RFC3339Nano, s)
			// time.Parse takes offsets such as +24:00 or +00:60, which
			// RFC 3339 (time-hour, time-minute) does not.
			if z := s[len(s)-6:]; z[0] == '+' || z[0] == '-' {
				if h, m := (z[1]-'0')*10+z[2]-'0', (z[4]-'0')*10+z[5]-'0'; h > 23 || m > 59 {
					return refVerdict{reason: sshd.BadTimestamp}
				}
			}
		} else {
			v.when, err = time.ParseInLocation("2006-01-02T15:04:05", s, loc)
		}
		if err != nil {
			return refVerdict{reason: sshd.BadTimestamp}
		}
	} else {
		return refVerdict{reason: sshd.NoTimestamp}
	}

	// split_header
	if n == len(line) {
		return refVerdict{reason: sshd.NotSyslog}
	}
	rest := line[n+1:]
	sp := strings.Index(rest, " ")
	if sp <= 0 {
		return refVerdict{reason: sshd.NotSyslog}
	}
	host := rest[:sp]
	if strings.ContainsAny(host, "[]:"+refWS) {
		return refVerdict{reason: sshd.NotSyslog}
	}
	rest = rest[sp+1:]
	colon := strings.Index(rest, ": ")
	if colon <= 0 {
		return refVerdict{reason: sshd.NotSyslog}
	}
	tag := rest[:colon]
	if strings.ContainsAny(tag, refWS+":") {
		return refVerdict{reason: sshd.NotSyslog}
	}
	if strings.ContainsAny(tag, "[]") {
		if !strings.HasSuffix(tag, "]") || strings.Count(tag, "[") != 1 || strings.Count(tag, "]") != 1 {
			return refVerdict{reason: sshd.NotSyslog}
		}
		prog, pid, _ := strings.Cut(tag[:len(tag)-1], "[")
		if prog == "" || !refAllDigits(pid) {
			return refVerdict{reason: sshd.NotSyslog}
		}
	}
	msg := rest[colon+2:]

	// invalid_user
	if !strings.Contains(tag, "[") {
		return refVerdict{reason: sshd.NotSSHD}
	}
	prog, _, _ := strings.Cut(tag[:len(tag)-1], "[")
	if prog != "sshd" && prog != "sshd-session" {
		return refVerdict{reason: sshd.NotSSHD}
	}
	const head = "Invalid user "
	if !strings.HasPrefix(msg, head) {
		return refVerdict{reason: sshd.NotInvalidUser}
	}
	body := msg[len(head):]
	i := strings.LastIndex(body, " from ")
	if i < 0 {
		return refVerdict{reason: sshd.NotInvalidUser}
	}
	user, tail := body[:i], body[i+len(" from "):]
	parts := strings.Split(tail, " ")
	var src string
	switch {
	case len(parts) == 1:
		src = parts[0]
	case len(parts) == 3 && parts[1] == "port" && refAllDigits(parts[2]):
		src = parts[0]
	default:
		return refVerdict{reason: sshd.NotInvalidUser}
	}
	if src == "" || strings.ContainsAny(src, refWS) || strings.ContainsFunc(src, pyIsSpace) {
		return refVerdict{reason: sshd.NotInvalidUser}
	}
	v.reason, v.host, v.user, v.src = sshd.OK, host, user, src
	return v
}

// pyIsSpace is Python's str.isspace for one character. Ranging over a Go
// string yields U+FFFD for each invalid byte, which, like Python's escaped
// bytes, is not space.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

func FuzzParse(f *testing.F) {
	for _, l := range readCorpus(f) {
		f.Add(l.text)
	}
	for _, s := range []string{
		"",
		"\r",
		"\r\r",
		"Jan",
		"Jan ",
		"Jan  2",
		"Jan  2 15:04:05",
		"Jan  2 15:04:05 ",
		"Jan  2 15:04:05 h",
		"Jan  2 15:04:05 h sshd[1]: ",
		"Jan  2 15:04:05 h sshd[1]: Invalid user ",
		"Jan  2 15:04:05 h sshd[1]: Invalid user  from ",
		"Jan  2 15:04:05 h sshd[1]: Invalid user  from  port ",
		"Jan  2 15:04:05 h sshd[1]: Invalid user from from from",
		"Jan  2 15:04:05 h sshd[1]: Invalid user a from b port 1\r",
		"Feb 29 00:00:00 h sshd[1]: Invalid user a from b",
		"Feb 30 00:00:00 h sshd[1]: Invalid user a from b",
		"Dec 31 23:59:60 h sshd[1]: Invalid user a from b",
		"Jan 99 99:99:99 h sshd[1]: Invalid user a from b",
		"9999-12-31T23:59:59.999999999999+23:59 h sshd-session[0]: Invalid user a from b port 0",
		"0000-01-01T00:00:00-23:59 h sshd[1]: Invalid user a from b",
		"2024-02-29T24:00:00Z h sshd[1]: Invalid user a from b",
		"2026-01-22T11:59:37 h sshd[1]: Invalid user \x00\xff\xfe from \xc2\xa0",
		"2026-01-22T11:59:37 h sshd[1]: Invalid user a from \xe3\x80\x80",
		"2026-01-22T11:59:37 h sshd[1]: Invalid user a from b\x1c",
		"2026-01-22T11:59:37 h sshd[1]: Invalid user a from \xf0\xe2\x80\xa8",
		"Jan  2 15:04:05 h[ sshd[1]: Invalid user a from b",
		"Jan  2 15:04:05 h sshd[1][: Invalid user a from b",
		"Jan  2 15:04:05 h [1]: Invalid user a from b",
		"Jan  2 15:04:05 h sshd[1]: Invalid user " + strings.Repeat(" from ", 1000) + "x",
		"Jan " + strings.Repeat(" ", 5000) + "2 15:04:05 h sshd[1]: Invalid user a from b",
		"2026-01-22T11:59:37." + strings.Repeat("9", 5000) + "Z h sshd[1]: Invalid user a from b",
		"2099-01-01T00:00:00Z h sshd[1]: Invalid user a from b",
		"9999-12-31T23:59:59-01:00 h sshd[1]: Invalid user a from b",
		"0000-01-01T00:00:00+00:01 h sshd[1]: Invalid user a from b",
		"2026-03-16T12:00:00Z h sshd[1]: Invalid user a from b",
		"2026-03-16T12:00:00.000000001Z h sshd[1]: Invalid user a from b",
		"2016-03-17T12:00:00Z h sshd[1]: Invalid user a from b",
		"2016-03-17T11:59:59.999999999Z h sshd[1]: Invalid user a from b",
		"Mar 16 12:00:01 h sshd[1]: Invalid user a from b",
		"Jan 22 11:59:37 " + strings.Repeat("h", 65) + " sshd[1]: Invalid user " + strings.Repeat("é", 40) + " from " + strings.Repeat("\xff", 70) + " port 1",
		"Jan 22 11:59:37 h sshd[1]: Invalid user " + strings.Repeat("a", 23) + "😀" + strings.Repeat("b", 60) + " from b",
	} {
		f.Add([]byte(s))
	}

	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	limit := ref.Add(24 * time.Hour)
	ny := mustZone(f, "America/New_York")
	const maxAge = 3650 * 24 * time.Hour
	const maxValue = 64 // small, so that fuzzed values cross it often

	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		p := sshd.New(sshd.Options{Location: time.UTC, MaxAge: maxAge, MaxValueBytes: maxValue})
		ev, r := p.Parse(line, ref)
		if !bytes.Equal(line, orig) {
			t.Fatalf("Parse modified its input")
		}
		want := refParse(string(line), time.UTC)
		var when time.Time
		if want.reason == sshd.OK {
			when = want.instant(t, ref, time.UTC)
			want.reason = refAge(when, ref, maxAge)
		}
		if r != want.reason {
			t.Fatalf("reason %s, reference says %s (time %v)\n  line: %q", r, want.reason, when, line)
		}
		if r != sshd.OK {
			if ev.Host != nil || ev.User != nil || ev.Src != nil || !ev.Time.IsZero() {
				t.Fatalf("skipped line returned a non-empty event %+v", ev)
			}
		} else {
			for _, fl := range []struct {
				name  string
				got   []byte
				whole string
			}{{"host", ev.Host, want.host}, {"user", ev.User, want.user}, {"src", ev.Src, want.src}} {
				if len(fl.whole) > maxValue {
					checkCapped(t, fl.got, fl.whole, maxValue)
				} else if string(fl.got) != fl.whole || !aliases(line, fl.got) {
					t.Fatalf("%s %q, reference says %q (aliasing the line)\n  line: %q", fl.name, fl.got, fl.whole, line)
				}
				if cap(fl.got) != len(fl.got) {
					t.Fatalf("%s %q has capacity past its length", fl.name, fl.got)
				}
			}
			// A capped source holds the marker's spaces; the source itself
			// never does.
			if len(ev.Host) == 0 || len(ev.Src) == 0 || (len(want.src) <= maxValue && bytes.ContainsFunc(ev.Src, pyIsSpace)) {
				t.Fatalf("empty host, or empty or spaced source: %+v", ev)
			}
			if ev.Time.Location() != time.UTC {
				t.Fatalf("time in %v, want UTC", ev.Time.Location())
			}
			if !ev.Time.Equal(when) {
				t.Fatalf("time %v, reference says %v\n  line: %q", ev.Time, when, line)
			}
			if want.classic != "" {
				checkClassicYear(t, ev.Time, want.classic, limit)
			}
		}

		// Another zone, no age limit and no cap: the reference again, in
		// that zone; the zone can move an instant across a limit.
		ev2, r2 := sshd.New(sshd.Options{Location: ny}).Parse(line, ref)
		want2 := refParse(string(line), ny)
		if want2.reason == sshd.OK {
			want2.reason = refAge(want2.instant(t, ref, ny), ref, 0)
		}
		if r2 != want2.reason || (r2 == sshd.OK && (ev2.Time.Location() != ny || string(ev2.User) != want2.user)) {
			t.Fatalf("in New York: reason %s, time %v, user %q; reference says %s, user %q\n  line: %q",
				r2, ev2.Time, ev2.User, want2.reason, want2.user, line)
		}
		// The package-level Parse is a Parser without options; a nil zone
		// is UTC.
		ev3, r3 := sshd.Parse(line, ref, nil)
		ev4, r4 := sshd.New(sshd.Options{}).Parse(line, ref)
		if r3 != r4 || !ev3.Time.Equal(ev4.Time) || ev3.Time.Location() != time.UTC || !bytes.Equal(ev3.User, ev4.User) {
			t.Fatalf("package-level Parse with a nil zone: reason %s time %v; Parser without options: reason %s time %v", r3, ev3.Time, r4, ev4.Time)
		}
	})
}

// instant is the reference's instant of a counting line, in loc: the RFC
// 3339 stamp's as parsed, or the classic stamp's with the year rule applied
// by a plain search over years.
func (v refVerdict) instant(t *testing.T, ref time.Time, loc *time.Location) time.Time {
	t.Helper()
	if v.classic == "" {
		return v.when.In(loc)
	}
	st, err := time.Parse("Jan 02 15:04:05", v.classic)
	if err != nil {
		t.Fatalf("reference stamp %q: %v", v.classic, err)
	}
	limit := ref.Add(24 * time.Hour)
	for y := ref.In(loc).Year() + 1; y >= ref.In(loc).Year()-8; y-- {
		c := time.Date(y, st.Month(), st.Day(), st.Hour(), st.Minute(), st.Second(), 0, loc)
		if c.Day() == st.Day() && !c.After(limit) {
			return c
		}
	}
	t.Fatalf("reference finds no year for %q", v.classic)
	return time.Time{}
}

// refAge is SPEC §5's age rule for a counting line's instant, spelled out
// apart from the parser's: years a YYYYMMDD day cannot name, then more than
// a day ahead, then older than maxAge (0: no limit).
func refAge(when, ref time.Time, maxAge time.Duration) sshd.Reason {
	switch {
	case when.Year() > 9999:
		return sshd.Future
	case when.Year() < 0:
		return sshd.TooOld
	case when.Sub(ref) > 24*time.Hour:
		return sshd.Future
	case maxAge > 0 && ref.Sub(when) > maxAge:
		return sshd.TooOld
	}
	return sshd.OK
}

// checkClassicYear checks a classic stamp's instant (in UTC) against the
// year rule: the stamp's fields, at most limit, and no later year would do.
func checkClassicYear(t *testing.T, got time.Time, stamp string, limit time.Time) {
	t.Helper()
	st, err := time.Parse("Jan 02 15:04:05", stamp)
	if err != nil {
		t.Fatalf("reference stamp %q: %v", stamp, err)
	}
	if got.Month() != st.Month() || got.Day() != st.Day() || got.Hour() != st.Hour() ||
		got.Minute() != st.Minute() || got.Second() != st.Second() || got.Nanosecond() != 0 {
		t.Fatalf("time %v does not match stamp %q", got, stamp)
	}
	if got.After(limit) {
		t.Fatalf("time %v is after %v, the reference plus a day", got, limit)
	}
	for y := got.Year() + 1; y <= limit.Year(); y++ {
		c := time.Date(y, st.Month(), st.Day(), st.Hour(), st.Minute(), st.Second(), 0, time.UTC)
		if c.Day() == st.Day() && !c.After(limit) {
			t.Fatalf("time %v, but year %d would do: %v", got, y, c)
		}
	}
}
