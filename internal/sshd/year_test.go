package sshd_test

import (
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// TestYearInference pins the year rule for classic stamps: the latest year
// that puts the stamp at most 24 hours after the reference time, the
// reference being read in the configured zone.
func TestYearInference(t *testing.T) {
	tests := []struct {
		name  string
		ref   string // wall clock in the zone under test
		stamp string
		want  string // wall clock in the zone under test
	}{
		{"Dec 31 line read on Jan 1", "2026-01-01 00:30:00", "Dec 31 23:59:00", "2025-12-31 23:59:00"},
		{"Dec 31 line read on Jan 2", "2026-01-02 10:00:00", "Dec 31 08:00:00", "2025-12-31 08:00:00"},
		{"Jan 1 line read on Dec 31 late evening", "2025-12-31 23:50:00", "Jan  1 00:10:00", "2026-01-01 00:10:00"},
		{"Jan 1 line read on Dec 31 morning", "2025-12-31 08:00:00", "Jan  1 07:59:59", "2026-01-01 07:59:59"},
		{"Jan 1 line a day and a second ahead", "2025-12-31 08:00:00", "Jan  1 08:00:01", "2025-01-01 08:00:01"},
		{"same instant", "2026-03-15 12:00:00", "Mar 15 12:00:00", "2026-03-15 12:00:00"},
		{"ref+23h keeps the year", "2026-03-15 12:00:00", "Mar 16 11:00:00", "2026-03-16 11:00:00"},
		{"ref+24h exactly keeps the year", "2026-03-15 12:00:00", "Mar 16 12:00:00", "2026-03-16 12:00:00"},
		{"ref+24h+1s goes to last year", "2026-03-15 12:00:00", "Mar 16 12:00:01", "2025-03-16 12:00:01"},
		{"ref+25h goes to last year", "2026-03-15 12:00:00", "Mar 16 13:00:00", "2025-03-16 13:00:00"},
		{"earlier this year", "2026-03-15 12:00:00", "Jan 22 11:59:37", "2026-01-22 11:59:37"},
		{"later month is last year", "2026-03-15 12:00:00", "Nov  2 00:00:00", "2025-11-02 00:00:00"},
		{"backfill of last year's log in December", "2025-12-20 09:00:00", "Dec 19 23:00:00", "2025-12-19 23:00:00"},
		{"Feb 29 read in a common year", "2026-03-15 12:00:00", "Feb 29 10:00:00", "2024-02-29 10:00:00"},
		{"Feb 29 read in a leap year after it", "2024-03-01 00:00:00", "Feb 29 23:00:00", "2024-02-29 23:00:00"},
		{"Feb 29 within a day ahead", "2024-02-28 12:00:00", "Feb 29 11:00:00", "2024-02-29 11:00:00"},
		{"Feb 29 more than a day ahead", "2024-02-28 12:00:00", "Feb 29 13:00:00", "2020-02-29 13:00:00"},
		{"Feb 29 read in Jan of a leap year", "2024-01-10 00:00:00", "Feb 29 00:00:00", "2020-02-29 00:00:00"},
		{"Feb 29 across a century that is not leap", "2101-03-01 00:00:00", "Feb 29 00:00:00", "2096-02-29 00:00:00"},
		{"Feb 29 eight years back", "1904-01-01 00:00:00", "Feb 29 00:00:00", "1896-02-29 00:00:00"},
		{"Feb 28 in a leap year", "2024-03-15 12:00:00", "Feb 28 10:00:00", "2024-02-28 10:00:00"},
	}
	for _, zone := range []string{"UTC", "Europe/Luxembourg", "America/New_York"} {
		loc := mustZone(t, zone)
		for _, tc := range tests {
			t.Run(zone+"/"+tc.name, func(t *testing.T) {
				ref, err := time.ParseInLocation(time.DateTime, tc.ref, loc)
				if err != nil {
					t.Fatal(err)
				}
				want, err := time.ParseInLocation(time.DateTime, tc.want, loc)
				if err != nil {
					t.Fatal(err)
				}
				// The reference is handed over in UTC, as a caller may:
				// the parser must read it in loc itself.
				line := []byte(tc.stamp + " h sshd[1]: Invalid user bob from 192.0.2.1")
				ev, r := sshd.Parse(line, ref.UTC(), loc)
				if r != sshd.OK {
					t.Fatalf("reason %s, want ok", r)
				}
				if !ev.Time.Equal(want) || ev.Time.Location() != loc {
					t.Errorf("stamp %q read at %s: got %s, want %s",
						tc.stamp, tc.ref, ev.Time.Format(time.RFC3339), want.Format(time.RFC3339))
				}
			})
		}
	}
}

// TestYearInferenceReadsRefInZone covers a reference whose UTC year is
// already the next one while the configured zone is still in the old year.
func TestYearInferenceReadsRefInZone(t *testing.T) {
	ny := mustZone(t, "America/New_York")
	ref := time.Date(2026, time.January, 1, 3, 0, 0, 0, time.UTC) // Dec 31 22:00 in New York
	tests := []struct {
		stamp string
		loc   *time.Location
		want  time.Time
	}{
		{"Dec 31 21:00:00", ny, time.Date(2025, time.December, 31, 21, 0, 0, 0, ny)},
		{"Jan  1 12:00:00", ny, time.Date(2026, time.January, 1, 12, 0, 0, 0, ny)},
		{"Jan  1 23:00:00", ny, time.Date(2025, time.January, 1, 23, 0, 0, 0, ny)},
		{"Jan  1 02:00:00", time.UTC, time.Date(2026, time.January, 1, 2, 0, 0, 0, time.UTC)},
		{"Jan  2 04:00:00", time.UTC, time.Date(2025, time.January, 2, 4, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		ev, r := sshd.Parse([]byte(tc.stamp+" h sshd[1]: Invalid user bob from 192.0.2.1"), ref, tc.loc)
		if r != sshd.OK {
			t.Fatalf("%q: reason %s, want ok", tc.stamp, r)
		}
		if !ev.Time.Equal(tc.want) {
			t.Errorf("%q in %v read at %v: got %v, want %v", tc.stamp, tc.loc, ref, ev.Time, tc.want)
		}
	}
}

// TestYearInferenceAcrossDST checks that a stamp in the hour a clock skips or
// repeats still resolves to this year and is never pushed into another.
func TestYearInferenceAcrossDST(t *testing.T) {
	lux := mustZone(t, "Europe/Luxembourg")
	ref := time.Date(2026, time.November, 1, 0, 0, 0, 0, lux)
	for _, stamp := range []string{"Mar 29 02:30:00", "Oct 25 02:30:00"} {
		ev, r := sshd.Parse([]byte(stamp+" h sshd[1]: Invalid user bob from 192.0.2.1"), ref, lux)
		if r != sshd.OK {
			t.Fatalf("%q: reason %s, want ok", stamp, r)
		}
		if ev.Time.Year() != 2026 || ev.Time.After(ref) {
			t.Errorf("%q: got %v, want a 2026 instant before %v", stamp, ev.Time, ref)
		}
	}
}

// TestYearInferenceExtremeReference feeds references at the edges of what a
// caller could pass (a zero time from a failed stat, a far future) to check
// that inference neither panics nor breaks its own rule, and that an instant
// outside the years a YYYYMMDD day can name (0..9999) is skipped instead.
func TestYearInferenceExtremeReference(t *testing.T) {
	line := []byte("Feb 29 12:00:00 h sshd[1]: Invalid user bob from 192.0.2.1")
	for _, tc := range []struct {
		ref  time.Time
		want sshd.Reason
	}{
		{time.Time{}, sshd.OK}, // year 1: Feb 29 of year 0, a leap year
		{time.Date(-5, time.January, 1, 0, 0, 0, 0, time.UTC), sshd.TooOld},
		{time.Date(9999, time.December, 31, 23, 59, 59, 0, time.UTC), sshd.OK},
		{time.Date(1<<20, time.June, 1, 0, 0, 0, 0, time.UTC), sshd.Future},
	} {
		ev, r := sshd.New(sshd.Options{}).Parse(line, tc.ref)
		if r != tc.want {
			t.Errorf("ref %v: reason %s, want %s", tc.ref, r, tc.want)
			continue
		}
		if r != sshd.OK {
			continue
		}
		if ev.Time.Month() != time.February || ev.Time.Day() != 29 || ev.Time.After(tc.ref.Add(24*time.Hour)) ||
			ev.Time.Year() < 0 || ev.Time.Year() > 9999 {
			t.Errorf("ref %v: got %v, want a Feb 29 in years 0..9999 at most a day after the reference", tc.ref, ev.Time)
		}
	}
}
