// Package d4queue is the only place that knows the D4 server's analyzer
// queue: its key, how lines are taken from it and how they are
// acknowledged.
//
// # Delivery guarantee
//
// Every line the D4 server pushed onto analyzer:3:<uuid> is counted exactly
// once, whenever the daemon is killed and whichever Redis restarts, as long
// as both Redis keep what they acknowledged (see the README's limits).
//
// It holds because a line is never only in the daemon's memory:
//
//  1. Claim moves lines from the queue's tail (the oldest, as the D4 server
//     LPUSHes) into this consumer's processing list for one slot, and tags
//     them with a fresh batch ID and their number, in one Lua script:
//     atomically, so a line is in exactly one of the two lists at any
//     instant.
//  2. The daemon counts the batch in the counting Redis in one guarded
//     MULTI/EXEC that also records "slot S applied batch ID"
//     (stats.Applied).
//  3. Ack removes exactly the batch's lines from the processing list, only
//     if the list still holds that batch.
//
// A crash between 1 and 2 leaves the batch in the processing list without
// a record: the next Claim of that slot returns the same lines and ID and
// they are counted. A crash between 2 and 3 leaves it with a record: the
// daemon sees the record and acknowledges without counting again. A slot
// holds one batch at a time, so "the last batch applied" is all the record
// needs to say. Batch IDs are random, so an ID can never be mistaken for an
// earlier batch's, even if a Redis loses its counters.
//
// # Several daemons on one queue
//
// Each daemon is a member of the queue (stats.Lock), numbered from 0, and
// owns the slots MemberSlot(member, 0…SlotStride-1): member 0's slots are
// 0, 1, 2… as with one daemon, member 1's start at SlotStride, and so on.
// Slot numbers of two members never collide, so neither do their
// processing lists, batch keys or applied records, and the batch of a dead
// member is taken over by claiming its slot (with a batch size of 0: only
// what is in flight) under that member's lock.
package d4queue

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// QueueKey is the list the D4 server pushes type-3 lines onto.
func QueueKey(uuid string) string { return "analyzer:3:" + uuid }

// ProcessingKey is the in-flight batch of one slot of this consumer.
func ProcessingKey(uuid string, slot int) string {
	return "alog:processing:" + uuid + ":" + strconv.Itoa(slot)
}

// BatchKey holds the ID of the batch in ProcessingKey.
func BatchKey(uuid string, slot int) string {
	return "alog:batch:" + uuid + ":" + strconv.Itoa(slot)
}

// SlotStride is the number of slots each member owns; above the largest
// pool (1,024 workers), so that a member's slots never reach the next
// member's.
const SlotStride = 10000

// MemberSlot is slot i of member m.
func MemberSlot(m, i int) int { return m*SlotStride + i }

// SlotMember is the member that owns slot.
func SlotMember(slot int) int { return slot / SlotStride }

// claimScript: KEYS queue, processing, batch; ARGV new id, batch size,
// longest line returned, most bytes returned per batch.
//
// The batch key holds "<id> <n>": the batch is the n oldest elements of the
// processing list (its tail). A processing list that already has a batch
// key is a batch in flight (after a crash, or a failed apply) and its n
// lines are returned as they are. Lines moved by a blocking wait have no
// batch yet; they are topped up and tagged. Anything a late blocking wait
// pushes onto the head of a tagged list is not part of that batch: ack
// trims exactly n, and the next claim takes the rest.
//
// Lines over the limit come back as their length only, so a 10 MB line
// does not cross the network again at every retry. RPOPLPUSH (not LMOVE)
// keeps this working on the older Redis versions a D4 server may run.
const claimScript = `
local cur = redis.call('GET', KEYS[3])
local id, n
local max = tonumber(ARGV[3])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if sp then
    id, n = string.sub(cur, 1, sp - 1), tonumber(string.sub(cur, sp + 1))
  else
    id, n = cur, redis.call('LLEN', KEYS[2])
  end
else
  local want = tonumber(ARGV[2]) - redis.call('LLEN', KEYS[2])
  local bytes, budget = 0, tonumber(ARGV[4])
  for i = 1, want do
    local v = redis.call('RPOPLPUSH', KEYS[1], KEYS[2])
    if not v then break end
    if #v <= max then bytes = bytes + #v end
    if bytes >= budget then break end
  end
  n = redis.call('LLEN', KEYS[2])
  if n == 0 then return {} end
  id = ARGV[1]
  redis.call('SET', KEYS[3], id .. ' ' .. n)
end
local items = redis.call('LRANGE', KEYS[2], -n, -1)
local out = {id}
for i = #items, 1, -1 do
  local v = items[i]
  if #v > max then out[#out + 1] = #v else out[#out + 1] = v end
end
return out`

