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
// ReplyBytes bytes per reply, see rangeScript), and the merging happens in
// the daemon. Nothing here runs a command whose cost grows with the range
// (no ZUNIONSTORE of a year of days): counting goes on between the
// chunks.

// QueryChunk is the most members one reply of a query read carries.
const QueryChunk = 4096

// snapshotSeq makes the names of concurrent query snapshots distinct.
var snapshotSeq atomic.Uint64

// ReadSets calls fn with every member of every set of keys, a chunk at a
// time, in no particular order; a key that does not exist has no members.
// The keys of one call are read over one connection, pipelined: one round
// trip serves a chunk of every key still being read.
//
// A set read by ranks while counting writes it could have a member skipped
// or read twice, as increments move members between ranks. Keys for which
// live reports true (periods that may still be counted into) are first
// copied (COPY, O(members) once; a day's set, so small) and the copy is
// read; the others are read in place.
func (s *Store) ReadSets(ctx context.Context, keys []string, live func(key string) bool, fn func(key string, chunk []Entry) error) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()

	// Pipelined EVALSHA needs the script known beforehand.
	if err := rangeLua.Load(conn); err != nil {
		return fmt.Errorf("load range script: %w", err)
	}
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
	for i, k := range keys {
		read[i] = k
		if live != nil && live(k) {
			snap := "alog:snapshot:query:" + strconv.FormatUint(snapshotSeq.Add(1), 10) + ":" + k
			if _, err := conn.Do("COPY", k, snap); err != nil {
				return fmt.Errorf("snapshot %q: %w", k, err)
			}
			if _, err := conn.Do("EXPIRE", snap, snapshotTTL); err != nil {
				return fmt.Errorf("snapshot %q: %w", k, err)
			}
			drop = append(drop, snap)
			read[i] = snap
		}
	}

	// The sizes first, in one round trip: the range script reads ranks
	// up to a given last one, and a key read in place that grows meanwhile
	// is read as far as it was when the question started.
	for _, k := range read {
		if err := conn.Send("ZCARD", k); err != nil {
			return fmt.Errorf("size of %q: %w", k, err)
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("read %d sets: %w", len(keys), err)
	}
	type cursor struct {
		i    int   // index into keys
		pos  int64 // next rank
		card int64
	}
	var open []cursor
	for i := range keys {
		n, err := redis.Int64(conn.Receive())
		if err != nil {
			return fmt.Errorf("size of %q: %w", keys[i], err)
		}
		if n > 0 {
			open = append(open, cursor{i: i, card: n})
		}
	}
	for len(open) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %d sets: %w", len(keys), err)
		}
		for _, c := range open {
			if err := rangeLua.SendHash(conn, read[c.i], c.pos, c.card-1, QueryChunk, ReplyBytes, rangeStep); err != nil {
				return fmt.Errorf("read %q: %w", keys[c.i], err)
			}
		}
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("read %d sets: %w", len(keys), err)
		}
		next := open[:0]
		var noScript bool
		for _, c := range open {
			v, err := redis.Strings(conn.Receive())
			if err != nil {
				if isNoScript(err) {
					noScript = true
					next = append(next, c)
					continue
				}
				return fmt.Errorf("read ranks from %d of %q: %w", c.pos, keys[c.i], err)
			}
			chunk := make([]Entry, 0, len(v)/2)
			for j := 0; j+1 < len(v); j += 2 {
				n, err := parseScore(v[j+1])
				if err != nil {
					return fmt.Errorf("score of %q in %q: %w", v[j], keys[c.i], err)
				}
				chunk = append(chunk, Entry{Member: v[j], Count: n})
			}
			c.pos += int64(len(chunk))
			if len(chunk) > 0 {
				if err := fn(keys[c.i], chunk); err != nil {
					return err
				}
			}
			// An empty chunk means the set shrank under us (a flush).
			if len(chunk) > 0 && c.pos < c.card {
				next = append(next, c)
			}
		}
		if noScript {
			// The script cache was emptied (SCRIPT FLUSH): load it again
			// and go on.
			if err := rangeLua.Load(conn); err != nil {
				return fmt.Errorf("load range script: %w", err)
			}
		}
		open = next
	}
	return nil
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
