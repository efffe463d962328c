package render

import (
	"bytes"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// visibleText is the plain form of visiblePieces, ellipsis included.
func visibleText(s string) string {
	ps, cut := visiblePieces(s)
	if cut {
		ps = append(ps, piece{"…", marker})
	}
	return joinPieces(ps)
}

func TestVisibleText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"root", "root"},
		{"", ""},
		{"a b", "a b"},
		{" a", `\x20a`},
		{"a ", `a\x20`},
		{"  ", `\x20\x20`},
		{"a\tb\nc\rd", `a\tb\nc\rd`},
		{"\x00\x01\x1f\x7f", `\x00\x01\x1f\x7f`},
		{"\u0080\u0085\u009f", `\u0080\u0085\u009f`},
		{"\xff", `\xff`},
		{"\xc3", `\xc3`},                         // truncated sequence
		{"\xc0\xaf", `\xc0\xaf`},                 // overlong slash
		{"\xed\xa0\x80", `\xed\xa0\x80`},         // surrogate
		{"\xf4\x90\x80\x80", `\xf4\x90\x80\x80`}, // beyond U+10FFFF
		{"é", "é"},
		{"日本", "日本"},
		{"\u202e", `\u202e`},
		{"\u202a\u202b\u202c\u202d", `\u202a\u202b\u202c\u202d`},
		{"\u2066\u2067\u2068\u2069", `\u2066\u2067\u2068\u2069`},
		{"\u200e\u200f\u061c", `\u200e\u200f\u061c`},
		{"a\u200bb\u200dc\u2060d\ufeff", `a\u200bb\u200dc\u2060d\ufeff`},
		{"\u2028\u2029", `\u2028\u2029`},
		{"\u00a0\u2003\u3000", `\u00a0\u2003\u3000`},
		{"\ufffe\uffff\ufdd0", `\ufffe\uffff\ufdd0`},
		{"\U0001fffe", `\U0001fffe`},
		{"\U000e0001", `\U000e0001`},
		{"\u3164\u115f", `\u3164\u115f`},
		{`a\x00`, `a\\x00`},  // typed by the attacker, told apart from a real NUL
		{"\ufffd", "\ufffd"}, // a real replacement character is a character
		{"a\u0301\u0301\u0301\u0301", "a\u0301\u0301\u0301" + `\u0301`},
		{"\u0301a", `\u0301a`},
		{"\x00\u0301", `\x00\u0301`},
		{"e\u0301", "e\u0301"},
		{"😀", "😀"},
		{"</text>&", "</text>&"}, // XML escaping happens later, once
	}
	for _, tt := range tests {
		if got := visibleText(tt.in); got != tt.want {
			t.Errorf("visibleText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVisibleTextBounded(t *testing.T) {
	got := visibleText(strings.Repeat("\x00", 1<<20))
	if !strings.HasSuffix(got, "…") || len(got) > maxPieces*4+8 {
		t.Errorf("1 MiB of NUL gave %d bytes ending %q", len(got), got[len(got)-8:])
	}
	ps, cut := visiblePieces(strings.Repeat("x", maxPieces))
	if cut || len(ps) != maxPieces {
		t.Errorf("exactly maxPieces: cut=%v len=%d", cut, len(ps))
	}
}

func TestFitPieces(t *testing.T) {
	oneEach := func(s string) float64 { return float64(utf8.RuneCountInString(s)) }
	ps, cut := visiblePieces("ab\x00cd")
	tests := []struct {
		room float64
		want string
	}{
		{100, `ab\x00cd`},
		{8, `ab\x00cd`},
		{7, `ab\x00…`},
		{6, `ab…`}, // never half an escape
		{3, "ab…"},
		{1, "…"},
		{0, "…"},
	}
	for _, tt := range tests {
		if got := joinPieces(fitPieces(ps, cut, tt.room, oneEach)); got != tt.want {
			t.Errorf("room %v: %q, want %q", tt.room, got, tt.want)
		}
	}
	ps, cut = visiblePieces(strings.Repeat("y", 300))
	if got := joinPieces(fitPieces(ps, cut, 1000, oneEach)); got != strings.Repeat("y", maxPieces)+"…" {
		t.Errorf("a value cut by visiblePieces must end with an ellipsis, got %q", got)
	}
}

func TestPiecesMarkup(t *testing.T) {
	ps, _ := visiblePieces("<a>\x00\x01&\u202e")
	ps = append(ps, piece{"…", marker})
	got := piecesMarkup(ps)
	want := `&lt;a&gt;<tspan fill="#b42318">\x00\x01</tspan>&amp;<tspan fill="#b42318">\u202e</tspan><tspan fill="#6b7280">…</tspan>`
	if got != want {
		t.Errorf("markup\n got %s\nwant %s", got, want)
	}
}

// FuzzVisibleText: whatever the bytes, the shown form is valid UTF-8 with
// nothing invisible, layout-changing or XML-forbidden left in it, and it
// maps back to the input unless it was cut.
func FuzzVisibleText(f *testing.F) {
	for _, v := range hostileValues() {
		if len(v) < 4096 {
			f.Add(v)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, cut := visiblePieces(s)
		got := joinPieces(ps)
		if !utf8.ValidString(got) {
			t.Fatalf("not UTF-8: %q", got)
		}
		for _, r := range got {
			if r < 0x20 || (r >= 0x7f && r <= 0x9f) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) || r == 0xfffe || r == 0xffff {
				t.Fatalf("%q left %U raw in %q", s, r, got)
			}
		}
		if !cut && unescape(t, got) != s {
			t.Fatalf("%q shown as %q, which reads back as %q", s, got, unescape(t, got))
		}
	})
}

// unescape inverts visiblePieces, proving the shown form is unambiguous.
func unescape(t *testing.T, s string) string {
	var b bytes.Buffer
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			r, n := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r)
			i += n
			continue
		}
		if i+1 >= len(s) {
			t.Fatalf("dangling backslash in %q", s)
		}
		hex := func(n int) uint64 {
			var v uint64
			for _, c := range s[i+2 : i+2+n] {
				v = v*16 + uint64(strings.IndexRune("0123456789abcdef", c))
			}
			return v
		}
		switch s[i+1] {
		case '\\':
			b.WriteByte('\\')
			i += 2
		case 't':
			b.WriteByte('\t')
			i += 2
		case 'n':
			b.WriteByte('\n')
			i += 2
		case 'r':
			b.WriteByte('\r')
			i += 2
		case 'x':
			b.WriteByte(byte(hex(2)))
			i += 4
		case 'u':
			b.WriteRune(rune(hex(4)))
			i += 6
		case 'U':
			b.WriteRune(rune(hex(8)))
			i += 10
		default:
			t.Fatalf("unknown escape in %q", s)
		}
	}
	return b.String()
}

// FuzzWriteSVG: any value gives a well-formed, inert chart.
func FuzzWriteSVG(f *testing.F) {
	for _, v := range hostileValues() {
		if len(v) < 4096 {
			f.Add(v, "20261125")
		}
	}
	f.Add("x", "<p>")
	f.Fuzz(func(t *testing.T, value, period string) {
		var buf bytes.Buffer
		c := Chart{Period: period, Kind: KindUsername, Top: []Entry{{Value: value, Count: 3}, {Value: value + value, Count: 1}}, Total: 9, Distinct: 5}
		if err := WriteSVG(&buf, c); err != nil {
			t.Fatal(err)
		}
		svgCheck(t, buf.Bytes())
	})
}
