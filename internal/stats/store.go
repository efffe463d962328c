package stats

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Store is the counting Redis. Stats is a pool dialled to DB 1, Attempts
// one dialled to DB 0; both point at the same server.
type Store struct {
	Stats    *redis.Pool
	Attempts *redis.Pool

	// NoDrill turns off the drill-down data (analyzer.toml drilldown =
	// false): Apply then writes none, for operators short of memory. The
	// zero value records it, as the configuration's default does.
	NoDrill bool

	// MinReplicas (analyzer.toml min_replicas) makes Apply and IsApplied
	// wait until that many replicas have the batch (replicas.go);
	// ReplicaWait bounds each wait, DefaultReplicaWait when zero.
	MinReplicas int
	ReplicaWait time.Duration

	// Pruned, when set, names the days (yyyymmdd) whose attempts count
	// into their month, year, totals and first-seen days only (SPEC §12):
	// days older than retain_days and days already archived. Their
	// attempts still go to DB 0, from which the pruner archives them, but
	// no day ranking or drill-down key is made: a backfill of a pruned day,
	// or a day pruned before retain_days was raised, must not get partial
	// day rankings that the API would take for the whole day. It is asked
	// once per day of each batch, so it must be cheap.
	Pruned func(day string) bool
	// Lease is how long a consumer lock or the compile lease outlives its
	// holder's last renewal (lock.go, lease.go); DefaultLease when zero.
	Lease time.Duration
	// LinkBytesMax bounds a drill-down string (MaxLinkBytes when zero):
	// a batch that would take one past it is refused (*DrillFullError).
	LinkBytesMax int
	// MaxValueBytes is max_value_bytes: no value is counted longer, which
	// sizes the chunks of the query reads (ReadSets).
	// DefaultMaxValueBytes when zero.
	MaxValueBytes int
}

// Applied names the batch a transaction applies, so that a batch whose
// outcome is unknown (the daemon died, or Redis did, around EXEC) can be
// looked up instead of applied twice. When Token is set, the transaction
// also requires the consumer lock LockKey to still hold it.
type Applied struct {
	Queue string
	Slot  int
	ID    string

	LockKey, Token string
}

// Errors of Apply that are not outages.
var (
	// ErrAlreadyApplied: the record says this batch was applied.
	ErrAlreadyApplied = errors.New("batch already applied")
)

