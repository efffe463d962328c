package retention

import (
	"bytes"
	"compress/gzip"
	"context"
	"testing"
)

// FuzzReadFrames: an archive file is read back from disk, where anything
// may have happened to it; a damaged one is an error, never a panic or an
// allocation the bytes do not justify.
func FuzzReadFrames(f *testing.F) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte{3, 'a', 'b', 'c', 0, 2, 1, 2})
	zw.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte{0x1f, 0x8b})
	var big bytes.Buffer
	zw = gzip.NewWriter(&big)
	zw.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	zw.Close()
	f.Add(big.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		_ = ReadFrames(context.Background(), bytes.NewReader(b), func(e []byte) error {
			total += len(e)
			return nil
		})
		// Deflate expands at most about 1032 to 1.
		if total > 1100*len(b) {
			t.Fatalf("%d bytes of elements from %d input bytes", total, len(b))
		}
	})
}
