package stats

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// RebuildProgress is reported after each day rebuilt.
type RebuildProgress struct {
	Day            string
	DaysDone, Days int
	Attempts       int64
}

// SetAside is one thing a flush could not count and moved out of the way,
// so that it stops neither this flush, nor the next, nor the daemon.
type SetAside struct {
	// Key is the DB 0 attempts list it was in, Index its index there when
	// the flush began; Index is -1 when the whole key was set aside because
	// it was not a list (Type says what it was).
	Key   string
	Index int64
	Type  string
	// Reason says why it could not be counted.
	Reason string
	// To is the DB 0 key that holds it now (a QuarantineKey, or for a
	// whole key a QuarantineWholeKey).
	To string
}

func (a SetAside) String() string {
	if a.Index < 0 {
		return fmt.Sprintf("%s (a %s, not a list) renamed to %s", a.Key, a.Type, a.To)
	}
	return fmt.Sprintf("element %d of %s moved to %s: %s", a.Index, a.Key, a.To, a.Reason)
}

// RebuildOptions are the settings of RebuildWith.
type RebuildOptions struct {
	// Location buckets each attempt by its calendar day there.
	Location *time.Location
	// Batch is how many attempts are aggregated per transaction
	// (100000 when not positive).
	Batch int
	// Progress, when not nil, is called after each stored day.
	Progress func(RebuildProgress)
	// SetAside, when not nil, is called for each element or key moved to
	// quarantine, once it is safely there.
	SetAside func(SetAside)
	// Archive, when not nil, holds the attempts of pruned days (SPEC §12):
	// they count into months, years, totals and first-seen days, and their
	// day rankings, pruned, are not made again.
	Archive ArchiveReader
	// NotAfter, when not zero, leaves attempts stamped after it out of the
	// statistics (they stay in DB 0): a stamp in the future, which an
	// earlier version counted, then no longer moves newest forward.
	NotAfter time.Time
	// Enricher, when not nil, counts the derived kinds of SPEC §13 too,
	// answered by the databases as they are at the rebuild (a stored
	// attempt keeps its source, not its country or AS).
	Enricher Enricher
}

// ArchiveReader reads the archive of pruned days.
type ArchiveReader interface {
	// Days lists the archived days.
	Days() ([]string, error)
	// Read calls fn with each element archived for day, in order, from the
	// first limit bytes of its file (the whole file when limit < 0).
	Read(ctx context.Context, day string, limit int64, fn func(elem []byte) error) error
}

// RebuildResult is what a completed flush did.
type RebuildResult struct {
	// Attempts counted, and attempts left out for being after NotAfter.
	Attempts, Later int64
	// Archived counts the attempts among Attempts read from the archive
	// or from a list taken aside for it; ArchiveBad the archived elements
	// that do not decode, which stay in their files, uncounted.
	Archived, ArchiveBad int64
	// SetAside counts the elements and keys moved to quarantine by this
	// flush; Quarantine lists the keys that received them, sorted.
	SetAside   int
	Quarantine []string
}

// Message is the sentence for an operator at the end of a flush: how many
// things were set aside and how to look at them; "" when there were none.
func (r RebuildResult) Message() string {
	if r.SetAside == 0 {
		return ""
	}
	what := "stored elements that could not be decoded were"
	if r.SetAside == 1 {
		what = "stored element that could not be decoded was"
	}
	see := "see them with redis-cli -n 0 LRANGE " + shellQuote(r.Quarantine[0]) + " 0 -1"
	if len(r.Quarantine) > 1 || strings.Contains(r.Quarantine[0], ":whole:") {
		see = fmt.Sprintf("list them with redis-cli -n 0 --scan --pattern '%s' (lists of raw elements: LRANGE KEY 0 -1; a key renamed whole keeps its own type: TYPE KEY)", QuarantinePattern)
	}
	return fmt.Sprintf("%d %s set aside under %s and not counted; %s",
		r.SetAside, what, strings.Join(r.Quarantine, ", "), see)
}

// Rebuild is RebuildWith for callers that need only the count of
// attempts; what it sets aside is not reported beyond the keys it leaves.
func (s *Store) Rebuild(ctx context.Context, loc *time.Location, batch int, progress func(RebuildProgress)) (int64, error) {
	r, err := s.RebuildWith(ctx, RebuildOptions{Location: loc, Batch: batch, Progress: progress})
	return r.Attempts, err
}

