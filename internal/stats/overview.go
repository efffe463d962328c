package stats

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// Totals returns the attempts counted in each period (day, month or year
// names, in any mix), read from TotalsKey in one round trip. A period
// without a total had no attempts: it reads as 0, so a trend over calendar
// days needs no special case for the quiet ones.
func (s *Store) Totals(ctx context.Context, periods []string) ([]int64, error) {
	out := make([]int64, len(periods))
	if len(periods) == 0 {
		return out, nil
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	args := make([]interface{}, 0, len(periods)+1)
	args = append(args, TotalsKey)
	for _, p := range periods {
		args = append(args, p)
	}
	v, err := redis.Values(conn.Do("HMGET", args...))
	if err != nil {
		return nil, fmt.Errorf("read totals of %d periods: %w", len(periods), err)
	}
	if len(v) != len(periods) {
		return nil, fmt.Errorf("read totals: %d answers for %d periods", len(v), len(periods))
	}
	for i, x := range v {
		if x == nil {
			continue
		}
		n, err := redis.Int64(x, nil)
		if err != nil {
			return nil, fmt.Errorf("total of %s in %s: %w", periods[i], TotalsKey, err)
		}
		out[i] = n
	}
	return out, nil
}

// Distinct returns the number of distinct values of each kind counted in
// period (the cardinality of each "<period>:stats<kind>"), keyed by kind.
// Without kinds named, the kinds every daemon counts.
func (s *Store) Distinct(ctx context.Context, period string, names ...string) (map[string]int64, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	kinds := names
	if len(kinds) == 0 {
		kinds = Kinds()
	}
	for _, k := range kinds {
		if err := conn.Send("ZCARD", StatsKey(period, k)); err != nil {
			return nil, fmt.Errorf("count members of %s: %w", StatsKey(period, k), err)
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("count distinct values of %s: %w", period, err)
	}
	out := make(map[string]int64, len(kinds))
	for _, k := range kinds {
		n, err := redis.Int64(conn.Receive())
		if err != nil {
			return nil, fmt.Errorf("count members of %s: %w", StatsKey(period, k), err)
		}
		out[k] = n
	}
	return out, nil
}

// firstSeenScript reads one chunk of the values first seen on a day, with
// their count that day, in one atomic step. The members scored ARGV[1] in
// the first-seen set form one contiguous rank range, in byte order; the
// chunk starts right after the cursor member ARGV[3] (or at the range's
// start), found by its rank at the moment of reading. A cursor is a member,
// not a rank, because counting goes on while a compile reads: a value seen
// for the first time today lands anywhere in the range and would shift a
// rank or an offset under the reader.
//
// A cursor no longer scored on the day (a backfill moved its first day
// back) answers nil, and the caller starts the range over. The script never
// compares members itself: Lua compares strings by the C locale's
// collation, Redis orders them by bytes.
//
// A chunk holds at most ARGV[2] members and stops once its members add up
// to ARGV[3] bytes (always at least one member), read in steps like
// rangeScript's, so that neither the reply nor the script's memory follows
// the size of attacker-chosen values.
//
// KEYS[1] first-seen set, KEYS[2] the day's stats set; ARGV[1] the day,
// ARGV[2] the chunk size, ARGV[3] the byte budget, ARGV[4] the step cap,
// ARGV[5] the cursor when there is one. Answers {members, counts}; a count
// is nil for a member missing from the day's set.
const firstSeenScript = `
local start
if #ARGV >= 5 then
  local s = redis.call('ZSCORE', KEYS[1], ARGV[5])
  if not s or tonumber(s) ~= tonumber(ARGV[1]) then return false end
  start = redis.call('ZRANK', KEYS[1], ARGV[5]) + 1
else
  start = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1])
end
local stop = redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1]) - 1
local room = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local members = {}
local used = 0
local step = 1
local i = start
while i <= stop and room > 0 and used < budget do
  local last = math.min(stop, i + step - 1, i + room - 1)
  local v = redis.call('ZRANGE', KEYS[1], i, last)
  if #v == 0 then break end
  local biggest = 1
  for j = 1, #v do
    local n = #v[j]
    if #members > 0 and used + n > budget then
      room = 0
      break
    end
    members[#members + 1] = v[j]
    used = used + n
    room = room - 1
    i = i + 1
    if n > biggest then biggest = n end
  end
  step = math.max(1, math.min(step * 2, cap, math.floor((budget - used) / biggest)))
end
if #members == 0 then return {{}, {}} end
return {members, redis.call('ZMSCORE', KEYS[2], unpack(members))}`

var firstSeenLua = redis.NewScript(2, firstSeenScript)

// ScanFirstSeen calls fn with the values of kind first seen on day (see
// FirstSeenKey), each with its count on that day, chunk values at a time in
// ascending byte order, so that a day with a hundred thousand new sources
// is never held in memory at once; a chunk also stops at about ReplyBytes
// of values, whatever their sizes. The cost is that of the new values
// only, not of everything the day or the set holds.
//
// Values counted while the scan runs may be missed or included; each value
// is delivered at most once. A value without a count on day (foreign data
// in the first-seen set) is left out: it was not seen that day.
func (s *Store) ScanFirstSeen(ctx context.Context, kind, day string, chunk int, fn func([]Entry) error) error {
	if len(day) != 8 || !kinds.Digits(day) {
		return fmt.Errorf("scan first-seen %s values: %q is not a day (yyyymmdd)", kind, day)
	}
	// The script unpacks a chunk into one Redis call; Lua's stack holds a
	// few thousand arguments at most.
	if chunk <= 0 || chunk > 4000 {
		chunk = 1000
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	fsKey, dayKey := FirstSeenKey(kind), StatsKey(day, kind)
	var cursor string
	hasCursor := false
	// last is the greatest member delivered: after a restart of the range
	// (the cursor moved away), what was delivered already is skipped.
	var last string
	delivered := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		args := []interface{}{fsKey, dayKey, day, chunk, ReplyBytes, rangeStep}
		if hasCursor {
			args = append(args, cursor)
		}
		reply, err := firstSeenLua.Do(conn, args...)
		if err != nil {
			return fmt.Errorf("read values first seen in %s on %s: %w", fsKey, day, err)
		}
		if reply == nil {
			hasCursor = false
			continue
		}
		parts, err := redis.Values(reply, nil)
		if err != nil || len(parts) != 2 {
			return fmt.Errorf("read values first seen in %s on %s: unexpected reply %v: %w", fsKey, day, reply, errors.Join(err, errUnexpected))
		}
		members, err := redis.Strings(parts[0], nil)
		if err != nil {
			return fmt.Errorf("read values first seen in %s on %s: %w", fsKey, day, err)
		}
		if len(members) == 0 {
			return nil
		}
		counts, err := redis.Values(parts[1], nil)
		if err != nil || len(counts) != len(members) {
			return fmt.Errorf("read counts of %s: %d for %d members: %w", dayKey, len(counts), len(members), errors.Join(err, errUnexpected))
		}
		out := make([]Entry, 0, len(members))
		for i, m := range members {
			if delivered && m <= last {
				continue
			}
			if counts[i] == nil {
				continue
			}
			str, err := redis.String(counts[i], nil)
			if err != nil {
				return fmt.Errorf("count of %q in %s: %w", m, dayKey, err)
			}
			n, err := parseScore(str)
			if err != nil {
				return fmt.Errorf("count of %q in %s: %w", m, dayKey, err)
			}
			out = append(out, Entry{Member: m, Count: n})
		}
		cursor, hasCursor = members[len(members)-1], true
		if !delivered || cursor > last {
			last, delivered = cursor, true
		}
		if len(out) > 0 {
			if err := fn(out); err != nil {
				return err
			}
		}
	}
}

var errUnexpected = errors.New("unexpected reply from counting redis")
