package stats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/gomodule/redigo/redis"
)

// The reads of the investigation API (SPEC §10). A question may cover a
// year of sets, so every read here is short for Redis: a sorted set is
// read a chunk of ranks at a time (at most QueryChunk members and about
// ReplyBytes bytes per reply, see ReadSets), and the merging happens in
// the daemon. Nothing here runs a command whose cost grows with the range
// (no ZUNIONSTORE of a year of days): counting goes on between the
// chunks.

// QueryChunk is the most members one reply of a query read carries.
const QueryChunk = 4096

// snapshotSeq makes the names of concurrent query snapshots distinct.
var snapshotSeq atomic.Uint64

// ReadSets calls fn with every member of every set of keys and its score,
// a chunk at a time, in no particular order; a key that does not exist has
// no members. size, when not nil, is first told how many members the sets
// hold in all (a member in several sets counted once per set), so that the
// caller can size what it merges into. The chunk's slices are fn's to
// keep; the members' bytes are never written again.
// The keys of one call are read over one connection, pipelined: the copies
// and sizes in one round trip, then the chunks as a stream with at most
// readWindow of them asked and not yet read, so round trips overlap and
// what Redis holds for this reader stays a few replies.
//
// A set read by ranks while counting writes it could have a member skipped
// or read twice, as increments move members between ranks. Keys for which
// live reports true (periods that may still be counted into) are first
// copied (COPY, O(members) once; a day's set, so small) and the copy is
// read; the others are read in place.
//
// A chunk is one ZRANGE of queryChunk(maxValue) ranks: values are capped at
// max_value_bytes when they are counted, so a reply holds at most about
// ReplyBytes of members. A plain ZRANGE costs Redis far less per member
// than the byte-counting range script (which builds Lua strings of every
// member); the script is kept for a set found holding a member over the cap
// (counted under a larger max_value_bytes): the rest of that set is read
// with it, byte-bounded.
func (s *Store) ReadSets(ctx context.Context, keys []string, live func(key string) bool, size func(total int64), fn func(key string, members [][]byte, counts []int64) error) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()

	maxValue := s.MaxValueBytes
	if maxValue <= 0 {
		maxValue = DefaultMaxValueBytes
	}
	chunk := queryChunk(maxValue)
	read := make([]string, len(keys)) // the key actually read
	var drop []string
	defer func() {
		if len(drop) > 0 {
			args := make([]interface{}, len(drop))
			for i, k := range drop {
				args[i] = k
			}
			// Expiry removes them anyway; this only frees memory sooner.
			_, _ = conn.Do("DEL", args...)
		}
	}()
	// One round trip: the copies of live keys, then every size. The sizes
	// are taken once: a key read in place that grows meanwhile is read as
	// far as it was when the question started.
	for i, k := range keys {
		read[i] = k
		if live != nil && live(k) {
			snap := "alog:snapshot:query:" + strconv.FormatUint(snapshotSeq.Add(1), 10) + ":" + k
			if err := conn.Send("COPY", k, snap); err != nil {
				return fmt.Errorf("snapshot %q: %w", k, err)
			}
			if err := conn.Send("EXPIRE", snap, snapshotTTL); err != nil {
				return fmt.Errorf("snapshot %q: %w", k, err)
			}
			drop = append(drop, snap)
			read[i] = snap
		}
	}
	for _, k := range read {
		// The size, then how many members score below 1 and exactly 1
		// (see ones).
		for _, args := range [][]interface{}{{k}, {k, "-inf", "(1"}, {k, 1, 1}} {
			cmd := "ZCOUNT"
			if len(args) == 1 {
				cmd = "ZCARD"
			}
			if err := conn.Send(cmd, args...); err != nil {
				return fmt.Errorf("size of %q: %w", k, err)
			}
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("read %d sets: %w", len(keys), err)
	}
	for range drop {
		for _, what := range []string{"COPY", "EXPIRE"} {
			if _, err := conn.Receive(); err != nil {
				return fmt.Errorf("snapshot for a query (%s): %w", what, err)
			}
		}
	}
	// ones: most members of a busy period's set were seen once (a source
	// that tried once), and a set is ordered by score, so the members
	// scoring exactly 1 are one run of ranks; that run is read without
	// scores, which halves what Redis writes and the daemon parses for
	// them.
	type span struct {
		i      int   // index into keys
		lo, hi int64 // ranks
		ones   bool  // every member of the span scores 1
	}
	var todo []span
	var total int64
	for i := range keys {
		var c [3]int64 // size, below 1, exactly 1
		for j := range c {
			n, err := redis.Int64(conn.Receive())
			if err != nil {
				return fmt.Errorf("size of %q: %w", keys[i], err)
			}
			c[j] = n
		}
		total += c[0]
		runs := [3][2]int64{{0, c[1]}, {c[1], c[1] + c[2]}, {c[1] + c[2], c[0]}}
		for j, run := range runs {
			for lo := run[0]; lo < run[1]; lo += int64(chunk) {
				todo = append(todo, span{i, lo, min(lo+int64(chunk), run[1]) - 1, j == 1})
			}
		}
	}
	if size != nil {
		size(total)
	}
	// big marks the keys found holding a member over the cap: their spans
	// not yet asked for are read with the byte-bounded script, after the
	// stream.
	big := map[int]bool{}
	var asked, rest []span
	next := 0
	send := func() error {
		for next < len(todo) && len(asked) < readWindow {
			sp := todo[next]
			next++
			if big[sp.i] {
				rest = append(rest, sp)
				continue
			}
			var err error
			if sp.ones {
				err = conn.Send("ZRANGE", read[sp.i], sp.lo, sp.hi)
			} else {
				err = conn.Send("ZRANGE", read[sp.i], sp.lo, sp.hi, "WITHSCORES")
			}
			if err != nil {
				return fmt.Errorf("read %q: %w", keys[sp.i], err)
			}
			asked = append(asked, sp)
		}
		return conn.Flush()
	}
	if err := send(); err != nil {
		return fmt.Errorf("read %d sets: %w", len(keys), err)
	}
	for len(asked) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %d sets: %w", len(keys), err)
		}
		sp := asked[0]
		asked = asked[1:]
		v, err := redis.Values(conn.Receive())
		if err != nil {
			return fmt.Errorf("read ranks %d-%d of %q: %w", sp.lo, sp.hi, keys[sp.i], err)
		}
		step := 2
		if sp.ones {
			step = 1
		}
		members := make([][]byte, 0, len(v)/step)
		counts := make([]int64, 0, len(v)/step)
		over := false
		for j := 0; j+step-1 < len(v); j += step {
			m, ok := v[j].([]byte)
			if !ok {
				return fmt.Errorf("read ranks %d-%d of %q: unexpected reply %T", sp.lo, sp.hi, keys[sp.i], v[j])
			}
			if len(m) > maxValue {
				over = true
			}
			n := int64(1)
			if !sp.ones {
				sc, ok := v[j+1].([]byte)
				if !ok {
					return fmt.Errorf("read ranks %d-%d of %q: unexpected reply %T", sp.lo, sp.hi, keys[sp.i], v[j+1])
				}
				var err error
				if n, err = parseScoreBytes(sc); err != nil {
					return fmt.Errorf("score of %q in %q: %w", m, keys[sp.i], err)
				}
			}
			members = append(members, m)
			counts = append(counts, n)
		}
		if len(members) > 0 {
			if err := fn(keys[sp.i], members, counts); err != nil {
				return err
			}
		}
		if over {
			big[sp.i] = true
		}
		if len(asked) <= readWindow/2 {
			if err := send(); err != nil {
				return fmt.Errorf("read %d sets: %w", len(keys), err)
			}
		}
	}
	for _, sp := range rest {
		if err := s.readBounded(ctx, conn, keys[sp.i], read[sp.i], sp.lo, sp.hi, fn); err != nil {
			return err
		}
	}
	return nil
}

