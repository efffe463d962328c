package render

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pieceKind says how a piece of a label is drawn.
type pieceKind uint8

const (
	plain  pieceKind = iota // text shown as it is
	escape                  // a backslash escape standing for bytes not shown raw
	marker                  // text of our own: the ellipsis of a cut label, the placeholder of an empty value
)

// piece is one unit of a displayed label. Labels are cut between pieces, so
// an escape sequence is never cut in half.
type piece struct {
	s    string
	kind pieceKind
}

// maxPieces bounds the work spent on one label: no chart column is wide
// enough for more, and attackers may send values of hundreds of kilobytes.
const maxPieces = 256

// maxCombining is how many combining marks may follow one another before
// the rest are escaped: real scripts stack two or three, while "zalgo" text
// stacks hundreds that would paint over the neighbouring bars.
const maxCombining = 3

// visiblePieces turns raw bytes into pieces that show every byte literally
// and safely. Invalid UTF-8 bytes become \xff; control characters (C0, DEL,
// C1) become \t, \n, \r, \x00 or \u0085; bidi controls, zero-width and other
// format characters, unusual spaces, line separators and noncharacters
// become \u202e style escapes, so that no value can hide, reorder or fake
// its neighbours' text; so do combining marks that would stack past three
// or join an escape. A backslash is shown as \\ so an escape can never be
// confused with a value that merely contains a backslash; spaces that start
// or end a value are shown as \x20 so "root" and "root " stay distinct.
//
// The second result reports that s held more than maxPieces pieces and the
// rest was dropped.
func visiblePieces(s string) ([]piece, bool) {
	var out []piece
	cut := eachPiece(s, maxPieces, func(p piece) { out = append(out, p) })
	// A cut value's last kept spaces end what is shown, so they are shown
	// as escapes like the spaces that end a whole value.
	for j := len(out) - 1; j >= 0 && out[j] == (piece{" ", plain}); j-- {
		out[j] = piece{`\x20`, escape}
	}
	return out, cut
}

// VisibleText returns s whole, shown as the pages show it (see
// visiblePieces) but never cut: every control byte, bidi control and
// invalid byte is a backslash escape, so the text can be printed to a
// terminal or opened in an editor without acting on it, and since a
// backslash is itself escaped, the escapes can be undone to recover s.
func VisibleText(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	eachPiece(s, -1, func(p piece) { b.WriteString(p.s) })
	return b.String()
}

// eachPiece calls fn with the pieces of s in order (see visiblePieces), at
// most limit of them when limit is not negative, and reports whether any
// were left out. It keeps no piece itself, so a value of megabytes costs
// no more than its own output.
func eachPiece(s string, limit int, fn func(piece)) bool {
	n := 0
	combining := 0
	lastPlain := false
	// Spaces from trailing on are the ones that end the value.
	trailing := len(strings.TrimRight(s, " "))
	emit := func(p piece) {
		fn(p)
		n++
		lastPlain = p.kind == plain
	}
	for i := 0; i < len(s); {
		if n == limit {
			return true
		}
		if limit < 0 && plainASCII(s[i]) && (s[i] != ' ' || n > 0 && i < trailing) {
			// Uncut text is not measured piece by piece: a run of plain
			// ASCII is one piece, which keeps megabyte values cheap.
			j := i + 1
			for j < len(s) && plainASCII(s[j]) && (s[j] != ' ' || j < trailing) {
				j++
			}
			emit(piece{s[i:j], plain})
			i = j
			combining = 0
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			emit(piece{fmt.Sprintf(`\x%02x`, s[i]), escape})
			i++
			combining = 0
			continue
		}
		raw := s[i : i+size]
		i += size
		if unicode.In(r, unicode.Mn, unicode.Me) {
			combining++
		} else {
			combining = 0
		}
		switch {
		case r == '\\':
			emit(piece{`\\`, escape})
		case r == ' ' && (n == 0 || i > trailing):
			emit(piece{`\x20`, escape})
		case mustEscape(r) || combining > maxCombining || combining > 0 && !lastPlain:
			emit(piece{escapeRune(r), escape})
		default:
			emit(piece{raw, plain})
		}
	}
	return false
}

// plainASCII reports printable ASCII shown as it is (a backslash is
// escaped, a space only where it neither starts nor ends the value).
func plainASCII(b byte) bool { return b >= ' ' && b < 0x7f && b != '\\' }

// mustEscape reports runes that are invisible, change how other text is
// laid out, or are not allowed in XML.
func mustEscape(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f: // C0, DEL, C1
		return true
	case unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Cs):
		// Cf holds the bidi controls (U+202A..U+202E, U+2066..U+2069,
		// U+200E/F, U+061C), zero-width characters and tag characters.
		return true
	case unicode.Is(unicode.Zs, r) && r != ' ':
		return true // a no-break or ideographic space looks like a space but is not one
	case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
		return true // noncharacters; U+FFFE and U+FFFF are not even valid XML
	}
	switch r {
	case 0x115f, 0x1160, 0x3164, 0xffa0, 0x2800, 0x034f:
		return true // letters and marks that render as nothing at all
	}
	return false
}

func escapeRune(r rune) string {
	switch r {
	case '\t':
		return `\t`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	}
	switch {
	case r < 0x20 || r == 0x7f:
		return fmt.Sprintf(`\x%02x`, r)
	case r <= 0xffff:
		return fmt.Sprintf(`\u%04x`, r)
	}
	return fmt.Sprintf(`\U%08x`, r)
}

func joinPieces(ps []piece) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.s)
	}
	return b.String()
}

// fitPieces keeps the longest prefix of ps whose width, measured by width,
// fits in maxWidth, and ends it with an ellipsis when anything was dropped
// (cut says the input was already shortened by visiblePieces).
func fitPieces(ps []piece, cut bool, maxWidth float64, width func(string) float64) []piece {
	total := 0.0
	for _, p := range ps {
		total += width(p.s)
	}
	if !cut && total <= maxWidth {
		return ps
	}
	room := maxWidth - width("…")
	used := 0.0
	n := 0
	for ; n < len(ps); n++ {
		w := width(ps[n].s)
		if used+w > room {
			break
		}
		used += w
	}
	out := make([]piece, n, n+1)
	copy(out, ps[:n])
	return append(out, piece{"…", marker})
}

// escapeXML escapes text for element content and attribute values. go-chart
// writes text into the SVG verbatim, so this is the only escaping it gets.
// The input has been through visiblePieces, so it holds no character that
// XML forbids.
func escapeXML(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&#34;")
		case '\'':
			b.WriteString("&#39;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Colours of the label parts that are not the value's own text.
const (
	escapeFill   = "#b42318" // escapes stand out, so nobody reads \x00 as typed text
	ellipsisFill = "#6b7280"
)

// piecesMarkup renders pieces as SVG text content: plain text escaped,
// escapes and the ellipsis in tspans of their own colour.
func piecesMarkup(ps []piece) string {
	var b strings.Builder
	for i := 0; i < len(ps); {
		k := ps[i].kind
		j := i
		var run strings.Builder
		for ; j < len(ps) && ps[j].kind == k; j++ {
			run.WriteString(ps[j].s)
		}
		switch k {
		case plain:
			b.WriteString(escapeXML(run.String()))
		case escape:
			b.WriteString(`<tspan fill="` + escapeFill + `">` + escapeXML(run.String()) + `</tspan>`)
		case marker:
			b.WriteString(`<tspan fill="` + ellipsisFill + `">` + escapeXML(run.String()) + `</tspan>`)
		}
		i = j
	}
	return b.String()
}
