package stats

import (
	"sort"
	"time"
)

// Batch aggregates attempts before they are applied in one transaction.
// Increments of the same member in the same period are summed first: a
// batch of a thousand lines from one busy day touches each user name, source
// and host once per period instead of once per line, which is what makes
// the daemon faster than one command per increment.
//
// A Batch is not safe for concurrent use; each worker owns one.
type Batch struct {
	days  map[int32]*dayAgg // by yyyymmdd
	order []int32           // days in first-seen order, for stable output
	n     int
	// members counts the distinct (day, kind, member) of the batch and
	// drill its distinct tuples of a day (link): what Work adds up.
	members, drill int
	lastKey        int32
	last           *dayAgg

	// The derived kinds (SPEC §13), when an Enricher is set: their
	// names, one scratch answer per kind, and the names people read
	// beside the values of this batch, by kind index.
	enrich       Enricher
	derivedKinds []string
	derivedVals  []Derived
	names        []map[string]string
	// ids are the identities of the remembered lines added (AddOnce), and
	// dups the lines left out as duplicates (see Duplicates).
	ids  map[LineID]struct{}
	dups int
	// newestLine is the largest stamp (Unix seconds) of the attempts the
	// batch holds: addTo keeps it, and taking out lines counted before
	// (without) adds the rest again, which sets it anew.
	newestLine int64

	// coarse leaves the day rankings out: the batch holds attempts of
	// pruned days (SPEC §12), which count into months, years, totals and
	// first-seen days only.
	coarse bool
	// scratch packs an attempt's tuple for the links lookup without
	// allocating when the tuple was seen before.
	scratch []byte
}

type dayAgg struct {
	period  Period
	members [3]map[string]int64 // by kind index
	records []byte              // packed attempt records of this day
	n       int64
	derived []map[string]int64 // by derived kind index; nil without
	// memos are the remembered lines of this day (AddOnce), until when
	// their memory lasts.
	memos []memo
	until int64
	// links counts the attempts of this day by their whole tuple of
	// values (see drill.go), from which the drill-down chunks are
	// planned when the store records them.
	links map[string]int64
}

// NewBatch returns an empty batch.
func NewBatch() *Batch {
	return &Batch{days: make(map[int32]*dayAgg)}
}

// Len is the number of attempts added since the last Reset.
func (b *Batch) Len() int { return b.n }

// Reset empties the batch, keeping its memory for the next one.
func (b *Batch) Reset() {
	clear(b.days)
	b.order = b.order[:0]
	b.n = 0
	b.members, b.drill = 0, 0
	b.last = nil
	b.lastKey = 0
	b.resetDerived()
	clear(b.ids)
	b.dups = 0
	b.newestLine = 0
}

// Add records one attempt. t must already be in the configured location:
// its calendar day there is the day the attempt is counted on. host, user
// and src are copied, so the caller may reuse their memory.
func (b *Batch) Add(t time.Time, host, user, src []byte) {
	b.add(t, host, user, src, true)
}

func (b *Batch) add(t time.Time, host, user, src []byte, store bool) {
	b.addTo(b.dayOf(t), t.Unix(), host, user, src, store)
}

// dayOf returns the aggregate of t's calendar day, made on first use.
func (b *Batch) dayOf(t time.Time) *dayAgg {
	y, m, d := t.Date()
	key := int32(y*10000 + int(m)*100 + d)
	agg := b.last
	if agg == nil || key != b.lastKey {
		agg = b.days[key]
		if agg == nil {
			agg = &dayAgg{period: periodOf(y, int(m), d)}
			for i := range agg.members {
				agg.members[i] = make(map[string]int64)
			}
			b.days[key] = agg
			b.order = append(b.order, key)
		}
		b.last, b.lastKey = agg, key
	}
	return agg
}

// addTo counts one attempt on agg's day.
func (b *Batch) addTo(agg *dayAgg, unix int64, host, user, src []byte, store bool) {
	b.members += inc(agg.members[0], user) + inc(agg.members[1], src) + inc(agg.members[2], host)
	derived := false
	if b.enrich != nil {
		b.addDerived(agg, src)
		derived = true
	}
	if store {
		agg.records = appendRecord(agg.records, unix, host, user, src)
	}
	b.link(agg, derived, user, src, host)
	agg.n++
	b.n++
	if b.n == 1 || unix > b.newestLine {
		b.newestLine = unix
	}
}

// inc adds one to m[string(v)] and returns 1 when v is new to m; the
// lookup does not allocate, only the first insertion of a member copies it.
func inc(m map[string]int64, v []byte) int {
	if n, ok := m[string(v)]; ok {
		m[string(v)] = n + 1
		return 0
	}
	m[string(v)] = 1
	return 1
}

// Days is the number of distinct days the batch holds attempts of.
func (b *Batch) Days() int { return len(b.order) }