// ackScript: KEYS processing, batch; ARGV id. It removes the batch's n
// lines from the tail of the processing list and the batch key.
// Acknowledging a batch that is no longer there (acknowledged before a
// crash) is a success.
const ackScript = `
local cur = redis.call('GET', KEYS[2])
if not cur then return 0 end
local sp = string.find(cur, ' ', 1, true)
local id, n = cur, nil
if sp then id, n = string.sub(cur, 1, sp - 1), tonumber(string.sub(cur, sp + 1)) end
if id ~= ARGV[1] then return 0 end
if n then redis.call('LTRIM', KEYS[1], 0, -n - 1) else redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2])
return 1`

// The scripts run by SHA (EVALSHA), loaded once and again on NOSCRIPT
// after a restart: the D4 Redis is not sent their text at every call.
// They are values without state, shared by every consumer.
var (
	claim   = redis.NewScript(3, claimScript)
	ack     = redis.NewScript(2, ackScript)
	lengths = redis.NewScript(1, lengthsScript)
)

// lengthsScript: KEYS queue; ARGV the processing lists. It answers the
// queue's length and the processing lists' total in one command, so the
// gauges cost the D4 Redis one command whatever the number of slots.
const lengthsScript = `
local p = 0
for i = 1, #ARGV do p = p + redis.call('LLEN', ARGV[i]) end
return {redis.call('LLEN', KEYS[1]), p}`

// Consumer takes lines for one slot. Slots let several workers each have
// one batch in flight; a slot is used by one worker at a time.
type Consumer struct {
	Pool    *redis.Pool // dialled to the DB holding the analyzer queues
	Queue   string      // the queue UUID
	Slot    int
	MaxLine int // longest line returned whole
	// MaxBytes caps the bytes of lines one new batch returns, so that a
	// queue of long lines cannot make batch_size lines weigh gigabytes in
	// the daemon's memory. Zero means DefaultMaxBytes.
	MaxBytes int
}

// DefaultMaxBytes is the default cap of a batch's bytes.
const DefaultMaxBytes = 8 << 20

// Batch is one claimed batch, oldest line first.
type Batch struct {
	ID    string
	Lines [][]byte
	// Long holds the lengths of lines over MaxLine, which are not returned.
	Long []int
}

// Len is the number of lines in the batch, returned or not.
func (b Batch) Len() int { return len(b.Lines) + len(b.Long) }

// Claim returns the slot's batch in flight, or moves up to n lines into a
// new batch tagged with newID. An empty Batch (ID "") means the queue was
// empty.
func (c *Consumer) Claim(ctx context.Context, newID string, n int) (Batch, error) {
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	conn, err := c.Pool.GetContext(ctx)
	if err != nil {
		return Batch{}, fmt.Errorf("connect to d4 redis: %w", err)
	}
	defer conn.Close()
	reply, err := redis.Values(claim.Do(conn,
		QueueKey(c.Queue), ProcessingKey(c.Queue, c.Slot), BatchKey(c.Queue, c.Slot),
		newID, n, c.MaxLine, maxBytes))
	if err != nil {
		return Batch{}, fmt.Errorf("claim lines from %s: %w", QueueKey(c.Queue), err)
	}
	if len(reply) == 0 {
		return Batch{}, nil
	}
	var b Batch
	if b.ID, err = redis.String(reply[0], nil); err != nil {
		return Batch{}, fmt.Errorf("claim lines: batch id: %w", err)
	}
	b.Lines = make([][]byte, 0, len(reply)-1)
	for _, r := range reply[1:] {
		switch v := r.(type) {
		case []byte:
			b.Lines = append(b.Lines, v)
		case int64:
			b.Long = append(b.Long, int(v))
		default:
			return Batch{}, fmt.Errorf("claim lines: unexpected reply element %T", r)
		}
	}
	return b, nil
}

