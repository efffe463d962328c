package api

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/geoip"
	"github.com/D4-project/analyzer-d4-log/internal/geoip/geoiptest"
	"github.com/D4-project/analyzer-d4-log/internal/ingest"
	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// derivedWorld is what geoiptest.Sample says of each source, written out
// by hand so that the expected answers do not come from the code under
// test: source → {country, asn}.
var derivedWorld = map[string][2]string{
	"1.2.3.4":             {"AU", "AS13335"},
	"1.2.3.200":           {"AU", "AS13335"},
	"::ffff:1.2.3.9":      {"AU", "AS13335"},
	"81.2.69.160":         {"GB", "AS20712"},
	"89.160.20.1":         {"SE", "AS29518"},
	"2a02:cf40::1":        {"NO", "AS29695"},
	"2001:480::9":         {"US", "AS668"},
	"5.6.7.8":             {"??", "AS64512"},
	"8.8.8.8":             {"US", "AS0"},
	"10.0.0.1":            {"??", "AS0"},
	"2001:db8::7":         {"??", "AS0"},
	"scanner.example.net": {"??", "AS0"},
}

// serve starts the API over st with the kinds of set.
func serve(t *testing.T, st *stats.Store, now time.Time, set kinds.Set) *httptest.Server {
	t.Helper()
	a, err := New(Options{Store: st, Location: time.UTC, Now: func() time.Time { return now }, Kinds: set})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

// TestDerivedKindsEqualIndependentCount counts attempts with both
// databases on, then asks top and drill over country and asn, from and
// to the other kinds, over random ranges, and compares with the test's
// own count; then rebuilds DB 1 from the stored attempts (-F) and asks
// again, so that the rebuild is shown to make the drill-down data of the
// derived kinds too.
func TestDerivedKindsEqualIndependentCount(t *testing.T) {
	dir := t.TempDir()
	cPath, aPath := filepath.Join(dir, "country.mmdb"), filepath.Join(dir, "asn.mmdb")
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
	enricher := ingest.NewEnricher(dbs)
	if enricher == nil {
		t.Fatal("no enricher with both databases")
	}

	rs := redistest.Start(t, redistest.Options{})
	st := &stats.Store{Stats: pool(rs.Addr(), stats.StatsDB), Attempts: pool(rs.Addr(), stats.AttemptsDB)}
	t.Cleanup(func() { st.Stats.Close(); st.Attempts.Close() })
	f := &fixture{store: st}
	y, m, d := time.Now().UTC().Date()
	f.now = time.Date(y, m, d, 15, 0, 0, 0, time.UTC)
	const span = 400
	f.first = time.Date(y, m, d-span+1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewSource(3))
	srcs := make([]string, 0, len(derivedWorld))
	for s := range derivedWorld {
		srcs = append(srcs, s)
	}
	slices.Sort(srcs)
	users := []string{"root", "admin", "oracle", "a:b", "\xff\xfe", "<b>x</b>"}
	hosts := []string{"host0", "host1"}
	b := stats.NewBatch()
	b.SetEnricher(enricher)
	for i := 0; i < 3000; i++ {
		day := r.Intn(span)
		if i%10 == 0 {
			day = span - 1 - r.Intn(2) // today and yesterday: live days
		}
		ts := f.first.AddDate(0, 0, day).Add(time.Duration(r.Intn(86400)) * time.Second)
		src := srcs[r.Intn(len(srcs))]
		a := attempt{t: ts, user: users[r.Intn(len(users))], src: src, host: hosts[r.Intn(len(hosts))],
			country: derivedWorld[src][0], asn: derivedWorld[src][1]}
		f.lines = append(f.lines, a)
		b.Add(ts, []byte(a.host), []byte(a.user), []byte(a.src))
		if b.Len() == 400 {
			if err := st.Apply(context.Background(), b, nil); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := st.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}

	set := kinds.Active(kinds.Country, kinds.ASN)
	askAll := func(srv *httptest.Server, seed int64) {
		t.Helper()
		r := rand.New(rand.NewSource(seed))
		names := set.Names()
		pairs := [][2]string{
			{kinds.Src, kinds.Country}, {kinds.Country, kinds.User}, {kinds.ASN, kinds.Src},
			{kinds.User, kinds.ASN}, {kinds.Country, kinds.ASN}, {kinds.Host, kinds.Country},
		}
		for i := 0; i < 30; i++ {
			from, to := f.randomRange(r)
			if from.After(to) {
				from, to = to, from // a range "from after today to today"
			}
			rng := "&from=" + dayName(from) + "&to=" + dayName(to)
			for _, kind := range []string{kinds.Country, kinds.ASN} {
				want, attempts := f.expected(kind, "", "", from, to)
				code, body := get(t, srv.URL+"/api/v1/top?kind="+kind+rng+"&limit=1000")
				if code != 200 {
					t.Fatalf("top %s %s: %d %s", kind, rng, code, body)
				}
				f.check(t, "top "+kind+rng, body, want, attempts, int64(len(want)))
			}
			pair := pairs[i%len(pairs)]
			if i >= len(pairs) {
				// Past every listed pair once, any two kinds of the set.
				k := r.Intn(len(names))
				pair = [2]string{names[k], names[(k+1+r.Intn(len(names)-1))%len(names)]}
			}
			kind, of := pair[0], pair[1]
			values, _ := f.expected(kind, "", "", from, to)
			value := "never seen"
			if len(values) > 0 {
				value = values[r.Intn(len(values))].Member
			}
			want, attempts := f.expected(of, kind, value, from, to)
			code, body := get(t, srv.URL+"/api/v1/drill?kind="+kind+"&of="+of+"&"+valueParam(r, value)+rng+"&limit=1000")
			if code != 200 {
				t.Fatalf("drill %s %q of %s %s: %d %s", kind, value, of, rng, code, body)
			}
			var g gotRanking
			if err := json.Unmarshal(body, &g); err != nil {
				t.Fatal(err)
			}
			if g.Kind != kind || g.Of != of {
				t.Errorf("drill answers kind %q of %q, want %q %q", g.Kind, g.Of, kind, of)
			}
			f.check(t, fmt.Sprintf("drill %s %q of %s%s", kind, value, of, rng), body, want, attempts, int64(len(want)))
		}
	}

	// A range over every day, so that no random draw leaves a kind unasked.
	all := "&from=" + dayName(f.first) + "&to=" + dayName(f.now)
	srv := serve(t, st, f.now, set)
	want, attempts := f.expected(kinds.Country, kinds.Src, "81.2.69.160", f.first, f.now)
	if len(want) != 1 || want[0].Member != "GB" {
		t.Fatalf("the test's own count of 81.2.69.160's countries is %v", want)
	}
	code, body := get(t, srv.URL+"/api/v1/drill?kind=src&of=country&value=81.2.69.160"+all)
	if code != 200 {
		t.Fatalf("drill src of country: %d %s", code, body)
	}
	f.check(t, "drill src 81.2.69.160 of country", body, want, attempts, 1)
	askAll(srv, 4)

	// -F: DB 1 dropped and recounted from DB 0 with the enricher. A new
	// API, since the cache's totals are the same after a rebuild.
	if _, err := st.RebuildWith(context.Background(), stats.RebuildOptions{Location: time.UTC, Enricher: enricher}); err != nil {
		t.Fatal(err)
	}
	askAll(serve(t, st, f.now, set), 5)

	// A rebuild without the enricher leaves no derived kind behind, in the
	// drill-down data either: what went with a source is its user names
	// and hosts only.
	if _, err := st.RebuildWith(context.Background(), stats.RebuildOptions{Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	code, body = get(t, serve(t, st, f.now, set).URL+"/api/v1/drill?kind=src&of=country&value=81.2.69.160"+all)
	if code != 200 {
		t.Fatalf("drill after a rebuild without databases: %d %s", code, body)
	}
	f.check(t, "drill src of country after a rebuild without databases", body, nil, 0, 0)
}

// TestDerivedKindsRefusedWithoutDatabases: a daemon without the databases
// (the zero Set) refuses country and asn as kind and as of, naming the
// kinds it does answer, while one with them lists them.
func TestDerivedKindsRefusedWithoutDatabases(t *testing.T) {
	rs := redistest.Start(t, redistest.Options{})
	st := &stats.Store{Stats: pool(rs.Addr(), stats.StatsDB), Attempts: pool(rs.Addr(), stats.AttemptsDB)}
	t.Cleanup(func() { st.Stats.Close(); st.Attempts.Close() })
	now := time.Now().UTC()
	day := dayName(now)
	rng := "&from=" + day + "&to=" + day
	plain := serve(t, st, now, kinds.Set{})
	for _, q := range []string{
		"top?kind=country", "top?kind=asn", "series?kind=country&value=DE",
		"drill?kind=country&of=src&value=DE", "drill?kind=src&of=asn&value=1.2.3.4",
	} {
		code, body := get(t, plain.URL+"/api/v1/"+q+rng)
		if code != 400 {
			t.Errorf("%s without databases: %d %s, want 400", q, code, body)
		}
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(e.Error, "is not a kind; want one of username, src, host") || strings.Contains(e.Error, "country,") {
			t.Errorf("%s: error %q does not list the three kinds only", q, e.Error)
		}
	}
	if code, body := get(t, plain.URL+"/api/v1/top?kind=src"+rng); code != 200 {
		t.Errorf("top src without databases: %d %s", code, body)
	}

	// With only the AS database, asn is a question and country is not.
	asnOnly := serve(t, st, now, kinds.Active(kinds.ASN))
	if code, body := get(t, asnOnly.URL+"/api/v1/top?kind=asn"+rng); code != 200 {
		t.Errorf("top asn with the AS database: %d %s", code, body)
	}
	code, body := get(t, asnOnly.URL+"/api/v1/drill?kind=asn&of=country&value=AS1"+rng)
	if code != 400 || !strings.Contains(string(body), "want one of username, src, host, asn other than kind") {
		t.Errorf("of=country with the AS database only: %d %s", code, body)
	}
}
