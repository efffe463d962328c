package sshd_test

import (
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// TestParseAge pins the Future and TooOld rules of SPEC §5: a counting line
// stamped more than a day after the reference, or more than MaxAge before
// it, is skipped; the boundaries themselves still count.
func TestParseAge(t *testing.T) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	lux := mustZone(t, "Europe/Luxembourg")
	ny := mustZone(t, "America/New_York")
	const tenDays = 10 * 24 * time.Hour
	const msg = " h sshd[1]: Invalid user bob from 192.0.2.1"
	// stamp writes an instant relative to ref as an RFC 3339 stamp, so the
	// boundaries below follow ref and MaxAge instead of being worked out by
	// hand.
	stamp := func(d time.Duration) string { return ref.Add(d).Format(time.RFC3339Nano) }

	tests := []struct {
		name   string
		line   string
		ref    time.Time // zero: ref
		opts   sshd.Options
		reason sshd.Reason
		time   string // RFC 3339 in the parser's zone when the line counts
	}{
		// Future.
		{name: "a day ahead still counts", line: stamp(24*time.Hour) + msg, reason: sshd.OK, time: "2026-03-16T12:00:00Z"},
		{name: "a day and a nanosecond ahead", line: stamp(24*time.Hour+1) + msg, reason: sshd.Future},
		{name: "offset form at the boundary", line: "2026-03-16T13:00:00+01:00" + msg, reason: sshd.OK, time: "2026-03-16T12:00:00Z"},
		{name: "offset form past the boundary", line: "2026-03-16T13:00:01+01:00" + msg, reason: sshd.Future},
		{name: "forged 2099", line: "2099-01-01T00:00:00Z" + msg, reason: sshd.Future},
		{name: "year 9999 that is 10000 in UTC", line: "9999-12-31T23:59:59-01:00" + msg, reason: sshd.Future},
		{name: "year 10000 even within a day of the reference",
			line: "9999-12-31T23:59:59-01:00" + msg, ref: time.Date(9999, time.December, 31, 23, 30, 0, 0, time.UTC), reason: sshd.Future},
		{name: "year 9999 within a day of the reference",
			line: "9999-12-31T23:59:59+01:00" + msg, ref: time.Date(9999, time.December, 31, 23, 30, 0, 0, time.UTC), reason: sshd.OK, time: "9999-12-31T22:59:59Z"},
		{name: "unzoned stamp read in an eastern zone counts", line: "2026-03-16T12:30:00" + msg, opts: sshd.Options{Location: lux},
			reason: sshd.OK, time: "2026-03-16T12:30:00+01:00"},
		{name: "unzoned stamp read in a western zone is ahead", line: "2026-03-16T12:30:00" + msg, opts: sshd.Options{Location: ny}, reason: sshd.Future},
		{name: "classic stamp a day ahead keeps the year", line: "Mar 16 12:00:00" + msg, reason: sshd.OK, time: "2026-03-16T12:00:00Z"},
		{name: "classic stamp further ahead is last year, not future", line: "Mar 16 12:00:01" + msg, reason: sshd.OK, time: "2025-03-16T12:00:01Z"},
		{name: "future stamp on another program", line: "2099-01-01T00:00:00Z h sudo: x", reason: sshd.NotSSHD},
		{name: "future stamp on a follow-up", line: "2099-01-01T00:00:00Z h sshd[1]: Failed password for invalid user bob from 192.0.2.1 port 22 ssh2", reason: sshd.NotInvalidUser},

		// TooOld.
		{name: "exactly MaxAge old counts", line: stamp(-tenDays) + msg, opts: sshd.Options{MaxAge: tenDays}, reason: sshd.OK, time: "2026-03-05T12:00:00Z"},
		{name: "a nanosecond older than MaxAge", line: stamp(-tenDays-1) + msg, opts: sshd.Options{MaxAge: tenDays}, reason: sshd.TooOld},
		{name: "classic stamp at MaxAge", line: "Mar  5 12:00:00" + msg, opts: sshd.Options{MaxAge: tenDays}, reason: sshd.OK, time: "2026-03-05T12:00:00Z"},
		{name: "classic stamp past MaxAge", line: "Mar  5 11:59:59" + msg, opts: sshd.Options{MaxAge: tenDays}, reason: sshd.TooOld},
		{name: "classic stamp put in last year by inference", line: "Mar 16 12:00:01" + msg, opts: sshd.Options{MaxAge: tenDays}, reason: sshd.TooOld},
		{name: "classic stamp in the zone at MaxAge", line: "Mar  5 13:00:00" + msg, opts: sshd.Options{Location: lux, MaxAge: tenDays},
			reason: sshd.OK, time: "2026-03-05T13:00:00+01:00"},
		{name: "classic stamp in the zone past MaxAge", line: "Mar  5 12:59:59" + msg, opts: sshd.Options{Location: lux, MaxAge: tenDays}, reason: sshd.TooOld},
		{name: "1970 with the default limit", line: "1970-01-01T00:00:00Z" + msg, opts: sshd.Options{MaxAge: 3650 * 24 * time.Hour}, reason: sshd.TooOld},
		{name: "1970 without a limit", line: "1970-01-01T00:00:00Z" + msg, reason: sshd.OK, time: "1970-01-01T00:00:00Z"},
		{name: "negative MaxAge is no limit", line: "1970-01-01T00:00:00Z" + msg, opts: sshd.Options{MaxAge: -time.Hour}, reason: sshd.OK, time: "1970-01-01T00:00:00Z"},
		{name: "year 0 without a limit", line: "0000-01-01T00:00:00Z" + msg, reason: sshd.OK, time: "0000-01-01T00:00:00Z"},
		{name: "year 0 that is year -1 in UTC", line: "0000-01-01T00:00:00+00:01" + msg, reason: sshd.TooOld},
		{name: "old stamp on another program", line: "1970-01-01T00:00:00Z h sudo: x", opts: sshd.Options{MaxAge: tenDays}, reason: sshd.NotSSHD},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r0 := tc.ref
			if r0.IsZero() {
				r0 = ref
			}
			ev, r := sshd.New(tc.opts).Parse([]byte(tc.line), r0)
			if r != tc.reason {
				t.Fatalf("reason %s, want %s (time %v)\n  line: %q", r, tc.reason, ev.Time, tc.line)
			}
			if r != sshd.OK {
				if ev.Host != nil || ev.User != nil || ev.Src != nil || !ev.Time.IsZero() {
					t.Errorf("skipped line returned a non-empty event %+v", ev)
				}
				return
			}
			if got := ev.Time.Format(time.RFC3339Nano); got != tc.time {
				t.Errorf("time %s, want %s", got, tc.time)
			}
		})
	}
}
