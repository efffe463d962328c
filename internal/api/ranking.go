package api

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// answer is a computed ranking: its totals and its first entries in
// order (at least maxLimit of them, or all).
type answer struct {
	attempts, distinct int64
	top                []stats.Entry
}

// before reports whether a ranks before b: count descending, then value
// bytewise ascending.
func before(a, b stats.Entry) bool {
	if a.Count != b.Count {
		return a.Count > b.Count
	}
	return a.Member < b.Member
}

func compareEntries(a, b stats.Entry) int {
	switch {
	case before(a, b):
		return -1
	case before(b, a):
		return 1
	}
	return 0
}

// sources returns the keys a question reads and the periods whose totals
// version its answer.
func (a *API) sources(q query) (keys, periods []string, live func(string) bool) {
	lf := a.liveFrom()
	if q.ep == epDrill {
		periods = days(q.from, q.to)
		keys = make([]string, len(periods))
		for i, d := range periods {
			keys[i] = stats.LinksKeyOf(d, q.kind, q.value)
		}
		return keys, periods, nil
	}
	periods = cover(q.from, q.to, lf)
	keys = make([]string, len(periods))
	for i, p := range periods {
		keys[i] = stats.StatsKey(p, q.kind)
	}
	return keys, periods, isLive(lf)
}

