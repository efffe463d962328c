package stats

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Entry is one member of a ranking.
type Entry struct {
	Member string
	Count  int64
}

// ReplyBytes bounds what one read of a ranking asks Redis for: the members
// of one reply add up to at most this many bytes, plus one member when a
// single member is larger (it is read alone). Values are whatever bytes
// attackers sent, possibly megabytes each, so counting members alone does
// not bound a reply: 10,000 members of 1 MB are 10 GB.
const ReplyBytes = 1 << 20

// rangeStep caps how many members the range script takes from the sorted
// set in one internal ZRANGE, so that its own working memory in Redis stays
// a small multiple of the largest member even when sizes jump.
const rangeStep = 128

// rangeScript reads ranks ARGV[1]..ARGV[2] of the sorted set KEYS[1] in
// rank order, WITHSCORES, stopping after ARGV[3] members or once the
// members read add up to ARGV[4] bytes, whichever comes first; it always
// answers at least one member when the range is not empty. It reads in
// steps that grow while members are small and shrink when they are large,
// so the reply and the script's memory follow the byte budget, not the
// number of members. The answer is flat: member, score, member, score...
const rangeScript = `
local i = tonumber(ARGV[1])
local stop = tonumber(ARGV[2])
local room = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local out = {}
local used = 0
local step = 1
while i <= stop and room > 0 and used < budget do
  local last = math.min(stop, i + step - 1, i + room - 1)
  local v = redis.call('ZRANGE', KEYS[1], i, last, 'WITHSCORES')
  if #v == 0 then break end
  local biggest = 1
  for j = 1, #v, 2 do
    local n = #v[j]
    if #out > 0 and used + n > budget then return out end
    out[#out + 1] = v[j]
    out[#out + 1] = v[j + 1]
    used = used + n
    room = room - 1
    i = i + 1
    if n > biggest then biggest = n end
  end
  step = math.max(1, math.min(step * 2, cap, math.floor((budget - used) / biggest)))
end
return out`

var rangeLua = redis.NewScript(1, rangeScript)

// readRange reads ranks from..to of key, at most count members and about
// maxBytes bytes of members (see rangeScript).
func readRange(conn redis.Conn, key string, from, to int64, count, maxBytes int) ([]Entry, error) {
	v, err := redis.Strings(rangeLua.Do(conn, key, from, to, count, maxBytes, rangeStep))
	if err != nil {
		return nil, fmt.Errorf("read ranks %d-%d of %q: %w", from, to, key, err)
	}
	out := make([]Entry, 0, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		n, err := parseScore(v[i+1])
		if err != nil {
			return nil, fmt.Errorf("score of %q in %q: %w", v[i], key, err)
		}
		out = append(out, Entry{Member: v[i], Count: n})
	}
	return out, nil
}

// Ranking reads one sorted set in the order the pages show it, count
// descending then member ascending, a chunk at a time, so that a year with
// a million sources never sits in memory at once. A chunk holds at most
// the chunk size given to OpenRanking and at most about ReplyBytes of
// members (see rangeScript), whatever the members' sizes.
//
// Redis orders equal scores by member, but only ascending; so it walks the
// score groups from the highest down and each group's rank range upwards
// (ZRANGE by rank is O(log N + chunk), whatever the group's size).
type Ranking struct {
	conn     redis.Conn
	key      string
	chunk    int
	maxBytes int

	hi     int64 // highest rank not yet read, -1 when done
	lo     int64 // first rank of the current group
	next   int64 // next rank to read in the current group
	inGrp  bool
	closed bool
	card   int64
	drop   string // the snapshot to delete on Close, if any
	// period and total, when set, are the period whose set is read in
	// place and its alog:totals field when the read began (OpenStable).
	period string
	total  int64
}

// ErrMoved says a ranking read in place was counted into while it was
// read (OpenStable): what was read may be a mix of two moments.
var ErrMoved = errors.New("the ranking was counted into while it was read")

// snapshotTTL bounds how long a snapshot outlives a compile that died
// while reading it.
const snapshotTTL = 3600

// OpenSnapshot starts reading a copy of key taken at once (COPY), so that
// the whole ranking read is the ranking at one instant, however long the
// read and whatever is counted meanwhile: reading the live set by ranks
// while counting moves members between score groups could skip a member
// or return it twice. The copy costs Redis O(N) time and memory once; it
// lives under "alog:snapshot:" with a TTL and is deleted by Close.
func (s *Store) OpenSnapshot(ctx context.Context, key string, chunk, maxBytes int) (*Ranking, error) {
	snap := "alog:snapshot:" + key
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Do("COPY", key, snap, "REPLACE"); err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, err)
	}
	if _, err := conn.Do("EXPIRE", snap, snapshotTTL); err != nil {
		return nil, fmt.Errorf("snapshot %q: %w", key, err)
	}
	r, err := s.OpenRankingLimit(ctx, snap, chunk, maxBytes)
	if err != nil {
		return nil, err
	}
	r.drop = snap
	return r, nil
}

// OpenStable starts reading key, the set of period, in place, and makes
// the last Next fail with ErrMoved if anything was counted into period
// meanwhile; the caller then reads it again from a snapshot
// (OpenSnapshot). Every counting script that writes a period's sets adds
// to its alog:totals field, which only grows, so an unchanged total means
// the whole read saw one moment. A closed period, or one not counted into
// during the read, is so read exactly without the snapshot's COPY, which
// holds the counting Redis for O(N) (about 100 ms for a year of half a
// million sources). A period without a total (counted by another tool) is
// read from a snapshot at once.
func (s *Store) OpenStable(ctx context.Context, key, period string, chunk, maxBytes int) (*Ranking, error) {
	total, ok, err := s.periodTotal(ctx, period)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s.OpenSnapshot(ctx, key, chunk, maxBytes)
	}
	r, err := s.OpenRankingLimit(ctx, key, chunk, maxBytes)
	if err != nil {
		return nil, err
	}
	r.period, r.total = period, total
	return r, nil
}

