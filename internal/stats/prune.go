package stats

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// Pruning (SPEC §12) removes an old day from the counting Redis in steps
// that each leave it consistent, so that a daemon killed at any instant
// loses no attempt and the next start finishes the day:
//
//  1. MarkPruning sets PruningKey(day) (DB 0): the day is being pruned.
//  2. TakeForArchive renames the day's attempts list to ArchivingKey(day)
//     (one O(1) RENAME): a batch counted into the day afterwards starts a
//     new list, which a later pass prunes in turn, so nothing appended
//     during the archive can be deleted unarchived.
//  3. The caller writes the archive file from ReadArchiving, starting from
//     the file's first ArchiveBase bytes (the size it had before this
//     step, kept in the marker so that a step repeated after a crash
//     rewrites the same file instead of appending twice), and syncs it.
//  4. DoneArchiving deletes the renamed list and forgets the base in one
//     MULTI: the attempts are in the file now.
//  5. Unless a compile is still to draw the day (DayPending, ErrPending:
//     its files are drawn once more first), DropDrill deletes its
//     drill-down strings (LinkBuckets per kind), and then
//     DropDay deletes the rankings (UNLINK: Redis frees them in the
//     background) and their toupdate entries.
//  6. EndPruning deletes the marker.
//
// Months, years, totals (including the day's own total, a hash field),
// first-seen days, oldest and newest are kept. The memory of counted lines
// (seen.go) is left to its own expiry: it is what keeps a resent line of a
// pruned day out of its month and year.

// PruningKey (DB 0) is the marker of a day being pruned; its field "base"
// is the archive file's size before the archive step in progress.
func PruningKey(day string) string { return "alog:pruning:" + day }

// PruningPattern matches every PruningKey, for SCAN.
const PruningPattern = "alog:pruning:*"

// ArchivingKey (DB 0) is a day's attempts list taken aside for archiving.
func ArchivingKey(day string) string { return "alog:archiving:" + day }

// ArchivingPattern matches every ArchivingKey, for SCAN.
const ArchivingPattern = "alog:archiving:*"

// dayStatsPattern matches the day rankings of DB 1, for SCAN.
const dayStatsPattern = "[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]:stats*"

// ErrPending says a day's rankings still wait for a compile to draw them.
var ErrPending = errors.New("the day's charts are still to be compiled")

// ErrRebuilding says a flush (-F) is rebuilding DB 1: nothing is pruned
// under it.
var ErrRebuilding = errors.New("a flush (-F) is rebuilding the statistics; pruning waits until it completes")

// DaysBefore lists, in order, the days before day (yyyymmdd) that still
// have something to prune: stored attempts, a list taken aside, a marker,
// or day rankings. It walks the keys with SCAN, a few hundred at a time,
// so it never blocks Redis for long.
func (s *Store) DaysBefore(ctx context.Context, day string) ([]string, error) {
	set := map[string]bool{}
	add := func(d string) {
		if len(d) == 8 && d < day {
			set[d] = true
		}
	}
	for _, p := range []struct {
		pool    *redis.Pool
		pattern string
		day     func(key string) string
	}{
		{s.Attempts, AttemptsPattern, func(k string) string { return k[len(AttemptsKey("")):] }},
		{s.Attempts, ArchivingPattern, func(k string) string { return k[len(ArchivingKey("")):] }},
		{s.Attempts, PruningPattern, func(k string) string { return k[len(PruningKey("")):] }},
		{s.Stats, dayStatsPattern, func(k string) string {
			if period, _, ok := SplitStatsKey(k); ok {
				return period
			}
			return ""
		}},
	} {
		if err := scanKeys(ctx, p.pool, p.pattern, func(k string) { add(p.day(k)) }); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out, nil
}

// scanKeys calls fn with every key of pool's database matching pattern.
func scanKeys(ctx context.Context, pool *redis.Pool, pattern string, fn func(string)) error {
	conn, err := pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	return scanConn(ctx, conn, pattern, fn)
}

// scanConn calls fn with every key of conn's database matching pattern,
// a few hundred at a time (SCAN may name a key twice).
func scanConn(ctx context.Context, conn redis.Conn, pattern string, fn func(string)) error {
	cursor := "0"
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := redis.Values(conn.Do("SCAN", cursor, "MATCH", pattern, "COUNT", 500))
		if err != nil {
			return fmt.Errorf("scan %s: %w", pattern, err)
		}
		cursor, _ = redis.String(v[0], nil)
		keys, _ := redis.Strings(v[1], nil)
		for _, k := range keys {
			fn(k)
		}
		if cursor == "0" {
			return nil
		}
	}
}

