package stats

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// Drill-down data (SPEC §10): which values went together in the same
// attempts, which nothing in the rankings says (a day's ranking of sources
// and its ranking of user names do not say which went with which).
//
// For every day, every kind and every one of LinkBuckets buckets, a string
// LinksKey(day, kind, bucket) holds the attempts' tuples of values (user
// name, source, host, then the derived kinds) whose value of that kind
// falls in that bucket (LinkBucket), each tuple with its number of
// attempts. "Which user names did source S try" reads S's bucket of each
// day and keeps the tuples whose source is S. Each tuple is stored once per
// kind, in the bucket of its value of that kind.
//
// Why strings appended to, and not one sorted set per value scored by the
// other values: a counting script must stay cheap. A set per value costs
// an increment per pair of values of every new tuple (six for the three
// kinds), into keys that are mostly new (most sources are seen once); that
// tripled the counting Redis's work per attempt. A batch appends one chunk
// per bucket it touches instead, a few hundred APPENDs for a thousand
// attempts, whatever their values. The price is paid by the reader, which
// reads a bucket's other values too (1/LinkBuckets of a day's tuples) and
// the same tuple once per batch that counted it; both stay far below what
// a year of a value's sets cost to read.
//
// It is written by the same script as the rankings (Apply), so a batch
// counted has its drill-down data and a batch not counted has none, and it
// lives in DB 1 beside the statistics, so that a flush (-F) rebuilds it
// from the attempts of DB 0 like the rest. Only days are kept: a month or
// a year of a value is the sum of its days.

// linksPrefix starts every drill-down key.
const linksPrefix = "alog:links:"

// LinksPattern matches every LinksKey, for SCAN.
const LinksPattern = linksPrefix + "*"

// LinkBuckets is how many buckets a day's tuples are spread over, per
// kind. More buckets make a reader read fewer other values, and a batch
// write more chunks; the readers need the writers' number, so changing it
// needs a flush (-F).
const LinkBuckets = 32

// LinkBucket is the bucket of value: FNV-1a, so that any bytes spread.
func LinkBucket(value string) int {
	h := uint32(2166136261)
	for i := 0; i < len(value); i++ {
		h ^= uint32(value[i])
		h *= 16777619
	}
	return int(h % LinkBuckets)
}

// LinksKey is the string of the tuples of day whose value of kind falls in
// bucket: "alog:links:20261125:src:1f".
func LinksKey(day, kind string, bucket int) string {
	const hex = "0123456789abcdef"
	return linksPrefix + day + ":" + kind + ":" + string([]byte{hex[bucket>>4&15], hex[bucket&15]})
}

// LinksKeyOf is the LinksKey holding the tuples of day with value of kind.
func LinksKeyOf(day, kind, value string) string {
	return LinksKey(day, kind, LinkBucket(value))
}

