package stats_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

func pool(addr string, db int) *redis.Pool {
	return &redis.Pool{
		Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", addr, redis.DialDatabase(db), redis.DialReadTimeout(10*time.Second))
		},
		MaxActive: 8, MaxIdle: 8, Wait: true,
	}
}

func newStore(t *testing.T, srv *redistest.Server) *stats.Store {
	s := &stats.Store{Stats: pool(srv.Addr(), 1), Attempts: pool(srv.Addr(), 0)}
	t.Cleanup(func() { s.Stats.Close(); s.Attempts.Close() })
	return s
}

var utc = time.UTC

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.In(utc)
}

func TestApplyWritesTheOriginalSchema(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	b := stats.NewBatch()
	b.Add(at("2026-11-25T10:00:00Z"), []byte("web1"), []byte("root"), []byte("1.2.3.4"))
	b.Add(at("2026-11-25T10:00:00Z"), []byte("web1"), []byte("root"), []byte("1.2.3.4"))
	b.Add(at("2026-11-24T23:59:59Z"), []byte("web.example.org"), []byte(""), []byte("2001:db8::1"))
	b.Add(at("2025-12-31T12:00:00Z"), []byte("web1"), []byte("a b"), []byte("host.example"))
	if err := s.Apply(ctx, b, &stats.Applied{Queue: "q", Slot: 3, ID: "abc"}); err != nil {
		t.Fatal(err)
	}
	c := srv.Conn(1)
	want := map[string]string{
		"20261125:statsusername":  `zset:"root"=2`,
		"20261125:statssrc":       `zset:"1.2.3.4"=2`,
		"20261125:statshost":      `zset:"web1"=2`,
		"20261124:statsusername":  `zset:""=1`,
		"20261124:statssrc":       `zset:"2001:db8::1"=1`,
		"20261124:statshost":      `zset:"web.example.org"=1`,
		"202611:statsusername":    `zset:""=1 "root"=2`,
		"202611:statssrc":         `zset:"1.2.3.4"=2 "2001:db8::1"=1`,
		"202611:statshost":        `zset:"web.example.org"=1 "web1"=2`,
		"2026:statsusername":      `zset:""=1 "root"=2`,
		"2026:statssrc":           `zset:"1.2.3.4"=2 "2001:db8::1"=1`,
		"2026:statshost":          `zset:"web.example.org"=1 "web1"=2`,
		"20251231:statsusername":  `zset:"a b"=1`,
		"20251231:statssrc":       `zset:"host.example"=1`,
		"20251231:statshost":      `zset:"web1"=1`,
		"202512:statsusername":    `zset:"a b"=1`,
		"202512:statssrc":         `zset:"host.example"=1`,
		"202512:statshost":        `zset:"web1"=1`,
		"2025:statsusername":      `zset:"a b"=1`,
		"2025:statssrc":           `zset:"host.example"=1`,
		"2025:statshost":          `zset:"web1"=1`,
		"oldest":                  `string:20251231`,
		"newest":                  `string:20261125`,
		stats.NewestLineKey:       fmt.Sprintf("string:%d", at("2026-11-25T10:00:00Z").Unix()),
		"toupdate:daily":          `set:"20251231:statshost" "20251231:statssrc" "20251231:statsusername" "20261124:statshost" "20261124:statssrc" "20261124:statsusername" "20261125:statshost" "20261125:statssrc" "20261125:statsusername"`,
		"toupdate:monthly":        `set:"202512:statshost" "202512:statssrc" "202512:statsusername" "202611:statshost" "202611:statssrc" "202611:statsusername"`,
		"toupdate:yearly":         `set:"2025:statshost" "2025:statssrc" "2025:statsusername" "2026:statshost" "2026:statssrc" "2026:statsusername"`,
		"alog:firstseen:src":      `zset:"1.2.3.4"=20261125 "2001:db8::1"=20261124 "host.example"=20251231`,
		"alog:firstseen:host":     `zset:"web.example.org"=20261124 "web1"=20251231`,
		"alog:firstseen:username": `zset:""=20261124 "a b"=20251231 "root"=20261125`,
		"alog:totals":             `hash:"2025"=1 "202512"=1 "20251231"=1 "2026"=3 "202611"=3 "20261124"=1 "20261125"=2`,
	}
	// Drill-down data: per day, kind and value, the other kinds' values of
	// the same attempts.
	wantDrill := map[string]string{
		"20251231 src host.example":     `"host:web1"=1 "username:a b"=1`,
		"20261124 src 2001:db8::1":      `"host:web.example.org"=1 "username:"=1`,
		"20261125 src 1.2.3.4":          `"host:web1"=2 "username:root"=2`,
		"20261124 host web.example.org": `"src:2001:db8::1"=1 "username:"=1`,
		"20251231 host web1":            `"src:host.example"=1 "username:a b"=1`,
		"20251231 username a b":         `"host:web1"=1 "src:host.example"=1`,
		"20261125 username root":        `"host:web1"=2 "src:1.2.3.4"=2`,
		"20261125 host web1":            `"src:1.2.3.4"=2 "username:root"=2`,
		"20261124 username ":            `"host:web.example.org"=1 "src:2001:db8::1"=1`,
	}
	gotDrill := drillView(t, c)
	for k, v := range wantDrill {
		if gotDrill[k] != v {
			t.Errorf("drill-down %s = %s, want %s", k, gotDrill[k], v)
		}
	}
	for k, v := range gotDrill {
		if _, ok := wantDrill[k]; !ok {
			t.Errorf("unexpected drill-down %s = %s", k, v)
		}
	}
	got := redistest.Dump(t, c)
	for k := range got {
		if strings.HasPrefix(k, "alog:links:") {
			delete(got, k) // compared above, decoded
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %s, want %s", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %s = %s", k, got[k])
		}
	}
	ok, err := s.IsApplied(ctx, stats.Applied{Queue: "q", Slot: 3, ID: "abc"})
	if err != nil || !ok {
		t.Fatalf("IsApplied = %v, %v; want true", ok, err)
	}
	ok, _ = s.IsApplied(ctx, stats.Applied{Queue: "q", Slot: 3, ID: "abd"})
	if ok {
		t.Fatal("IsApplied of another id = true")
	}
	// The connection a transaction used is back on DB 1.
	conn := s.Stats.Get()
	defer conn.Close()
	if n, _ := redis.Int(conn.Do("EXISTS", "oldest")); n != 1 {
		t.Fatal("pooled connection left on another DB")
	}
}

func TestOldestNewestUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	var wg sync.WaitGroup
	start := at("2026-01-01T12:00:00Z")
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := stats.NewBatch()
			b.Add(start.AddDate(0, 0, (i*7)%40).Add(time.Duration(i)*time.Minute), []byte("h"), []byte("u"), []byte("s"))
			b.Add(start.AddDate(0, 0, (i*3)%40), []byte("h"), []byte("u"), []byte("s"))
			if err := s.Apply(ctx, b, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	c := srv.Conn(1)
	o, _ := redis.String(c.Do("GET", "oldest"))
	n, _ := redis.String(c.Do("GET", "newest"))
	if o != "20260101" || n != "20260209" {
		t.Fatalf("oldest, newest = %s, %s; want 20260101, 20260209", o, n)
	}
	// The newest line's stamp is the largest of every batch, whatever
	// order they committed in.
	var newest time.Time
	for i := 0; i < 40; i++ {
		for _, st := range []time.Time{start.AddDate(0, 0, (i*7)%40).Add(time.Duration(i) * time.Minute), start.AddDate(0, 0, (i*3)%40)} {
			if st.After(newest) {
				newest = st
			}
		}
	}
	idx, err := s.ReadIndex(ctx)
	if err != nil || !idx.NewestLine.Equal(newest) {
		t.Fatalf("ReadIndex NewestLine = %v, %v; want %v", idx.NewestLine, err, newest)
	}
}

