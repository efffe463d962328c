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
//   - The parser is pure: no clock (the reference time for year inference is a
//     parameter), no I/O, no state, safe for concurrent use.
//   - Any bytes and any length are accepted without panicking; the work is
//     linear in the line's length.
//   - A counting line costs no allocation: the Event's byte fields alias the
//     line, and times are built with time.Date, never time.Parse.
package sshd

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// Event is one counted attempt. Host, User and Src alias the line passed to
// Parse (no copies, so zero allocations); a caller that keeps them past the
// line's lifetime copies them. Their capacity is capped at their length, so
// an append to one of them never writes into the rest of the line.
type Event struct {
	Time time.Time // the instant of the attempt, in the configured location
	Host []byte    // the reporting host (syslog HOST field)
	User []byte    // verbatim, may be empty, may contain spaces, any bytes
	Src  []byte    // the source address or host name, never "addr port N"
}

// Reason says why a line was skipped; OK means it counts.
type Reason uint8

// Skip reasons. Their String labels are stable: dashboards and alerts
// select on them.
const (
	OK             Reason = iota
	Empty                 // empty line (after dropping one trailing \r)
	TooLong               // longer than the caller's limit (the parser itself accepts any length; callers use this value)
	NoTimestamp           // does not start with a classic or RFC 3339 stamp
	BadTimestamp          // stamp-shaped but impossible (month 13, Feb 30, hour 24, second 60, ...)
	NotSyslog             // no HOST or TAG: after the stamp
	NotSSHD               // TAG is not sshd[PID] / sshd-session[PID]
	NotInvalidUser        // sshd line, but the message is not exactly "Invalid user USER from SRC[ port N]"
)

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
	}
	return "reason_" + strconv.Itoa(int(r))
}

// Reasons returns every skip reason (all but OK), so that metrics can create
// each label value up front. The slice is new on every call; callers may
// keep or modify it.
func Reasons() []Reason {
	return []Reason{Empty, TooLong, NoTimestamp, BadTimestamp, NotSyslog, NotSSHD, NotInvalidUser}
}

const (
	invalidUser = "Invalid user "
	fromSep     = " from "
	portWord    = "port "
)

// Parse reads one log line. ref is the reference time for year inference
// (now when live, the file's modification time with -f); loc is the
// configured zone for classic stamps and for RFC 3339 stamps without a zone;
// the returned Event.Time is in loc. A nil loc means UTC.
//
// Reasons are decided in line order: a line with an impossible stamp is
// BadTimestamp even when it is not an sshd line.
func Parse(line []byte, ref time.Time, loc *time.Location) (Event, Reason) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return Event{}, Empty
	}
	if loc == nil {
		loc = time.UTC
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

	t, ok := st.resolve(ref, loc)
	if !ok {
		return Event{}, BadTimestamp
	}
	return Event{Time: t, Host: host, User: user, Src: src}, OK
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