// SplitLinksKey splits a LinksKey into its day, kind and bucket.
func SplitLinksKey(key string) (day, kind string, bucket int, ok bool) {
	rest, found := strings.CutPrefix(key, linksPrefix)
	if !found {
		return "", "", 0, false
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 || len(parts[0]) != 8 || !kinds.Digits(parts[0]) || len(parts[2]) != 2 {
		return "", "", 0, false
	}
	b, err := strconv.ParseUint(parts[2], 16, 8)
	if err != nil || b >= LinkBuckets {
		return "", "", 0, false
	}
	return parts[0], parts[1], int(b), true
}

// The bytes of a LinksKey are chunks, one per batch that appended to it:
//
//	chunk  = version (a byte), uvarint K, K × (uvarint length, kind name),
//	         uvarint R, R × record
//	record = uvarint attempts, uvarint V (≤ K), V × value
//
// A record's values are in the chunk's kind order; V is below K for an
// attempt that had no derived values (a batch whose enricher came or went
// as it filled).
//
// In a version 2 chunk a value is a uvarint T and what it says follows:
// T%4 = 0, a value of T/4 bytes; 1, a value of this chunk again, the one
// numbered T/4 when the chunk's values of the first and third forms are
// numbered from 0 in order; 2 (T = 2), an IPv4 address in its dotted form,
// as its 4 bytes. Why: a tuple is stored once per kind, and the bytes a batch
// sends are what the counting Redis pays for, in its append-only file and
// in every rewrite of it; user names, hosts and sources repeat within a
// chunk, and a source is mostly an address that takes 4 bytes instead of
// up to 15. A version 1 chunk has only the first form, written as the
// length itself; it is still read.
const (
	linksVersion1 = 1
	linksVersion  = 2
)

// Value forms of a version 2 chunk, in the two low bits of T.
const (
	linkLiteral = 0
	linkRef     = 1
	linkIPv4    = 2
)

// MaxLinkBytes is the most a drill-down string holds: Redis's own limit of
// a string (proto-max-bulk-len, 512 MB by default). One kind's bucket of
// one day reaches it with some 13 million distinct tuples (a single host
// attacked that day by that many pairs of source and user name).
const MaxLinkBytes = 512 << 20

// DrillFullError refuses a batch that would take a drill-down string past
// MaxLinkBytes: nothing of the batch was written, and counting cannot go on
// with drill-down data for that day.
type DrillFullError struct {
	Key                  string
	Bytes, Adding, Limit int64
}

func (e *DrillFullError) Error() string {
	return fmt.Sprintf("the drill-down data %q in DB 1 of the counting redis holds %d bytes, and this batch's %d more would pass the %d a redis string can hold (one day's tuples of one bucket of values); nothing was counted meanwhile. Set drilldown = false in analyzer.toml and restart to count without drill-down data",
		e.Key, e.Bytes, e.Adding, e.Limit)
}

// ErrBadLinks says a drill-down key holds bytes this daemon did not write.
var ErrBadLinks = errors.New("drill-down data not in the expected format")

// DecodeLinks calls fn with every record of a LinksKey's bytes: the kinds
// of its chunk, its attempts, and its values, which point into blob or into
// memory of the decoder's (fn must copy what it keeps). It returns
// ErrBadLinks, wrapped with the offset, for bytes that are not chunks, and
// fn's error as it is.
func DecodeLinks(blob []byte, fn func(kinds []string, attempts int64, vals [][]byte) error) error {
	var names []string
	var vals, table [][]byte
	// text holds the dotted form of the chunks' IPv4 values. It is never
	// grown in place, so that the values taken from it stay valid.
	var text []byte
	at := 0
	bad := func(what string) error {
		return fmt.Errorf("%w: %s at byte %d of %d", ErrBadLinks, what, at, len(blob))
	}
	uvarint := func(limit uint64) (uint64, bool) {
		v, n := binary.Uvarint(blob[at:])
		if n <= 0 || v > limit {
			return 0, false
		}
		at += n
		return v, true
	}
	// bytesOf takes the next l bytes, if there are that many.
	bytesOf := func(l uint64) ([]byte, bool) {
		if l > uint64(len(blob)-at) {
			return nil, false
		}
		v := blob[at : at+int(l) : at+int(l)]
		at += int(l)
		return v, true
	}
	// value reads one value of a chunk of version.
	value := func(version byte) ([]byte, bool) {
		t, ok := uvarint(1 << 62)
		if !ok {
			return nil, false
		}
		if version == linksVersion1 {
			return bytesOf(t)
		}
		var v []byte
		switch t & 3 {
		case linkLiteral:
			if v, ok = bytesOf(t >> 2); !ok {
				return nil, false
			}
		case linkRef:
			if t>>2 >= uint64(len(table)) {
				return nil, false
			}
			return table[t>>2], true
		case linkIPv4:
			ip, ok := bytesOf(4)
			if t != linkIPv4 || !ok {
				return nil, false
			}
			if cap(text)-len(text) < len("255.255.255.255") {
				text = make([]byte, 0, 4096)
			}
			start := len(text)
			text = netip.AddrFrom4([4]byte(ip)).AppendTo(text)
			v = text[start:len(text):len(text)]
		default:
			return nil, false
		}
		table = append(table, v)
		return v, true
	}
	for at < len(blob) {
		version := blob[at]
		if version != linksVersion && version != linksVersion1 {
			return bad("unknown chunk version")
		}
		at++
		nk, ok := uvarint(64)
		if !ok || nk == 0 {
			return bad("bad kind count")
		}
		names = names[:0]
		for range nk {
			l, ok := uvarint(uint64(len(blob)))
			if !ok {
				return bad("bad kind name")
			}
			name, ok := bytesOf(l)
			if !ok {
				return bad("bad kind name")
			}
			names = append(names, internKind(name))
		}
		nr, ok := uvarint(uint64(len(blob) - at))
		if !ok {
			return bad("bad record count")
		}
		table = table[:0]
		for range nr {
			n, ok := uvarint(1 << 62)
			if !ok {
				return bad("bad attempts")
			}
			nv, ok := uvarint(nk)
			if !ok {
				return bad("bad value count")
			}
			vals = vals[:0]
			for range nv {
				v, ok := value(version)
				if !ok {
					return bad("bad value")
				}
				vals = append(vals, v)
			}
			if err := fn(names, int64(n), vals); err != nil {
				return err
			}
		}
	}
	return nil
}

// internKind returns the kind names of this daemon without allocating.
func internKind(b []byte) string {
	for _, k := range knownKinds {
		if string(b) == k {
			return k
		}
	}
	return string(b)
}

// knownKinds is never written.
var knownKinds = kinds.Every()

// linkAppend is one APPEND of the counting script.
type linkAppend struct {
	key   string
	chunk []byte
}

// appendDayLinks appends to out the chunks of one day's tuples (links,
// packed by link), one per kind and bucket touched. kindName names the
// kind of each position of a tuple (Batch.kindName); a tuple longer than
// nk (an enricher taken off mid-batch) keeps its first nk values.
func appendDayLinks(out []linkAppend, day string, links map[string]int64, nk int, kindName func(int) string) []linkAppend {
	if len(links) == 0 {
		return out
	}
	header := []byte{linksVersion}
	header = binary.AppendUvarint(header, uint64(nk))
	for k := range nk {
		header = binary.AppendUvarint(header, uint64(len(kindName(k))))
		header = append(header, kindName(k)...)
	}
	chunks := make([]linkChunk, nk*LinkBuckets)
	var at []int
	for tuple, n := range links {
		at = valueSpans(at[:0], tuple)
		nv := min(len(at)/2, nk)
		if nv == 0 {
			continue
		}
		for i := range nv {
			c := &chunks[i*LinkBuckets+LinkBucket(tuple[at[2*i]:at[2*i+1]])]
			c.recs = binary.AppendUvarint(c.recs, uint64(n))
			c.recs = binary.AppendUvarint(c.recs, uint64(nv))
			for j := range nv {
				c.value(tuple[at[2*j]:at[2*j+1]])
			}
			c.n++
		}
	}
	for idx, c := range chunks {
		if c.n == 0 {
			continue
		}
		chunk := make([]byte, 0, len(header)+binary.MaxVarintLen64+len(c.recs))
		chunk = append(chunk, header...)
		chunk = binary.AppendUvarint(chunk, uint64(c.n))
		chunk = append(chunk, c.recs...)
		out = append(out, linkAppend{key: LinksKey(day, kindName(idx/LinkBuckets), idx%LinkBuckets), chunk: chunk})
	}
	return out
}

// linkChunk is one version 2 chunk being written.
type linkChunk struct {
	recs []byte
	n    int
	// table numbers the values written in full so far, as the reader
	// numbers them; its keys are the batch's tuples' own bytes.
	table map[string]int
}

// value appends v in the shortest of its forms.
func (c *linkChunk) value(v string) {
	if i, ok := c.table[v]; ok {
		c.recs = binary.AppendUvarint(c.recs, uint64(i)<<2|linkRef)
		return
	}
	if c.table == nil {
		c.table = make(map[string]int, 16)
	}
	c.table[v] = len(c.table)
	if ip, ok := packIPv4(v); ok {
		c.recs = append(append(c.recs, linkIPv4), ip[:]...)
		return
	}
	c.recs = binary.AppendUvarint(c.recs, uint64(len(v))<<2|linkLiteral)
	c.recs = append(c.recs, v...)
}

// packIPv4 returns the 4 bytes of s when s is an IPv4 address written as
// the reader writes it back (four decimal numbers up to 255 without
// leading zeros, between three dots), so that the value read is s itself.
func packIPv4(s string) (ip [4]byte, ok bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return ip, false
	}
	return a.As4(), true
}

