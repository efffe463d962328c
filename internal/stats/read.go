package stats

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/gomodule/redigo/redis"
)

// Entry is one member of a ranking.
type Entry struct {
	Member string
	Count  int64
}

// Ranking reads one sorted set in the order the pages show it, count
// descending then member ascending, a chunk at a time, so that a year with
// a million sources never sits in memory at once.
//
// Redis orders equal scores by member, but only ascending; so it walks the
// score groups from the highest down and each group's rank range upwards
// (ZRANGE by rank is O(log N + chunk), whatever the group's size).
type Ranking struct {
	conn  redis.Conn
	key   string
	chunk int

	hi     int64 // highest rank not yet read, -1 when done
	lo     int64 // first rank of the current group
	next   int64 // next rank to read in the current group
	inGrp  bool
	closed bool
}

// OpenRanking starts reading key. The caller must Close it.
func (s *Store) OpenRanking(ctx context.Context, key string, chunk int) (*Ranking, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	n, err := redis.Int64(conn.Do("ZCARD", key))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("count members of %q: %w", key, err)
	}
	if chunk <= 0 {
		chunk = 10000
	}
	return &Ranking{conn: conn, key: key, chunk: chunk, hi: n - 1}, nil
}

// Close returns the connection.
func (r *Ranking) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	return r.conn.Close()
}

// Next returns the next chunk, or nil when the ranking is exhausted.
func (r *Ranking) Next() ([]Entry, error) {
	if !r.inGrp {
		if r.hi < 0 {
			return nil, nil
		}
		// The score of the highest unread rank opens a group; the members
		// below that score end just before the group starts.
		v, err := redis.Strings(r.conn.Do("ZRANGE", r.key, r.hi, r.hi, "WITHSCORES"))
		if err != nil {
			return nil, fmt.Errorf("read rank %d of %q: %w", r.hi, r.key, err)
		}
		if len(v) != 2 {
			// The set shrank under us (a flush); stop cleanly.
			r.hi = -1
			return nil, nil
		}
		below, err := redis.Int64(r.conn.Do("ZCOUNT", r.key, "-inf", "("+v[1]))
		if err != nil {
			return nil, fmt.Errorf("count below %s in %q: %w", v[1], r.key, err)
		}
		r.lo, r.next, r.inGrp = below, below, true
	}
	end := r.next + int64(r.chunk) - 1
	if end > r.hi {
		end = r.hi
	}
	v, err := redis.Strings(r.conn.Do("ZRANGE", r.key, r.next, end, "WITHSCORES"))
	if err != nil {
		return nil, fmt.Errorf("read ranks %d-%d of %q: %w", r.next, end, r.key, err)
	}
	out := make([]Entry, 0, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		n, err := parseScore(v[i+1])
		if err != nil {
			return nil, fmt.Errorf("score of %q in %q: %w", v[i], r.key, err)
		}
		out = append(out, Entry{Member: v[i], Count: n})
	}
	r.next = end + 1
	if r.next > r.hi {
		r.hi = r.lo - 1
		r.inGrp = false
	}
	if len(out) == 0 && r.hi >= 0 {
		return r.Next()
	}
	return out, nil
}

// parseScore reads a score written by ZINCRBY with integer increments.
func parseScore(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(f), nil
}

// Top returns the first n entries of the ranking of key.
func (s *Store) Top(ctx context.Context, key string, n int) ([]Entry, error) {
	r, err := s.OpenRanking(ctx, key, n)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []Entry
	for len(out) < n {
		chunk, err := r.Next()
		if err != nil {
			return nil, err
		}
		if chunk == nil {
			break
		}
		out = append(out, chunk...)
	}
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// Summary is what a chart's title needs.
type Summary struct {
	Total    int64 // attempts in the period
	Distinct int64 // members of the set
}

// Summarize returns the attempts of a period and the distinct members of
// one of its sets.
func (s *Store) Summarize(ctx context.Context, period, kind string) (Summary, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("connect to counting redis: %w", err)
	}
	var sum Summary
	sum.Distinct, err = redis.Int64(conn.Do("ZCARD", StatsKey(period, kind)))
	if err != nil {
		conn.Close()
		return sum, fmt.Errorf("count members of %s: %w", StatsKey(period, kind), err)
	}
	sum.Total, err = redis.Int64(conn.Do("HGET", TotalsKey, period))
	// Give the connection back before sumScores takes one: with a pool of
	// one, holding it would wait forever.
	conn.Close()
	if errors.Is(err, redis.ErrNil) {
		// Data counted by another tool has no totals: sum the set.
		sum.Total, err = s.sumScores(ctx, StatsKey(period, kind))
	}
	if err != nil {
		return sum, fmt.Errorf("total attempts of %s: %w", period, err)
	}
	return sum, nil
}