// Pruning tells whether day has a marker: it was being pruned.
func (s *Store) Pruning(ctx context.Context, day string) (bool, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	n, err := redis.Int(conn.Do("EXISTS", PruningKey(day)))
	if err != nil {
		return false, fmt.Errorf("look for the pruning mark of %s: %w", day, err)
	}
	return n == 1, nil
}

// markScript sets the marker unless a flush is rebuilding DB 1: checked
// and set in one step, so a flush that starts later finds the marker's
// work in a consistent state whatever it is.
var markScript = redis.NewScript(2, `
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSETNX', KEYS[1], 'started', '1')
return 1`)

// MarkPruning is step 1. It returns ErrRebuilding while a flush runs.
func (s *Store) MarkPruning(ctx context.Context, day string) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	ok, err := redis.Int(markScript.Do(conn, PruningKey(day), RebuildingKey))
	if err != nil {
		return fmt.Errorf("mark %s as being pruned: %w", day, err)
	}
	if ok == 0 {
		return ErrRebuilding
	}
	return nil
}

// takeForArchiveScript moves the attempts list aside unless a list taken earlier is
// still to be archived (a crash between steps 2 and 4): that one goes
// first, and this one waits for the next round.
var takeForArchiveScript = redis.NewScript(2, `
if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1`)

// TakeForArchive is step 2: it reports whether ArchivingKey(day) now holds
// attempts to archive.
func (s *Store) TakeForArchive(ctx context.Context, day string) (bool, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	n, err := redis.Int(takeForArchiveScript.Do(conn, AttemptsKey(day), ArchivingKey(day)))
	if err != nil {
		return false, fmt.Errorf("take the attempts of %s aside for the archive: %w", day, err)
	}
	return n == 1, nil
}

// ArchiveBase returns the archive file size the archive step of day starts
// from: size (the file's size now) the first time, the size recorded then
// when the step is repeated after a crash.
func (s *Store) ArchiveBase(ctx context.Context, day string, size int64) (int64, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Do("HSETNX", PruningKey(day), "base", size); err != nil {
		return 0, fmt.Errorf("record the archive size of %s: %w", day, err)
	}
	base, err := redis.Int64(conn.Do("HGET", PruningKey(day), "base"))
	if err != nil {
		return 0, fmt.Errorf("read the archive size of %s: %w", day, err)
	}
	return base, nil
}

// ReadArchiving calls fn with each element of the list taken aside, in
// order, a page at a time; an element is a batch's packed records of the
// day (see record.go).
func (s *Store) ReadArchiving(ctx context.Context, day string, fn func(elem []byte) error) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	key := ArchivingKey(day)
	const page = 256
	for start := int64(0); ; start += page {
		if err := ctx.Err(); err != nil {
			return err
		}
		elems, err := redis.ByteSlices(conn.Do("LRANGE", key, start, start+page-1))
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		for _, e := range elems {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(elems) < page {
			return nil
		}
	}
}

// DoneArchiving is step 4: the list taken aside is archived.
func (s *Store) DoneArchiving(ctx context.Context, day string) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	conn.Send("MULTI")
	conn.Send("UNLINK", ArchivingKey(day))
	conn.Send("HDEL", PruningKey(day), "base")
	if _, err := conn.Do("EXEC"); err != nil {
		return fmt.Errorf("delete the archived attempts of %s: %w", day, err)
	}
	return nil
}