// queryChunk is how many ranks one ZRANGE of ReadSets asks for, so that a
// reply of values of at most maxValue bytes stays within about ReplyBytes.
func queryChunk(maxValue int) int {
	return max(64, min(QueryChunk, ReplyBytes/maxValue))
}

// readWindow is how many chunks ReadSets asks for ahead of reading them.
const readWindow = 8

// DefaultMaxValueBytes is max_value_bytes when Store.MaxValueBytes is not
// set (config.DefaultMaxValueBytes).
const DefaultMaxValueBytes = 1024

// readBounded reads ranks from..to of key (read as name) with the
// byte-bounded range script, for a set holding values longer than today's
// cap.
func (s *Store) readBounded(ctx context.Context, conn redis.Conn, key, name string, from, to int64, fn func(key string, members [][]byte, counts []int64) error) error {
	for pos := from; pos <= to; {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %q: %w", key, err)
		}
		chunk, err := readRange(conn, name, pos, to, QueryChunk, ReplyBytes)
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			// The set shrank under us (a flush).
			return nil
		}
		pos += int64(len(chunk))
		members := make([][]byte, len(chunk))
		counts := make([]int64, len(chunk))
		for j, e := range chunk {
			members[j], counts[j] = []byte(e.Member), e.Count
		}
		if err := fn(key, members, counts); err != nil {
			return err
		}
	}
	return nil
}