func (s *Store) sumScores(ctx context.Context, key string) (int64, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var total int64
	cursor := "0"
	for {
		v, err := redis.Values(conn.Do("ZSCAN", key, cursor, "COUNT", 1000))
		if err != nil {
			return 0, err
		}
		cursor, _ = redis.String(v[0], nil)
		items, _ := redis.Strings(v[1], nil)
		for i := 1; i < len(items); i += 2 {
			n, err := parseScore(items[i])
			if err != nil {
				return 0, err
			}
			total += n
		}
		if cursor == "0" {
			return total, nil
		}
	}
}

// Index lists the periods that have data.
type Index struct {
	Oldest, Newest      string
	Days, Months, Years []string
}

// ReadIndex scans the whole key space (every SCAN page, not the first
// one only) for the periods that have statistics.
func (s *Store) ReadIndex(ctx context.Context) (Index, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return Index{}, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	var idx Index
	idx.Oldest, err = getString(conn, OldestKey)
	if err == nil {
		idx.Newest, err = getString(conn, NewestKey)
	}
	if err != nil {
		return idx, fmt.Errorf("read oldest/newest: %w", err)
	}
	seen := map[string]bool{}
	cursor := "0"
	for {
		if err := ctx.Err(); err != nil {
			return idx, err
		}
		v, err := redis.Values(conn.Do("SCAN", cursor, "MATCH", StatsKey("*", KindHost), "COUNT", 1000))
		if err != nil {
			return idx, fmt.Errorf("scan for periods: %w", err)
		}
		cursor, _ = redis.String(v[0], nil)
		keys, _ := redis.Strings(v[1], nil)
		for _, k := range keys {
			period, _, ok := SplitStatsKey(k)
			if !ok || seen[period] {
				continue
			}
			seen[period] = true
			switch g, _ := GranularityOf(period); g {
			case Daily:
				idx.Days = append(idx.Days, period)
			case Monthly:
				idx.Months = append(idx.Months, period)
			case Yearly:
				idx.Years = append(idx.Years, period)
			}
		}
		if cursor == "0" {
			break
		}
	}
	sort.Strings(idx.Days)
	sort.Strings(idx.Months)
	sort.Strings(idx.Years)
	return idx, nil
}

func getString(conn redis.Conn, key string) (string, error) {
	v, err := redis.String(conn.Do("GET", key))
	if errors.Is(err, redis.ErrNil) {
		return "", nil
	}
	return v, err
}

// takeScript moves the toupdate set into the compiling set in one step, so
// that a key changed while the compile draws lands in a fresh toupdate set
// and is drawn again next time, and returns what is to be drawn (including
// what an interrupted compile left).
const takeScript = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SUNIONSTORE', KEYS[2], KEYS[2], KEYS[1])
  redis.call('DEL', KEYS[1])
end
return redis.call('SMEMBERS', KEYS[2])`

// TakeToUpdate returns the stats keys to redraw at granularity g.
func (s *Store) TakeToUpdate(ctx context.Context, g Granularity) ([]string, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	keys, err := redis.Strings(conn.Do("EVAL", takeScript, 2, ToUpdateKey(g), CompilingKey(g)))
	if err != nil {
		return nil, fmt.Errorf("take %s: %w", ToUpdateKey(g), err)
	}
	sort.Strings(keys)
	return keys, nil
}

// DoneRendering removes keys from the compiling set of g once their
// files are written.
func (s *Store) DoneRendering(ctx context.Context, g Granularity, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	args := make([]interface{}, 0, len(keys)+1)
	args = append(args, CompilingKey(g))
	for _, k := range keys {
		args = append(args, k)
	}
	if _, err := conn.Do("SREM", args...); err != nil {
		return fmt.Errorf("mark %d keys rendered: %w", len(keys), err)
	}
	return nil
}
