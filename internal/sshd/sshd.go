// Package sshd owns the recognition of OpenSSH "Invalid user" attempts in
// syslog lines: bytes in, an Event{Time, Host, User, Src} or a skip Reason out.
//
// Contract:
//   - A line counts only when it is exactly
//     STAMP HOST sshd[PID]: Invalid user USER from SRC[ port N]
//     (or sshd-session[PID], OpenSSH 9.8+). OpenSSH writes one such line per
//     attempt; its follow-ups ("Failed password for invalid user …",
//     "… [preauth]") describe the same attempt, so they never count.
//   - The rule is the corpus's (testdata/corpus/README.md). Its
//     check_expected.py is a second, independent implementation; the tests
//     hold this parser to it on every corpus line and, through a port of
//     it, on fuzzed input.
//   - The parser is pure: no clock (the reference time for year inference
//     and for the age limits is a parameter), no I/O. A Parser keeps only a
//     scratch buffer for rewritten values, so one goroutine uses it at a
//     time; each worker has its own.
//   - Any bytes and any length are accepted without panicking; the work is
//     linear in the line's length.
//   - A counting line costs no allocation: the Event's byte fields alias the
//     line (or, for a capped value, the Parser's scratch buffer, allocated
//     once), and times are built with time.Date, never time.Parse.
//
// Stamps the pages must never show (SPEC §5): a stamp more than 24 hours
// after the reference time is Future (only an RFC 3339 stamp can be, since a
// classic stamp's year is chosen to avoid it); a stamp more than
// Options.MaxAge before it is TooOld. Whatever the options, Event.Time's year
// in the configured zone is within 0..9999, the years a YYYYMMDD day can
// name: a later year is Future, an earlier one TooOld. A forged
// "9999-12-31T23:59:59-01:00" would otherwise land on day 00000101.
//
// Long values (Options.MaxValueBytes): a user name, source or host longer
// than the cap is stored as its first bytes, cut on a UTF-8 boundary when
// the bytes there are valid UTF-8, followed by the marker
//
//	…[+N bytes, sha256:HHHHHHHHHHHHHHHH]
//
// ("…" is U+2026; N is the number of bytes left out; H are the first 16 hex
// digits of the SHA-256 of the whole value). The result is at most the cap,
// distinct long values stay distinct, and every attempt still counts: the
// cap bounds what an attacker's 1 MB user names cost the counting Redis and
// the compile, not what is counted.
package sshd

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// Event is one counted attempt. Host, User and Src alias the line passed to
// Parse or, for a value longer than Options.MaxValueBytes, the Parser's
// scratch buffer, which the next Parse on the same Parser overwrites. A
// caller that keeps them past the line's lifetime or past the next Parse
// copies them. Their capacity is capped at their length, so an append to
// one of them never writes into the rest of the line or into another field.
type Event struct {
	Time time.Time // the instant of the attempt, in the configured location
	Host []byte    // the reporting host (syslog HOST field)
	User []byte    // verbatim, may be empty, may contain spaces, any bytes
	Src  []byte    // the source address or host name, never "addr port N"
}

// Reason says why a line was skipped; OK means it counts.
type Reason uint8

// Skip reasons. Their String labels are stable: dashboards and alerts
// select on them. New reasons are added at the end so that the values of
// the others do not move.
const (
	OK             Reason = iota
	Empty                 // empty line (after dropping one trailing \r)
	TooLong               // longer than the caller's limit (the parser itself accepts any length; callers use this value)
	NoTimestamp           // does not start with a classic or RFC 3339 stamp
	BadTimestamp          // stamp-shaped but impossible (month 13, Feb 30, hour 24, second 60, ...)
	NotSyslog             // no HOST or TAG: after the stamp
	NotSSHD               // TAG is not sshd[PID] / sshd-session[PID]
	NotInvalidUser        // sshd line, but the message is not exactly "Invalid user USER from SRC[ port N]"
	Future                // a counting line stamped more than 24 hours after the reference time, or after year 9999
	TooOld                // a counting line stamped more than Options.MaxAge before the reference time, or before year 0
)

// NumReasons is the number of Reason values, OK included, so that callers
// can count by reason in a [NumReasons]int indexed by Reason.
const NumReasons = int(TooOld) + 1

// String returns the reason's stable snake_case label, as used in logs and
// metric labels.
func (r Reason) String() string {
	switch r {
	case OK:
		return "ok"
	case Empty:
		return "empty"
	case TooLong:
		return "too_long"
	case NoTimestamp:
		return "no_timestamp"
	case BadTimestamp:
		return "bad_timestamp"
	case NotSyslog:
		return "not_syslog"
	case NotSSHD:
		return "not_sshd"
	case NotInvalidUser:
		return "not_invalid_user"
	case Future:
		return "future"
	case TooOld:
		return "too_old"
	}
	return "reason_" + strconv.Itoa(int(r))
}

