package stats

import (
	"context"
	"fmt"
	"net/netip"
	"time"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"
)

// Unknown is the total DayTotals gives a day that has statistics but no
// kept total (data counted by another tool): its readers cannot tell
// whether it changed and must read it again.
const Unknown int64 = -1

// DayTotals returns the attempts of each of days that has statistics, in
// one round trip: the totals kept beside the rankings change with every
// attempt counted into a day, so they tell the MISP feed and the
// blocklist which complete days changed since they last read them,
// without reading any ranking. A day without statistics is absent from
// the map; one with statistics but no total maps to Unknown.
func (s *Store) DayTotals(ctx context.Context, days []string) (map[string]int64, error) {
	out := make(map[string]int64, len(days))
	if len(days) == 0 {
		return out, nil
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	args := make([]interface{}, 0, len(days)+1)
	args = append(args, TotalsKey)
	for _, d := range days {
		args = append(args, d)
	}
	if err := conn.Send("HMGET", args...); err != nil {
		return nil, fmt.Errorf("read day totals: %w", err)
	}
	for _, d := range days {
		if err := conn.Send("EXISTS", StatsKey(d, KindHost)); err != nil {
			return nil, fmt.Errorf("read day totals: %w", err)
		}
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("read day totals: %w", err)
	}
	totals, err := redis.Values(conn.Receive())
	if err != nil {
		return nil, fmt.Errorf("read day totals: %w", err)
	}
	for i, d := range days {
		exists, err := redis.Bool(conn.Receive())
		if err != nil {
			return nil, fmt.Errorf("look for statistics of %s: %w", d, err)
		}
		if !exists {
			continue
		}
		out[d] = Unknown
		if i < len(totals) && totals[i] != nil {
			n, err := redis.Int64(totals[i], nil)
			if err != nil {
				return nil, fmt.Errorf("total attempts of %s: %w", d, err)
			}
			out[d] = n
		}
	}
	return out, nil
}

// EachEntry calls fn with every member of key and its count, in ranking
// order, reading a chunk at a time (see Ranking), so a day with a million
// sources never sits in memory at once.
func (s *Store) EachEntry(ctx context.Context, key string, fn func(Entry)) error {
	r, err := s.OpenRanking(ctx, key, 10000)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk, err := r.Next()
		if err != nil {
			return err
		}
		if chunk == nil {
			return nil
		}
		for _, e := range chunk {
			fn(e)
		}
	}
}

// CompleteDays are the last n complete days before now in loc, newest
// first: the days whose date the zone has moved past, which no longer
// grow except by late lines.
func CompleteDays(now time.Time, loc *time.Location, n int) []string {
	y, m, d := now.In(loc).Date()
	out := make([]string, 0, max(n, 0))
	for i := 1; i <= n; i++ {
		// Noon steers clear of the hours a DST change skips or repeats.
		out = append(out, PeriodOf(time.Date(y, m, d-i, 12, 0, 0, 0, loc)).Day)
	}
	return out
}

// SourceAddr is the IP address a counted source names, an IPv4-mapped
// IPv6 address as the IPv4 address it maps, or false when the source is
// not an IP address: a host name (sshd with UseDNS), or an address with an
// interface zone, which means nothing to another host.
func SourceAddr(src string) (netip.Addr, bool) {
	if !utf8.ValidString(src) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(src)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