// valueSpans appends the start and end offsets of each value of a packed
// tuple.
func valueSpans(at []int, s string) []int {
	for i := 0; i < len(s); {
		l, w := binary.Uvarint([]byte(s[i:min(len(s), i+binary.MaxVarintLen64)]))
		if w <= 0 || l > uint64(len(s)-i-w) {
			// Packed by link in this process: cannot happen.
			return at
		}
		at = append(at, i+w, i+w+int(l))
		i += w + int(l)
	}
	return at
}

// link counts one attempt's tuple of values on agg's day: vals in
// kindNames order, then, when derived is set, the derived kinds' values the
// batch just answered for the attempt's source (b.derivedVals, in the
// batch's kind order), so that "which countries did this user name come
// from" is recorded by the same script as the rankings (SPEC §13). The
// tuple is packed length-prefixed, so any bytes stay apart.
func (b *Batch) link(agg *dayAgg, derived bool, vals ...[]byte) {
	s := b.scratch[:0]
	for _, v := range vals {
		s = binary.AppendUvarint(s, uint64(len(v)))
		s = append(s, v...)
	}
	if derived {
		for _, d := range b.derivedVals {
			s = binary.AppendUvarint(s, uint64(len(d.Value)))
			s = append(s, d.Value...)
		}
	}
	b.scratch = s
	if agg.links == nil {
		agg.links = make(map[string]int64)
	}
	if n, ok := agg.links[string(s)]; ok {
		agg.links[string(s)] = n + 1
		return
	}
	agg.links[string(s)] = 1
	// Work: a day's first tuples each open a chunk per kind (an APPEND,
	// often of a new key); past LinkBuckets tuples they mostly join
	// chunks already open, and cost their bytes.
	if len(agg.links) <= LinkBuckets {
		b.drill += len(vals)
		if derived {
			b.drill += len(b.derivedVals)
		}
	} else {
		b.drill++
	}
}