// Wait blocks up to timeout for a line, moving it into the slot's
// processing list, where the next Claim picks it up. It reports whether a
// line arrived. Blocking (instead of polling) is what counts a line pushed
// to an idle queue within a second.
func (c *Consumer) Wait(ctx context.Context, timeout time.Duration) (bool, error) {
	conn, err := c.Pool.GetContext(ctx)
	if err != nil {
		return false, fmt.Errorf("connect to d4 redis: %w", err)
	}
	defer conn.Close()
	secs := timeout.Seconds()
	if secs < 0.01 {
		secs = 0.01
	}
	cwt, ok := conn.(redis.ConnWithTimeout)
	if !ok {
		return false, errors.New("wait on d4 redis: connection has no timeouts")
	}
	// The read deadline must outlast the server-side block.
	r, err := cwt.DoWithTimeout(timeout+5*time.Second, "BRPOPLPUSH",
		QueueKey(c.Queue), ProcessingKey(c.Queue, c.Slot), strconv.FormatFloat(secs, 'f', 3, 64))
	if err != nil {
		return false, fmt.Errorf("wait on %s: %w", QueueKey(c.Queue), err)
	}
	return r != nil, nil
}

// Ack drops the slot's batch id once it is counted.
func (c *Consumer) Ack(ctx context.Context, id string) error {
	conn, err := c.Pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to d4 redis: %w", err)
	}
	defer conn.Close()
	if _, err := ack.Do(conn, ProcessingKey(c.Queue, c.Slot), BatchKey(c.Queue, c.Slot), id); err != nil {
		return fmt.Errorf("acknowledge batch %s: %w", id, err)
	}
	return nil
}

// Lengths reports the queue's length and the lines in processing lists of
// slots 0..slots-1.
func Lengths(ctx context.Context, pool *redis.Pool, queue string, slots int) (queued, processing int64, err error) {
	return LengthsFrom(ctx, pool, queue, 0, slots)
}

// LengthsFrom reports the queue's length and the lines in processing lists
// of slots first..first+slots-1 (one member's).
func LengthsFrom(ctx context.Context, pool *redis.Pool, queue string, first, slots int) (queued, processing int64, err error) {
	conn, err := pool.GetContext(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("connect to d4 redis: %w", err)
	}
	defer conn.Close()
	args := make([]interface{}, 0, slots+1)
	args = append(args, QueueKey(queue))
	for s := first; s < first+slots; s++ {
		args = append(args, ProcessingKey(queue, s))
	}
	v, err := redis.Int64s(lengths.DoContext(ctx, conn, args...))
	if err != nil || len(v) != 2 {
		return 0, 0, fmt.Errorf("length of %s: %w", QueueKey(queue), err)
	}
	return v[0], v[1], nil
}

// Leftovers lists the slots of member 0 with a batch in flight at or beyond
// slots, left by an earlier run configured with more workers; the caller
// drains them so that nothing stays stranded when the pool size shrinks.
func Leftovers(ctx context.Context, pool *redis.Pool, queue string, slots int) ([]int, error) {
	return MemberLeftovers(ctx, pool, queue, 0, slots)
}

// MemberLeftovers is Leftovers for the slots of member m.
func MemberLeftovers(ctx context.Context, pool *redis.Pool, queue string, m, slots int) ([]int, error) {
	all, err := InFlight(ctx, pool, queue)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, n := range all {
		if SlotMember(n) == m && n >= MemberSlot(m, slots) {
			out = append(out, n)
		}
	}
	return out, nil
}

// InFlight lists every slot of the queue, of any member, whose processing
// list or batch key exists, in ascending order. It scans the D4 Redis'
// keys (SCAN, never KEYS, so it does not block the server) with one
// pattern matching both kinds of key, so that a daemon looking for dead
// daemons' batches every few seconds costs an idle D4 Redis one command
// each time.
func InFlight(ctx context.Context, pool *redis.Pool, queue string) ([]int, error) {
	conn, err := pool.GetContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to d4 redis: %w", err)
	}
	defer conn.Close()
	procPrefix := strings.TrimSuffix(ProcessingKey(queue, 0), "0")
	batchPrefix := strings.TrimSuffix(BatchKey(queue, 0), "0")
	var out []int
	seen := map[int]bool{}
	cursor := "0"
	for {
		v, err := redis.Values(conn.Do("SCAN", cursor, "MATCH", "alog:*:"+queue+":*", "COUNT", 1000))
		if err != nil {
			return nil, fmt.Errorf("scan processing lists: %w", err)
		}
		cursor, _ = redis.String(v[0], nil)
		keys, _ := redis.Strings(v[1], nil)
		for _, k := range keys {
			rest, ok := strings.CutPrefix(k, procPrefix)
			if !ok {
				rest, ok = strings.CutPrefix(k, batchPrefix)
			}
			if !ok {
				continue
			}
			n, err := strconv.Atoi(rest)
			if err == nil && n >= 0 && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		if cursor == "0" {
			break
		}
	}
	sort.Ints(out)
	return out, nil
}
