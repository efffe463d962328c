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
		{[]string{"-h"}, 0, []string{"redis_d4", "redis_queue", "redis_parsers", "http_server", "analyzer.toml", "-f file", "-F", "-r d", "analyzer-d4-log.log", "-check-config", "SIGHUP reopens it"}},
		{[]string{"-check-config", "-c", "testdata/none"}, 2, []string{"testdata/none: configuration directory does not exist"}},
		{[]string{"-o", "apache"}, 2, []string{`-o: no parser named "apache"; parsers: sshd`}},
		{[]string{"-f", ""}, 2, []string{"-f needs a file name"}},
		{[]string{"-a", "-o", "sshd"}, 2, []string{"-a and -o exclude each other"}},
		{[]string{"-f", "x", "-F"}, 2, []string{"-f and -F exclude each other"}},
		{[]string{"-r", "-3"}, 2, []string{"-r:"}},
		{[]string{"-c", "testdata/none"}, 2, []string{"testdata/none: configuration directory does not exist"}},
		{[]string{"extra"}, 2, []string{`unexpected argument "extra"`}},
		{[]string{"-bogus"}, 2, []string{"flag provided but not defined: -bogus (-h lists the flags)"}},
	} {
		var out bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d; output:\n%s", tc.args, code, tc.code, out.String())
		}
		if tc.code == 2 && tc.args[0] != "-h" && strings.Count(strings.TrimSpace(out.String()), "\n") > 0 {
			t.Errorf("%v: a refusal is one line, got:\n%s", tc.args, out.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}
