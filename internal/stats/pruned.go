package stats

import (
	"context"
	"fmt"

	"github.com/gomodule/redigo/redis"
)

// PrunedDays reports which of days (yyyymmdd) were pruned (SPEC §12): days
// counted (their total in TotalsKey is above zero) of which no day ranking
// is left. It is read from the data itself, not from retain_days and the
// clock, because only the data is exact: a day past the cutoff stays whole
// until the pruner reaches it (an hour later, or after its last compile),
// a day pruned under an earlier, shorter retain_days stays pruned, and a
// backfill of an old day counts into months only (a coarse batch) while
// its total grows. Every attempt has a user name, a source and a host, so
// a counted day that is not pruned has all three rankings: DropDay deletes
// them together, and Apply writes the total with the rankings.
//
// One HMGET and then one EXISTS per counted day, pipelined: O(1) commands,
// cheap for Redis even over the 3660 days of the longest question.
func (s *Store) PrunedDays(ctx context.Context, days []string) ([]bool, error) {
	out := make([]bool, len(days))
	if len(days) == 0 {
		return out, nil
	}
	totals, err := s.PeriodTotals(ctx, days)
	if err != nil {
		return nil, err
	}
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	var asked []int
	for i, d := range days {
		if totals[i] <= 0 {
			continue
		}
		args := make([]interface{}, 0, len(Kinds()))
		for _, k := range Kinds() {
			args = append(args, StatsKey(d, k))
		}
		if err := conn.Send("EXISTS", args...); err != nil {
			return nil, fmt.Errorf("look for the day rankings of %s: %w", d, err)
		}
		asked = append(asked, i)
	}
	if len(asked) == 0 {
		return out, nil
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("look for the day rankings of %d days: %w", len(asked), err)
	}
	for _, i := range asked {
		n, err := redis.Int(conn.Receive())
		if err != nil {
			return nil, fmt.Errorf("look for the day rankings of %s: %w", days[i], err)
		}
		out[i] = n == 0
	}
	return out, nil
}
