package stats_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// record packs one attempt the way DB 0 stores it (see record.go).
func record(unix int64, host, user, src string) []byte {
	b := binary.AppendVarint(nil, unix)
	for _, f := range []string{host, user, src} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func listOf(t *testing.T, c redis.Conn, key string) []string {
	t.Helper()
	v, err := redis.Strings(c.Do("LRANGE", key, 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRebuildSetsAsideForeignData plants what only a foreign writer could
// leave under the attempts keys, and checks that a flush moves each of them
// to quarantine, reports it with its key and index, counts everything else
// exactly (none of a half-decodable element), and that a second flush finds
// nothing more and gives the same DB 1.
func TestRebuildSetsAsideForeignData(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	c0, c1 := srv.Conn(0), srv.Conn(1)
	apply := func(ts ...string) {
		b := stats.NewBatch()
		for i, x := range ts {
			b.Add(at(x), []byte("h"), []byte(fmt.Sprint("user", i)), []byte("10.0.0.1"))
		}
		if err := s.Apply(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	day29, day30 := stats.AttemptsKey("20261129"), stats.AttemptsKey("20261130")
	apply("2026-11-29T10:00:00Z", "2026-11-29T11:00:00Z")
	apply("2026-11-30T10:00:00Z")
	// Foreign elements: one in the middle of a list, one at its end, one
	// that decodes half way (a valid record, then junk), and one whose
	// record has a time in the year 10000.
	do(t, c0, "RPUSH", day29, "garbage")
	apply("2026-11-29T12:00:00Z", "2026-11-30T12:00:00Z")
	halfValid := append(record(at("2026-11-30T13:00:00Z").Unix(), "h", "ghost", "10.9.9.9"), 0x05, 'x')
	farFuture := record(253402300800+86400, "h", "future", "10.9.9.9")
	do(t, c0, "RPUSH", day30, "garbage", halfValid, farFuture)
	// Keys that are not lists at all.
	do(t, c0, "SET", stats.AttemptsKey("20261201"), "garbage")
	do(t, c0, "HSET", stats.AttemptsKey("20261202"), "f", "v")
	want := statsOnly(redistest.Dump(t, c1))
	before29, before30 := listOf(t, c0, day29), listOf(t, c0, day30)

	var got []string
	res, err := s.RebuildWith(ctx, stats.RebuildOptions{Location: time.UTC, Batch: 2, SetAside: func(a stats.SetAside) {
		got = append(got, fmt.Sprintf("%s %d %s %s", a.Key, a.Index, a.Type, a.To))
		if a.Reason == "" {
			t.Errorf("no reason given for %v", a)
		}
	}})
	if err != nil {
		t.Fatalf("flush with foreign data: %v", err)
	}
	sort.Strings(got)
	wantSetAside := []string{
		"alog:attempts:20261129 1  alog:quarantine:20261129",
		"alog:attempts:20261130 2  alog:quarantine:20261130",
		"alog:attempts:20261130 3  alog:quarantine:20261130",
		"alog:attempts:20261130 4  alog:quarantine:20261130",
		"alog:attempts:20261201 -1 string alog:quarantine:20261201:whole:1",
		"alog:attempts:20261202 -1 hash alog:quarantine:20261202:whole:1",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantSetAside) {
		t.Fatalf("set aside:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantSetAside, "\n"))
	}
	if res.Attempts != 5 || res.SetAside != 6 || len(res.Quarantine) != 4 {
		t.Fatalf("result = %+v; want 5 attempts, 6 set aside under 4 keys", res)
	}
	msg := res.Message()
	if !strings.Contains(msg, "6 stored elements") || !strings.Contains(msg, "alog:quarantine:20261130") || !strings.Contains(msg, "redis-cli -n 0 --scan") {
		t.Errorf("message %q", msg)
	}
	if after := statsOnly(redistest.Dump(t, c1)); fmt.Sprint(after) != fmt.Sprint(want) {
		t.Fatalf("DB 1 after the flush:\n%v\nwant\n%v", after, want)
	}
	// Moved, not copied: the lists keep their own elements in order, and
	// the quarantine holds the foreign ones byte for byte.
	if l := listOf(t, c0, day29); fmt.Sprint(l) != fmt.Sprint([]string{before29[0], before29[2]}) {
		t.Errorf("%s after the flush: %q", day29, l)
	}
	if l := listOf(t, c0, day30); fmt.Sprint(l) != fmt.Sprint(before30[:2]) {
		t.Errorf("%s after the flush: %q", day30, l)
	}
	if q := listOf(t, c0, stats.QuarantineKey("20261130")); fmt.Sprint(q) != fmt.Sprint([]string{string(farFuture), string(halfValid), "garbage"}) {
		t.Errorf("quarantine of 20261130: %q", q)
	}
	if v, _ := redis.String(c0.Do("GET", "alog:quarantine:20261201:whole:1")); v != "garbage" {
		t.Errorf("whole key set aside holds %q", v)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("the daemon could not start after the flush: %v", err)
	}

	quarantined := redistest.Dump(t, c0)
	res, err = s.RebuildWith(ctx, stats.RebuildOptions{Location: time.UTC, Batch: 1000})
	if err != nil || res.SetAside != 0 || res.Attempts != 5 || res.Message() != "" {
		t.Fatalf("second flush = %+v, %v; want 5 attempts and nothing set aside", res, err)
	}
	if after := statsOnly(redistest.Dump(t, c1)); fmt.Sprint(after) != fmt.Sprint(want) {
		t.Fatalf("DB 1 after a second flush differs:\n%v\nwant\n%v", after, want)
	}
	if again := redistest.Dump(t, c0); fmt.Sprint(again) != fmt.Sprint(quarantined) {
		t.Fatalf("a second flush changed DB 0:\n%v\nwas\n%v", again, quarantined)
	}
	// The day whose key was foreign counts again.
	apply("2026-12-01T10:00:00Z")
}

// TestRebuildSetsAsideWholeKeysWithoutOverwriting: a second foreign key of
// the same day is set aside beside the first, not over it.
func TestRebuildSetsAsideWholeKeysWithoutOverwriting(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	c0 := srv.Conn(0)
	for i, v := range []string{"first", "second"} {
		do(t, c0, "SET", stats.AttemptsKey("20261201"), v)
		res, err := s.RebuildWith(ctx, stats.RebuildOptions{Location: time.UTC})
		if err != nil || res.SetAside != 1 {
			t.Fatalf("flush %d = %+v, %v", i+1, res, err)
		}
		if want := stats.QuarantineWholeKey("20261201", i+1); res.Quarantine[0] != want || !strings.Contains(res.Message(), want) {
			t.Fatalf("flush %d set aside under %v (%q), want %s", i+1, res.Quarantine, res.Message(), want)
		}
	}
	for i, v := range []string{"first", "second"} {
		if got, _ := redis.String(c0.Do("GET", stats.QuarantineWholeKey("20261201", i+1))); got != v {
			t.Errorf("%s = %q, want %q", stats.QuarantineWholeKey("20261201", i+1), got, v)
		}
	}
}

// TestRebuildMessageNamesTheList: with one quarantine list, the closing
// message gives the command that shows it.
func TestRebuildMessageNamesTheList(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	do(t, srv.Conn(0), "RPUSH", stats.AttemptsKey("20261130"), "garbage")
	res, err := s.RebuildWith(context.Background(), stats.RebuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := "1 stored element that could not be decoded was set aside under alog:quarantine:20261130 and not counted; see them with redis-cli -n 0 LRANGE alog:quarantine:20261130 0 -1"
	if res.Message() != want {
		t.Fatalf("message\n%q\nwant\n%q", res.Message(), want)
	}
}

// TestRebuildLeavesOutLaterAttempts: a stamp after NotAfter, which an
// earlier version counted, no longer sets newest after a flush.
func TestRebuildLeavesOutLaterAttempts(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	now := at("2026-11-25T10:00:00Z")
	b := stats.NewBatch()
	b.Add(now.Add(-time.Hour), []byte("h"), []byte("u"), []byte("s"))
	b.Add(now.AddDate(73, 0, 0), []byte("h"), []byte("forged"), []byte("s"))
	if err := s.Apply(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	res, err := s.RebuildWith(ctx, stats.RebuildOptions{NotAfter: now.Add(24 * time.Hour)})
	if err != nil || res.Attempts != 1 || res.Later != 1 {
		t.Fatalf("flush = %+v, %v; want 1 attempt counted and 1 left out", res, err)
	}
	c1 := srv.Conn(1)
	if newest, _ := redis.String(c1.Do("GET", "newest")); newest != "20261125" {
		t.Fatalf("newest = %s after the flush, want 20261125", newest)
	}
	if n, _ := redis.Int(c1.Do("ZSCORE", stats.FirstSeenKey(stats.KindUser), "forged")); n != 0 {
		t.Fatal("the later attempt was counted")
	}
	// It stays in DB 0: a flush without the bound counts it again.
	if res, err := s.RebuildWith(ctx, stats.RebuildOptions{}); err != nil || res.Attempts != 2 {
		t.Fatalf("flush without a bound = %+v, %v", res, err)
	}
}