// dropDayScript deletes a day's rankings and their toupdate entries,
// unless one of them waits in a toupdate or compiling set: the check and
// the delete are one step, so a compile never draws a day half deleted.
// KEYS: toupdate:daily, alog:compiling:daily, then the rankings.
var dropDayScript = redis.NewScript(-1, `
for i = 3, #KEYS do
  if redis.call('SISMEMBER', KEYS[1], KEYS[i]) == 1 or redis.call('SISMEMBER', KEYS[2], KEYS[i]) == 1 then
    return 0
  end
end
for i = 3, #KEYS do redis.call('UNLINK', KEYS[i]) end
return 1`)

// DropDay is step 5. It returns ErrPending while a compile is still to
// draw the day.
func (s *Store) DropDay(ctx context.Context, day string) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	every := kinds.Every()
	args := []interface{}{2 + len(every), ToUpdateKey(Daily), CompilingKey(Daily)}
	for _, k := range every {
		args = append(args, StatsKey(day, k))
	}
	ok, err := redis.Int(dropDayScript.Do(conn, args...))
	if err != nil {
		return fmt.Errorf("delete the day rankings of %s: %w", day, err)
	}
	if ok == 0 {
		return ErrPending
	}
	return nil
}

// AfterEveryDay is later than every day name, for DaysBefore to list
// every day.
const AfterEveryDay = "99999999"

// DayPending returns ErrPending while a compile is still to draw day's
// rankings: the check of DropDay, made before the drill-down data goes.
func (s *Store) DayPending(ctx context.Context, day string) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	for _, set := range []string{ToUpdateKey(Daily), CompilingKey(Daily)} {
		args := []interface{}{set}
		for _, k := range kinds.Every() {
			args = append(args, StatsKey(day, k))
		}
		in, err := redis.Ints(conn.Do("SMISMEMBER", args...))
		if err != nil {
			return fmt.Errorf("look for a compile still to draw %s: %w", day, err)
		}
		for _, n := range in {
			if n == 1 {
				return ErrPending
			}
		}
	}
	return nil
}

// DropDrill deletes the drill-down data of a day being pruned: its
// LinkBuckets strings per kind (drill.go), named without reading anything,
// deleted with UNLINK (freed off the main thread) one kind at a time. It is
// part of step 5, runs before DropDay deletes the rankings, and is safe to
// repeat.
func (s *Store) DropDrill(ctx context.Context, day string) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	for _, k := range kinds.Every() {
		if err := ctx.Err(); err != nil {
			return err
		}
		keys := make([]interface{}, LinkBuckets)
		for b := range keys {
			keys[b] = LinksKey(day, k, b)
		}
		if _, err := conn.Do("UNLINK", keys...); err != nil {
			return fmt.Errorf("delete the drill-down data of %s: %w", day, err)
		}
	}
	return nil
}

// EndPruning is step 6.
func (s *Store) EndPruning(ctx context.Context, day string) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Do("DEL", PruningKey(day)); err != nil {
		return fmt.Errorf("unmark %s as being pruned: %w", day, err)
	}
	return nil
}

// Rebuilding tells whether a flush (-F) mark is set.
func (s *Store) Rebuilding(ctx context.Context) (bool, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	n, err := redis.Int(conn.Do("EXISTS", RebuildingKey))
	if err != nil {
		return false, fmt.Errorf("look for a flush in progress: %w", err)
	}
	return n == 1, nil
}

// UsedMemory returns the counting Redis's used_memory and maxmemory (0
// when unset), from INFO memory.
func (s *Store) UsedMemory(ctx context.Context) (used, max int64, err error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	info, err := redis.String(conn.Do("INFO", "memory"))
	if err != nil {
		return 0, 0, fmt.Errorf("read the counting redis's memory: %w", err)
	}
	used, max = -1, 0
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			used, _ = strconv.ParseInt(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "maxmemory:"); ok {
			max, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if used < 0 {
		return 0, 0, errors.New("read the counting redis's memory: INFO memory has no used_memory")
	}
	return used, max, nil
}
