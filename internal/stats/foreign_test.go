package stats_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// dumpAll renders DB 0 and DB 1 together, keys prefixed by their DB.
func dumpAll(t *testing.T, srv *redistest.Server) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, db := range []int{0, 1} {
		for k, v := range redistest.Dump(t, srv.Conn(db)) {
			out[fmt.Sprintf("%d/%s", db, k)] = v
		}
	}
	return out
}

func diff(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, fmt.Sprintf("%s: %q → %q", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			d = append(d, fmt.Sprintf("%s: (none) → %q", k, v))
		}
	}
	return d
}

func do(t *testing.T, c redis.Conn, cmd string, args ...interface{}) {
	t.Helper()
	if _, err := c.Do(cmd, args...); err != nil {
		t.Fatalf("%s %v: %v", cmd, args, err)
	}
}

// TestApplyRefusesForeignKeys plants, one at a time, a key of the wrong
// type (or a totals field that is not a number) where the second of two
// batches writes, and checks that the batch is refused with the key named
// and nothing of it written; then repairs the key and checks that the batch
// applies exactly as it would have without the foreign key.
func TestApplyRefusesForeignKeys(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	c0, c1 := srv.Conn(0), srv.Conn(1)
	lock := stats.LockKey("q")

	first := stats.NewBatch()
	first.Add(at("2026-11-27T10:00:00Z"), []byte("h"), []byte("root"), []byte("1.2.3.4"))
	second := stats.NewBatch()
	second.Add(at("2026-11-28T10:00:00Z"), []byte("h"), []byte("admin"), []byte("5.6.7.8"))
	second.Add(at("2026-11-28T11:00:00Z"), []byte("h2"), []byte("root"), []byte("1.2.3.4"))
	rec := func(id string) *stats.Applied {
		return &stats.Applied{Queue: "q", Slot: 0, ID: id, LockKey: lock, Token: "tok"}
	}
	setup := func() {
		do(t, c0, "FLUSHALL")
		do(t, c0, "SET", lock, "tok")
		if err := s.Apply(ctx, first, rec("one")); err != nil {
			t.Fatal(err)
		}
	}
	setup()
	if err := s.Apply(ctx, second, rec("two")); err != nil {
		t.Fatal(err)
	}
	want := dumpAll(t, srv)

	cases := []struct {
		db         int
		key        string
		plant      []interface{} // command that writes the foreign value
		typ, field string
	}{
		{1, "20261128:statssrc", []interface{}{"SET", "20261128:statssrc", "garbage"}, "string", ""},
		{1, "202611:statsusername", []interface{}{"LPUSH", "202611:statsusername", "x"}, "list", ""},
		{1, "2026:statshost", []interface{}{"HSET", "2026:statshost", "f", "v"}, "hash", ""},
		{1, "toupdate:daily", []interface{}{"SET", "toupdate:daily", "x"}, "string", ""},
		{1, "toupdate:yearly", []interface{}{"ZADD", "toupdate:yearly", 1, "x"}, "zset", ""},
		{1, "oldest", []interface{}{"HSET", "oldest", "f", "v"}, "hash", ""},
		{1, "newest", []interface{}{"RPUSH", "newest", "x"}, "list", ""},
		{1, stats.NewestLineKey, []interface{}{"HSET", stats.NewestLineKey, "f", "v"}, "hash", ""},
		{1, stats.TotalsKey, []interface{}{"SET", stats.TotalsKey, "x"}, "string", ""},
		{1, stats.FirstSeenKey(stats.KindSrc), []interface{}{"SADD", stats.FirstSeenKey(stats.KindSrc), "x"}, "set", ""},
		{1, stats.LinksKeyOf("20261128", stats.KindSrc, "5.6.7.8"), []interface{}{"ZADD", stats.LinksKeyOf("20261128", stats.KindSrc, "5.6.7.8"), 1, "x"}, "zset", ""},
		{1, stats.TotalsKey, []interface{}{"HSET", stats.TotalsKey, "202611", "many"}, "hash", "202611"},
		{1, stats.TotalsKey, []interface{}{"HSET", stats.TotalsKey, "2026", "9223372036854775806"}, "hash", "2026"},
		{1, stats.TotalsKey, []interface{}{"HSET", stats.TotalsKey, "20261128", "007"}, "hash", "20261128"},
		{0, stats.AttemptsKey("20261128"), []interface{}{"SET", stats.AttemptsKey("20261128"), "x"}, "string", ""},
		{0, stats.AppliedKey("q", 0), []interface{}{"HSET", stats.AppliedKey("q", 0), "f", "v"}, "hash", ""},
		{0, lock, []interface{}{"SADD", lock, "tok"}, "set", ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d/%s/%s", tc.db, tc.key, tc.plant[0]), func(t *testing.T) {
			setup()
			c := c1
			if tc.db == 0 {
				c = c0
			}
			// Keep what the first batch wrote there, to put it back as the
			// repair; a field is planted into the real hash.
			if tc.field == "" {
				if n, _ := redis.Int(c.Do("EXISTS", tc.key)); n == 1 {
					do(t, c, "RENAME", tc.key, "saved")
				}
			} else {
				do(t, c, "COPY", tc.key, "saved")
			}
			do(t, c, tc.plant[0].(string), tc.plant[1:]...)
			planted := dumpAll(t, srv)

			err := s.Apply(ctx, second, rec("two"))
			var fe *stats.ForeignKeyError
			if !errors.As(err, &fe) {
				t.Fatalf("Apply = %v, want a *ForeignKeyError", err)
			}
			if fe.DB != tc.db || fe.Key != tc.key || fe.Type != tc.typ || fe.Field != tc.field {
				t.Fatalf("ForeignKeyError = %+v, want DB %d key %s type %s field %q", *fe, tc.db, tc.key, tc.typ, tc.field)
			}
			msg := err.Error()
			parts := []string{tc.key, tc.typ, "rename or delete", "redis-cli -n " + fmt.Sprint(tc.db)}
			if tc.field != "" {
				parts = []string{tc.key, tc.field, "HDEL", "redis-cli -n " + fmt.Sprint(tc.db)}
			}
			for _, part := range parts {
				if !strings.Contains(msg, part) {
					t.Errorf("message %q does not name %q", msg, part)
				}
			}
			if d := diff(planted, dumpAll(t, srv)); len(d) > 0 {
				t.Fatalf("a refused batch wrote:\n%s", strings.Join(d, "\n"))
			}

			do(t, c, "DEL", tc.key)
			if n, _ := redis.Int(c.Do("EXISTS", "saved")); n == 1 {
				do(t, c, "RENAME", "saved", tc.key)
			}
			if err := s.Apply(ctx, second, rec("two")); err != nil {
				t.Fatalf("Apply after the repair: %v", err)
			}
			if d := diff(want, dumpAll(t, srv)); len(d) > 0 {
				t.Fatalf("after the repair the batch applied differently:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// TestApplyKeepsItsConnectionOnDB0 checks that the script's SELECTs do
// not leak into the pooled connection it ran on.
func TestApplyKeepsItsConnectionOnDB0(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := pool(srv.Addr(), 0)
	p.MaxActive, p.MaxIdle = 1, 1
	s := &stats.Store{Stats: pool(srv.Addr(), 1), Attempts: p}
	t.Cleanup(func() { s.Stats.Close(); s.Attempts.Close() })
	b := stats.NewBatch()
	b.Add(at("2026-11-25T10:00:00Z"), []byte("h"), []byte("u"), []byte("s"))
	if err := s.Apply(context.Background(), b, &stats.Applied{Queue: "q", Slot: 1, ID: "x"}); err != nil {
		t.Fatal(err)
	}
	conn := p.Get()
	defer conn.Close()
	n, err := redis.Int(conn.Do("EXISTS", stats.AppliedKey("q", 1)))
	if err != nil || n != 1 {
		t.Fatalf("the connection Apply used is not on DB 0 any more (EXISTS = %d, %v)", n, err)
	}
}

// TestApplyLargeBatch goes past the chunk size of the script's bulk writes
// (1000 arguments): every member must arrive once.
func TestApplyLargeBatch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	b := stats.NewBatch()
	const n = 2501
	for i := 0; i < n; i++ {
		b.Add(at("2026-11-25T10:00:00Z"), []byte("h"), []byte(fmt.Sprint("user", i)), []byte("s"))
	}
	if err := s.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	c1 := srv.Conn(1)
	for _, k := range []string{"20261125:statsusername", "2026:statsusername", stats.FirstSeenKey(stats.KindUser)} {
		if got, _ := redis.Int(c1.Do("ZCARD", k)); got != n {
			t.Errorf("%s holds %d members, want %d", k, got, n)
		}
	}
	if got, _ := redis.Int(c1.Do("ZSCORE", stats.FirstSeenKey(stats.KindUser), "user2500")); got != 20261125 {
		t.Errorf("first seen of the last member = %d", got)
	}
	if got, _ := redis.Int(c1.Do("ZSCORE", "20261125:statssrc", "s")); got != n {
		t.Errorf("source counted %d times, want %d", got, n)
	}
}

// A batch that would take a drill-down string past its limit is refused
// whole, and applies once drill-down data is off.
func TestApplyRefusesAFullDrillDownString(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv)
	ctx := context.Background()
	day := at("2026-11-27T10:00:00Z")
	first := stats.NewBatch()
	first.Add(day, []byte("h"), []byte("root"), []byte("1.2.3.4"))
	if err := s.Apply(ctx, first, nil); err != nil {
		t.Fatal(err)
	}
	// The host's string holds one chunk now; the limit leaves room for
	// no second one.
	hostKey := stats.LinksKeyOf("20261127", stats.KindHost, "h")
	held, err := redis.Int(srv.Conn(1).Do("STRLEN", hostKey))
	if err != nil || held == 0 {
		t.Fatalf("STRLEN %s = %d, %v", hostKey, held, err)
	}
	s.LinkBytesMax = held + 10
	before := dumpAll(t, srv)
	second := stats.NewBatch()
	second.Add(day, []byte("h"), []byte("admin"), []byte("5.6.7.8"))
	err = s.Apply(ctx, second, nil)
	var full *stats.DrillFullError
	if !errors.As(err, &full) || !strings.HasPrefix(full.Key, "alog:links:20261127:") || full.Limit != int64(held+10) || full.Bytes+full.Adding <= full.Limit {
		t.Fatalf("Apply = %v; want a *DrillFullError naming a string of the day past %d bytes", err, held+10)
	}
	if n, _ := redis.Int64(srv.Conn(1).Do("STRLEN", full.Key)); n != full.Bytes {
		t.Errorf("%s holds %d bytes; the error says %d", full.Key, n, full.Bytes)
	}
	for _, part := range []string{full.Key, fmt.Sprint(held + 10), "drilldown = false", "nothing was counted"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("message %q does not say %q", err, part)
		}
	}
	if d := diff(before, dumpAll(t, srv)); len(d) > 0 {
		t.Fatalf("a refused batch wrote: %v", d)
	}
	s.NoDrill = true
	if err := s.Apply(ctx, second, nil); err != nil {
		t.Fatalf("without drill-down data: %v", err)
	}
}
