package sshd_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests must not depend on the machine's zoneinfo

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %s: %v", name, err)
	}
	return loc
}

// bigUser is a 300 KB user name: attackers choose its length.
var bigUser = strings.Repeat("A", 300<<10)

func TestParse(t *testing.T) {
	utc := time.UTC
	lux := mustZone(t, "Europe/Luxembourg")
	ny := mustZone(t, "America/New_York")
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)

	const pre = "Jan 22 11:59:37 sigmund sshd[26514]: "
	const stamped = "2026-01-22T11:59:37Z" // the time of pre's stamp in UTC

	tests := []struct {
		name   string
		line   string
		loc    *time.Location // nil: UTC
		reason sshd.Reason
		host   string
		user   string
		src    string
		time   string // RFC 3339 with nanoseconds, in loc; "" skips the check
	}{
		// Stamps.
		{name: "space-padded day", line: "Jan  2 15:04:05 host sshd[1]: Invalid user bob from 192.0.2.1", host: "host", user: "bob", src: "192.0.2.1", time: "2026-01-02T15:04:05Z"},
		{name: "zero-padded day", line: "Aug 03 15:04:05 host sshd[1]: Invalid user bob from 192.0.2.1", host: "host", user: "bob", src: "192.0.2.1", time: "2025-08-03T15:04:05Z"},
		{name: "unpadded day", line: "Nov 2 15:04:05 host sshd[1]: Invalid user bob from 192.0.2.1", host: "host", user: "bob", src: "192.0.2.1", time: "2025-11-02T15:04:05Z"},
		{name: "many spaces after month", line: "Mar    9 01:02:03 host sshd[1]: Invalid user bob from 192.0.2.1", host: "host", user: "bob", src: "192.0.2.1", time: "2026-03-09T01:02:03Z"},
		{name: "zero-padded day after two spaces", line: "Mar  09 01:02:03 host sshd[1]: Invalid user bob from 192.0.2.1", host: "host", user: "bob", src: "192.0.2.1", time: "2026-03-09T01:02:03Z"},
		{name: "classic stamp read in zone", line: "Jan 22 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", loc: lux, host: "h", user: "bob", src: "192.0.2.1", time: "2026-01-22T11:59:37+01:00"},
		{name: "classic stamp in summer time", line: "Jul 22 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", loc: ny, host: "h", user: "bob", src: "192.0.2.1", time: "2025-07-22T11:59:37-04:00"},
		{name: "rfc3339 fraction and Z", line: "2026-01-22T11:59:37.123456Z h sshd[1]: Invalid user bob from 192.0.2.1", host: "h", user: "bob", src: "192.0.2.1", time: "2026-01-22T11:59:37.123456Z"},
		{name: "rfc3339 Z converted to zone", line: "2026-01-22T11:59:37Z h sshd[1]: Invalid user bob from 192.0.2.1", loc: lux, host: "h", user: "bob", src: "192.0.2.1", time: "2026-01-22T12:59:37+01:00"},
		{name: "rfc3339 +01:30 converted to zone", line: "2019-06-14T13:01:15.412+01:30 h sshd[1]: Invalid user bob from 192.0.2.1", loc: lux, host: "h", user: "bob", src: "192.0.2.1", time: "2019-06-14T13:31:15.412+02:00"},
		{name: "rfc3339 offset moves the day", line: "2026-01-01T01:30:00+01:00 h sshd[1]: Invalid user bob from 192.0.2.1", loc: ny, host: "h", user: "bob", src: "192.0.2.1", time: "2025-12-31T19:30:00-05:00"},
		{name: "rfc3339 negative offset", line: "2026-01-22T06:59:37-05:00 h sshd[1]: Invalid user bob from 192.0.2.1", host: "h", user: "bob", src: "192.0.2.1", time: "2026-01-22T11:59:37Z"},
		{name: "rfc3339 without zone read in zone", line: "2019-06-14T10:40:20.912134 h sshd[1]: Invalid user bob from 192.0.2.1", loc: lux, host: "h", user: "bob", src: "192.0.2.1", time: "2019-06-14T10:40:20.912134+02:00"},
		{name: "rfc3339 long fraction truncated", line: "2026-01-22T11:59:37.1234567891234Z h sshd[1]: Invalid user bob from 192.0.2.1", host: "h", user: "bob", src: "192.0.2.1", time: "2026-01-22T11:59:37.123456789Z"},
		{name: "rfc3339 Feb 29 of a leap year", line: "2024-02-29T00:00:00Z h sshd[1]: Invalid user bob from 192.0.2.1", host: "h", user: "bob", src: "192.0.2.1", time: "2024-02-29T00:00:00Z"},
		{name: "rfc3339 years are not inferred", line: "1999-12-31T23:59:59Z h sshd[1]: Invalid user bob from 192.0.2.1", host: "h", user: "bob", src: "192.0.2.1", time: "1999-12-31T23:59:59Z"},

		// Tags, messages and fields.
		{name: "sshd-session", line: "Feb 12 14:10:24 sd-126005 sshd-session[16379]: Invalid user pascal5 from 192.168.1.3 port 53502", host: "sd-126005", user: "pascal5", src: "192.168.1.3", time: "2026-02-12T14:10:24Z"},
		{name: "without port", line: pre + "Invalid user git from 106.12.14.144", host: "sigmund", user: "git", src: "106.12.14.144", time: stamped},
		{name: "with port", line: pre + "Invalid user git from 106.12.14.144 port 53502", host: "sigmund", user: "git", src: "106.12.14.144", time: stamped},
		{name: "empty user", line: pre + "Invalid user  from 192.0.2.68 port 34916", host: "sigmund", user: "", src: "192.0.2.68"},
		{name: "user with spaces", line: pre + "Invalid user  john  smith from 192.0.2.1 port 22", host: "sigmund", user: " john  smith", src: "192.0.2.1"},
		{name: "user containing from: last wins", line: pre + "Invalid user x from 10.10.1.1 from 127.0.0.1 port 58946", host: "sigmund", user: "x from 10.10.1.1", src: "127.0.0.1"},
		{name: "user ending in from", line: pre + "Invalid user a from from 192.0.2.1", host: "sigmund", user: "a from", src: "192.0.2.1"},
		{name: "ipv6 source", line: pre + "Invalid user admin from 2001:db8::1 port 50273", host: "sigmund", user: "admin", src: "2001:db8::1"},
		{name: "mapped ipv6 source", line: pre + "Invalid user admin from ::ffff:198.51.100.7", host: "sigmund", user: "admin", src: "::ffff:198.51.100.7"},
		{name: "host-name source", line: pre + "Invalid user oracle from scanner.example.com port 22", host: "sigmund", user: "oracle", src: "scanner.example.com"},
		{name: "dotted reporting host", line: "Apr 29 17:16:20 Jamess-iMac.local sshd[62312]: Invalid user james from 192.0.2.9", host: "Jamess-iMac.local", user: "james", src: "192.0.2.9"},
		{name: "ip as reporting host", line: "Apr 29 17:16:20 192.168.1.5 sshd[62312]: Invalid user james from 192.0.2.9", host: "192.168.1.5", user: "james", src: "192.0.2.9"},
		{name: "invalid utf-8 in user", line: pre + "Invalid user llinco\xf1ir\xff from 192.0.2.0", host: "sigmund", user: "llinco\xf1ir\xff", src: "192.0.2.0"},
		{name: "sshd octal escape kept", line: pre + `Invalid user llinco\361ir from 192.0.2.0`, host: "sigmund", user: `llinco\361ir`, src: "192.0.2.0"},
		{name: "nul and markup in user", line: pre + "Invalid user <b>\x00\"'& from 192.0.2.0", host: "sigmund", user: "<b>\x00\"'&", src: "192.0.2.0"},
		{name: "utf-8 user", line: pre + "Invalid user josé from 192.0.2.0", host: "sigmund", user: "josé", src: "192.0.2.0"},
		{name: "300 KB user", line: pre + "Invalid user " + bigUser + " from 192.0.2.0 port 22", host: "sigmund", user: bigUser, src: "192.0.2.0"},
		{name: "crlf", line: pre + "Invalid user bob from 192.0.2.1 port 22\r", host: "sigmund", user: "bob", src: "192.0.2.1"},
		{name: "raw 0xa0 byte in source is not space", line: pre + "Invalid user bob from 192.0.2.1\xa0", host: "sigmund", user: "bob", src: "192.0.2.1\xa0"},
		{name: "non-ascii source", line: pre + "Invalid user bob from bücher.example", host: "sigmund", user: "bob", src: "bücher.example"},
		{name: "source named port", line: pre + "Invalid user bob from port", host: "sigmund", user: "bob", src: "port"},
		{name: "user is from", line: pre + "Invalid user from from 192.0.2.1", host: "sigmund", user: "from", src: "192.0.2.1"},
		{name: "control byte in host", line: "Jan 22 11:59:37 a\x1cb sshd[1]: Invalid user bob from 192.0.2.1", host: "a\x1cb", user: "bob", src: "192.0.2.1"},

		// Skipped: empty.
		{name: "empty", line: "", reason: sshd.Empty},
		{name: "lone cr", line: "\r", reason: sshd.Empty},

		// Skipped: no timestamp.
		{name: "no stamp", line: "hello world", reason: sshd.NoTimestamp},
		{name: "lower-case month", line: "jan 22 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "three-digit day", line: "Jan 122 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "no day", line: "Jan  11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "two spaces before clock", line: "Jan 22  11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "short clock", line: "Jan 22 11:59:7 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "clock runs on", line: "Jan 22 11:59:370 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "truncated classic stamp", line: "Jan 22 11:5", reason: sshd.NoTimestamp},
		{name: "month only", line: "Jan", reason: sshd.NoTimestamp},
		{name: "leading space", line: " Jan 22 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "rfc5424 priority", line: "<38>1 2019-07-08T10:00:00Z h sshd 44255 - - Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "space instead of T", line: "2020-03-23 06:47:42.801612-0700 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "lower-case t", line: "2026-01-22t11:59:37Z h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "offset without colon", line: "2026-01-22T11:59:37+0100 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "empty fraction", line: "2026-01-22T11:59:37.Z h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "lower-case z", line: "2026-01-22T11:59:37z h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "rfc3339 runs on", line: "2026-01-22T11:59:37Zx h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},
		{name: "truncated rfc3339", line: "2026-01-22T11:59", reason: sshd.NoTimestamp},
		{name: "comma fraction", line: "2026-01-22T11:59:37,5Z h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NoTimestamp},

		// Skipped: impossible stamps.
		{name: "Feb 30", line: "Feb 30 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "Apr 31", line: "Apr 31 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "day 0", line: "Jan  0 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "day 00", line: "Jan 00 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "day 32", line: "Jan 32 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "hour 24", line: "Jan 22 24:00:00 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "minute 60", line: "Jan 22 23:60:00 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "second 60", line: "Dec 31 23:59:60 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "bad stamp wins over bad tag", line: "Feb 30 11:59:37 h sudo: x", reason: sshd.BadTimestamp},
		{name: "rfc3339 month 13", line: "2026-13-01T11:59:37Z h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "rfc3339 month 0", line: "2026-00-01T11:59:37Z h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "rfc3339 Feb 29 of a common year", line: "2025-02-29T11:59:37Z h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "rfc3339 hour 25", line: "2026-01-22T25:59:37Z h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "rfc3339 offset hour 24", line: "2026-01-22T11:59:37+24:00 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},
		{name: "rfc3339 offset minute 60", line: "2026-01-22T11:59:37-01:60 h sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.BadTimestamp},

		// Skipped: not syslog-shaped after the stamp.
		{name: "stamp alone", line: "Jan 22 11:59:37", reason: sshd.NotSyslog},
		{name: "stamp and space", line: "Jan 22 11:59:37 ", reason: sshd.NotSyslog},
		{name: "rfc3339 stamp alone", line: "2026-01-22T11:59:37Z", reason: sshd.NotSyslog},
		{name: "no host (two spaces)", line: "Jan 22 11:59:37  sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "no host (tag in its place)", line: "Nov 23 21:50:37 sshd[8148]: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "bracketed tag without host", line: "Mar  3 00:17:22 [sshd]: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "tab in host", line: "Jan 22 11:59:37 a\tb sshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "host only", line: "Jan 22 11:59:37 host", reason: sshd.NotSyslog},
		{name: "no tag colon", line: "Jan 22 11:59:37 host sshd[1] Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "colon without space", line: "Jan 22 11:59:37 host sshd[1]:Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "empty tag", line: "Jan 22 11:59:37 host : Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "tag with space", line: "Jan 22 11:59:37 host sshd [1]: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "empty pid", line: "Jan 22 11:59:37 host sshd[]: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "pid not digits", line: "Jan 22 11:59:37 host sshd[12a]: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "two pids", line: "Jan 22 11:59:37 host sshd[1][2]: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},
		{name: "colon in tag", line: "Jan 22 11:59:37 host sshd:x: Invalid user bob from 192.0.2.1", reason: sshd.NotSyslog},

		// Skipped: not sshd.
		{name: "sudo", line: "Feb 21 23:35:33 localhost sudo: vagrant : TTY=pts/0 ; USER=root", reason: sshd.NotSSHD},
		{name: "other program with pid", line: "Feb 22 11:47:05 localhost useradd[6995]: Invalid user bob from 192.0.2.1", reason: sshd.NotSSHD},
		{name: "sshd without pid", line: "Jan 22 11:59:37 host sshd: Invalid user bob from 192.0.2.1", reason: sshd.NotSSHD},
		{name: "sshd-session without pid", line: "Jan 22 11:59:37 host sshd-session: Invalid user bob from 192.0.2.1", reason: sshd.NotSSHD},
		{name: "prefixed sshd", line: "Jan 22 11:59:37 host xsshd[1]: Invalid user bob from 192.0.2.1", reason: sshd.NotSSHD},
		{name: "suffixed sshd", line: "Jan 22 11:59:37 host sshdx[1]: Invalid user bob from 192.0.2.1", reason: sshd.NotSSHD},
		{name: "upper-case sshd", line: "Jan 22 11:59:37 host SSHD[1]: Invalid user bob from 192.0.2.1", reason: sshd.NotSSHD},

		// Skipped: sshd, but not exactly an "Invalid user" line.
		{name: "trailing space", line: pre + "Invalid user bob from 192.0.2.1 ", reason: sshd.NotInvalidUser},
		{name: "trailing space after port", line: pre + "Invalid user bob from 192.0.2.1 port 22 ", reason: sshd.NotInvalidUser},
		{name: "preauth", line: pre + "Invalid user bob from 192.0.2.1 port 22 [preauth]", reason: sshd.NotInvalidUser},
		{name: "port without digits", line: pre + "Invalid user bob from 192.0.2.1 port", reason: sshd.NotInvalidUser},
		{name: "port with space only", line: pre + "Invalid user bob from 192.0.2.1 port ", reason: sshd.NotInvalidUser},
		{name: "port not a number", line: pre + "Invalid user bob from 192.0.2.1 port x22", reason: sshd.NotInvalidUser},
		{name: "port then ssh2", line: pre + "Invalid user bob from 192.0.2.1 port 22 ssh2", reason: sshd.NotInvalidUser},
		{name: "two spaces before port", line: pre + "Invalid user bob from 192.0.2.1  port 22", reason: sshd.NotInvalidUser},
		{name: "empty source", line: pre + "Invalid user bob from ", reason: sshd.NotInvalidUser},
		{name: "empty source before port", line: pre + "Invalid user bob from  port 22", reason: sshd.NotInvalidUser},
		{name: "two crs", line: pre + "Invalid user bob from 192.0.2.1\r\r", reason: sshd.NotInvalidUser},
		{name: "tab in source", line: pre + "Invalid user bob from 192.0.2.1\t", reason: sshd.NotInvalidUser},
		{name: "nbsp in source", line: pre + "Invalid user bob from 192.0.2.1\u00a0x", reason: sshd.NotInvalidUser},
		{name: "ideographic space in source", line: pre + "Invalid user bob from a\u3000b", reason: sshd.NotInvalidUser},
		{name: "unit separator in source", line: pre + "Invalid user bob from a\x1fb", reason: sshd.NotInvalidUser},
		{name: "no from", line: pre + "Invalid user bob", reason: sshd.NotInvalidUser},
		{name: "single space before from", line: pre + "Invalid user from 192.0.2.1", reason: sshd.NotInvalidUser},
		{name: "lower-case invalid", line: pre + "invalid user bob from 192.0.2.1", reason: sshd.NotInvalidUser},
		{name: "failed password follow-up", line: pre + "Failed password for invalid user bob from 192.0.2.1 port 22 ssh2", reason: sshd.NotInvalidUser},
		{name: "connection closed follow-up", line: pre + "Connection closed by invalid user  192.0.2.1 port 22 [preauth]", reason: sshd.NotInvalidUser},
		{name: "solaris prefix", line: pre + "[ID 800047 auth.info] Invalid user bob from 192.0.2.1", reason: sshd.NotInvalidUser},
		{name: "illegal user", line: pre + "Illegal user bob from 192.0.2.1", reason: sshd.NotInvalidUser},
		{name: "two spaces after tag", line: pre + " Invalid user bob from 192.0.2.1", reason: sshd.NotInvalidUser},
		{name: "empty message", line: pre, reason: sshd.NotInvalidUser},
		{name: "300 KB user then preauth", line: pre + "Invalid user " + bigUser + " from 192.0.2.0 [preauth]", reason: sshd.NotInvalidUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			loc := tc.loc
			if loc == nil {
				loc = utc
			}
			line := []byte(tc.line)
			orig := bytes.Clone(line)
			ev, r := sshd.New(sshd.Options{Location: tc.loc}).Parse(line, ref)
			if !bytes.Equal(line, orig) {
				t.Fatalf("Parse modified its input")
			}
			// The package-level Parse is the same parser without options.
			ev2, r2 := sshd.Parse(line, ref, tc.loc)
			if r2 != r || !ev2.Time.Equal(ev.Time) || ev2.Time.Location() != ev.Time.Location() ||
				!bytes.Equal(ev2.Host, ev.Host) || !bytes.Equal(ev2.User, ev.User) || !bytes.Equal(ev2.Src, ev.Src) {
				t.Errorf("package-level Parse: reason %s event %.200v; Parser: reason %s event %.200v", r2, ev2, r, ev)
			}
			if r != tc.reason {
				t.Fatalf("reason %s, want %s\n  line: %.200q", r, tc.reason, tc.line)
			}
			if r != sshd.OK {
				if ev.Host != nil || ev.User != nil || ev.Src != nil || !ev.Time.IsZero() {
					t.Errorf("skipped line returned a non-empty event %+v", ev)
				}
				return
			}
			if string(ev.Host) != tc.host {
				t.Errorf("host %q, want %q", ev.Host, tc.host)
			}
			if string(ev.User) != tc.user {
				t.Errorf("user %.80q (%d bytes), want %.80q (%d bytes)", ev.User, len(ev.User), tc.user, len(tc.user))
			}
			if string(ev.Src) != tc.src {
				t.Errorf("src %q, want %q", ev.Src, tc.src)
			}
			if ev.Time.Location() != loc {
				t.Errorf("time in %v, want %v", ev.Time.Location(), loc)
			}
			if tc.time != "" {
				if got := ev.Time.Format(time.RFC3339Nano); got != tc.time {
					t.Errorf("time %s, want %s", got, tc.time)
				}
			}
			for _, f := range []struct {
				name string
				b    []byte
			}{{"host", ev.Host}, {"user", ev.User}, {"src", ev.Src}} {
				if !aliases(line, f.b) {
					t.Errorf("%s is not a sub-slice of the line", f.name)
				}
				if cap(f.b) != len(f.b) {
					t.Errorf("%s has capacity %d past its length %d: an append would overwrite the line", f.name, cap(f.b), len(f.b))
				}
			}
		})
	}
}

// aliases reports whether sub lies within line's memory. An empty sub has no
// bytes to alias and passes.
func aliases(line, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	for i := range line {
		if &line[i] == &sub[0] {
			return i+len(sub) <= len(line)
		}
	}
	return false
}

func TestParseNilLocationIsUTC(t *testing.T) {
	ev, r := sshd.Parse([]byte("Jan 22 11:59:37 h sshd[1]: Invalid user bob from 192.0.2.1"),
		time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC), nil)
	if r != sshd.OK {
		t.Fatalf("reason %s, want ok", r)
	}
	if ev.Time.Location() != time.UTC || !ev.Time.Equal(time.Date(2026, 1, 22, 11, 59, 37, 0, time.UTC)) {
		t.Errorf("time %v, want 2026-01-22 11:59:37 UTC", ev.Time)
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	lux := mustZone(t, "Europe/Luxembourg")
	long := strings.Repeat("é", 2000)
	lines := []string{
		"Jan 22 11:59:37 sigmund sshd[26514]: Invalid user git from 106.12.14.144 port 53502",
		"Dec 31 23:59:59 sigmund sshd-session[1]: Invalid user  from 2001:db8::1",
		"2026-01-22T11:59:37.123456+01:00 srv sshd[12671]: Invalid user opcione from 192.241.237.101",
		"2019-06-14T10:40:20.912134 localhost sshd[1]: Invalid user a b from x.example port 22",
		"Feb 22 16:45:20 slave22 sshd[2738]: Failed password for root from 202.109.143.106 port 1786 ssh2",
		"Feb 21 23:35:33 localhost sudo: vagrant : TTY=pts/0",
		"2099-01-01T00:00:00Z h sshd[1]: Invalid user future from 192.0.2.1",
		"1999-01-01T00:00:00Z h sshd[1]: Invalid user old from 192.0.2.1",
		// Capped values: the scratch buffer is allocated by the warm-up
		// run of AllocsPerRun, and reused from then on.
		"Jan 22 11:59:37 " + long + " sshd[1]: Invalid user " + long + " from " + long + " port 22",
	}
	for _, loc := range []*time.Location{time.UTC, lux} {
		p := sshd.New(sshd.Options{Location: loc, MaxAge: 3650 * 24 * time.Hour, MaxValueBytes: 1024})
		for _, l := range lines {
			b := []byte(l)
			if n := testing.AllocsPerRun(100, func() { p.Parse(b, ref) }); n != 0 {
				t.Errorf("Parser: %d allocations per line in %v, want 0\n  line: %.200s", int(n), loc, l)
			}
			if n := testing.AllocsPerRun(100, func() { sshd.Parse(b, ref, loc) }); n != 0 {
				t.Errorf("package-level Parse: %d allocations per line in %v, want 0\n  line: %.200s", int(n), loc, l)
			}
		}
	}
}

func TestReasonStrings(t *testing.T) {
	want := map[sshd.Reason]string{
		sshd.OK:             "ok",
		sshd.Empty:          "empty",
		sshd.TooLong:        "too_long",
		sshd.NoTimestamp:    "no_timestamp",
		sshd.BadTimestamp:   "bad_timestamp",
		sshd.NotSyslog:      "not_syslog",
		sshd.NotSSHD:        "not_sshd",
		sshd.NotInvalidUser: "not_invalid_user",
		sshd.Future:         "future",
		sshd.TooOld:         "too_old",
	}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("Reason(%d).String() = %q, want %q", r, r.String(), s)
		}
	}
	if s := sshd.Reason(200).String(); s == "" || s == "ok" {
		t.Errorf("an unknown reason reads %q; it must not pass for a known one", s)
	}

	if sshd.NumReasons != len(want) {
		t.Errorf("NumReasons = %d; want %d, one per reason", sshd.NumReasons, len(want))
	}
	for r := range sshd.NumReasons {
		if _, known := want[sshd.Reason(r)]; !known {
			t.Errorf("Reason(%d), below NumReasons, has no stable label", r)
		}
	}

	got := sshd.Reasons()
	if len(got) != len(want)-1 {
		t.Fatalf("Reasons() = %v: want every reason but ok, %d of them", got, len(want)-1)
	}
	seen := map[sshd.Reason]bool{}
	for _, r := range got {
		if r == sshd.OK || seen[r] {
			t.Errorf("Reasons() = %v: ok or a duplicate in it", got)
		}
		if _, known := want[r]; !known {
			t.Errorf("Reasons() holds unknown reason %d", r)
		}
		seen[r] = true
	}
	got[0] = sshd.OK
	if sshd.Reasons()[0] == sshd.OK {
		t.Errorf("Reasons() shares its slice between calls")
	}
}
