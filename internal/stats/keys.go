// Package stats owns the counting Redis: every key name of it (SPEC §6), the
// atomic application of a batch of attempts, the compact attempt store of
// DB 0 that a flush rebuilds from, and reading rankings back for compiling.
//
// DB 1 holds the statistics under the original analyzer's names, so that
// tools reading them keep working: sorted sets "<period>:stats<kind>",
// strings "oldest" and "newest", sets "toupdate:daily|monthly|yearly". Our
// own bookkeeping starts with "alog:" so it can never collide with them.
//
// DB 0 holds every counted attempt, packed (see record.go), and the
// applied-batch records of the exactly-once protocol: they live beside the
// attempts rather than beside the statistics so that a flush (FLUSHDB of
// DB 1) can never forget which batches were already counted.
//
// DB 0 also holds the memory of counted lines (SPEC §15, seen.go): a line
// identical to one counted within dedupe_days is a resend (a restarted
// tail -n2000, a reconnecting client), not a new attempt, and is skipped.
// It is written by the same script as the counting, so that a batch
// counted is remembered and a batch not counted is not, and it lives in DB
// 0 so that a flush keeps it. A line's identity is SHA-256 of its bytes
// (without one trailing '\r'), of which the memory keeps the first 96 bits,
// 12 bytes a line: SHA-256 is in the standard library, runs on the CPU's
// SHA instructions at well over a million lines a second, and spreads any
// input, however crafted, evenly over those bits. With S lines remembered
// and N looked up, the expected number of new lines mistaken for resent
// ones is about N*S/2^96: a billion remembered lines and ten billion looked
// up give 1e-10, so a collision is not a practical concern. Fewer bits
// would not be safe at that scale (64 bits: 0.5); more would cost memory
// that the 24-bytes-a-line budget does not have.
//
// DB 0 holds the locks of the daemons consuming a queue (lock.go) and the
// compile lease (lease.go), SPEC §14. A daemon's liveness combines two
// signals: a connection named after its token (gone the moment the kernel
// closes a killed daemon's socket, so a lone daemon restarted after a
// SIGKILL takes its lock at once) and a TTL on the key renewed every
// second by its keeper (which expires when a power loss or a network cut
// leaves a half-open socket that Redis keeps listing for minutes). Either
// one failing makes the holder dead; neither alone would do: a name alone
// misses a network cut, a lease alone makes every restart after a kill
// wait out the lease.
package stats

import (
	"strconv"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// The kinds of value counted per attempt, as they appear in key names; the
// vocabulary itself lives in package kinds, shared with compile and render.
const (
	KindUser = kinds.User
	KindSrc  = kinds.Src
	KindHost = kinds.Host
)

// Kinds lists the kinds in the order the pages show them.
func Kinds() []string { return kinds.Names() }

// Granularity is one of day, month, year.
type Granularity int

// The three granularities, each with its own toupdate set.
const (
	Daily Granularity = iota
	Monthly
	Yearly
)

// Granularities lists all three, finest first.
func Granularities() []Granularity { return []Granularity{Daily, Monthly, Yearly} }

func (g Granularity) String() string {
	switch g {
	case Daily:
		return "daily"
	case Monthly:
		return "monthly"
	case Yearly:
		return "yearly"
	}
	return "granularity(" + strconv.Itoa(int(g)) + ")"
}

// Databases of the counting Redis.
const (
	AttemptsDB = 0
	StatsDB    = 1
)

// Keys of DB 1 named by the original analyzer.
const (
	OldestKey = "oldest"
	NewestKey = "newest"
)

// StatsKey is the sorted set of one period and kind: "20261125:statssrc".
func StatsKey(period, kind string) string { return kinds.StatsName(period, kind) }

// ToUpdateKey is the set of stats keys changed since the last compile.
func ToUpdateKey(g Granularity) string { return "toupdate:" + g.String() }

// CompilingKey holds the members a compile took out of ToUpdateKey and has
// not finished rendering; a compile that dies leaves them for the next one.
func CompilingKey(g Granularity) string { return "alog:compiling:" + g.String() }

// NewestLineKey (DB 1) holds the stamp, in Unix seconds, of the newest
// attempt counted, whoever counted it and whenever: what the pages' "counted
// up to" says. Kept by the apply script in the same atomic step as the
// counts, moving only forward, so that it is exactly the newest line the
// counts hold.
const NewestLineKey = "alog:newest_line"

// TotalsKey is a hash period → attempts in that period (day, month, year),
// kept exactly in the same transaction as the rankings.
const TotalsKey = "alog:totals"

// FirstSeenKey is the sorted set of every value of a kind ever counted,
// scored by the first day (yyyymmdd) it was seen. ZADD LT keeps the
// earliest day whatever order batches arrive in, so a backfill of old logs
// moves a value's first day back, and a flush rebuilds the same set.
func FirstSeenKey(kind string) string { return "alog:firstseen:" + kind }

// AttemptsKey is the DB 0 list of packed attempt records of one day.
func AttemptsKey(day string) string { return "alog:attempts:" + day }

// RebuildingKey (DB 0) exists while a flush rebuilds DB 1, so that an
// interrupted flush is noticed instead of counted on top of.
const RebuildingKey = "alog:rebuilding"

// AttemptsPattern matches every AttemptsKey, for SCAN.
const AttemptsPattern = "alog:attempts:*"

// AppliedKey is the DB 0 record of the last batch applied from one
// processing slot of one queue.
func AppliedKey(queue string, slot int) string {
	return "alog:applied:" + queue + ":" + strconv.Itoa(slot)
}

// Period formats the three period names of an instant in its location.
type Period struct {
	Day, Month, Year string
}

// PeriodOf returns the day, month and year names of t in t's location.
func PeriodOf(t time.Time) Period {
	y, m, d := t.Date()
	return periodOf(y, int(m), d)
}

func periodOf(y, m, d int) Period {
	var buf [8]byte
	putDigits(buf[0:4], y)
	putDigits(buf[4:6], m)
	putDigits(buf[6:8], d)
	s := string(buf[:])
	return Period{Day: s, Month: s[:6], Year: s[:4]}
}

func putDigits(b []byte, v int) {
	if v < 0 {
		v = 0
	}
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}

// Name returns the period's name at granularity g.
func (p Period) Name(g Granularity) string {
	switch g {
	case Monthly:
		return p.Month
	case Yearly:
		return p.Year
	}
	return p.Day
}

// GranularityOf tells the granularity of a period name by its length.
func GranularityOf(period string) (Granularity, bool) {
	switch len(period) {
	case 8:
		return Daily, true
	case 6:
		return Monthly, true
	case 4:
		return Yearly, true
	}
	return 0, false
}

// SplitStatsKey splits "20261125:statssrc" into its period and kind. It
// reports false for anything that is not a stats key of a known kind.
func SplitStatsKey(key string) (period, kind string, ok bool) {
	return kinds.SplitStatsName(key)
}