// applyScript is the whole of Apply, on the server, in two passes: the
// first only reads (the guards of the exactly-once protocol, then the type
// of every key the batch writes and every totals field it adds to), the
// second writes. A script runs alone, so nothing changes between the two,
// and nothing of the batch is written unless every write can succeed.
//
// Why a script rather than MULTI/EXEC with a WATCH of every key: EXEC does
// not roll back, so the checks must come first; WATCHing the keys to make
// them race-free would also watch toupdate, totals and oldest/newest, which
// every batch writes, so concurrent workers would discard each other's
// transactions over and over. The script needs no WATCH at all and is one
// round trip instead of two. The writes that remain cannot fail: the types
// are known, the totals fields are integers with room to add, and a refused
// write (OOM, READONLY, MISCONF) can only be the first one, as those states
// do not change while a script runs.
//
// The keys span two databases, which KEYS cannot express; all of them are
// in ARGV (see plan.args for the layout), and the script SELECTs, which in
// a script affects only the script.
var applyScript = redis.NewScript(0, `
local sdb, adb = ARGV[1], ARGV[2]
local function bad(db, k, want)
  local t = redis.call('TYPE', k)['ok']
  if t ~= 'none' and t ~= want then return {'wrongtype', db, k, t, want} end
  return nil
end
`+seenLua+`
local r
redis.call('SELECT', adb)
if ARGV[3] ~= '' then
  r = bad(adb, ARGV[3], 'string') if r then return r end
  if redis.call('GET', ARGV[3]) == ARGV[4] then return {'applied'} end
  if redis.call('EXISTS', ARGV[5]) == 1 then return {'rebuilding'} end
  if ARGV[6] ~= '' then
    r = bad(adb, ARGV[6], 'string') if r then return r end
    if redis.call('GET', ARGV[6]) ~= ARGV[7] then return {'locked'} end
  end
end
local i = 13
local nt = tonumber(ARGV[i])
local tot = i + 1
i = i + 1 + 2 * nt
local function groups(step)
  local g = {}
  local n = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n do
    local m = tonumber(ARGV[i + 1])
    g[#g + 1] = {ARGV[i], i + 2, m}
    i = i + 2 + step * m
  end
  return g
end
local zincr, sets, first, lists = groups(2), groups(1), groups(2), groups(1)
local links = {}
local nlinks, linkMax = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
i = i + 2
for _ = 1, nlinks do
  links[#links + 1] = i
  i = i + 2
end
local seen = {}
local nseen = tonumber(ARGV[i])
i = i + 1
for _ = 1, nseen do
  local m = tonumber(ARGV[i + 3])
  seen[#seen + 1] = {meta = ARGV[i], pre = ARGV[i + 1], untl = ARGV[i + 2], m = m, s = i + 4}
  i = i + 4 + m
end
for _, g in ipairs(lists) do
  r = bad(adb, g[1], 'list') if r then return r end
end
local dups
dups, r = seenCheck(seen)
if r then return r end
-- A line counted before makes the whole batch wait: Apply takes it out
-- and sends the rest, so that the aggregated increments stay exact.
if #dups > 0 then return {'seen', dups} end
redis.call('SELECT', sdb)
for _, g in ipairs(zincr) do
  r = bad(sdb, g[1], 'zset') if r then return r end
end
for _, g in ipairs(sets) do
  r = bad(sdb, g[1], 'set') if r then return r end
end
for _, g in ipairs(first) do
  r = bad(sdb, g[1], 'zset') if r then return r end
end
-- A drill-down string's length is read (STRLEN) rather than its type
-- alone: a string may not pass linkMax bytes, and an APPEND refused there
-- would come after other writes.
for _, j in ipairs(links) do
  local n = redis.pcall('STRLEN', ARGV[j])
  if type(n) ~= 'number' then
    r = bad(sdb, ARGV[j], 'string') if r then return r end
    return {'wrongtype', sdb, ARGV[j], '?', 'string'}
  end
  if n + #ARGV[j + 1] > linkMax then return {'full', ARGV[j], tostring(n), tostring(#ARGV[j + 1]), tostring(linkMax)} end
end
if nt > 0 then
  r = bad(sdb, ARGV[8], 'hash') or bad(sdb, ARGV[9], 'string') or bad(sdb, ARGV[10], 'string') or bad(sdb, ARGV[#ARGV - 1], 'string')
  if r then return r end
  for j = tot, tot + 2 * nt - 1, 2 do
    local v = redis.call('HGET', ARGV[8], ARGV[j])
    -- HINCRBY's own rule (no sign but '-', no leading zero), and room to
    -- add: 9.2e18 stays under 2^63 whatever the rounding of doubles.
    if v and not (v == '0' or (#v <= 19 and string.match(v, '^-?[1-9]%d*$') and tonumber(v) + tonumber(ARGV[j + 1]) < 9.2e18)) then
      return {'notinteger', sdb, ARGV[8], ARGV[j], v}
    end
  end
end
-- Every check passed: write. Bulk commands go in chunks, as Lua's stack
-- takes only so many arguments.
local function bulk(cmd, k, opt, s, n)
  local e = s + n - 1
  for j = s, e, 1000 do
    local last = math.min(j + 999, e)
    if opt then redis.call(cmd, k, opt, unpack(ARGV, j, last)) else redis.call(cmd, k, unpack(ARGV, j, last)) end
  end
end
-- The increments of a sorted set are read with one ZMSCORE and written
-- with one ZADD per 500 members rather than a ZINCRBY each: every write
-- call of a script goes to the append-only file (and the replicas) as a
-- command of its own, key included, and ZINCRBY was more than half of the
-- bytes a batch added there. Fewer bytes, fewer AOF rewrites, whose forks
-- slowed counting most. The sum is the one ZINCRBY makes (doubles both),
-- and %.17g writes it back exactly.
for _, g in ipairs(zincr) do
  local k, e = g[1], g[2] + 2 * g[3] - 1
  for j = g[2], e, 1000 do
    local last = math.min(j + 999, e)
    local mem = {}
    for x = j + 1, last, 2 do mem[#mem + 1] = ARGV[x] end
    local cur = redis.call('ZMSCORE', k, unpack(mem))
    local add = {}
    for x = 1, #mem do
      local v = tonumber(ARGV[j + 2 * x - 2])
      if cur[x] then v = v + tonumber(cur[x]) end
      add[2 * x - 1] = string.format('%.17g', v)
      add[2 * x] = mem[x]
    end
    redis.call('ZADD', k, unpack(add))
  end
end
for _, g in ipairs(sets) do bulk('SADD', g[1], nil, g[2], g[3]) end
for _, g in ipairs(first) do bulk('ZADD', g[1], 'LT', g[2], 2 * g[3]) end
for _, j in ipairs(links) do redis.call('APPEND', ARGV[j], ARGV[j + 1]) end
if nt > 0 then
  for j = tot, tot + 2 * nt - 1, 2 do redis.call('HINCRBY', ARGV[8], ARGV[j], ARGV[j + 1]) end
  -- oldest and newest move only outwards, so batches committed in any
  -- order leave the right answer.
  local o = redis.call('GET', ARGV[9])
  if not o or ARGV[11] < o then redis.call('SET', ARGV[9], ARGV[11]) end
  local n = redis.call('GET', ARGV[10])
  if not n or ARGV[12] > n then redis.call('SET', ARGV[10], ARGV[12]) end
  -- The newest line's stamp moves only forward too; a value that is not a
  -- number (never written by us) is replaced.
  local nl = tonumber(ARGV[#ARGV])
  local cur = tonumber(redis.call('GET', ARGV[#ARGV - 1]) or '')
  if nl and (not cur or nl > cur) then redis.call('SET', ARGV[#ARGV - 1], ARGV[#ARGV]) end
end
redis.call('SELECT', adb)
for _, g in ipairs(lists) do bulk('RPUSH', g[1], nil, g[2], g[3]) end
seenWrite(seen)
if ARGV[3] ~= '' then redis.call('SET', ARGV[3], ARGV[4]) end
return {'ok'}`)