// Reasons returns every skip reason (all but OK), so that metrics can create
// each label value up front. The slice is new on every call; callers may
// keep or modify it.
func Reasons() []Reason {
	return []Reason{Empty, TooLong, NoTimestamp, BadTimestamp, NotSyslog, NotSSHD, NotInvalidUser, Future, TooOld}
}

// Options configure a Parser. The zero value reads stamps in UTC with no
// age limit and no cap on values.
type Options struct {
	// Location is the configured zone: classic stamps and RFC 3339 stamps
	// without a zone are read in it, and Event.Time is in it. Nil means
	// UTC.
	Location *time.Location
	// MaxAge skips, as TooOld, a counting line stamped more than MaxAge
	// before the reference time. 0 (or negative) means no limit, for a
	// deliberate historical backfill.
	MaxAge time.Duration
	// MaxValueBytes caps the bytes stored of a user name, source or host
	// (see the package comment for the form of a capped value). 0 (or
	// negative) means no cap; a positive value below MinValueBytes is
	// raised to it, since the marker alone takes most of that.
	MaxValueBytes int
}

// MinValueBytes is the smallest effective Options.MaxValueBytes: the marker
// of a capped value takes 37 bytes plus the digits of the bytes left out,
// and a cap must leave room for some of the value itself.
const MinValueBytes = 64

// futureTolerance is how far ahead of the reference time a stamp may be:
// senders' clocks run a little ahead, forged or broken ones by years. It is
// the year inference's tolerance, so that a classic stamp, whose year is
// chosen within it, is never Future.
const futureTolerance = yearTolerance

// Instants between these two are in years 0..9999 in every zone, since no
// zone is a day or more away from UTC.
var (
	yearsSafeFrom = time.Date(0, time.January, 2, 0, 0, 0, 0, time.UTC)
	yearsSafeTo   = time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC)
)

// Parser reads lines with fixed Options. It is used by one goroutine at a
// time: the scratch buffer that holds capped values is reused by each Parse.
type Parser struct {
	loc      *time.Location
	maxAge   time.Duration
	maxValue int
	scratch  []byte
}

// New returns a Parser for o.
func New(o Options) *Parser {
	p := &Parser{loc: o.Location, maxAge: max(o.MaxAge, 0), maxValue: max(o.MaxValueBytes, 0)}
	if p.loc == nil {
		p.loc = time.UTC
	}
	if p.maxValue > 0 && p.maxValue < MinValueBytes {
		p.maxValue = MinValueBytes
	}
	return p
}

const (
	invalidUser = "Invalid user "
	fromSep     = " from "
	portWord    = "port "
)

// Parse reads one log line with no age limit and no cap on values; it is
// New(Options{Location: loc}).Parse(line, ref) without the Parser, kept for
// callers that need neither (benchmarks, workload checks).
func Parse(line []byte, ref time.Time, loc *time.Location) (Event, Reason) {
	if loc == nil {
		loc = time.UTC
	}
	p := Parser{loc: loc}
	return p.Parse(line, ref)
}

// Parse reads one log line. ref is the reference time for year inference
// and for the age limits (now when live, the file's modification time with
// -f); the returned Event.Time is in the Parser's location. The Event's
// byte fields are valid until the line changes or the next Parse.
//
// Reasons are decided in line order: a line with an impossible stamp is
// BadTimestamp even when it is not an sshd line, and only a line that
// would otherwise count is Future or TooOld.
func (p *Parser) Parse(line []byte, ref time.Time) (Event, Reason) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return Event{}, Empty
	}

	st, n, r := scanStamp(line)
	if r != OK {
		return Event{}, r
	}
	if n == len(line) {
		return Event{}, NotSyslog
	}
	rest := line[n+1:] // scanStamp guarantees line[n] is a space

	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return Event{}, NotSyslog
	}
	host := rest[:sp:sp]
	if !validHost(host) {
		return Event{}, NotSyslog
	}
	rest = rest[sp+1:]

	colon := bytes.Index(rest, []byte(": "))
	if colon <= 0 {
		return Event{}, NotSyslog
	}
	tag, msg := rest[:colon], rest[colon+2:]
	if !sshdTag(tag) {
		if !validTag(tag) {
			return Event{}, NotSyslog
		}
		return Event{}, NotSSHD
	}

	user, src, ok := invalidUserMessage(msg)
	if !ok {
		return Event{}, NotInvalidUser
	}

	t, ok := st.resolve(ref, p.loc)
	if !ok {
		return Event{}, BadTimestamp
	}
	return p.Screen(Event{Time: t, Host: host, User: user, Src: src}, ref)
}