// periodTotal reads period's alog:totals field; ok is false when it has
// none.
func (s *Store) periodTotal(ctx context.Context, period string) (int64, bool, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	n, err := redis.Int64(conn.Do("HGET", TotalsKey, period))
	if errors.Is(err, redis.ErrNil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("total attempts of %s: %w", period, err)
	}
	return n, true, nil
}

// OpenRanking starts reading key, chunk members and ReplyBytes at most per
// read. The caller must Close it.
func (s *Store) OpenRanking(ctx context.Context, key string, chunk int) (*Ranking, error) {
	return s.OpenRankingLimit(ctx, key, chunk, ReplyBytes)
}

// OpenRankingLimit is OpenRanking with maxBytes in place of ReplyBytes.
func (s *Store) OpenRankingLimit(ctx context.Context, key string, chunk, maxBytes int) (*Ranking, error) {
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
	if maxBytes <= 0 {
		maxBytes = ReplyBytes
	}
	return &Ranking{conn: conn, key: key, chunk: chunk, maxBytes: maxBytes, hi: n - 1, card: n}, nil
}

// Len is the number of members the set had when the ranking was opened.
func (r *Ranking) Len() int64 { return r.card }

// Close returns the connection.
func (r *Ranking) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.drop != "" {
		// UNLINK frees a large copy in the background, not in Redis'
		// main thread.
		if _, err := r.conn.Do("UNLINK", r.drop); err != nil {
			r.conn.Close()
			return fmt.Errorf("delete snapshot %q: %w", r.drop, err)
		}
	}
	return r.conn.Close()
}

// Next returns the next chunk, or nil when the ranking is exhausted.
func (r *Ranking) Next() ([]Entry, error) {
	for {
		if !r.inGrp {
			if r.hi < 0 {
				return nil, r.verify()
			}
			// The score of the highest unread rank opens a group; the
			// members below that score end just before the group starts.
			// Only the score is needed, but ZRANGE answers the member too:
			// one member, bounded by what a single value may be.
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
		out, err := readRange(r.conn, r.key, r.next, r.hi, r.chunk, r.maxBytes)
		if err != nil {
			return nil, err
		}
		r.next += int64(len(out))
		if len(out) == 0 || r.next > r.hi {
			r.hi = r.lo - 1
			r.inGrp = false
		}
		if len(out) > 0 {
			return out, nil
		}
	}
}

// verify checks, at the end of a read in place (OpenStable), that its
// period's total did not move; once, as Next may be called again.
func (r *Ranking) verify() error {
	if r.period == "" {
		return nil
	}
	period := r.period
	r.period = ""
	n, err := redis.Int64(r.conn.Do("HGET", TotalsKey, period))
	if err != nil && !errors.Is(err, redis.ErrNil) {
		return fmt.Errorf("total attempts of %s: %w", period, err)
	}
	if n != r.total {
		return fmt.Errorf("%w: %s (%d attempts when the read began, %d at its end)", ErrMoved, r.key, r.total, n)
	}
	return nil
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

// sumScript adds up the scores of the sorted set KEYS[1] by score group,
// from rank ARGV[1] downwards, at most ARGV[2] groups per call: each group
// costs one member read (ZRANGE of one rank) and one ZCOUNT, so neither
// the reply nor the script's memory depends on how many members or how
// large they are, and one call never blocks Redis for long. Answers
// {sum, next rank} with next rank -1 when done. Scores are ZINCRBY counts,
// integers well within a double's exact range.
const sumScript = `
local r = tonumber(ARGV[1])
local groups = tonumber(ARGV[2])
local sum = 0
while r >= 0 and groups > 0 do
  local v = redis.call('ZRANGE', KEYS[1], r, r, 'WITHSCORES')
  if #v == 0 then return {sum, -1} end
  local n = redis.call('ZCOUNT', KEYS[1], v[2], v[2])
  sum = sum + tonumber(v[2]) * n
  r = r - n
  groups = groups - 1
end
return {sum, r}`

var sumLua = redis.NewScript(1, sumScript)

// sumScores adds up every score of key: the attempts of a period counted
// by a tool that kept no totals.
func (s *Store) sumScores(ctx context.Context, key string) (int64, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	r, err := redis.Int64(conn.Do("ZCARD", key))
	if err != nil {
		return 0, err
	}
	r--
	var total int64
	for r >= 0 {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		v, err := redis.Int64s(sumLua.Do(conn, key, r, 1000))
		if err != nil {
			return 0, err
		}
		if len(v) != 2 {
			return 0, fmt.Errorf("sum scores of %s: %d values in reply: %w", key, len(v), errUnexpected)
		}
		total += v[0]
		r = v[1]
	}
	return total, nil
}

// Index lists the periods that have data.
type Index struct {
	Oldest, Newest      string
	Days, Months, Years []string
	// NewestLine is the stamp of the newest attempt counted (NewestLineKey);
	// zero when none was counted by a version that keeps it.
	NewestLine time.Time
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
	var line string
	if err == nil {
		line, err = getString(conn, NewestLineKey)
	}
	if err != nil {
		return idx, fmt.Errorf("read oldest/newest: %w", err)
	}
	if sec, perr := strconv.ParseInt(line, 10, 64); perr == nil && sec > 0 {
		idx.NewestLine = time.Unix(sec, 0)
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