// Apply counts the batch: the rankings, the totals, the toupdate sets,
// oldest/newest, the first-seen days, the DB 0 attempt records and, when
// rec is not nil, the applied-batch record. Either all of it happens or
// none (see applyScript).
//
// With a record, it is refused when the record already names this batch
// (ErrAlreadyApplied), when a flush is rebuilding the statistics
// (ErrUnfit), or when the consumer lock is no longer rec.Token's
// (ErrLocked). A daemon that lost its queue to another therefore cannot
// count a batch the other has counted.
//
// When a key the batch would write holds a value of another type, or a
// totals field is not an integer, Apply returns a *ForeignKeyError and
// writes nothing: the batch must not be acknowledged, and applies as it is
// once the key is repaired.
func (s *Store) Apply(ctx context.Context, b *Batch, rec *Applied) error {
	if b.Len() == 0 && rec == nil {
		return nil
	}
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	// Each round either commits or takes at least one line out of the
	// batch, so the loop ends.
	for {
		p := b.planWith(!s.NoDrill, s.prunedDays(b))
		p.linkMax = s.LinkBytesMax
		if p.linkMax <= 0 {
			p.linkMax = MaxLinkBytes
		}
		reply, err := redis.Values(applyScript.Do(conn, p.args(rec)...))
		if err != nil {
			// A refusal (OOM, READONLY, MISCONF) stops the script at its
			// first write, before anything is written; the error says
			// what the operator must fix.
			return fmt.Errorf("apply batch of %d attempts: %w", b.Len(), err)
		}
		if dups, ok := seenReply(reply); ok {
			// Nothing was written: the lines counted before are taken out
			// and the rest is sent again, checked again.
			before := b.Len()
			b.without(p, dups)
			if b.Len() >= before {
				return fmt.Errorf("apply batch: the counting redis named lines counted before that the batch does not hold (%v); this is a bug, report it", dups)
			}
			continue
		}
		err = applyOutcome(reply, rec)
		switch {
		case err == nil:
			// The script wrote: WAIT covers its writes.
			return s.waitReplicas(conn)
		case errors.Is(err, ErrAlreadyApplied) && s.MinReplicas > 0:
			// Applied by an earlier attempt whose WAIT may have come back
			// short: acknowledged only once the replicas have it.
			if _, werr := s.confirmApplied(conn, *rec); werr != nil {
				return werr
			}
		}
		return err
	}
}

