package stats

import (
	"fmt"
	"strconv"
	"strings"
)

// Foreign data: keys that another program wrote where this one keeps its
// own, and records it cannot read. Counting into them would fail half way
// (Redis does not roll a transaction back), so every write is preceded by
// a check of what it writes to, and a failed check names the key and the
// repair instead of counting.

// Redis TYPE names of the keys this package writes.
const (
	typeString = "string"
	typeList   = "list"
	typeSet    = "set"
	typeZSet   = "zset"
	typeHash   = "hash"
	typeNone   = "none"
)

// ForeignKeyError says a key this package writes holds something it did
// not put there: a value of another type (Type is what Redis' TYPE answers,
// Want what was expected), or, when Field is set, a field of the totals hash
// whose Value is not an integer that can be added to. Nothing of the
// operation that found it was written. Use errors.As to get it.
type ForeignKeyError struct {
	DB    int
	Key   string
	Type  string
	Want  string
	Field string
	Value string
}

func (e *ForeignKeyError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("field %q of key %q in DB %d of the counting redis holds %q, not an integer that can be counted on; another program wrote it: correct or delete the field (redis-cli -n %d HDEL %s %s), nothing was counted meanwhile",
			e.Field, e.Key, e.DB, clip(e.Value, 64), e.DB, shellQuote(e.Key), shellQuote(e.Field))
	}
	return fmt.Sprintf("key %q in DB %d of the counting redis is a %s, not a %s; another program wrote it: rename or delete it (redis-cli -n %d RENAME %s %s), nothing was counted meanwhile",
		e.Key, e.DB, e.Type, e.Want, e.DB, shellQuote(e.Key), shellQuote(e.Key+".foreign"))
}

// checkType returns a *ForeignKeyError when typ (a TYPE reply) is neither
// want nor none.
func checkType(db int, key, typ, want string) error {
	if typ == want || typ == typeNone {
		return nil
	}
	return &ForeignKeyError{DB: db, Key: key, Type: typ, Want: want}
}

// QuarantineKey (DB 0) is the list that a flush moves the undecodable
// elements of AttemptsKey(day) to, byte for byte, appended in the order the
// flush finds them (it walks each list from its end). An operator reads
// them with LRANGE, and can push any of them back with RPUSH once repaired.
func QuarantineKey(day string) string { return "alog:quarantine:" + day }

// QuarantineWholeKey (DB 0) is where a flush renames an AttemptsKey(day)
// that is not a list at all; n counts up from 1 so that a second foreign
// key of the same day never overwrites the first one set aside.
func QuarantineWholeKey(day string, n int) string {
	return "alog:quarantine:" + day + ":whole:" + strconv.Itoa(n)
}

// QuarantinePattern matches every quarantine key, for an operator's SCAN.
const QuarantinePattern = "alog:quarantine:*"

// HealthKey (DB 0) is the key CanCount writes to find out whether writes
// are accepted; it expires by itself and holds nothing of value.
const HealthKey = "alog:health"

// clip shortens a foreign value for a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// shellQuote quotes s for the redis-cli command lines of messages.
func shellQuote(s string) string {
	safe := s != ""
	for i := 0; i < len(s) && safe; i++ {
		c := s[i]
		safe = c == ':' || c == '.' || c == '_' || c == '-' || c == '/' ||
			c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
