package stats

import (
	"crypto/sha256"
	"strconv"
	"time"
)

// LineID is a line's identity in the memory of counted lines (SPEC §15):
// the first 128 bits of the SHA-256 of its bytes (see the package comment
// for why that hash and that width).
type LineID [16]byte

// HashLine returns the identity of a line: its bytes without one trailing
// '\r' (a sensor on a Windows host, or a relay that keeps CRLF, must not
// make a resent line new), through SHA-256 truncated to 128 bits.
func HashLine(line []byte) LineID {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	sum := sha256.Sum256(line)
	var id LineID
	copy(id[:], sum[:16])
	return id
}

// Memory is how long counted lines are remembered: Days calendar days
// after the day of the line's own timestamp; 0 remembers nothing.
type Memory struct {
	Days int
}

// On tells whether lines are remembered at all.
func (m Memory) On() bool { return m.Days > 0 }

// Until returns when the memory of a line stamped t (in the location the
// days are counted in) ends, as unix seconds: the start of the day Days+1
// days after t's. A line whose memory would already have ended at now is
// neither checked nor remembered: it is counted as any line is, since a
// resend that old cannot be told from a deliberate recount.
func (m Memory) Until(t, now time.Time) (until int64, remembered bool) {
	if m.Days <= 0 {
		return 0, false
	}
	y, mo, d := t.Date()
	until = time.Date(y, mo, d+1+m.Days, 0, 0, 0, 0, t.Location()).Unix()
	return until, until > now.Unix()
}

// SeenKey (DB 0) is the hash that describes one day's memory of counted
// lines: the linear-hashing level "l", split pointer "p" and count "n" of
// its buckets (see seenScript).
func SeenKey(day string) string { return "alog:seen:" + day }

// SeenBucketKey (DB 0) is one bucket of a day's memory: a string of packed
// LineIDs, seenWidth bytes of each.
func SeenBucketKey(day string, bucket int) string {
	return seenBucketPrefix(day) + strconv.Itoa(bucket)
}

func seenBucketPrefix(day string) string { return "alog:seen:" + day + ":" }

// SeenPattern matches every key of the memory, for SCAN.
const SeenPattern = "alog:seen:*"

// memo is one remembered line of a day: its identity and the index of its
// record among the day's records, so that a batch can be rebuilt without
// the lines Apply found already counted.
type memo struct {
	id  LineID
	rec int32
}

// AddOnce is Add for a line remembered until the unix second until (see
// Memory.Until). It reports false, adding nothing, when an identical line
// is already in the batch: a duplicate inside one batch counts once.
// Whether the line was counted by an earlier batch is for Apply to find.
func (b *Batch) AddOnce(t time.Time, host, user, src []byte, id LineID, until int64) bool {
	if _, dup := b.ids[id]; dup {
		b.dups++
		return false
	}
	if b.ids == nil {
		b.ids = make(map[LineID]struct{})
	}
	b.ids[id] = struct{}{}
	agg := b.dayOf(t)
	agg.memos = append(agg.memos, memo{id: id, rec: int32(agg.n)})
	agg.until = until
	b.addTo(agg, t.Unix(), host, user, src, true)
	return true
}

// Duplicates is the number of lines of the batch not counted because an
// identical line was counted before: in this batch, or (once Apply has
// run) in an earlier one.
func (b *Batch) Duplicates() int { return b.dups }

// seenDay is one day's part of the memory section of a plan.
type seenDay struct {
	day   string
	key   int32 // the day as yyyymmdd, to find its dayAgg
	until int64
	memos []memo
}

// without rebuilds the batch without the lines at the given indexes of
// the plan's memory section (which Apply found already counted): their
// increments, records and identities are dropped, and they count as
// duplicates.
func (b *Batch) without(p plan, flat []int) {
	drop := make(map[int32]map[int32]bool)
	for _, f := range flat {
		for _, sd := range p.seen {
			if f < len(sd.memos) {
				if drop[sd.key] == nil {
					drop[sd.key] = make(map[int32]bool)
				}
				drop[sd.key][sd.memos[f].rec] = true
				break
			}
			f -= len(sd.memos)
		}
	}
	old, order := b.days, append([]int32(nil), b.order...)
	b.days = make(map[int32]*dayAgg, len(old))
	b.order = b.order[:0]
	b.n, b.last, b.lastKey = 0, nil, 0
	b.members, b.drill = 0, 0
	for _, key := range order {
		o := old[key]
		agg := &dayAgg{period: o.period, until: o.until}
		for i := range agg.members {
			agg.members[i] = make(map[string]int64)
		}
		b.days[key] = agg
		b.order = append(b.order, key)
		dropped := drop[key]
		rec, m := int32(0), 0
		// Records of this batch were written by appendRecord, so they
		// decode; an error here would be a bug in this file.
		_ = DecodeRecords(o.records, func(a Attempt) error {
			defer func() { rec++ }()
			var mm *memo
			if m < len(o.memos) && o.memos[m].rec == rec {
				mm = &o.memos[m]
				m++
			}
			if dropped[rec] {
				b.dups++
				delete(b.ids, mm.id)
				return nil
			}
			if mm != nil {
				agg.memos = append(agg.memos, memo{id: mm.id, rec: int32(agg.n)})
			}
			b.addTo(agg, a.Unix, a.Host, a.User, a.Src, true)
			return nil
		})
	}
}

