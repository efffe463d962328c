package stats

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The chunks a batch appends decode back to its attempts: every tuple is
// in the bucket of each of its values, once per kind, with its attempts,
// whatever the bytes of the values.
func TestLinkChunksRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	hostile := []string{"", ":", "a:b", "\xff\xfe", "\x00", "alog:links:x", "caf\xe9", string(make([]byte, 300)),
		"01.2.3.4", "1.2.3.4 ", "256.1.1.1", "1.2.3", "1.2.3.4.5", "0.0.0.0", "255.255.255.255", "::1", "2001:db8::1"}
	pick := func(prefix string, n int) []byte {
		switch r.IntN(5) {
		case 0:
			return []byte(hostile[r.IntN(len(hostile))])
		case 1:
			return fmt.Appendf(nil, "%d.%d.%d.%d", r.IntN(256), r.IntN(256), r.IntN(3), r.IntN(n%256))
		}
		return fmt.Appendf(nil, "%s%d", prefix, r.IntN(n))
	}
	type key struct{ day, kind, value, other, otherValue string }
	want := map[key]int64{}
	b := NewBatch()
	start := time.Date(2025, 12, 30, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5000; i++ {
		at := start.Add(time.Duration(r.IntN(5*24)) * time.Hour)
		day := at.Format("20060102")
		host, user, src := pick("h", 7), pick("u", 300), pick("s", 2000)
		b.Add(at, host, user, src)
		vals := map[string]string{KindHost: string(host), KindUser: string(user), KindSrc: string(src)}
		for k, v := range vals {
			for o, ov := range vals {
				if o != k {
					want[key{day, k, v, o, ov}]++
				}
			}
		}
	}
	p := b.planWith(true, nil)
	got := map[key]int64{}
	keys := map[string]bool{}
	for _, l := range p.links {
		if keys[l.key] {
			t.Fatalf("%s appended twice in one batch", l.key)
		}
		keys[l.key] = true
		day, kind, bucket, ok := SplitLinksKey(l.key)
		if !ok {
			t.Fatalf("%q does not split", l.key)
		}
		err := DecodeLinks(l.chunk, func(ks []string, n int64, vals [][]byte) error {
			i := slices.Index(ks, kind)
			if i < 0 || len(vals) != 3 {
				return fmt.Errorf("tuple %q of kinds %v in %s", vals, ks, l.key)
			}
			if LinkBucket(string(vals[i])) != bucket {
				return fmt.Errorf("%q in bucket %d, not %d", vals[i], bucket, LinkBucket(string(vals[i])))
			}
			for j, v := range vals {
				if j != i {
					got[key{day, kind, string(vals[i]), ks[j], string(v)}] += n
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d linked pairs decoded, want %d", len(got), len(want))
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%+v: %d, want %d", k, got[k], n)
		}
	}
}

// Only the dotted form the reader writes back is packed, so that every
// value reads back as its own bytes.
func TestPackIPv4(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0.0.0.0", true}, {"192.0.2.1", true}, {"255.255.255.255", true}, {"10.0.100.9", true},
		{"256.0.0.1", false}, {"01.2.3.4", false}, {"1.2.3.04", false}, {"1.2.3.00", false},
		{"1.2.3", false}, {"1.2.3.4.5", false}, {"1..3.4", false}, {".1.2.3", false}, {"1.2.3.", false},
		{"1.2.3.4 ", false}, {" 1.2.3.4", false}, {"1.2.3.4\x00", false}, {"::ffff:1.2.3.4", false},
		{"1.2.3.-4", false}, {"１.2.3.4", false}, {"1000.2.3.4", false}, {"", false},
	} {
		ip, ok := packIPv4(tc.in)
		if ok != tc.ok {
			t.Errorf("packIPv4(%q) = %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok {
			if back := fmt.Sprintf("%d.%d.%d.%d", ip[0], ip[1], ip[2], ip[3]); back != tc.in {
				t.Errorf("packIPv4(%q) reads back as %q", tc.in, back)
			}
		}
	}
}

// A version 1 chunk, written before values were shortened, still reads.
func TestDecodeLinksVersion1(t *testing.T) {
	chunk := []byte{linksVersion1, 2, 4, 'u', 's', 'e', 'r', 3, 's', 'r', 'c',
		2, // records
		3, 2, 4, 'r', 'o', 'o', 't', 9, '1', '9', '2', '.', '0', '.', '2', '.', '1',
		1, 1, 0}
	var got []string
	err := DecodeLinks(chunk, func(ks []string, n int64, vals [][]byte) error {
		got = append(got, fmt.Sprintf("%v %d %q", ks, n, vals))
		return nil
	})
	want := []string{`[user src] 3 ["root" "192.0.2.1"]`, `[user src] 1 [""]`}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

// Whatever the values, a chunk reads back as the tuples written, and a
// reference never points past what was written.
func FuzzLinkValuesRoundTrip(f *testing.F) {
	f.Add("root", "192.0.2.1", "web1")
	f.Add("192.0.2.1", "192.0.2.1", "192.0.2.1")
	f.Add("", "01.2.3.4", "\xff")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		links := map[string]int64{}
		pack := func(vals ...string) string {
			var s []byte
			for _, v := range vals {
				s = binary.AppendUvarint(s, uint64(len(v)))
				s = append(s, v...)
			}
			return string(s)
		}
		tuples := [][]string{{a, b, c}, {b, c, a}, {c, a, b}, {a, a, a}, {a, b, b}}
		for i, tu := range tuples {
			links[pack(tu...)] += int64(i + 1)
		}
		names := []string{KindUser, KindSrc, KindHost}
		want := map[string]int64{}
		for tu, n := range links {
			at := valueSpans(nil, tu)
			for i := range 3 {
				key := LinksKeyOf("20260101", names[i], tu[at[2*i]:at[2*i+1]])
				want[fmt.Sprintf("%s %q", key, tu)] += n
			}
		}
		got := map[string]int64{}
		for _, l := range appendDayLinks(nil, "20260101", links, 3, func(i int) string { return names[i] }) {
			err := DecodeLinks(l.chunk, func(ks []string, n int64, vals [][]byte) error {
				var s []string
				for _, v := range vals {
					s = append(s, string(v))
				}
				got[fmt.Sprintf("%s %q", l.key, pack(s...))] += n
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("read back %v, want %v", got, want)
		}
	})
}

func TestLinksKeySplitsBack(t *testing.T) {
	for b := range LinkBuckets {
		k := LinksKey("20261125", KindSrc, b)
		day, kind, bucket, ok := SplitLinksKey(k)
		if !ok || day != "20261125" || kind != KindSrc || bucket != b {
			t.Errorf("%q splits to %q %q %d %v", k, day, kind, bucket, ok)
		}
	}
	for _, k := range []string{"alog:links:2026112:src:00", "alog:links:20261125:src:0", "alog:links:20261125:src:zz",
		"alog:links:20261125:src:ff", "alog:drill:20261125:src:00", "alog:links:2026112x:src:00", "alog:links:20261125:a:b:00"} {
		if _, _, _, ok := SplitLinksKey(k); ok {
			t.Errorf("%q splits", k)
		}
	}
}

// DecodeLinks reads bytes any writer may have left in a drill-down key:
// it must end with records or an error, never a panic, and hand out
// values within the bytes.
func FuzzDecodeLinks(f *testing.F) {
	b := NewBatch()
	day := time.Date(2026, 3, 14, 10, 0, 0, 0, time.UTC)
	b.Add(day, []byte("web1"), []byte("root"), []byte("192.0.2.1"))
	b.Add(day, []byte("web1"), []byte("\xff"), []byte("192.0.2.1"))
	b.Add(day, []byte("web1"), []byte("root"), []byte("192.0.2.1"))
	for _, l := range b.planWith(true, nil).links {
		f.Add(l.chunk)
		f.Add(append(append([]byte(nil), l.chunk...), l.chunk...))
		f.Add(l.chunk[:len(l.chunk)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, blob []byte) {
		var records int
		err := DecodeLinks(blob, func(ks []string, n int64, vals [][]byte) error {
			records++
			if len(vals) > len(ks) || n < 0 {
				t.Fatalf("%d values for %d kinds, %d attempts", len(vals), len(ks), n)
			}
			return nil
		})
		if err == nil && len(blob) > 0 && blob[0] != linksVersion && blob[0] != linksVersion1 {
			t.Fatalf("bytes not starting with a chunk read without error (%d records)", records)
		}
	})
}
