package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestFlagsAndUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"-h"}, 0, []string{"redis_d4", "redis_queue", "redis_parsers", "http_server", "analyzer.toml", "-f file", "-F", "-r d", "analyzer-d4-log.log"}},
		{[]string{"-o", "apache"}, 2, []string{`-o "apache": no such parser; parsers: sshd`}},
		{[]string{"-a", "-o", "sshd"}, 2, []string{"-a and -o exclude each other"}},
		{[]string{"-f", "x", "-F"}, 2, []string{"-f and -F exclude each other"}},
		{[]string{"-r", "-3"}, 2, []string{"-r:"}},
		{[]string{"-c", "testdata/none"}, 2, []string{"testdata/none: configuration directory does not exist"}},
		{[]string{"extra"}, 2, []string{`unexpected argument "extra"`}},
		{[]string{"-bogus"}, 2, []string{"flag provided but not defined: -bogus"}},
	} {
		var out bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d; output:\n%s", tc.args, code, tc.code, out.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}