// seenWidth is the bytes of a LineID the memory keeps: 96 bits (see the
// package comment for why that is enough).
const seenWidth = 12

// seenLoadFactor is the average of remembered lines per bucket at which a
// day's memory splits one more bucket (linear hashing). A bucket of 64
// lines is a 1 KiB string: the key's own cost (about 130 bytes with its
// expiry) is 2 bytes a line, and reading and rewriting a bucket a batch
// touches stays cheap.
const seenLoadFactor = 128

// seenLua is the memory part of applyScript, as functions over the memory
// section of ARGV (see plan.args). Each day's memory is a linear hash
// table: bucket b of the yyyymmdd day is the string at SeenBucketKey, its
// lines packed seenWidth bytes each; the day's level L and split pointer P say
// that a line whose first four bytes read as the integer h is in bucket
// h mod 2^L, or h mod 2^(L+1) when that is below P. When the day holds
// more than seenLoadFactor lines per bucket, bucket P is split in two
// (its lines move by bit L of h), so buckets stay small at a hundred lines
// a day and at ten million, without a bucket count to configure.
//
// seenCheck only reads: it loads every bucket the batch's lines fall in
// and every bucket the batch will split, and lists the lines already
// there. seenWrite appends the lines, splits, and writes every changed
// bucket whole (an exact-size string: APPEND would leave up to half of
// each string unused), expiring with the day's memory.
var seenLua = `
local SEEN_LOAD = ` + strconv.Itoa(seenLoadFactor) + `
local SEEN_W = ` + strconv.Itoa(seenWidth) + `
local function seenH(id)
  local a, b, c, d = string.byte(id, 1, 4)
  return ((a * 256 + b) * 256 + c) * 256 + d
end
local function seenBucket(d, h)
  local k = h % (2 ^ d.L)
  if k < d.P then k = h % (2 ^ (d.L + 1)) end
  return k
end
local function seenLoad(d, k)
  if d.b[k] then return nil end
  local key = d.pre .. k
  local v = redis.pcall('GET', key)
  if type(v) == 'table' and v.err then
    return {'wrongtype', adb, key, redis.call('TYPE', key)['ok'], 'string'}
  end
  d.b[k] = v or ''
  return nil
end
local function seenHas(s, id)
  local from = 1
  while true do
    local j = string.find(s, id, from, true)
    if not j then return false end
    if (j - 1) % SEEN_W == 0 then return true end
    from = j + 1
  end
end
local function seenCheck(seen)
  local dups, flat = {}, 0
  for _, d in ipairs(seen) do
    local r = bad(adb, d.meta, 'hash') if r then return nil, r end
    local v = redis.call('HMGET', d.meta, 'l', 'p', 'n')
    d.L, d.P, d.N, d.b = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0, {}
    for j = 0, d.m - 1 do
      local id = ARGV[d.s + j]
      local k = seenBucket(d, seenH(id))
      r = seenLoad(d, k) if r then return nil, r end
      if seenHas(d.b[k], id) then dups[#dups + 1] = flat + j end
    end
    flat = flat + d.m
    -- The buckets the writes will split, so that nothing is read (and
    -- nothing can fail) once writing has begun.
    local L, P, N = d.L, d.P, d.N + d.m
    while N > SEEN_LOAD * (2 ^ L + P) do
      r = seenLoad(d, P) if r then return nil, r end
      P = P + 1
      if P == 2 ^ L then L, P = L + 1, 0 end
    end
  end
  return dups, nil
end
local function seenWrite(seen)
  for _, d in ipairs(seen) do
    local add, dirty = {}, {}
    for j = 0, d.m - 1 do
      local id = ARGV[d.s + j]
      local k = seenBucket(d, seenH(id))
      if not add[k] then add[k] = {d.b[k]} end
      add[k][#add[k] + 1] = id
    end
    for k, parts in pairs(add) do d.b[k] = table.concat(parts) dirty[k] = true end
    d.N = d.N + d.m
    while d.N > SEEN_LOAD * (2 ^ d.L + d.P) do
      local k, bit = d.P, 2 ^ d.L
      local s, lo, hi = d.b[k], {}, {}
      for o = 1, #s, SEEN_W do
        local id = string.sub(s, o, o + SEEN_W - 1)
        if math.floor(seenH(id) / bit) % 2 == 0 then lo[#lo + 1] = id else hi[#hi + 1] = id end
      end
      d.b[k], d.b[k + bit] = table.concat(lo), table.concat(hi)
      dirty[k], dirty[k + bit] = true, true
      d.P = d.P + 1
      if d.P == bit then d.L, d.P = d.L + 1, 0 end
    end
    for k in pairs(dirty) do
      if d.b[k] == '' then redis.call('DEL', d.pre .. k)
      else redis.call('SET', d.pre .. k, d.b[k], 'EXAT', d.untl) end
    end
    redis.call('HSET', d.meta, 'l', d.L, 'p', d.P, 'n', d.N)
    redis.call('EXPIREAT', d.meta, d.untl)
  end
end
`
