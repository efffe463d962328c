package misp

import (
	"strconv"
	"testing"
)

// storedTimestamp reads files on disk that anyone with access may have
// changed: it must never panic, and must accept only a positive integer
// timestamp where this package writes it.
func FuzzStoredTimestamp(f *testing.F) {
	f.Add([]byte(`{"Event":{"uuid":"x","timestamp":"1700000000"}}`))
	f.Add([]byte(`{"Event":{"timestamp":"-1"}}`))
	f.Add([]byte(`{"Event":{"timestamp":1700000000}}`))
	f.Add([]byte(`{"Event":`))
	f.Add([]byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, ok := storedTimestamp(b)
		if ok && ts <= 0 {
			t.Fatalf("accepted timestamp %d", ts)
		}
		if !ok && ts != 0 {
			t.Fatalf("refused but gave %d", ts)
		}
	})
}

func TestStoredTimestampRoundTrip(t *testing.T) {
	ev := &eventBody{UUID: "u", Info: "i"}
	for _, ts := range []int64{1, 1700000000, 1 << 40} {
		b, err := ev.encode(ts)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := storedTimestamp(b)
		if !ok || got != ts {
			t.Errorf("timestamp %d read back as %d, %v", ts, got, ok)
		}
	}
	for _, b := range []string{`{"Event":{"timestamp":"0"}}`, `{"Event":{"timestamp":"12x"}}`, `[]`, ``} {
		if ts, ok := storedTimestamp([]byte(b)); ok {
			t.Errorf("%q read as timestamp %s", b, strconv.FormatInt(ts, 10))
		}
	}
}