// merge sums the members of every key; drill reads the drill-down strings
// instead (mergeLinks). versions are the keys' periods' totals, for the
// sets kept in the daemon (setCache): a closed period's set kept at its
// current version is summed from there, and the others are read from the
// counting Redis, the closed ones kept for the next question.
//
// The keys are read over `readers` connections, each parsing its replies
// in its own goroutine, while this goroutine adds up what they read, so
// reading, parsing and summing overlap. The sums' map is sized from the
// sets' sizes before the first member is added, as growing a map of a
// million members costs more than filling it. A member's key in the map is
// the bytes ReadSets gave or a kept set's (neither is written again), so
// the map adds no copy of its own.
func (a *API) merge(ctx context.Context, q query, keys []string, versions []int64, live func(string) bool) (map[string]int64, error) {
	if q.ep == epDrill {
		return a.mergeLinks(ctx, q, keys)
	}
	var kept []*set
	var read []string
	building := map[string]*set{}
	hint := int64(0)
	for i, k := range keys {
		if live != nil && live(k) {
			read = append(read, k)
			continue
		}
		if s := a.sets.get(k, versions[i]); s != nil {
			kept = append(kept, s)
			hint += int64(len(s.counts))
			continue
		}
		read = append(read, k)
		if a.sets.budget > 0 {
			building[k] = &set{key: k, version: versions[i]}
		}
	}
	type chunk struct {
		key     string
		members [][]byte
		counts  []int64
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := min(readers, len(read))
	ch := make(chan chunk, 16)
	sizes := make(chan int64, n)
	errc := make(chan error, n)
	var wg sync.WaitGroup
	for r := 0; r < n; r++ {
		// Keys dealt round-robin: months and days alternate in cover's
		// order, so each reader gets a share of the big sets.
		var part []string
		for i := r; i < len(read); i += n {
			part = append(part, read[i])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sized := false
			err := a.o.Store.ReadSets(ctx, part, live, func(total int64) {
				sized = true
				sizes <- total
			}, func(key string, members [][]byte, counts []int64) error {
				select {
				case ch <- chunk{key, members, counts}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			if !sized {
				sizes <- 0
			}
			if err != nil {
				cancel()
			}
			errc <- err
		}()
	}
	go func() { wg.Wait(); close(ch) }()
	for r := 0; r < n; r++ {
		hint += <-sizes
	}
	sum := make(map[string]int64, min(hint, maxSizeHint))
	// The bytes booked for the sets being built (setCache.reserve), given
	// back once they are kept or dropped.
	var booked int64
	defer func() { a.sets.release(booked) }()
	for c := range ch {
		for i, m := range c.members {
			sum[bytesString(m)] += c.counts[i]
		}
		if s := building[c.key]; s != nil {
			n, ok := a.sets.grow(s, c.members, c.counts)
			booked += n
			if !ok {
				delete(building, c.key)
			}
		}
	}
	var first error
	for r := 0; r < n; r++ {
		if err := <-errc; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return sum, first
	}
	for _, s := range kept {
		s.each(func(m string, c int64) { sum[m] += c })
	}
	for _, s := range building {
		a.sets.put(s)
	}
	return sum, nil
}

// mergeLinks sums, over the drill-down strings of keys (one per day, the
// bucket of q.value: drill.go), the attempts of the tuples whose value of
// q.kind is q.value, by their value of q.of. The days are read over
// `readers` connections, each decoding its strings in its own goroutine
// and keeping only q.value's tuples, which are few next to a bucket's.
func (a *API) mergeLinks(ctx context.Context, q query, keys []string) (map[string]int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := max(1, min(readers, len(keys)))
	sums := make([]map[string]int64, n)
	errc := make(chan error, n)
	for r := 0; r < n; r++ {
		var part []string
		for i := r; i < len(keys); i += n {
			part = append(part, keys[i])
		}
		sum := map[string]int64{}
		sums[r] = sum
		go func() {
			err := a.o.Store.ReadStrings(ctx, part, func(key string, b []byte) error {
				err := stats.DecodeLinks(b, func(ks []string, n int64, vals [][]byte) error {
					// A chunk's kinds are a handful of interned names.
					kind, of := slices.Index(ks, q.kind), slices.Index(ks, q.of)
					if kind < 0 || of < 0 || kind >= len(vals) || of >= len(vals) || string(vals[kind]) != q.value {
						return nil
					}
					if c, ok := sum[string(vals[of])]; ok {
						sum[string(vals[of])] = c + n
					} else {
						sum[string(vals[of])] = n
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("read the drill-down data %q: %w", key, err)
				}
				return nil
			})
			if err != nil {
				cancel()
			}
			errc <- err
		}()
	}
	var first error
	for r := 0; r < n; r++ {
		if err := <-errc; err != nil && (first == nil || errors.Is(first, context.Canceled)) {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	sum := sums[0]
	for _, m := range sums[1:] {
		for v, c := range m {
			sum[v] += c
		}
	}
	return sum, nil
}

// maxSizeHint caps the map sized ahead, whatever the sets' sizes claim.
const maxSizeHint = 1 << 24

// bytesString is b as a string without a copy. Only for bytes that are
// never written again (the replies ReadSets hands over).
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// entryHeap is a min-heap by rank order: its root is the worst kept entry.
type entryHeap []stats.Entry

func (h entryHeap) Len() int            { return len(h) }
func (h entryHeap) Less(i, j int) bool  { return before(h[j], h[i]) }
func (h entryHeap) Swap(i, j int)       { h[i], h[j] = h[j], h[i] }
func (h *entryHeap) Push(x interface{}) { *h = append(*h, x.(stats.Entry)) }
func (h *entryHeap) Pop() interface{} {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// rank turns the sums into an answer: the first n entries in order, or
// every entry when n < 0.
func rank(sum map[string]int64, n int) answer {
	var ans answer
	ans.distinct = int64(len(sum))
	if n < 0 || n >= len(sum) {
		all := make([]stats.Entry, 0, len(sum))
		for m, c := range sum {
			ans.attempts += c
			all = append(all, stats.Entry{Member: m, Count: c})
		}
		slices.SortFunc(all, compareEntries)
		ans.top = all
		return ans
	}
	// Selecting the first n of a million sums with a heap of n costs far
	// less than sorting them all.
	h := make(entryHeap, 0, n)
	for m, c := range sum {
		ans.attempts += c
		e := stats.Entry{Member: m, Count: c}
		if len(h) < n {
			heap.Push(&h, e)
		} else if before(e, h[0]) {
			h[0] = e
			heap.Fix(&h, 0)
		}
	}
	top := []stats.Entry(h)
	slices.SortFunc(top, compareEntries)
	ans.top = top
	return ans
}

// serveRanking answers top and drill.
func (a *API) serveRanking(ctx context.Context, w http.ResponseWriter, q query) error {
	keys, periods, live := a.sources(q)
	why, check := whyDrill, periods
	if q.ep != epDrill {
		why, check = whyTop(a.liveFrom()), dayPeriods(periods)
	}
	if err := a.refusePruned(ctx, check, why); err != nil {
		return err
	}
	versions, err := a.o.Store.PeriodTotals(ctx, periods)
	if err != nil {
		return err
	}
	ck := cacheKey(q)
	var ans answer
	cached, ok := a.cache.get(ck, versions)
	switch {
	case ok && !q.csv:
		ans = cached
	case ok && q.csv && int64(len(cached.top)) == cached.distinct:
		ans = cached
	default:
		release, err := a.acquire(ctx)
		if err != nil {
			return err
		}
		sum, err := a.merge(ctx, q, keys, versions, live)
		release()
		if err != nil {
			return err
		}
		n := maxLimit
		if q.csv {
			n = -1
		}
		ans = rank(sum, n)
		// The cache keeps what JSON can ask for, so that it stays small
		// (a CSV of a bigger ranking is computed again), and values of
		// its own: the answer's share the buffers of Redis's replies and
		// of kept sets, which it must not hold on to.
		keep := ans
		keep.top = make([]stats.Entry, min(len(ans.top), maxLimit))
		for i := range keep.top {
			keep.top[i] = stats.Entry{Member: strings.Clone(ans.top[i].Member), Count: ans.top[i].Count}
		}
		a.cache.put(ck, versions, keep)
	}
	if q.csv {
		top := ans.top
		if q.limitSet && len(top) > q.limit {
			top = top[:q.limit]
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		sent := false
		return render.WriteCSV(w, func() ([]render.Entry, error) {
			if sent {
				return nil, nil
			}
			sent = true
			out := make([]render.Entry, len(top))
			for i, e := range top {
				out[i] = render.Entry{Value: e.Member, Count: e.Count}
			}
			return out, nil
		})
	}
	top := ans.top
	if len(top) > q.limit {
		top = top[:q.limit]
	}
	items := make([]item, len(top))
	for i, e := range top {
		items[i] = item{Value: e.Member, ValueB64: b64IfInvalid(e.Member), Count: e.Count}
	}
	if q.ep == epDrill {
		return writeJSON(w, drillJSON{
			Kind: q.kind, Of: q.of, Value: q.value, ValueB64: b64IfInvalid(q.value),
			From: dayName(q.from), To: dayName(q.to),
			Attempts: ans.attempts, Distinct: ans.distinct, Top: items,
		})
	}
	return writeJSON(w, rankingJSON{
		Kind: q.kind, From: dayName(q.from), To: dayName(q.to),
		Attempts: ans.attempts, Distinct: ans.distinct, Top: items,
	})
}

// serveSeries answers series: one ZSCORE per day, in one round trip.
func (a *API) serveSeries(ctx context.Context, w http.ResponseWriter, q query) error {
	ds := days(q.from, q.to)
	if err := a.refusePruned(ctx, ds, whySeries); err != nil {
		return err
	}
	keys := make([]string, len(ds))
	for i, d := range ds {
		keys[i] = stats.StatsKey(d, q.kind)
	}
	counts, err := a.o.Store.Scores(ctx, keys, q.value)
	if err != nil {
		return err
	}
	out := make([]dayJSON, len(ds))
	for i, d := range ds {
		out[i] = dayJSON{Day: d, Count: counts[i]}
	}
	return writeJSON(w, seriesJSON{
		Kind: q.kind, Value: q.value, ValueB64: b64IfInvalid(q.value),
		From: dayName(q.from), To: dayName(q.to), Days: out,
	})
}