// Work estimates the time Apply's script takes for the batch, in
// increments of sorted sets (a few microseconds each), drill-down data
// included. Each distinct member of a day counts 3: one increment of the
// day's ranking, of its month's and of its year's (fewer when the month or
// year has it from another day of the batch). Each distinct tuple of a day
// counts one per kind while the day has at most LinkBuckets of them (each
// opens a drill-down chunk per kind), then 1 (drill.go). A caller that
// must keep scripts short cuts its batches by it; Add keeps it as it goes.
func (b *Batch) Work() int { return 3*b.members + b.drill }

// kindIndex maps the kinds to dayAgg.members.
var kindNames = [3]string{KindUser, KindSrc, KindHost}

// increment is one ZINCRBY of the aggregated batch.
type increment struct {
	key    string
	member string
	by     int64
}

// plan is everything one transaction writes.
type plan struct {
	incrs    []increment
	totals   map[string]int64 // period → attempts
	toupdate [3][]string      // by granularity
	oldest   string           // smallest day
	newest   string           // largest day
	// newestLine is the batch's largest stamp in Unix seconds.
	newestLine int64
	records    map[string][][]byte // day → packed elements
	// firstSeen holds, per kind, member → the earliest day of the batch
	// it appears on, as ZADD LT arguments (day, member, day, member, …).
	firstSeen [][]interface{} // by kind index of the batch
	// firstKinds names the kinds of firstSeen.
	firstKinds []string
	// seen holds the remembered lines by day, days in order.
	seen []seenDay
	// links are the drill-down chunks to append (drill.go), and linkMax
	// the length no drill-down string may pass.
	links   []linkAppend
	linkMax int
}

// prunedDays is the set of the batch's days that Pruned names, nil
// without a Pruned function.
func (s *Store) prunedDays(b *Batch) map[string]bool {
	if s.Pruned == nil {
		return nil
	}
	var out map[string]bool
	for _, dk := range b.order {
		day := b.days[dk].period.Day
		if s.Pruned(day) {
			if out == nil {
				out = map[string]bool{}
			}
			out[day] = true
		}
	}
	return out
}

// plan sums the batch's days into months and years, without drill-down
// chunks.
func (b *Batch) plan() plan { return b.planWith(false, nil) }

// planWith is plan, with the drill-down chunks of every day when drill
// is set (see drill.go). The days in pruned count like a coarse batch's:
// into months, years, totals and first-seen days, and DB 0.
func (b *Batch) planWith(drill bool, pruned map[string]bool) plan {
	nk := b.kindCount()
	p := plan{totals: make(map[string]int64), records: make(map[string][][]byte),
		firstSeen: make([][]interface{}, nk), firstKinds: make([]string, nk)}
	for k := range nk {
		p.firstKinds[k] = b.kindName(k)
	}
	if b.n == 0 {
		return p
	}
	days := append([]int32(nil), b.order...)
	sort.Slice(days, func(i, j int) bool { return days[i] < days[j] })
	p.oldest = b.days[days[0]].period.Day
	p.newest = b.days[days[len(days)-1]].period.Day
	p.newestLine = b.newestLine

	type coarse struct {
		name    string
		members []map[string]int64
	}
	months := map[string]*coarse{}
	years := map[string]*coarse{}
	var monthOrder, yearOrder []string
	get := func(m map[string]*coarse, order *[]string, name string) *coarse {
		c := m[name]
		if c == nil {
			c = &coarse{name: name, members: make([]map[string]int64, nk)}
			for i := range c.members {
				c.members[i] = make(map[string]int64)
			}
			m[name] = c
			*order = append(*order, name)
		}
		return c
	}
	seen := map[string]bool{}
	mark := func(g Granularity, key string) {
		if !seen[key] {
			seen[key] = true
			p.toupdate[g] = append(p.toupdate[g], key)
		}
	}
	first := make([]map[string]bool, nk)
	for k := range first {
		first[k] = map[string]bool{}
	}
	for _, dk := range days {
		agg := b.days[dk]
		per := agg.period
		mo := get(months, &monthOrder, per.Month)
		yr := get(years, &yearOrder, per.Year)
		coarseDay := b.coarse || pruned[per.Day]
		for k := range nk {
			members := b.membersOf(agg, k)
			if len(members) == 0 {
				continue // a derived kind of a day added without it
			}
			key := StatsKey(per.Day, b.kindName(k))
			if !coarseDay {
				mark(Daily, key)
			}
			for mem, n := range members {
				if !coarseDay {
					p.incrs = append(p.incrs, increment{key, mem, n})
				}
				mo.members[k][mem] += n
				yr.members[k][mem] += n
				// Days are visited in order, so the first visit is the
				// batch's earliest day for this member.
				if !first[k][mem] {
					first[k][mem] = true
					p.firstSeen[k] = append(p.firstSeen[k], int64(dk), mem)
				}
			}
		}
		p.totals[per.Day] += agg.n
		p.totals[per.Month] += agg.n
		p.totals[per.Year] += agg.n
		if len(agg.records) > 0 {
			p.records[per.Day] = append(p.records[per.Day], agg.records)
		}
		if len(agg.memos) > 0 {
			p.seen = append(p.seen, seenDay{day: per.Day, key: dk, until: agg.until, memos: agg.memos})
		}
		// A coarse batch holds attempts of pruned days, whose drill-down
		// data went with their day rankings.
		if drill && !coarseDay {
			p.links = appendDayLinks(p.links, per.Day, agg.links, nk, b.kindName)
		}
	}
	for g, c := range map[Granularity][]*coarse{Monthly: pick(months, monthOrder), Yearly: pick(years, yearOrder)} {
		for _, co := range c {
			for k, members := range co.members {
				if len(members) == 0 {
					continue
				}
				key := StatsKey(co.name, b.kindName(k))
				mark(g, key)
				for mem, n := range members {
					p.incrs = append(p.incrs, increment{key, mem, n})
				}
			}
		}
	}
	return p
}

