package stats

import (
	"encoding/binary"
	"strings"
)

// Drill-down data (SPEC §10): for every day, every kind and every value of
// that kind counted on it, a sorted set DrillKey(day, kind, value) of the
// values of the other kinds that appeared in the same attempts, as members
// "<other kind>:<value>" scored by attempts. It is what "which user names
// did this source try" needs, and nothing in the rankings can answer it: a
// day's ranking of sources and its ranking of user names do not say which
// went with which.
//
// It is written by the same script as the rankings (Apply), so that a batch
// counted has its drill-down data and a batch not counted has none, and it
// lives in DB 1 beside the statistics, so that a flush (-F) rebuilds it
// from the attempts of DB 0 like the rest. Only days are kept: a month or a
// year of a value is the sum of its days, which the reader adds up (a
// value's days are few next to the days of a ranking).
//
// One set per value and day, rather than one set per day keyed by pairs,
// because a question names one value: its days are read directly, without
// scanning anyone else's.

// drillPrefix starts every drill-down key.
const drillPrefix = "alog:drill:"

// DrillKey is the sorted set of the values that went with value of kind on
// day: "alog:drill:20261125:src:203.0.113.9". value is any bytes; kind
// names hold no ':' so the key splits back unambiguously from the left.
func DrillKey(day, kind, value string) string {
	return drillPrefix + day + ":" + kind + ":" + value
}

// DrillPattern matches every DrillKey, for SCAN.
const DrillPattern = drillPrefix + "*"

// DrillMember is the member of a DrillKey that stands for value of kind.
func DrillMember(kind, value string) string { return kind + ":" + value }

// SplitDrillMember splits a DrillKey member into its kind and value.
func SplitDrillMember(m string) (kind, value string, ok bool) {
	return strings.Cut(m, ":")
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
	b.countPairs(agg, s)
}

// countPairs adds to b.drill the drill-down increments a tuple new to
// agg's day brings: each pair of its values is one increment of each
// value's set by the other, once per day however many tuples share it
// (a source trying one user name on five hosts is one pair, not five).
// Only new tuples come here, so a file of repeated traffic pays nothing.
func (b *Batch) countPairs(agg *dayAgg, tuple []byte) {
	at := b.offsets[:0] // start and end of each value in tuple
	for i := 0; i < len(tuple); {
		l, w := binary.Uvarint(tuple[i:])
		at = append(at, i+w, i+w+int(l))
		i += w + int(l)
	}
	b.offsets = at
	if agg.pairs == nil {
		agg.pairs = make(map[string]struct{})
	}
	p := b.pairScratch[:0]
	for i := 0; i < len(at); i += 2 {
		for j := i + 2; j < len(at); j += 2 {
			// The kinds' indexes, then the first value length-prefixed:
			// pairs of different kinds or split differently stay apart.
			p = append(p[:0], byte(i), byte(j))
			p = binary.AppendUvarint(p, uint64(at[i+1]-at[i]))
			p = append(p, tuple[at[i]:at[i+1]]...)
			p = append(p, tuple[at[j]:at[j+1]]...)
			if _, ok := agg.pairs[string(p)]; !ok {
				agg.pairs[string(p)] = struct{}{}
				b.drill += 2
			}
		}
	}
	b.pairScratch = p
}

// unpackLink splits a packed tuple (see link) back into its values.
func unpackLink(s string) []string {
	var out []string
	for len(s) > 0 {
		l, n := binary.Uvarint([]byte(s[:min(len(s), binary.MaxVarintLen64)]))
		if n <= 0 || l > uint64(len(s)-n) {
			// Packed by link in this process: cannot happen.
			return out
		}
		out = append(out, s[n:n+int(l)])
		s = s[n+int(l):]
	}
	return out
}

// appendLinks appends the drill-down increments of one day's tuples to
// incrs, all members of one key together (as plan.args needs). kindName
// names the kind of each position of a tuple (Batch.kindName): a tuple
// holds the three kinds of every attempt, then the derived ones when the
// batch had an enricher as the attempt was added.
// A tuple longer than nk (an enricher taken off mid-batch) keeps its first
// nk values only.
func appendLinks(incrs []increment, day string, links map[string]int64, nk int, kindName func(int) string) []increment {
	if len(links) == 0 {
		return incrs
	}
	sets := make(map[string]map[string]int64)
	var order []string
	for tuple, n := range links {
		vals := unpackLink(tuple)
		if len(vals) > nk {
			vals = vals[:nk]
		}
		for i, v := range vals {
			key := DrillKey(day, kindName(i), v)
			m := sets[key]
			if m == nil {
				m = make(map[string]int64, 2)
				sets[key] = m
				order = append(order, key)
			}
			for j, w := range vals {
				if j != i {
					m[DrillMember(kindName(j), w)] += n
				}
			}
		}
	}
	for _, key := range order {
		for mem, n := range sets[key] {
			incrs = append(incrs, increment{key, mem, n})
		}
	}
	return incrs
}