// seenReply reads the script's answer listing the lines of the batch that
// were counted before, as indexes of the plan's memory section.
func seenReply(reply []interface{}) ([]int, bool) {
	if len(reply) != 2 {
		return nil, false
	}
	if w, _ := redis.String(reply[0], nil); w != "seen" {
		return nil, false
	}
	dups, err := redis.Ints(reply[1], nil)
	if err != nil || len(dups) == 0 {
		return nil, false
	}
	return dups, true
}

// applyOutcome turns the script's answer into Apply's error.
func applyOutcome(reply []interface{}, rec *Applied) error {
	word := ""
	if len(reply) > 0 {
		word, _ = redis.String(reply[0], nil)
	}
	switch word {
	case "ok":
		return nil
	case "applied":
		return ErrAlreadyApplied
	case "rebuilding":
		return fmt.Errorf("%w: a flush (-F) is rebuilding the statistics", ErrUnfit)
	case "locked":
		return fmt.Errorf("%w: this daemon no longer holds %s", ErrLocked, rec.LockKey)
	case "full":
		if s, err := redis.Strings(reply[1:], nil); err == nil && len(s) == 4 {
			e := &DrillFullError{Key: s[0]}
			e.Bytes, _ = strconv.ParseInt(s[1], 10, 64)
			e.Adding, _ = strconv.ParseInt(s[2], 10, 64)
			e.Limit, _ = strconv.ParseInt(s[3], 10, 64)
			return e
		}
	case "wrongtype", "notinteger":
		if s, err := redis.Strings(reply[1:], nil); err == nil && len(s) == 4 {
			db, _ := strconv.Atoi(s[0])
			if word == "wrongtype" {
				return &ForeignKeyError{DB: db, Key: s[1], Type: s[2], Want: s[3]}
			}
			return &ForeignKeyError{DB: db, Key: s[1], Type: typeHash, Want: typeHash, Field: s[2], Value: s[3]}
		}
	}
	return fmt.Errorf("apply batch: unexpected answer %q of the counting redis", reply)
}

// IsApplied reports whether rec is the last batch applied from its slot.
func (s *Store) IsApplied(ctx context.Context, rec Applied) (bool, error) {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	return s.confirmApplied(conn, rec)
}

// Forget drops the applied record of rec's slot, for records that only
// mattered while a run lasted (a file's chunks).
func (s *Store) Forget(ctx context.Context, rec Applied) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Do("DEL", AppliedKey(rec.Queue, rec.Slot)); err != nil {
		return fmt.Errorf("drop applied record of slot %d: %w", rec.Slot, err)
	}
	return nil
}

// ErrUnfit marks a counting Redis this daemon must not count into until
// an operator acts: too old a version, or a flush left half done.
var ErrUnfit = errors.New("counting redis not fit for counting")

// minVersion is the oldest Redis with every command the transaction uses
// (ZADD LT, ZMSCORE came with 6.2).
var minVersion = [3]int{6, 2, 0}

// Check tells whether the counting Redis can be counted into. A failure to
// reach it is returned as is (an outage to wait out); a permanent problem
// wraps ErrUnfit and says what to do.
func (s *Store) Check(ctx context.Context) error {
	conn, err := s.Attempts.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to counting redis: %w", err)
	}
	defer conn.Close()
	info, err := redis.String(conn.Do("INFO", "server"))
	if err != nil {
		return fmt.Errorf("read counting redis version: %w", err)
	}
	if v, ok := redisVersion(info); ok && less(v, minVersion) {
		return fmt.Errorf("%w: it runs redis %d.%d.%d; this daemon needs %d.%d or newer (use the redis-server of install_server.sh and redis.conf)",
			ErrUnfit, v[0], v[1], v[2], minVersion[0], minVersion[1])
	}
	n, err := redis.Int(conn.Do("EXISTS", RebuildingKey))
	if err != nil {
		return fmt.Errorf("check for an interrupted flush: %w", err)
	}
	if n == 1 {
		return fmt.Errorf("%w: a flush (-F) was interrupted and the statistics are half rebuilt; run analyzer-d4-log -F again to finish it", ErrUnfit)
	}
	return nil
}

func redisVersion(info string) ([3]int, bool) {
	var v [3]int
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		parts := strings.SplitN(rest, ".", 3)
		for i := range parts {
			n, err := strconv.Atoi(parts[i])
			if err != nil {
				return v, false
			}
			v[i] = n
		}
		return v, true
	}
	return v, false
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Ping checks that the counting Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	conn, err := s.Stats.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Do("PING")
	return err
}