func pick[T any](m map[string]T, order []string) []T {
	out := make([]T, 0, len(order))
	for _, k := range order {
		out = append(out, m[k])
	}
	return out
}

// args lays the plan out as applyScript's ARGV:
//
//	1 stats DB, 2 attempts DB,
//	3 applied key ("" without a record), 4 batch id, 5 rebuilding key,
//	6 lock key ("" without a token), 7 token,
//	8 totals key, 9 oldest key, 10 newest key, 11 oldest day, 12 newest day,
//	13 T, then T pairs (period, attempts) of the totals,
//	then four sections of groups, each a count G and G times
//	(key, m, m items): sorted sets to ZINCRBY (items: by, member),
//	toupdate sets to SADD (items: member), first-seen sorted sets to
//	ZADD LT (items: day, member), attempt lists to RPUSH (items: element),
//	then the drill-down strings to APPEND to, a count L, the most bytes a
//	string may hold, and L times (key, chunk), then the memory of counted lines: a count D and D times (SeenKey,
//	bucket key prefix, until, m, m LineIDs),
//	and last the newest-line key and the batch's newest stamp (read by
//	the script as ARGV[#ARGV-1] and ARGV[#ARGV]).
func (p plan) args(rec *Applied) []interface{} {
	n := 22 + 2*len(p.totals) + 3*len(p.incrs) + len(p.records)*3 + 2*len(p.links)
	for g := range p.toupdate {
		n += len(p.toupdate[g]) + 2
	}
	for k := range p.firstSeen {
		n += len(p.firstSeen[k]) + 2
	}
	for _, elems := range p.records {
		n += len(elems)
	}
	for _, sd := range p.seen {
		n += 4 + len(sd.memos)
	}
	a := make([]interface{}, 0, n)
	a = append(a, StatsDB, AttemptsDB)
	if rec != nil {
		lock := ""
		if rec.Token != "" {
			lock = rec.LockKey
		}
		a = append(a, AppliedKey(rec.Queue, rec.Slot), rec.ID, RebuildingKey, lock, rec.Token)
	} else {
		a = append(a, "", "", "", "", "")
	}
	a = append(a, TotalsKey, OldestKey, NewestKey, p.oldest, p.newest, len(p.totals))
	for period, n := range p.totals {
		a = append(a, period, n)
	}

	// The increments come grouped by key (plan appends all members of a
	// key together), so each group is a run of equal keys.
	groups, at := 0, len(a)
	a = append(a, 0)
	for i := 0; i < len(p.incrs); {
		j := i
		for j < len(p.incrs) && p.incrs[j].key == p.incrs[i].key {
			j++
		}
		a = append(a, p.incrs[i].key, j-i)
		for _, in := range p.incrs[i:j] {
			a = append(a, in.by, in.member)
		}
		groups++
		i = j
	}
	a[at] = groups

	groups, at = 0, len(a)
	a = append(a, 0)
	for _, g := range Granularities() {
		if keys := p.toupdate[g]; len(keys) > 0 {
			a = append(a, ToUpdateKey(g), len(keys))
			for _, k := range keys {
				a = append(a, k)
			}
			groups++
		}
	}
	a[at] = groups

	groups, at = 0, len(a)
	a = append(a, 0)
	for k, pairs := range p.firstSeen {
		if len(pairs) > 0 {
			a = append(a, FirstSeenKey(p.firstKinds[k]), len(pairs)/2)
			a = append(a, pairs...)
			groups++
		}
	}
	a[at] = groups

	a = append(a, len(p.records))
	for day, elems := range p.records {
		a = append(a, AttemptsKey(day), len(elems))
		for _, e := range elems {
			a = append(a, e)
		}
	}

	a = append(a, len(p.links), max(p.linkMax, 1))
	for _, l := range p.links {
		a = append(a, l.key, l.chunk)
	}

	a = append(a, len(p.seen))
	for _, sd := range p.seen {
		a = append(a, SeenKey(sd.day), seenBucketPrefix(sd.day), sd.until, len(sd.memos))
		// One backing array for the day's identities, sliced per line.
		const w = seenWidth
		ids := make([]byte, w*len(sd.memos))
		for i, m := range sd.memos {
			id := ids[w*i : w*i+w : w*i+w]
			copy(id, m.id[:w])
			a = append(a, id)
		}
	}
	return append(a, NewestLineKey, p.newestLine)
}
