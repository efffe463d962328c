package stats_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// seenLine is one sshd line of the tests, with its time and fields.
type seenLine struct {
	t               time.Time
	host, user, src string
}

func (l seenLine) text() string {
	return fmt.Sprintf("%s %s sshd[%d]: Invalid user %s from %s port 22", l.t.Format(time.Stamp), l.host, l.t.Nanosecond()%65536, l.user, l.src)
}

// addOnce adds l to b as ingest does: remembered when its day is within
// the window.
func addOnce(b *stats.Batch, mem stats.Memory, now time.Time, l seenLine) {
	until, ok := mem.Until(l.t, now)
	if !ok {
		b.Add(l.t, []byte(l.host), []byte(l.user), []byte(l.src))
		return
	}
	b.AddOnce(l.t, []byte(l.host), []byte(l.user), []byte(l.src), stats.HashLine([]byte(l.text())), until)
}

// recentLines are n distinct lines of today and yesterday (relative to
// now), with few users so that increments are summed.
func recentLines(now time.Time, n int) []seenLine {
	out := make([]seenLine, n)
	for i := range out {
		out[i] = seenLine{
			t:    now.Add(-time.Duration(i%2) * 24 * time.Hour).Add(-time.Duration(i) * time.Second).Add(time.Duration(i) * time.Nanosecond),
			host: fmt.Sprintf("web%d", i%3), user: fmt.Sprintf("u%d", i%7), src: fmt.Sprintf("10.0.%d.%d", i/250, i%250),
		}
	}
	return out
}

func applyLines(t *testing.T, s *stats.Store, mem stats.Memory, now time.Time, lines []seenLine, batch int) (dups int) {
	t.Helper()
	for start := 0; start < len(lines); start += batch {
		b := stats.NewBatch()
		for _, l := range lines[start:min(start+batch, len(lines))] {
			addOnce(b, mem, now, l)
		}
		if err := s.Apply(context.Background(), b, nil); err != nil {
			t.Fatal(err)
		}
		dups += b.Duplicates()
	}
	return dups
}

// statsOnly is the dump of DB 1 (the statistics).
func dbDump(t *testing.T, srv *redistest.Server) map[string]string {
	c := srv.Conn(stats.StatsDB)
	defer c.Close()
	return redistest.Dump(t, c)
}

