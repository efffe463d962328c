package sshd

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// The marker that ends a capped value: markerHead, the number of bytes left
// out, markerMid, hashHexDigits hex digits of the whole value's SHA-256,
// markerTail. U+2026 and the brackets make it visible on the pages; the
// hash keeps two long values with the same first bytes apart.
const (
	markerHead    = "…[+"
	markerMid     = " bytes, sha256:"
	markerTail    = "]"
	hashHexDigits = 16
	markerFixed   = len(markerHead) + len(markerMid) + hashHexDigits + len(markerTail)
)

// capValue returns v when it fits p.maxValue, and otherwise its capped form,
// written to p.scratch. The scratch buffer is sized once for three capped
// values (host, user, source), so appends never move it and the earlier
// values of the same line stay valid.
func (p *Parser) capValue(v []byte) []byte {
	if len(v) <= p.maxValue {
		return v
	}
	if p.scratch == nil {
		p.scratch = make([]byte, 0, 3*p.maxValue)
	}
	// The digits of len(v) bound those of the bytes left out, so the
	// result never exceeds the cap; it may fall short by a digit or by
	// the bytes of a rune the cut backs off from.
	budget := max(p.maxValue-markerFixed-decimalDigits(len(v)), 0)
	cut := cutPoint(v, budget)
	sum := sha256.Sum256(v)

	start := len(p.scratch)
	b := append(p.scratch, v[:cut]...)
	b = append(b, markerHead...)
	b = strconv.AppendInt(b, int64(len(v)-cut), 10)
	b = append(b, markerMid...)
	b = hex.AppendEncode(b, sum[:hashHexDigits/2])
	b = append(b, markerTail...)
	p.scratch = b
	return b[start:len(b):len(b)]
}

// cutPoint returns where to cut v to keep at most n bytes: n, or the start
// of a valid multi-byte rune that n would split. Where the bytes are not
// valid UTF-8 there is no rune to keep whole, and the cut is n.
func cutPoint(v []byte, n int) int {
	for i := n - 1; i >= 0 && i >= n-(utf8.UTFMax-1); i-- {
		if !utf8.RuneStart(v[i]) {
			continue
		}
		if v[i] < utf8.RuneSelf {
			return n // ASCII: n is a boundary
		}
		if _, size := utf8.DecodeRune(v[i:]); size > 1 && i+size > n {
			return i
		}
		return n
	}
	return n
}

// decimalDigits is the number of digits of n >= 0 in base 10.
func decimalDigits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}