func TestRankingOrderAndChunks(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	c := srv.Conn(1)
	// Scores 1..4 with ties of various sizes; members inserted in an order
	// that Redis' own reverse order would get wrong.
	var want []stats.Entry
	for score := 4; score >= 1; score-- {
		for i := 0; i < score*3; i++ {
			m := fmt.Sprintf("m%d-%02d", score, i)
			want = append(want, stats.Entry{Member: m, Count: int64(score)})
			if _, err := c.Do("ZADD", "k", score, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, chunk := range []int{1, 2, 5, 7, 1000} {
		r, err := s.OpenRanking(ctx, "k", chunk)
		if err != nil {
			t.Fatal(err)
		}
		var got []stats.Entry
		for {
			e, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			if e == nil {
				break
			}
			if len(e) > chunk {
				t.Fatalf("chunk of %d entries, asked %d", len(e), chunk)
			}
			got = append(got, e...)
		}
		r.Close()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("chunk %d:\n got %v\nwant %v", chunk, got, want)
		}
	}
	top, err := s.Top(ctx, "k", 5)
	if err != nil || fmt.Sprint(top) != fmt.Sprint(want[:5]) {
		t.Fatalf("Top = %v, %v", top, err)
	}
	none, err := s.Top(ctx, "missing", 5)
	if err != nil || len(none) != 0 {
		t.Fatalf("Top of missing key = %v, %v", none, err)
	}
}

func TestRebuildIsIdentical(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Luxembourg")
	if err != nil {
		t.Fatal(err)
	}
	start := at("2025-12-30T22:30:00Z")
	for batch := 0; batch < 20; batch++ {
		b := stats.NewBatch()
		for i := 0; i < 300; i++ {
			n := batch*300 + i
			ts := start.Add(time.Duration(n) * 97 * time.Second).In(loc)
			b.Add(ts, []byte(fmt.Sprintf("host%d", n%7)), []byte(fmt.Sprintf("user%d", n%13)), []byte(fmt.Sprintf("10.0.%d.%d", n%5, n%11)))
		}
		// The same second on the same host twice: two attempts.
		b.Add(start.In(loc), []byte("host0"), []byte("user0"), []byte("10.0.0.0"))
		if err := s.Apply(ctx, b, &stats.Applied{Queue: "q", Slot: 0, ID: fmt.Sprint(batch)}); err != nil {
			t.Fatal(err)
		}
	}
	c := srv.Conn(1)
	before := statsOnly(redistest.Dump(t, c))
	n, err := s.Rebuild(ctx, loc, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 20*301 {
		t.Fatalf("rebuilt %d attempts, want %d", n, 20*301)
	}
	after := statsOnly(redistest.Dump(t, c))
	if len(before) == 0 || fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("DB 1 differs after rebuild:\nbefore %v\nafter  %v", before, after)
	}
	if ok, _ := s.IsApplied(ctx, stats.Applied{Queue: "q", Slot: 0, ID: "19"}); !ok {
		t.Fatal("rebuild lost the applied-batch record")
	}
}

// statsOnly drops the compile bookkeeping, which a rebuild resets.
func statsOnly(d map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range d {
		if strings.HasPrefix(k, "toupdate:") || strings.HasPrefix(k, "alog:compiling:") {
			continue
		}
		out[k] = v
	}
	return out
}

func TestTakeToUpdateKeepsLateUpdates(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	b := stats.NewBatch()
	b.Add(at("2026-11-25T10:00:00Z"), []byte("h"), []byte("u"), []byte("s"))
	if err := s.Apply(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	keys, err := s.TakeToUpdate(ctx, stats.Daily)
	if err != nil || len(keys) != 3 {
		t.Fatalf("TakeToUpdate = %v, %v", keys, err)
	}
	// The same key changes while the compile draws.
	if err := s.Apply(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.DoneRendering(ctx, stats.Daily, keys...); err != nil {
		t.Fatal(err)
	}
	again, err := s.TakeToUpdate(ctx, stats.Daily)
	if err != nil || len(again) != 3 {
		t.Fatalf("late update lost: TakeToUpdate = %v, %v", again, err)
	}
	// An interrupted compile leaves its keys for the next.
	next, _ := s.TakeToUpdate(ctx, stats.Daily)
	if len(next) != 3 {
		t.Fatalf("interrupted compile's keys lost: %v", next)
	}
}

func TestDecodeRecordsRejectsTruncation(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	b := stats.NewBatch()
	b.Add(at("2026-11-25T10:00:00Z"), []byte("h"), []byte("user"), []byte("s"))
	if err := s.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	raw, err := redis.Bytes(srv.Conn(0).Do("LINDEX", stats.AttemptsKey("20261125"), 0))
	if err != nil {
		t.Fatal(err)
	}
	var got []stats.Attempt
	if err := stats.DecodeRecords(raw, func(a stats.Attempt) error { got = append(got, a); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].User) != "user" || got[0].Unix != at("2026-11-25T10:00:00Z").Unix() {
		t.Fatalf("decoded %+v", got)
	}
	for i := 1; i < len(raw); i++ {
		if err := stats.DecodeRecords(raw[:i], func(stats.Attempt) error { return nil }); err == nil {
			t.Fatalf("truncated record of %d bytes decoded without error", i)
		}
	}
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add([]byte{0x02, 0x01, 'h', 0x00, 0x01, 's'})
	f.Add([]byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = stats.DecodeRecords(b, func(a stats.Attempt) error {
			if len(a.Host)+len(a.User)+len(a.Src) > len(b) {
				t.Fatal("fields longer than the input")
			}
			return nil
		})
	})
}

func TestFirstSeenKeepsTheEarliestDay(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	for _, day := range []string{"2026-11-20", "2026-11-25", "2026-11-10", "2026-11-22"} {
		b := stats.NewBatch()
		b.Add(at(day+"T10:00:00Z"), []byte("h"), []byte("root"), []byte("s"))
		if err := s.Apply(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := redis.Int(srv.Conn(1).Do("ZSCORE", stats.FirstSeenKey(stats.KindUser), "root"))
	if err != nil || got != 20261110 {
		t.Fatalf("first seen = %d, %v; want 20261110", got, err)
	}
}

func TestCheckRefusesAHalfDoneFlush(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check of a fresh Redis: %v", err)
	}
	if _, err := srv.Conn(0).Do("SET", stats.RebuildingKey, "1"); err != nil {
		t.Fatal(err)
	}
	err := s.Check(ctx)
	if !errors.Is(err, stats.ErrUnfit) || !strings.Contains(err.Error(), "run analyzer-d4-log -F again") {
		t.Fatalf("Check with a half-done flush = %v", err)
	}
	// A completed flush clears the marker.
	if _, err := s.Rebuild(ctx, time.UTC, 10, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check after a completed flush: %v", err)
	}
}

// drillView renders every drill-down answer of the counting Redis (c on DB
// 1) as "day kind value" → its linked values in order, "kind:value"=n.
func drillView(t *testing.T, c redis.Conn) map[string]string {
	t.Helper()
	sets, err := stats.DrillSets(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for set, linked := range sets {
		var parts []string
		for l, n := range linked {
			parts = append(parts, fmt.Sprintf("%q=%d", l.Kind+":"+l.Value, n))
		}
		sort.Strings(parts)
		out[set.Day+" "+set.Kind+" "+set.Value] = strings.Join(parts, " ")
	}
	return out
}

// The counting script adds a batch's increments by reading the scores and
// writing the sums back in bulk; what it leaves must be what ZINCRBY would,
// for sets bigger than one bulk call and for scores we never write (a
// fraction, the largest exact integer of a double, infinity).
func TestIncrementsEqualZINCRBY(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	c := srv.Conn(1)
	day := at("2026-11-25T10:00:00Z")
	key := stats.StatsKey("20261125", stats.KindUser)
	const mirror = "mirror"
	foreign := map[string]string{"u0": "0.1", "u1": "9007199254740991", "u2": "inf", "u3": "-inf", "u4": "-3.5"}
	for m, score := range foreign {
		for _, k := range []string{key, mirror} {
			if _, err := c.Do("ZADD", k, score, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	for round := 0; round < 2; round++ {
		b := stats.NewBatch()
		for i := 0; i < 1234; i++ {
			m := fmt.Sprintf("u%d", i)
			for range i%3 + 1 {
				b.Add(day, []byte("h"), []byte(m), []byte("1.2.3.4"))
			}
			if _, err := c.Do("ZINCRBY", mirror, i%3+1, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Apply(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := redis.Strings(c.Do("ZRANGE", key, 0, -1, "WITHSCORES"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := redis.Strings(c.Do("ZRANGE", mirror, 0, -1, "WITHSCORES"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2*1234 || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("%d entries differ from ZINCRBY's %d:\n got %.300v\nwant %.300v", len(got)/2, len(want)/2, got, want)
	}
}
