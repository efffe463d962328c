package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// An attempt record in DB 0 is
//
//	varint(unix seconds) uvarint(len host) host uvarint(len user) user uvarint(len src) src
//
// and one list element holds the records of one day from one batch, back
// to back. Packing many records per element keeps Redis' per-element
// overhead off each attempt (about 35 bytes an attempt instead of the
// original's hash of well over 100), and appending records means two
// attempts on the same host in the same second stay two records.

// Attempt is one decoded record.
type Attempt struct {
	Unix            int64
	Host, User, Src []byte
}

// appendRecord appends one record to dst.
func appendRecord(dst []byte, unix int64, host, user, src []byte) []byte {
	dst = binary.AppendVarint(dst, unix)
	dst = binary.AppendUvarint(dst, uint64(len(host)))
	dst = append(dst, host...)
	dst = binary.AppendUvarint(dst, uint64(len(user)))
	dst = append(dst, user...)
	dst = binary.AppendUvarint(dst, uint64(len(src)))
	dst = append(dst, src...)
	return dst
}

var errTruncated = errors.New("truncated attempt record")

// DecodeRecords calls fn for each record packed in b. The Attempt's slices
// alias b. A malformed element (which only a foreign writer could leave)
// is reported with its offset rather than guessed at.
func DecodeRecords(b []byte, fn func(Attempt) error) error {
	off := 0
	for off < len(b) {
		start := off
		unix, n := binary.Varint(b[off:])
		if n <= 0 {
			return fmt.Errorf("attempt record at byte %d: bad time: %w", start, errTruncated)
		}
		off += n
		var a Attempt
		a.Unix = unix
		for _, field := range []*[]byte{&a.Host, &a.User, &a.Src} {
			l, n := binary.Uvarint(b[off:])
			if n <= 0 || l > uint64(len(b)-off-n) {
				return fmt.Errorf("attempt record at byte %d: bad field length: %w", start, errTruncated)
			}
			off += n
			*field = b[off : off+int(l) : off+int(l)]
			off += int(l)
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return nil
}
