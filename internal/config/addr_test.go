package config

import (
	"strings"
	"testing"
)

func TestParseRedisAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		addr string
		n    int
	}{
		{"localhost:6380/2", "localhost:6380", 2},
		{"127.0.0.1:6500/16", "127.0.0.1:6500", 16},
		{"[::1]:6380/0", "[::1]:6380", 0},
		{"[fe80::1%eth0]:6380/3", "[fe80::1%eth0]:6380", 3},
		{"redis.example.org:65535/1024", "redis.example.org:65535", 1024},
		{"redis_counting:1/007", "redis_counting:1", 7},
		// n beyond any caller's range still parses: the range is the caller's.
		{"localhost:6380/99999", "localhost:6380", 99999},
	} {
		addr, n, err := ParseRedisAddr(tc.in)
		if err != nil || addr != tc.addr || n != tc.n {
			t.Errorf("ParseRedisAddr(%q) = %q, %d, %v; want %q, %d, nil", tc.in, addr, n, err, tc.addr, tc.n)
		}
	}
}

func TestParseRedisAddrErrors(t *testing.T) {
	const want = "; want host:port/n, like localhost:6380/2"
	for _, tc := range []struct{ in, want string }{
		{"localhost:6380", `redis address "localhost:6380" has no "/" after host:port` + want},
		{"", `redis address "" has no "/" after host:port` + want},
		{"localhost:6380/", `redis address "localhost:6380/" has "" after "/", not a decimal number` + want},
		{"localhost:6380/x", `redis address "localhost:6380/x" has "x" after "/", not a decimal number` + want},
		{"localhost:6380/+2", `redis address "localhost:6380/+2" has "+2" after "/", not a decimal number` + want},
		{"localhost:6380/-2", `redis address "localhost:6380/-2" has "-2" after "/", not a decimal number` + want},
		{"localhost:6380/ 2", `redis address "localhost:6380/ 2" has " 2" after "/", not a decimal number` + want},
		{"localhost:6380/99999999999999999999", `redis address "localhost:6380/99999999999999999999" has "99999999999999999999" after "/", too large a number` + want},
		{"localhost/2", `redis address "localhost/2" has no port` + want},
		{"localhost:/2", `redis address "localhost:/2" has port ""; want a port from 1 to 65535, like localhost:6380/2`},
		{"localhost:0/2", `redis address "localhost:0/2" has port "0"; want a port from 1 to 65535, like localhost:6380/2`},
		{"localhost:65536/2", `redis address "localhost:65536/2" has port "65536"; want a port from 1 to 65535, like localhost:6380/2`},
		{"localhost:000006380/2", `redis address "localhost:000006380/2" has port "000006380"; want a port from 1 to 65535, like localhost:6380/2`},
		{"localhost:-1/2", `redis address "localhost:-1/2" has port "-1"; want a port from 1 to 65535, like localhost:6380/2`},
		{":6380/2", `redis address ":6380/2" has no host` + want},
		{"[]:6380/2", `redis address "[]:6380/2" has no host` + want},
		{"local\x00host:6380/2", `redis address "local\x00host:6380/2" has host "local\x00host", not a host name or IP address` + want},
		{"10.0.0.256:6380/2", `redis address "10.0.0.256:6380/2" has host "10.0.0.256", not a host name or IP address` + want},
		{"user@host:6380/2", `redis address "user@host:6380/2" has host "user@host", not a host name or IP address` + want},
		{"::1:6380/2", `redis address "::1:6380/2" is not host:port (an IPv6 address goes in brackets, like [::1]:6380)` + want},
		{"a:b:6380/2", `redis address "a:b:6380/2" is not host:port` + want},
		{"[::1:6380/2", `redis address "[::1:6380/2" is not host:port` + want},
		{"[::1]/2", `redis address "[::1]/2" has no port` + want},
		{"[::1]x:6380/2", `redis address "[::1]x:6380/2" is not host:port` + want},
		{"[127.0.0.1]:6380/2", `redis address "[127.0.0.1]:6380/2" has host "127.0.0.1" in brackets, which are for IPv6 addresses only` + want},
		{"redis://localhost:6380/2", `redis address "redis://localhost:6380/2" is not host:port` + want},
		{strings.Repeat("a", 254) + ":6380/2", `redis address "` + strings.Repeat("a", 80) + `"... has host "` + strings.Repeat("a", 80) + `"..., not a host name or IP address` + want},
	} {
		addr, n, err := ParseRedisAddr(tc.in)
		if err == nil {
			t.Errorf("ParseRedisAddr(%q) = %q, %d; want error %s", tc.in, addr, n, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("ParseRedisAddr(%q) error\n got: %s\nwant: %s", tc.in, err, tc.want)
		}
	}
}

func TestCanonicalUUID(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{sampleQueue, sampleQueue, true},
		{strings.ToUpper(sampleQueue), sampleQueue, true},
		{"3a7b1a4e9f514c1ea3c22f0e8c9b6d11", "", false},
		{"{" + sampleQueue + "}", "", false},
		{"3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d1", "", false},
		{"3a7b1a4e-9f51-4c1e-a3c22f0e8c9b6d11-", "", false},
		{"3a7b1a4e-9f51-4c1e-a3c2-2f0e8c9b6d1\xc3", "", false},
	} {
		got, ok := canonicalUUID(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("canonicalUUID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
