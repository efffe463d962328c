package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

const wantRetry = `want whole minutes like 1, or a Go duration like "30s"`

// ParseRetry parses the -r flag, the wait before polling an empty queue
// again. A bare integer means minutes, as the original analyzer read it, so
// existing launch scripts keep their meaning; anything else is a Go duration
// ("30s", "1m30s"). Zero and negative waits are refused: zero would poll an
// empty queue in a busy loop.
func ParseRetry(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New(`retry wait "" is empty; ` + wantRetry)
	}
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case err != nil && s[0] == '-', n < 0:
			return 0, fmt.Errorf("retry wait %s is negative; %s", quote(s), wantRetry)
		case err != nil, n > math.MaxInt64/int64(time.Minute):
			return 0, fmt.Errorf("retry wait %s minutes is too long; %s", quote(s), wantRetry)
		}
		d = time.Duration(n) * time.Minute
	} else {
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("retry wait %s is neither whole minutes nor a Go duration; %s", quote(s), wantRetry)
		}
		if d < 0 {
			return 0, fmt.Errorf("retry wait %s is negative; %s", quote(s), wantRetry)
		}
	}
	if d == 0 {
		return 0, fmt.Errorf("retry wait %s is zero; %s", quote(s), wantRetry)
	}
	return d, nil
}