// Screen applies to ev what Parse applies to a recognised attempt: the age
// rule (Future, TooOld) against ref, and the cap on values; ev.Time comes
// back in the Parser's location. It is for attempts that did not come from
// Parse, such as the stored attempts a rebuild reads back, so that what an
// earlier version stored from a forged line (a year-2099 day, a 1 MB user
// name) gets the treatment a live line gets now. Capped values live in the
// scratch buffer until the next Parse or Screen.
func (p *Parser) Screen(ev Event, ref time.Time) (Event, Reason) {
	t := ev.Time.In(p.loc)
	if r := p.age(t, ref); r != OK {
		return Event{}, r
	}
	ev.Time = t
	if p.maxValue > 0 {
		p.scratch = p.scratch[:0]
		ev.Host, ev.User, ev.Src = p.capValue(ev.Host), p.capValue(ev.User), p.capValue(ev.Src)
	}
	return ev, OK
}

// age tells whether t, an instant in p.loc, is one the pages may show.
func (p *Parser) age(t, ref time.Time) Reason {
	// The year bounds come first: they hold whatever the options and the
	// reference, so that every counted instant names a YYYYMMDD day. Only
	// an instant within a day of them needs its year in the zone, which
	// costs a zone lookup that most lines can skip.
	if t.Before(yearsSafeFrom) || t.After(yearsSafeTo) {
		if y := t.Year(); y > 9999 {
			return Future
		} else if y < 0 {
			return TooOld
		}
	}
	if t.After(ref.Add(futureTolerance)) {
		return Future
	}
	if p.maxAge > 0 && t.Before(ref.Add(-p.maxAge)) {
		return TooOld
	}
	return OK
}

// invalidUserMessage splits "Invalid user USER from SRC[ port N]". The last
// " from " separates user and source, because the user name is chosen by the
// attacker and may itself contain " from ", while the source never does.
func invalidUserMessage(msg []byte) (user, src []byte, ok bool) {
	if !bytes.HasPrefix(msg, []byte(invalidUser)) {
		return nil, nil, false
	}
	body := msg[len(invalidUser):]
	i := bytes.LastIndex(body, []byte(fromSep))
	if i < 0 {
		return nil, nil, false
	}
	user = body[:i:i]
	tail := body[i+len(fromSep):]
	if sp := bytes.IndexByte(tail, ' '); sp >= 0 {
		port := tail[sp+1:]
		if !bytes.HasPrefix(port, []byte(portWord)) || !allDigits(port[len(portWord):]) {
			return nil, nil, false
		}
		tail = tail[:sp:sp]
	}
	if len(tail) == 0 || hasSpace(tail) {
		return nil, nil, false
	}
	return user, tail[:len(tail):len(tail)], true
}

// sshdTag reports whether tag is exactly sshd[PID] or sshd-session[PID].
func sshdTag(tag []byte) bool {
	var pid []byte
	switch {
	case bytes.HasPrefix(tag, []byte("sshd[")):
		pid = tag[len("sshd["):]
	case bytes.HasPrefix(tag, []byte("sshd-session[")):
		pid = tag[len("sshd-session["):]
	default:
		return false
	}
	n := len(pid)
	return n >= 2 && pid[n-1] == ']' && allDigits(pid[:n-1])
}

// validTag reports whether tag is syslog-shaped, "prog" or "prog[pid]", so
// that a line whose TAG field holds free text is told apart (NotSyslog) from
// a well-formed line of another program (NotSSHD).
func validTag(tag []byte) bool {
	for _, c := range tag {
		switch c {
		case ':', ' ', '\t', '\n', '\r', '\v', '\f':
			return false
		}
	}
	open, end := bytes.IndexByte(tag, '['), bytes.IndexByte(tag, ']')
	if open < 0 && end < 0 {
		return true
	}
	// One "[", one "]" closing the tag, a program name before and digits
	// between: the first "]" being the last byte rules out a second one,
	// and digits rule out a second "[".
	n := len(tag)
	return open > 0 && end == n-1 && allDigits(tag[open+1:n-1])
}

// validHost reports whether host (already free of spaces) is one syslog HOST
// token. Like the corpus checker, it refuses only ASCII white space and the
// bytes that would make it look like a tag.
func validHost(host []byte) bool {
	for _, c := range host {
		switch c {
		case '[', ']', ':', '\t', '\n', '\r', '\v', '\f':
			return false
		}
	}
	return true
}

// allDigits reports whether b is non-empty and only ASCII digits.
func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// hasSpace reports whether b holds a white-space character in the sense of
// Python's str.isspace, the corpus checker's rule for sources: Go's
// unicode.IsSpace plus the ASCII separators U+001C..U+001F. Invalid UTF-8
// bytes are not space.
func hasSpace(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			if (c >= '\t' && c <= '\r') || c == ' ' || (c >= 0x1c && c <= 0x1f) {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if isUnicodeSpace(r) {
			return true
		}
		i += size
	}
	return false
}

// isUnicodeSpace is the non-ASCII part of Python's str.isspace, spelled out
// so that the rule does not drift with the Unicode tables of a Go release.
// It equals unicode.IsSpace above U+007F.
func isUnicodeSpace(r rune) bool {
	switch r {
	case 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}