// RebuildWith drops DB 1 and recounts it from the attempts stored in DB 0.
// The applied-batch records of the exactly-once protocol are not touched,
// so they survive a flush. The daemon must not be counting meanwhile.
//
// What only a foreign writer could have left under the attempts keys is
// moved to quarantine rather than stopping the flush half way (which left
// DB 1 empty and the flush mark set, so that nothing could start): an
// element that does not decode, or whose attempts have a time no day can
// be named for, is moved to QuarantineKey(day) (copied, then removed from
// the list, in one script); a key that is not a list is renamed to a
// QuarantineWholeKey. Moving rather than skipping leaves DB 0 clean: a
// second flush finds nothing to set aside and gives the same DB 1, and a
// daemon counting into that day afterwards finds a list, not a foreign key.
func (s *Store) RebuildWith(ctx context.Context, o RebuildOptions) (RebuildResult, error) {
	var res RebuildResult
	days, err := s.attemptDays(ctx)
	if err != nil {
		return res, err
	}
	src, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return res, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer src.Close()
	// The marker goes first and is removed last: a flush that dies in
	// between leaves it, and the daemon refuses to count on top of half a
	// rebuild until a flush completes.
	if _, err := src.Do("SET", RebuildingKey, "1"); err != nil {
		return res, fmt.Errorf("mark the flush as started: %w", err)
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return res, fmt.Errorf("connect to counting redis: %w", err)
	}
	_, err = conn.Do("FLUSHDB")
	conn.Close()
	if err != nil {
		return res, fmt.Errorf("flush statistics (DB %d): %w", StatsDB, err)
	}

	batch := o.Batch
	if batch <= 0 {
		batch = 100000
	}
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	notAfter := int64(math.MaxInt64)
	if !o.NotAfter.IsZero() {
		notAfter = o.NotAfter.Unix()
	}
	b := NewBatch()
	if o.Enricher != nil {
		b.SetEnricher(o.Enricher)
	}
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		err := s.SaveNames(ctx, b)
		if err == nil {
			err = s.Apply(ctx, b, nil)
		}
		b.Reset()
		return err
	}
	quarantine := map[string]bool{}
	setAside := func(a SetAside) {
		res.SetAside++
		if !quarantine[a.To] {
			quarantine[a.To] = true
			res.Quarantine = append(res.Quarantine, a.To)
		}
		if o.SetAside != nil {
			o.SetAside(a)
		}
	}
	var decoded []Attempt
	for i, day := range days {
		key := AttemptsKey(day)
		typ, err := redis.String(src.Do("TYPE", key))
		if err != nil {
			return res, fmt.Errorf("type of %s: %w", key, err)
		}
		switch typ {
		case typeList:
		case typeNone: // gone since the scan
		default:
			to, err := setAsideWhole(src, key, day)
			if err != nil {
				return res, err
			}
			setAside(SetAside{Key: key, Index: -1, Type: typ, Reason: "not a list", To: to})
		}
		n := int64(0)
		if typ == typeList {
			if n, err = redis.Int64(src.Do("LLEN", key)); err != nil {
				return res, fmt.Errorf("length of %s: %w", key, err)
			}
		}
		// From the end of the list to its start: moving an element out
		// shifts only those after it, which are already read, so every
		// index read and reported is the one the element had at the start.
		const page = 256
		for end := n - 1; end >= 0; end -= page {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			start := max(0, end-page+1)
			elems, err := redis.ByteSlices(src.Do("LRANGE", key, start, end))
			if err != nil {
				return res, fmt.Errorf("read %s: %w", key, err)
			}
			if int64(len(elems)) != end-start+1 {
				return res, fmt.Errorf("read %s: the list changed during the flush; is a daemon counting? stop it and run -F again", key)
			}
			for j := len(elems) - 1; j >= 0; j-- {
				decoded = decoded[:0]
				err := DecodeRecords(elems[j], func(a Attempt) error {
					if !nameableTime(a.Unix, loc) {
						return fmt.Errorf("attempt record: time %d is outside the years 1 to 9999, which day names can hold", a.Unix)
					}
					decoded = append(decoded, a)
					return nil
				})
				if err != nil {
					idx := start + int64(j)
					to, qerr := s.setAsideElement(src, key, day, idx, elems[j])
					if qerr != nil {
						return res, qerr
					}
					setAside(SetAside{Key: key, Index: idx, Reason: err.Error(), To: to})
					continue
				}
				for _, a := range decoded {
					if a.Unix > notAfter {
						res.Later++
						continue
					}
					b.AddRecord(time.Unix(a.Unix, 0).In(loc), a)
					res.Attempts++
				}
				if b.Len() >= batch {
					if err := flush(); err != nil {
						return res, err
					}
				}
			}
		}
		if o.Progress != nil {
			o.Progress(RebuildProgress{Day: day, DaysDone: i + 1, Days: len(days), Attempts: res.Attempts})
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := s.rebuildPruned(ctx, o, loc, notAfter, batch, &res); err != nil {
		return res, err
	}
	if _, err := src.Do("DEL", RebuildingKey); err != nil {
		return res, fmt.Errorf("mark the flush as finished: %w", err)
	}
	sort.Strings(res.Quarantine)
	return res, nil
}

// tombstone takes the place of an element being moved out, for LREM to
// remove. It does not decode, so any equal element after it in the list
// was moved out before (the walk goes from the end), and LREM from the
// tail finds this one.
const tombstone = "\xff"

// setAsideScript moves element ARGV[2] at index ARGV[1] of list KEYS[1] to
// the end of list KEYS[2]: copied first, removed after, in one script, so
// it is never lost and never in both places.
var setAsideScript = redis.NewScript(2, `
local t = redis.call('TYPE', KEYS[2])['ok']
if t ~= 'none' and t ~= 'list' then return {'wrongtype', t} end
if redis.call('LINDEX', KEYS[1], ARGV[1]) ~= ARGV[2] then return {'changed'} end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('LSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('LREM', KEYS[1], -1, ARGV[3])
return {'ok'}`)

func (s *Store) setAsideElement(conn redis.Conn, key, day string, idx int64, elem []byte) (string, error) {
	to := QuarantineKey(day)
	r, err := redis.Strings(setAsideScript.Do(conn, key, to, idx, elem, tombstone))
	if err != nil {
		return "", fmt.Errorf("set aside element %d of %s: %w", idx, key, err)
	}
	switch {
	case len(r) == 2 && r[0] == "wrongtype":
		return "", fmt.Errorf("set aside element %d of %s: %w", idx, key, &ForeignKeyError{DB: AttemptsDB, Key: to, Type: r[1], Want: typeList})
	case len(r) == 1 && r[0] == "changed":
		return "", fmt.Errorf("set aside element %d of %s: the list changed during the flush; is a daemon counting? stop it and run -F again", idx, key)
	case len(r) == 1 && r[0] == "ok":
		return to, nil
	}
	return "", fmt.Errorf("set aside element %d of %s: unexpected answer %q", idx, key, r)
}

// setAsideWhole renames a key that is not a list to the first free
// QuarantineWholeKey of its day.
func setAsideWhole(conn redis.Conn, key, day string) (string, error) {
	for n := 1; n <= 1000; n++ {
		to := QuarantineWholeKey(day, n)
		ok, err := redis.Int(conn.Do("RENAMENX", key, to))
		if err != nil {
			return "", fmt.Errorf("set aside %s: %w", key, err)
		}
		if ok == 1 {
			return to, nil
		}
	}
	return "", fmt.Errorf("set aside %s: a thousand keys of that day are already set aside; look at them and delete those no longer needed", key)
}

// nameableTime tells whether the day of unix in loc has a yyyymmdd name.
// The bounds come first, as time.Unix wraps around for the largest values.
func nameableTime(unix int64, loc *time.Location) bool {
	const minUnix, maxUnix = -62135596800, 253402300799 // 0001-01-01, 9999-12-31 UTC
	const slack = 2 * 86400                             // any zone offset
	if unix < minUnix-slack || unix > maxUnix+slack {
		return false
	}
	y := time.Unix(unix, 0).In(loc).Year()
	return y >= 1 && y <= 9999
}

// BeginRebuild marks DB 0 as being rebuilt, before a flush looks for live
// daemons: a daemon starting meanwhile sees the mark, and the flush sees the
// daemon. It reports whether the mark was already there (a flush left half
// done), which AbortRebuild must then leave.
func (s *Store) BeginRebuild(ctx context.Context) (existed bool, err error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	n, err := redis.Int(conn.Do("EXISTS", RebuildingKey))
	if err != nil {
		return false, fmt.Errorf("check for an interrupted flush: %w", err)
	}
	if _, err := conn.Do("SET", RebuildingKey, "1"); err != nil {
		return false, fmt.Errorf("mark the flush as started: %w", err)
	}
	return n == 1, nil
}

// AbortRebuild removes the mark of a flush that did not start.
func (s *Store) AbortRebuild(ctx context.Context) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Do("DEL", RebuildingKey); err != nil {
		return fmt.Errorf("unmark the flush: %w", err)
	}
	return nil
}

