package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// MinRetry is the shortest -r wait accepted. The wait paces polling of a
// D4 Redis that refuses blocking pops: 1ns spun at 170,000 commands a
// second against it, while 100ms costs it ten a second and still picks up a
// line within a tenth of a second.
const MinRetry = 100 * time.Millisecond

const wantRetry = `want whole minutes like 1, or a Go duration like "30s", at least 100ms`

// RetryUsage is the help text proposed for the -r flag; it says the
// minimum that ParseRetry enforces.
const RetryUsage = "wait `d` before polling the queue again when the D4 Redis refuses to block;\n" +
	"a bare integer means minutes, or a Go duration such as 30s; at least 100ms"

// ParseRetry parses the -r flag, the wait before polling an empty queue
// again. A bare integer means minutes, as the original analyzer read it, so
// existing launch scripts keep their meaning; anything else is a Go duration
// ("30s", "1m30s"). Waits under MinRetry are refused: zero would poll an
// empty queue in a busy loop, and a few nanoseconds nearly as fast.
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
	switch {
	case d == 0:
		return 0, fmt.Errorf("retry wait %s is zero; %s", quote(s), wantRetry)
	case d < MinRetry:
		return 0, fmt.Errorf("retry wait %s is shorter than %s; %s", quote(s), MinRetry, wantRetry)
	}
	return d, nil
}

// ParseLogFile checks the value of the -f flag when the flag was given (the
// caller tells that apart from a missing flag, for example with
// flag.FlagSet.Visit). An empty name is refused: taking it for "no -f"
// would start the queue daemon on the live queue instead of reading a file.
func ParseLogFile(s string) (string, error) {
	if s == "" {
		return "", errors.New(`log file "" is empty; want the path of a file of log lines, or - for standard input`)
	}
	return s, nil
}
