package api

import (
	"container/list"
	"slices"
	"strconv"
	"sync"
)

// cacheEntries and cacheBytes bound the answers kept: an answer holds at
// most maxLimit entries, but values may be as large as a line allows, so
// the bytes are bounded too.
const (
	cacheEntries = 256
	cacheBytes   = 64 << 20
)

// size is about what an answer holds in memory.
func (a answer) size() int {
	n := 64
	for _, e := range a.top {
		n += len(e.Member) + 32
	}
	return n
}

// cache keeps recent answers of top and drill with the versions (period
// totals) they were computed from; an answer is served only while every
// version is unchanged (see the package comment). Least recently used
// answers go first.
type cache struct {
	mu    sync.Mutex
	max   int
	bytes int        // sum of the kept answers' sizes
	order *list.List // of *cached, most recent first
	byKey map[string]*list.Element
}

type cached struct {
	key      string
	versions []int64
	ans      answer
}

func newCache(max int) *cache {
	return &cache{max: max, order: list.New(), byKey: make(map[string]*list.Element)}
}

// cacheKey names a question regardless of limit and format, which only
// choose how much of the same answer is sent.
func cacheKey(q query) string {
	return strconv.Itoa(int(q.ep)) + "\x00" + q.kind + "\x00" + q.of + "\x00" + dayName(q.from) + "\x00" + dayName(q.to) + "\x00" + q.value
}

func (c *cache) get(key string, versions []int64) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[key]
	if !ok {
		return answer{}, false
	}
	e := el.Value.(*cached)
	if !slices.Equal(e.versions, versions) {
		c.remove(el)
		return answer{}, false
	}
	c.order.MoveToFront(el)
	return e.ans, true
}

func (c *cache) put(key string, versions []int64, ans answer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[key]; ok {
		c.remove(el)
	}
	if ans.size() > cacheBytes {
		return
	}
	c.byKey[key] = c.order.PushFront(&cached{key: key, versions: versions, ans: ans})
	c.bytes += ans.size()
	for c.order.Len() > c.max || c.bytes > cacheBytes {
		c.remove(c.order.Back())
	}
}

func (c *cache) remove(el *list.Element) {
	e := el.Value.(*cached)
	c.order.Remove(el)
	delete(c.byKey, e.key)
	c.bytes -= e.ans.size()
}