// parseScoreBytes is parseScore of a reply's bytes, without a copy for
// the integers that counts are.
func parseScoreBytes(b []byte) (int64, error) {
	var n int64
	if len(b) > 0 && len(b) < 19 {
		neg := b[0] == '-'
		digits := b
		if neg {
			digits = b[1:]
		}
		ok := len(digits) > 0
		for _, c := range digits {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			n = n*10 + int64(c-'0')
		}
		if ok {
			if neg {
				n = -n
			}
			return n, nil
		}
	}
	return parseScore(string(b))
}

func isNoScript(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && len(re) >= 8 && string(re[:8]) == "NOSCRIPT"
}

// Scores returns member's score in each of keys (0 where absent), in one
// round trip.
func (s *Store) Scores(ctx context.Context, keys []string, member string) ([]int64, error) {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	for _, k := range keys {
		if err := conn.Send("ZSCORE", k, member); err != nil {
			return nil, fmt.Errorf("read score in %q: %w", k, err)
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("read scores of %d sets: %w", len(keys), err)
	}
	out := make([]int64, len(keys))
	for i, k := range keys {
		v, err := redis.String(conn.Receive())
		if errors.Is(err, redis.ErrNil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read score in %q: %w", k, err)
		}
		if out[i], err = parseScore(v); err != nil {
			return nil, fmt.Errorf("score in %q: %w", k, err)
		}
	}
	return out, nil
}

// PeriodTotals returns the attempts counted in each period (day, month or
// year name), 0 where none, in one round trip. Every batch adds to the
// totals of the days it counts into, in the same script as the rankings,
// so a period's total changes whenever its rankings do: the query cache
// uses them as the version of what it answered from.
func (s *Store) PeriodTotals(ctx context.Context, periods []string) ([]int64, error) {
	return s.Totals(ctx, periods)
}

// ReadStrings calls fn with the bytes of every string of keys that exists,
// in keys' order, over one connection: the lengths in one round trip, then
// GETRANGEs of at most ReplyBytes each, pipelined, so that no reply is
// large for Redis to build and a key of any size is read whole. A string
// appended to meanwhile (a day still counted into) is read as long as it
// was when the question started, which ends on a whole chunk (drill.go: a
// chunk is one APPEND). A key of another type is an error naming it.
func (s *Store) ReadStrings(ctx context.Context, keys []string, fn func(key string, b []byte) error) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	for _, k := range keys {
		if err := conn.Send("STRLEN", k); err != nil {
			return fmt.Errorf("size of %q: %w", k, err)
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("read %d strings: %w", len(keys), err)
	}
	size := make([]int64, len(keys))
	for i, k := range keys {
		if size[i], err = redis.Int64(conn.Receive()); err != nil {
			return fmt.Errorf("size of %q: %w", k, err)
		}
	}
	type span struct {
		i      int
		lo, hi int64
	}
	var todo []span
	for i, n := range size {
		for lo := int64(0); lo < n; lo += ReplyBytes {
			todo = append(todo, span{i, lo, min(lo+ReplyBytes, n) - 1})
		}
	}
	var buf []byte // the key being read, when it takes several spans
	asked, next := 0, 0
	for done := 0; done < len(todo); done++ {
		for next < len(todo) && next-done < readWindow {
			sp := todo[next]
			if err := conn.Send("GETRANGE", keys[sp.i], sp.lo, sp.hi); err != nil {
				return fmt.Errorf("read %q: %w", keys[sp.i], err)
			}
			next++
			asked++
		}
		if asked > 0 {
			if err := conn.Flush(); err != nil {
				return fmt.Errorf("read %d strings: %w", len(keys), err)
			}
			asked = 0
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %d strings: %w", len(keys), err)
		}
		sp := todo[done]
		b, err := redis.Bytes(conn.Receive())
		if err != nil {
			return fmt.Errorf("read bytes %d-%d of %q: %w", sp.lo, sp.hi, keys[sp.i], err)
		}
		if int64(len(b)) != sp.hi-sp.lo+1 {
			// Only a flush shortens a string: read no half chunk.
			return fmt.Errorf("read %q: it shrank while read (a flush?); ask again", keys[sp.i])
		}
		whole := sp.lo == 0 && sp.hi == size[sp.i]-1
		if !whole {
			buf = append(buf, b...)
			if sp.hi < size[sp.i]-1 {
				continue
			}
			b, buf = buf, nil
		}
		if err := fn(keys[sp.i], b); err != nil {
			return err
		}
	}
	return nil
}