// diffDumps lists the keys whose values differ; "" when none do.
func diffDumps(got, want map[string]string) string {
	var out []string
	for k, w := range want {
		if g := got[k]; g != w {
			out = append(out, fmt.Sprintf("%s: got %.200s; want %.200s", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s: got %.200s; want no key", k, g))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// usedMemory is the server's INFO used_memory.
func usedMemory(t *testing.T, c redis.Conn) int64 {
	t.Helper()
	return infoInt(t, c, "memory", "used_memory")
}

// infoInt is the integer field of the server's INFO section.
func infoInt(tb testing.TB, c redis.Conn, section, field string) int64 {
	tb.Helper()
	info, err := redis.String(c.Do("INFO", section))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return n
		}
	}
	tb.Fatalf("no %s in INFO %s", field, section)
	return 0
}

func TestResentLinesCountOnce(t *testing.T) {
	now := time.Now().UTC()
	mem := stats.Memory{Days: 7}
	lines := recentLines(now, 3000)

	// The reference: every distinct line counted once, with no memory.
	ref := redistest.Start(t, redistest.Options{})
	applyLines(t, newStore(t, ref), stats.Memory{}, now, lines, 1000)
	want := dbDump(t, ref)

	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	if d := applyLines(t, s, mem, now, lines, 1000); d != 0 {
		t.Fatalf("first pass: %d duplicates; want 0", d)
	}
	// A restarted sensor resends its last 2,000 lines, in batches that
	// straddle the earlier ones, and one line twice in the same batch.
	resend := append(append([]seenLine(nil), lines[1000:]...), lines[2999])
	if d := applyLines(t, s, mem, now, resend, 700); d != len(resend) {
		t.Fatalf("resend: %d duplicates; want %d", d, len(resend))
	}
	// A batch mixing new lines and resent ones counts only the new.
	more := recentLines(now.Add(time.Hour), 3100)[3000:]
	mixed := append(append([]seenLine(nil), lines[:50]...), more...)
	mixed = append(mixed, more[0])
	if d := applyLines(t, s, mem, now, mixed, 1000); d != 51 {
		t.Fatalf("mixed batch: %d duplicates; want 51", d)
	}
	applyLines(t, newStore(t, ref), stats.Memory{}, now, more, 1000)
	want = dbDump(t, ref)
	if got := dbDump(t, srv); diffDumps(got, want) != "" {
		t.Fatalf("statistics after resends differ from the distinct lines counted once:\n%s", diffDumps(got, want))
	}
	// The attempts stored for -F hold every distinct line once.
	if n := storedAttempts(t, srv); n != 3100 {
		t.Fatalf("stored attempts: %d; want 3100", n)
	}
}

func TestInBatchDuplicateCountsOnce(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	now := time.Now().UTC()
	l := recentLines(now, 1)[0]
	b := stats.NewBatch()
	for i := 0; i < 3; i++ {
		addOnce(b, stats.Memory{Days: 1}, now, l)
	}
	if b.Len() != 1 || b.Duplicates() != 2 {
		t.Fatalf("batch: %d lines, %d duplicates; want 1 and 2", b.Len(), b.Duplicates())
	}
	if err := s.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	day := stats.PeriodOf(l.t).Day
	got, err := redis.Int64(srv.Conn(1).Do("ZSCORE", stats.StatsKey(day, stats.KindUser), l.user))
	if err != nil || got != 1 {
		t.Fatalf("count of %s: %d, %v; want 1", l.user, got, err)
	}
}

func TestLineIdentityDropsOneCarriageReturn(t *testing.T) {
	a := stats.HashLine([]byte("Jan  2 15:04:05 h sshd[1]: Invalid user x from 1.2.3.4"))
	if b := stats.HashLine([]byte("Jan  2 15:04:05 h sshd[1]: Invalid user x from 1.2.3.4\r")); a != b {
		t.Fatal("a trailing \\r makes a different line")
	}
	if b := stats.HashLine([]byte("Jan  2 15:04:05 h sshd[1]: Invalid user x from 1.2.3.4\r\r")); a == b {
		t.Fatal("two trailing \\r are dropped; want only one")
	}
	if b := stats.HashLine([]byte("Jan  2 15:04:06 h sshd[1]: Invalid user x from 1.2.3.4")); a == b {
		t.Fatal("lines a second apart have the same identity")
	}
}

func TestFailedApplyRemembersNothing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	now := time.Now().UTC()
	mem := stats.Memory{Days: 7}
	lines := recentLines(now, 10)
	// A foreign writer's string where a ranking goes: the batch is refused.
	foreign := stats.StatsKey(stats.PeriodOf(lines[0].t).Day, stats.KindUser)
	if _, err := srv.Conn(1).Do("SET", foreign, "x"); err != nil {
		t.Fatal(err)
	}
	b := stats.NewBatch()
	for _, l := range lines {
		addOnce(b, mem, now, l)
	}
	var fk *stats.ForeignKeyError
	if err := s.Apply(context.Background(), b, nil); !errors.As(err, &fk) {
		t.Fatalf("apply over a foreign key: %v; want a ForeignKeyError", err)
	}
	if keys := seenKeys(t, srv); len(keys) != 0 {
		t.Fatalf("a refused batch left memory: %v", keys)
	}
	if _, err := srv.Conn(1).Do("DEL", foreign); err != nil {
		t.Fatal(err)
	}
	// The same lines, once the key is repaired, are new.
	if d := applyLines(t, s, mem, now, lines, 100); d != 0 {
		t.Fatalf("after repair: %d duplicates; want 0", d)
	}
	// A foreign value under a bucket key refuses the batch too.
	c := srv.Conn(0)
	for _, k := range seenKeys(t, srv) {
		if strings.Count(k, ":") == 3 {
			if _, err := c.Do("DEL", k); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Do("RPUSH", k, "x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.Reset()
	for _, l := range lines {
		addOnce(b, mem, now, l)
	}
	if err := s.Apply(context.Background(), b, nil); !errors.As(err, &fk) || fk.DB != 0 || fk.Type != "list" {
		t.Fatalf("apply over a foreign bucket: %v; want a ForeignKeyError naming a list in DB 0", err)
	}
}

func TestOldLinesAreNotRemembered(t *testing.T) {
	now := time.Now().UTC()
	mem := stats.Memory{Days: 3}
	if _, ok := mem.Until(now.AddDate(0, 0, -3), now); !ok {
		t.Fatal("a line 3 days old is outside a 3-day window")
	}
	if _, ok := mem.Until(now.AddDate(0, 0, -4), now); ok {
		t.Fatal("a line 4 days old is inside a 3-day window")
	}
	if _, ok := (stats.Memory{}).Until(now, now); ok {
		t.Fatal("dedupe_days = 0 remembers lines")
	}
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	old := []seenLine{{t: now.AddDate(0, 0, -10), host: "h", user: "u", src: "1.2.3.4"}}
	for i := 0; i < 2; i++ {
		if d := applyLines(t, s, mem, now, old, 10); d != 0 {
			t.Fatalf("pass %d: an old line was a duplicate", i)
		}
	}
	day := stats.PeriodOf(old[0].t).Day
	if n, _ := redis.Int64(srv.Conn(1).Do("ZSCORE", stats.StatsKey(day, stats.KindUser), "u")); n != 2 {
		t.Fatalf("an old line sent twice counted %d times; want 2", n)
	}
	if keys := seenKeys(t, srv); len(keys) != 0 {
		t.Fatalf("an old line was remembered: %v", keys)
	}
}

func TestMemoryExpiresWithItsDay(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	now := time.Now().UTC()
	mem := stats.Memory{Days: 2}
	lines := recentLines(now, 500)
	applyLines(t, s, mem, now, lines, 500)
	c := srv.Conn(0)
	keys := seenKeys(t, srv)
	if len(keys) < 4 {
		t.Fatalf("500 lines over two days are in %d keys; want the buckets split", len(keys))
	}
	for _, k := range keys {
		day := strings.Split(k, ":")[2]
		d, _ := time.Parse("20060102", day)
		want := d.AddDate(0, 0, 1+mem.Days).Unix()
		got, err := redis.Int64(c.Do("EXPIRETIME", k))
		if err != nil || got != want {
			t.Fatalf("%s expires at %d (%v); want %d, the end of its day plus %d days", k, got, err, want, mem.Days)
		}
	}
}

func TestRebuildKeepsTheMemory(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	now := time.Now().UTC()
	mem := stats.Memory{Days: 7}
	lines := recentLines(now, 200)
	applyLines(t, s, mem, now, lines, 100)
	before := seenKeys(t, srv)
	if _, err := s.RebuildWith(context.Background(), stats.RebuildOptions{Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	if after := seenKeys(t, srv); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("memory after -F: %v; want %v", after, before)
	}
	if d := applyLines(t, s, mem, now, lines, 100); d != len(lines) {
		t.Fatalf("resent after -F: %d duplicates; want %d", d, len(lines))
	}
}

// TestMemoryCostPerLine measures what the counting Redis holds per
// remembered line, as the bench does at scale.
func TestMemoryCostPerLine(t *testing.T) {
	now := time.Now().UTC()
	lines := recentLines(now, 20000)
	used := func(mem stats.Memory) int64 {
		srv := redistest.Start(t, redistest.Options{})
		applyLines(t, newStore(t, srv), mem, now, lines, 1000)
		return usedMemory(t, srv.Conn(0))
	}
	off, on := used(stats.Memory{}), used(stats.Memory{Days: 7})
	per := float64(on-off) / float64(len(lines))
	t.Logf("memory per remembered line: %.1f bytes", per)
	if per > 24 {
		t.Fatalf("memory per remembered line: %.1f bytes; want at most 24", per)
	}
}

func seenKeys(t *testing.T, srv *redistest.Server) []string {
	t.Helper()
	keys, err := redis.Strings(srv.Conn(0).Do("KEYS", stats.SeenPattern))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	return keys
}

func storedAttempts(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	c := srv.Conn(0)
	keys, err := redis.Strings(c.Do("KEYS", stats.AttemptsPattern))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		elems, err := redis.ByteSlices(c.Do("LRANGE", k, 0, -1))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range elems {
			if err := stats.DecodeRecords(e, func(stats.Attempt) error { n++; return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}
