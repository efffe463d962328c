package config

import (
	"testing"
	"time"
)

func TestParseRetry(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"1", time.Minute},
		{"5", 5 * time.Minute},
		{"+2", 2 * time.Minute},
		{"30s", 30 * time.Second},
		{"1m30s", 90 * time.Second},
		{"250ms", 250 * time.Millisecond},
		{"100ms", 100 * time.Millisecond}, // the minimum
		{"0.1s", 100 * time.Millisecond},
		{"2h", 2 * time.Hour},
		// The longest wait in minutes that a time.Duration holds.
		{"153722867", 153722867 * time.Minute},
	} {
		got, err := ParseRetry(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRetry(%q) = %v, %v; want %v, nil", tc.in, got, err, tc.want)
		}
	}
}

func TestParseRetryErrors(t *testing.T) {
	const want = `; want whole minutes like 1, or a Go duration like "30s", at least 100ms`
	for _, tc := range []struct{ in, want string }{
		{"0", `retry wait "0" is zero` + want},
		{"0s", `retry wait "0s" is zero` + want},
		{"-0", `retry wait "-0" is zero` + want},
		{"-5", `retry wait "-5" is negative` + want},
		{"-5s", `retry wait "-5s" is negative` + want},
		{"-99999999999999999999", `retry wait "-99999999999999999999" is negative` + want},
		{"abc", `retry wait "abc" is neither whole minutes nor a Go duration` + want},
		{"1.5", `retry wait "1.5" is neither whole minutes nor a Go duration` + want},
		{" 1", `retry wait " 1" is neither whole minutes nor a Go duration` + want},
		{"", `retry wait "" is empty` + want},
		{"1ns", `retry wait "1ns" is shorter than 100ms` + want},
		{"99ms", `retry wait "99ms" is shorter than 100ms` + want},
		{"99999999ns", `retry wait "99999999ns" is shorter than 100ms` + want},
		{"153722868", `retry wait "153722868" minutes is too long` + want},
		{"99999999999999999999", `retry wait "99999999999999999999" minutes is too long` + want},
		{"9999999999h", `retry wait "9999999999h" is neither whole minutes nor a Go duration` + want},
	} {
		got, err := ParseRetry(tc.in)
		if err == nil {
			t.Errorf("ParseRetry(%q) = %v; want error %s", tc.in, got, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("ParseRetry(%q) error\n got: %s\nwant: %s", tc.in, err, tc.want)
		}
	}
}

func TestParseLogFile(t *testing.T) {
	for _, s := range []string{"-", "auth.log", "/var/log/auth.log", " "} {
		if got, err := ParseLogFile(s); err != nil || got != s {
			t.Errorf("ParseLogFile(%q) = %q, %v; want %q, nil", s, got, err, s)
		}
	}
	const want = `log file "" is empty; want the path of a file of log lines, or - for standard input`
	if got, err := ParseLogFile(""); err == nil || err.Error() != want {
		t.Errorf("ParseLogFile(\"\") = %q, %v; want error %s", got, err, want)
	}
}
