package ingest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/d4queue"
	"github.com/D4-project/analyzer-d4-log/internal/geoip"
	"github.com/D4-project/analyzer-d4-log/internal/geoip/geoiptest"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// world is what the test's databases say, written out by hand so that the
// expected counts do not come from the code under test.
type world map[string][2]string // source → {country, asn}

var oldWorld = world{
	"1.2.3.4":                 {"AU", "AS13335"},
	"1.2.3.200":               {"AU", "AS13335"},
	"::ffff:1.2.3.9":          {"AU", "AS13335"},
	"81.2.69.160":             {"GB", "AS20712"},
	"2a02:cf40::1":            {"NO", "AS29695"},
	"2a02:cf47:1:2::3":        {"NO", "AS29695"},
	"5.6.7.8":                 {"??", "AS64512"},
	"8.8.8.8":                 {"US", "AS0"},
	"10.0.0.1":                {"??", "AS0"},
	"2001:db8::7":             {"??", "AS0"},
	"9.9.9.9":                 {"??", "AS0"},
	"scanner.example.net":     {"??", "AS0"},
	"1.2.3.4.bad.example.org": {"??", "AS0"},
}

// newWorld is after the monthly update: 1.2.0.0/16 moved to France.
var newNets = []geoiptest.Network{
	{CIDR: "1.2.0.0/16", Country: "FR", CountryName: "France", ASN: 3215, Org: "Orange"},
	{CIDR: "2a02:cf40::/29", Country: "SE", CountryName: "Sweden", ASN: 1257, Org: "Tele2"},
}

var newWorld = world{
	"1.2.3.4": {"FR", "AS3215"}, "1.2.3.200": {"FR", "AS3215"}, "::ffff:1.2.3.9": {"FR", "AS3215"},
	"81.2.69.160": {"??", "AS0"}, "2a02:cf40::1": {"SE", "AS1257"}, "2a02:cf47:1:2::3": {"SE", "AS1257"},
	"5.6.7.8": {"??", "AS0"}, "8.8.8.8": {"??", "AS0"}, "10.0.0.1": {"??", "AS0"}, "2001:db8::7": {"??", "AS0"},
	"9.9.9.9": {"??", "AS0"}, "scanner.example.net": {"??", "AS0"}, "1.2.3.4.bad.example.org": {"??", "AS0"},
}

// expected counts per stats key: key → member → count.
type expected map[string]map[string]int64

func (e expected) add(day time.Time, w world, src string) {
	ans := w[src]
	d := day.Format("20060102")
	for _, p := range []string{d, d[:6], d[:4]} {
		for i, kind := range []string{"country", "asn"} {
			k := p + ":stats" + kind
			if e[k] == nil {
				e[k] = map[string]int64{}
			}
			e[k][ans[i]]++
		}
	}
}

func line(day time.Time, i int, src string) string {
	return fmt.Sprintf("%s h%d sshd[%d]: Invalid user u%d from %s", day.Format(time.RFC3339), i%3, i, i%7, src)
}

// derivedKeys reads every statscountry and statsasn key of DB 1.
func derivedKeys(t *testing.T, conn redis.Conn) expected {
	t.Helper()
	got := expected{}
	for _, pat := range []string{"*:statscountry", "*:statsasn"} {
		keys, err := redis.Strings(conn.Do("KEYS", pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			m, err := redis.Int64Map(conn.Do("ZRANGE", k, 0, -1, "WITHSCORES"))
			if err != nil {
				t.Fatal(err)
			}
			got[k] = m
		}
	}
	return got
}

func compare(t *testing.T, got, want expected) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d derived keys, want %d: got %v want %v", len(got), len(want), got, want)
	}
	for k, wm := range want {
		gm := got[k]
		if len(gm) != len(wm) {
			t.Errorf("%s: %v, want %v", k, gm, wm)
			continue
		}
		for m, n := range wm {
			if gm[m] != n {
				t.Errorf("%s %q: %d, want %d", k, m, gm[m], n)
			}
		}
	}
}

