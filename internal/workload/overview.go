package workload

import (
	"sort"
	"strings"
)

// Ranked is one value of a ranking and its count.
type Ranked struct {
	Value string
	Count int64
}

// rank orders counts as every ranking does: count descending, then value
// by bytes.
func rank(m map[string]int64) []Ranked {
	out := make([]Ranked, 0, len(m))
	for v, n := range m {
		out = append(out, Ranked{v, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// Top returns the first n entries of the ranking of a stats key
// ("<period>:stats<kind>"), fewer when it has fewer.
func (e Expected) Top(key string, n int) []Ranked {
	r := rank(e.Sets[key])
	return r[:min(n, len(r))]
}

// Totals returns the attempts of every period (day, month and year) that
// has any: every attempt has exactly one reporting host, so a period's
// attempts are the sum of its host set.
func (e Expected) Totals() map[string]int64 {
	out := map[string]int64{}
	for key, m := range e.Sets {
		period, ok := strings.CutSuffix(key, ":statshost")
		if !ok {
			continue
		}
		for _, n := range m {
			out[period] += n
		}
	}
	return out
}

// FirstSeen maps every value of kind ("username", "src", "host") to the
// first day it was counted on.
func (e Expected) FirstSeen(kind string) map[string]string {
	out := map[string]string{}
	for key, m := range e.Sets {
		period, ok := strings.CutSuffix(key, ":stats"+kind)
		if !ok || len(period) != 8 {
			continue
		}
		for v := range m {
			if first, seen := out[v]; !seen || period < first {
				out[v] = period
			}
		}
	}
	return out
}

// NewOn lists the values of kind first counted on day, with their count
// that day, ranked.
func (e Expected) NewOn(day, kind string) []Ranked {
	first := e.FirstSeen(kind)
	m := map[string]int64{}
	for v, n := range e.Sets[day+":stats"+kind] {
		if first[v] == day {
			m[v] = n
		}
	}
	return rank(m)
}
