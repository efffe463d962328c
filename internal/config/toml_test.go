package config

import (
	"strings"
	"testing"
)

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"expected value but found '=' instead", "expected value but found '=' instead"},
		{"invalid escape: '\\\x01'", `invalid escape: '\\u0001'`},
		{"bad \xff byte\n", `bad \xff byte\u000a`},
		{"é ok", "é ok"},
		{strings.Repeat("k", 400), strings.Repeat("k", 321) + "..."},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