// AddRecord is Add for an attempt read back from DB 0. A rebuild must not
// store it in DB 0 a second time, so its record is not kept.
func (b *Batch) AddRecord(t time.Time, a Attempt) {
	b.add(t, a.Host, a.User, a.Src, false)
}

// attemptDays lists the days stored in DB 0, in order.
func (s *Store) attemptDays(ctx context.Context) ([]string, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	var days []string
	cursor := "0"
	prefix := len(AttemptsKey(""))
	for {
		v, err := redis.Values(conn.Do("SCAN", cursor, "MATCH", AttemptsPattern, "COUNT", 1000))
		if err != nil {
			return nil, fmt.Errorf("scan stored attempts: %w", err)
		}
		cursor, _ = redis.String(v[0], nil)
		keys, _ := redis.Strings(v[1], nil)
		for _, k := range keys {
			days = append(days, k[prefix:])
		}
		if cursor == "0" {
			break
		}
	}
	sort.Strings(days)
	return days, nil
}

// rebuildPruned counts the attempts of pruned days: the archive files, read
// up to the size recorded by a pruning step in progress (what lies beyond
// it is also in the list taken aside, counted next), and the lists taken
// aside for the archive. They go into a coarse batch: months, years, totals
// and first-seen days, no day rankings.
func (s *Store) rebuildPruned(ctx context.Context, o RebuildOptions, loc *time.Location, notAfter int64, batch int, res *RebuildResult) error {
	b := NewBatch()
	b.coarse = true
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		err := s.Apply(ctx, b, nil)
		b.Reset()
		return err
	}
	count := func(elem []byte) error {
		var decoded []Attempt
		err := DecodeRecords(elem, func(a Attempt) error {
			if !nameableTime(a.Unix, loc) {
				return fmt.Errorf("attempt record: time %d is outside the years 1 to 9999", a.Unix)
			}
			decoded = append(decoded, a)
			return nil
		})
		if err != nil {
			res.ArchiveBad++
			return nil
		}
		for _, a := range decoded {
			if a.Unix > notAfter {
				res.Later++
				continue
			}
			b.AddRecord(time.Unix(a.Unix, 0).In(loc), a)
			res.Attempts++
			res.Archived++
		}
		if b.Len() >= batch {
			return flush()
		}
		return nil
	}
	if o.Archive != nil {
		days, err := o.Archive.Days()
		if err != nil {
			return fmt.Errorf("list the archive: %w", err)
		}
		for _, day := range days {
			limit, err := s.pendingBase(ctx, day)
			if err != nil {
				return err
			}
			if err := o.Archive.Read(ctx, day, limit, count); err != nil {
				return fmt.Errorf("read the archive of %s: %w", day, err)
			}
		}
	}
	var aside []string
	err := scanKeys(ctx, s.Attempts, ArchivingPattern, func(k string) { aside = append(aside, k[len(ArchivingKey("")):]) })
	if err != nil {
		return err
	}
	sort.Strings(aside)
	for _, day := range aside {
		if err := s.ReadArchiving(ctx, day, count); err != nil {
			return err
		}
	}
	return flush()
}

// pendingBase is the archive size recorded by a pruning step of day in
// progress, or -1 when none is.
func (s *Store) pendingBase(ctx context.Context, day string) (int64, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	v, err := redis.Int64(conn.Do("HGET", PruningKey(day), "base"))
	if errors.Is(err, redis.ErrNil) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the archive size of %s: %w", day, err)
	}
	return v, nil
}
