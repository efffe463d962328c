// Package uuidv5 makes name-based UUIDs (RFC 9562 version 5: SHA-1 of a
// namespace UUID and a name). The MISP feed needs identifiers that come out
// the same every time the same thing is described, on any machine and after
// any rebuild, so that MISP updates an event instead of forking it; a name
// based UUID is exactly that.
package uuidv5

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
)

// UUID is 16 bytes, printed in the 8-4-4-4-12 form.
type UUID [16]byte

// Parse reads a UUID in 8-4-4-4-12 form, either case.
func Parse(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%q is not a UUID in 8-4-4-4-12 form", s)
	}
	if _, err := hex.Decode(u[:], []byte(strings.ReplaceAll(s, "-", ""))); err != nil {
		return u, fmt.Errorf("%q is not a UUID: %w", s, err)
	}
	return u, nil
}

// New is the version 5 UUID of name in namespace ns.
func New(ns UUID, name string) UUID {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	var u UUID
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50 // version 5
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return u
}

// String is the lower-case 8-4-4-4-12 form.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
