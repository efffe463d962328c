package stats

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/gomodule/redigo/redis"
)

// RebuildProgress is reported after each day rebuilt.
type RebuildProgress struct {
	Day            string
	DaysDone, Days int
	Attempts       int64
}

// Rebuild drops DB 1 and recounts it from the attempts stored in DB 0,
// bucketing each attempt by its calendar day in loc. Nothing of DB 0 is
// changed, so the applied-batch records of the exactly-once protocol
// survive a flush. The daemon must not be counting meanwhile.
//
// batch is how many attempts are aggregated per transaction; progress, when
// not nil, is called after each stored day.
func (s *Store) Rebuild(ctx context.Context, loc *time.Location, batch int, progress func(RebuildProgress)) (int64, error) {
	days, err := s.attemptDays(ctx)
	if err != nil {
		return 0, err
	}
	src, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer src.Close()
	// The marker goes first and is removed last: a flush that dies in
	// between leaves it, and the daemon refuses to count on top of half a
	// rebuild until a flush completes.
	if _, err := src.Do("SET", RebuildingKey, "1"); err != nil {
		return 0, fmt.Errorf("mark the flush as started: %w", err)
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect to counting redis: %w", err)
	}
	_, err = conn.Do("FLUSHDB")
	conn.Close()
	if err != nil {
		return 0, fmt.Errorf("flush statistics (DB %d): %w", StatsDB, err)
	}

	if batch <= 0 {
		batch = 100000
	}
	b := NewBatch()
	var total int64
	flush := func() error {
		if b.Len() == 0 {
			return nil
		}
		err := s.Apply(ctx, b, nil)
		b.Reset()
		return err
	}
	for i, day := range days {
		key := AttemptsKey(day)
		n, err := redis.Int64(src.Do("LLEN", key))
		if err != nil {
			return total, fmt.Errorf("length of %s: %w", key, err)
		}
		const page = 256
		for start := int64(0); start < n; start += page {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			elems, err := redis.ByteSlices(src.Do("LRANGE", key, start, start+page-1))
			if err != nil {
				return total, fmt.Errorf("read %s: %w", key, err)
			}
			for _, e := range elems {
				err := DecodeRecords(e, func(a Attempt) error {
					b.AddRecord(time.Unix(a.Unix, 0).In(loc), a)
					total++
					return nil
				})
				if err != nil {
					return total, fmt.Errorf("decode %s: %w", key, err)
				}
				if b.Len() >= batch {
					if err := flush(); err != nil {
						return total, err
					}
				}
			}
		}
		if progress != nil {
			progress(RebuildProgress{Day: day, DaysDone: i + 1, Days: len(days), Attempts: total})
		}
	}
	if err := flush(); err != nil {
		return total, err
	}
	if _, err := src.Do("DEL", RebuildingKey); err != nil {
		return total, fmt.Errorf("mark the flush as finished: %w", err)
	}
	return total, nil
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