// Linked is one value of one kind.
type Linked struct{ Kind, Value string }

// DrillSet names what drill-down answers for one value of one kind on one
// day.
type DrillSet struct{ Day, Kind, Value string }

// DrillSets reads every drill-down string of the counting Redis (conn is
// on DB 1) and sums it per value: for each day, kind and value, the values
// of the other kinds that went with it, by attempts. It is every answer
// drill can give, for checks of the whole data (a test's own count, a
// recount); it reads everything, so it is not for a busy daemon.
func DrillSets(ctx context.Context, conn redis.Conn) (map[DrillSet]map[Linked]int64, error) {
	var keys []string
	seen := map[string]bool{}
	err := scanConn(ctx, conn, LinksPattern, func(k string) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list drill-down keys: %w", err)
	}
	out := map[DrillSet]map[Linked]int64{}
	for _, k := range keys {
		day, kind, bucket, ok := SplitLinksKey(k)
		if !ok {
			return nil, fmt.Errorf("drill-down key %q: not a day, kind and bucket", k)
		}
		b, err := redis.Bytes(conn.Do("GET", k))
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", k, err)
		}
		err = DecodeLinks(b, func(ks []string, n int64, vals [][]byte) error {
			i := slices.Index(ks, kind)
			if i < 0 || i >= len(vals) {
				return fmt.Errorf("a tuple without a %s value", kind)
			}
			if LinkBucket(string(vals[i])) != bucket {
				return fmt.Errorf("a %s value %q of bucket %d", kind, vals[i], LinkBucket(string(vals[i])))
			}
			set := DrillSet{day, kind, string(vals[i])}
			m := out[set]
			if m == nil {
				m = map[Linked]int64{}
				out[set] = m
			}
			for j, v := range vals {
				if j != i {
					m[Linked{ks[j], string(v)}] += n
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", k, err)
		}
	}
	return out, nil
}
