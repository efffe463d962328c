package api

import (
	"container/list"
	"sync"
)

// DefaultSetCacheBytes is Options.SetCacheBytes when not set: about a
// year of rankings of 3,000,000 attempts (1.8 million sources) with room
// to spare.
const DefaultSetCacheBytes = 256 << 20

// set is a closed period's ranking kept in the daemon, so that a question
// over it does not read it from the counting Redis again: Redis is the
// one core that counting needs, and a question over a year read 300,000 to
// 600,000 members there. The members' bytes lie back to back in buf, which
// is never written after the set is built, so the strings a merge makes
// of them (bytesString) stay valid as long as anything holds them.
type set struct {
	key     string
	version int64 // the period's alog:totals when the set was read
	buf     []byte
	ends    []uint32 // ends[i] is where member i ends in buf
	counts  []int64
}

// setOverhead is about what a set costs beside its slices' contents.
const setOverhead = 256

func (s *set) size() int64 {
	return int64(cap(s.buf)) + 4*int64(cap(s.ends)) + 8*int64(cap(s.counts)) + int64(len(s.key)) + setOverhead
}

// need is what the set will cost once trimmed: its size by length, not by
// the capacity that appending leaves while it is built.
func (s *set) need() int64 {
	return int64(len(s.buf)) + 4*int64(len(s.ends)) + 8*int64(len(s.counts)) + int64(len(s.key)) + setOverhead
}

// add appends the members of one chunk read from Redis. It reports false
// when the set cannot be kept (its bytes would not fit the offsets), and
// the set is then dropped.
func (s *set) add(members [][]byte, counts []int64) bool {
	for i, m := range members {
		if uint64(len(s.buf))+uint64(len(m)) > maxSetBytes {
			return false
		}
		s.buf = append(s.buf, m...)
		s.ends = append(s.ends, uint32(len(s.buf)))
		s.counts = append(s.counts, counts[i])
	}
	return true
}

// maxSetBytes bounds one set's member bytes (the offsets are 32 bits).
const maxSetBytes = 1<<32 - 1

// each calls fn with every member (a string sharing buf) and its count.
func (s *set) each(fn func(m string, n int64)) {
	start := uint32(0)
	for i, end := range s.ends {
		fn(bytesString(s.buf[start:end]), s.counts[i])
		start = end
	}
}

// trim gives back what the slices grew beyond their length.
func (s *set) trim() {
	if cap(s.buf)-len(s.buf) > len(s.buf)/8 {
		s.buf = append([]byte(nil), s.buf...)
	}
	if cap(s.ends)-len(s.ends) > len(s.ends)/8 {
		s.ends = append([]uint32(nil), s.ends...)
	}
	if cap(s.counts)-len(s.counts) > len(s.counts)/8 {
		s.counts = append([]int64(nil), s.counts...)
	}
}

// setCache keeps the sets of closed periods within a budget of bytes,
// least recently used first out. A set is served only while its period's
// total is the one it was read with: the total grows whenever anything is
// counted into the period (a backfill into a closed day), so a kept set is
// exactly the Redis one. A flush (-F) rebuilds DB 1 only while no daemon
// runs, so no process keeps sets across it.
type setCache struct {
	mu     sync.Mutex
	budget int64
	bytes  int64 // of the kept sets
	// building is what the questions being computed have reserved for
	// the sets they are building, bounded by the budget too, so that the
	// kept and the coming sets together stay within twice the budget
	// however many questions run.
	building int64
	order    *list.List // of *set, most recent first
	byKey    map[string]*list.Element
	// hits and misses count the sets asked for that were kept and those
	// read from Redis, for the metrics.
	hits, misses int64
}

func newSetCache(budget int64) *setCache {
	return &setCache{budget: budget, order: list.New(), byKey: make(map[string]*list.Element)}
}

// get returns the kept set of key if it was read at version.
func (c *setCache) get(key string, version int64) *set {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		c.misses++
		return nil
	}
	s := el.Value.(*set)
	if s.version != version {
		// Totals only grow: a set older than the question's total is
		// stale for good, while a newer one (the question read its
		// totals before a count, then waited) stays for those to come.
		if s.version < version {
			c.remove(el)
		}
		c.misses++
		return nil
	}
	c.order.MoveToFront(el)
	c.hits++
	return s
}

// has tells whether key is kept at version, without counting it as asked.
func (c *setCache) has(key string, version int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	return ok && el.Value.(*set).version == version
}

// fits tells whether a set of n bytes may be kept at all: one set may take
// at most a quarter of the budget, so that one huge period does not push
// out every other.
func (c *setCache) fits(n int64) bool { return c.budget > 0 && n <= c.budget/4 }

func (c *setCache) put(s *set) {
	s.trim()
	n := s.size()
	if !c.fits(n) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[s.key]; ok {
		if el.Value.(*set).version > s.version {
			return // a newer read of the same period is kept already
		}
		c.remove(el)
	}
	c.byKey[s.key] = c.order.PushFront(s)
	c.bytes += n
	for c.bytes > c.budget {
		c.remove(c.order.Back())
	}
}

// reserve books n more bytes for sets being built, and reports false
// (booking nothing) when that would pass the budget.
func (c *setCache) reserve(n int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.building+n > c.budget {
		return false
	}
	c.building += n
	return true
}

// grow adds one chunk read from Redis to s, a set being built, and books
// what it grew by against the budget (reserve). It returns the bytes
// booked, to give back with release, and false when s cannot be kept: too
// big for one set or for what the budget has left.
func (c *setCache) grow(s *set, members [][]byte, counts []int64) (booked int64, ok bool) {
	was := s.need()
	ok = s.add(members, counts)
	grew := s.need() - was
	if !ok || !c.fits(s.need()) || !c.reserve(grew) {
		return 0, false
	}
	return grew, true
}

// release gives back n bytes booked with reserve.
func (c *setCache) release(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.building -= n
}

func (c *setCache) remove(el *list.Element) {
	s := el.Value.(*set)
	c.order.Remove(el)
	delete(c.byKey, s.key)
	c.bytes -= s.size()
}

// stats reports the bytes kept and the sets served from the cache and read
// from Redis so far.
func (c *setCache) stats() (bytes, hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, c.hits, c.misses
}