func waitTotal(t *testing.T, conn redis.Conn, day string, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := redis.Int64(conn.Do("HGET", stats.TotalsKey, day))
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("day %s: %d counted, want %d", day, got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDerivedKindsCountedAndFollowReplacedFiles counts lines of several
// days with sources inside and outside the networks (IPv4, IPv6, mapped,
// host names) and compares every statscountry and statsasn key of every
// period with the test's own computation; then it replaces both files
// while lines flow, and checks that no line is lost and that lines sent
// once the switch is seen count under the new answers.
func TestDerivedKindsCountedAndFollowReplacedFiles(t *testing.T) {
	d4 := redistest.Start(t, redistest.Options{})
	cnt := redistest.Start(t, redistest.Options{})
	in, store, _ := newTestIngester(t, d4.Addr(), cnt.Addr())
	dir := t.TempDir()
	cPath, aPath := filepath.Join(dir, "GeoLite2-Country.mmdb"), filepath.Join(dir, "GeoLite2-ASN.mmdb")
	if err := geoiptest.Write(cPath, geoiptest.GeoLite2Country, geoiptest.Sample()); err != nil {
		t.Fatal(err)
	}
	if err := geoiptest.Write(aPath, geoiptest.GeoLite2ASN, geoiptest.Sample()); err != nil {
		t.Fatal(err)
	}
	dbs, err := geoip.Open(cPath, aPath, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dbs.CheckEvery = 20 * time.Millisecond
	in.o.GeoIP = dbs
	in.o.Workers = 2
	in.o.Linger = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Workers(nil).Run(ctx) }()
	defer func() { cancel(); <-done }()

	raw := d4.Conn(2)
	defer raw.Close()
	statsConn := cnt.Conn(stats.StatsDB)
	defer statsConn.Close()
	push := func(l string) {
		if _, err := raw.Do("LPUSH", d4queue.QueueKey(queue), l); err != nil {
			t.Fatal(err)
		}
	}
	srcs := make([]string, 0, len(oldWorld))
	for s := range oldWorld {
		srcs = append(srcs, s)
	}
	now := time.Now().UTC().Truncate(time.Second)
	// Three days, across a month and a year boundary when the calendar
	// puts one there, and always across days.
	days := []time.Time{now.AddDate(0, 0, -40), now.AddDate(0, 0, -1), now.Add(-time.Hour)}
	want := expected{}
	total := map[string]int64{}
	for i := 0; i < 600; i++ {
		day := days[i%len(days)]
		src := srcs[(i*7)%len(srcs)]
		push(line(day, i, src))
		want.add(day, oldWorld, src)
		total[day.Format("20060102")]++
	}
	for d, n := range total {
		waitTotal(t, statsConn, d, n)
	}
	compare(t, derivedKeys(t, statsConn), want)
	names, err := redis.StringMap(statsConn.Do("HGETALL", stats.NamesKey("asn")))
	if err != nil {
		t.Fatal(err)
	}
	if names["AS20712"] != geoiptest.Sample()[1].Org || names["AS13335"] != "Cloudflare, Inc." || names["AS0"] != "" {
		t.Errorf("AS names: %q", names)
	}
	cnames, _ := redis.StringMap(statsConn.Do("HGETALL", stats.NamesKey("country")))
	if cnames["GB"] != "United Kingdom" || cnames["??"] != "" {
		t.Errorf("country names: %q", cnames)
	}
	for _, k := range []string{"country", "asn"} {
		if n, _ := redis.Int(statsConn.Do("ZCARD", stats.FirstSeenKey(k))); n == 0 {
			t.Errorf("no first-seen values of %s", k)
		}
		if ok, _ := redis.Bool(statsConn.Do("SISMEMBER", stats.ToUpdateKey(stats.Yearly), stats.StatsKey(days[2].Format("2006"), k))); !ok {
			t.Errorf("the yearly %s key is not in toupdate", k)
		}
	}

	// Replace both files while lines of a fourth day flow.
	flowDay := now.AddDate(0, 0, -2)
	stop := make(chan struct{})
	flowed := make(chan int)
	go func() {
		n := 0
		defer func() { flowed <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := raw.Do("LPUSH", d4queue.QueueKey(queue), line(flowDay, n, "1.2.3.4")); err != nil {
				return
			}
			n++
			if n%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	if err := geoiptest.Write(cPath, geoiptest.GeoLite2Country, newNets); err != nil {
		t.Fatal(err)
	}
	if err := geoiptest.Write(aPath, geoiptest.GeoLite2ASN, newNets); err != nil {
		t.Fatal(err)
	}
	// The switch is seen by the workers' own checks; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for dbs.Snapshot().Lookup([]byte("2a02:cf40::1")).ASN != "AS1257" {
		if time.Now().After(deadline) {
			t.Fatal("the replaced files were never switched to")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	n := <-flowed
	fd := flowDay.Format("20060102")
	waitTotal(t, statsConn, fd, int64(n))
	// Every flowing line counted once, under the old answer or the new.
	for _, k := range []string{"country", "asn"} {
		m, _ := redis.Int64Map(statsConn.Do("ZRANGE", stats.StatsKey(fd, k), 0, -1, "WITHSCORES"))
		old, nw := oldWorld["1.2.3.4"], newWorld["1.2.3.4"]
		i := 0
		if k == "asn" {
			i = 1
		}
		if m[old[i]]+m[nw[i]] != int64(n) || len(m) > 2 {
			t.Errorf("%s of the flowing day: %v, want %d lines between %s and %s", k, m, n, old[i], nw[i])
		}
	}

	// Lines sent after the switch: the new answers only.
	after := now.AddDate(0, 0, -3)
	want2 := expected{}
	for i, src := range srcs {
		for j := 0; j < 3; j++ {
			push(line(after, i*3+j, src))
			want2.add(after, newWorld, src)
		}
	}
	ad := after.Format("20060102")
	waitTotal(t, statsConn, ad, int64(3*len(srcs)))
	got := derivedKeys(t, statsConn)
	for _, k := range []string{ad + ":statscountry", ad + ":statsasn"} {
		compare(t, expected{k: got[k]}, expected{k: want2[k]})
	}
	if org, _ := redis.String(statsConn.Do("HGET", stats.NamesKey("asn"), "AS1257")); org != "Tele2" {
		t.Errorf("name of AS1257 = %q", org)
	}

	// -F recounts every stored attempt with the databases of now.
	all := expected{}
	for i := 0; i < 600; i++ {
		all.add(days[i%len(days)], newWorld, srcs[(i*7)%len(srcs)])
	}
	for i := 0; i < n; i++ {
		all.add(flowDay, newWorld, "1.2.3.4")
	}
	for _, src := range srcs {
		for j := 0; j < 3; j++ {
			all.add(after, newWorld, src)
		}
	}
	cancel()
	<-done
	done <- nil
	res, err := store.RebuildWith(context.Background(), stats.RebuildOptions{Location: time.UTC, Enricher: NewEnricher(dbs)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != int64(600+n+3*len(srcs)) {
		t.Errorf("rebuild counted %d attempts", res.Attempts)
	}
	compare(t, derivedKeys(t, statsConn), all)
	if org, _ := redis.String(statsConn.Do("HGET", stats.NamesKey("asn"), "AS3215")); org != "Orange" {
		t.Errorf("name of AS3215 after -F = %q", org)
	}
}
