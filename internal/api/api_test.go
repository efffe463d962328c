package api

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

func pool(addr string, db int) *redis.Pool {
	return &redis.Pool{
		Dial: func() (redis.Conn, error) {
			return redis.Dial("tcp", addr, redis.DialDatabase(db), redis.DialReadTimeout(10*time.Second))
		},
		MaxActive: Connections() + 2, MaxIdle: Connections() + 2, Wait: true,
	}
}

// attempt is one line of the test's own, kept to compute the answers
// independently of the counting Redis.
type attempt struct {
	t               time.Time
	user, src, host string
	// country and asn are what the test's own world says of src, for the
	// derived kinds (derived_test.go).
	country, asn string
}

func (a attempt) of(kind string) string {
	switch kind {
	case kinds.User:
		return a.user
	case kinds.Src:
		return a.src
	case kinds.Country:
		return a.country
	case kinds.ASN:
		return a.asn
	}
	return a.host
}

// hostile values: markup, separators the keys use, control bytes,
// invalid UTF-8, empty.
var hostile = []string{
	"", "root", "admin", "a:b", "src:1.2.3.4", "alog:drill:x", "\xff\xfe", "caf\xe9", "<script>alert(1)</script>",
	"=cmd|' /C calc'!A0", "line\nbreak", "tab\there", "\x00nul", "\u202eevil", "quote\"d", "a,b", "日本",
}

func randValue(r *rand.Rand, pool []string) string {
	if r.Intn(3) == 0 {
		return hostile[r.Intn(len(hostile))]
	}
	return pool[r.Intn(len(pool))]
}

type fixture struct {
	srv      *httptest.Server
	store    *stats.Store
	lines    []attempt
	now      time.Time
	first    time.Time // first day with data
	computes atomic.Int64
}

// countingStore counts the reads that compute a ranking, to tell cached
// answers from computed ones.
type countingStore struct {
	*stats.Store
	n *atomic.Int64
}

func (c countingStore) ReadSets(ctx context.Context, keys []string, live func(string) bool, size func(int64), fn func(string, [][]byte, []int64) error) error {
	c.n.Add(1)
	return c.Store.ReadSets(ctx, keys, live, size, fn)
}

// newFixture counts n random attempts over the days before now (crossing
// at least two year boundaries, today and yesterday included) and serves
// the API over them.
func newFixture(t *testing.T, n int, noDrill bool) *fixture {
	t.Helper()
	rs := redistest.Start(t, redistest.Options{})
	st := &stats.Store{Stats: pool(rs.Addr(), stats.StatsDB), Attempts: pool(rs.Addr(), stats.AttemptsDB), NoDrill: noDrill}
	t.Cleanup(func() { st.Stats.Close(); st.Attempts.Close() })
	f := &fixture{store: st}
	y, m, d := time.Now().UTC().Date()
	f.now = time.Date(y, m, d, 15, 0, 0, 0, time.UTC)
	span := 800
	f.first = time.Date(y, m, d-span+1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewSource(1))
	var users, srcs, hosts []string
	for i := 0; i < 40; i++ {
		users = append(users, fmt.Sprintf("user%d", i))
		srcs = append(srcs, fmt.Sprintf("198.51.100.%d", i))
	}
	for i := 0; i < 4; i++ {
		hosts = append(hosts, fmt.Sprintf("host%d", i))
	}
	b := stats.NewBatch()
	for i := 0; i < n; i++ {
		day := r.Intn(span)
		if i%10 == 0 {
			day = span - 1 - r.Intn(2) // today and yesterday: live days
		}
		ts := f.first.AddDate(0, 0, day).Add(time.Duration(r.Intn(86400)) * time.Second)
		a := attempt{t: ts, user: randValue(r, users), src: randValue(r, srcs), host: randValue(r, hosts)}
		f.lines = append(f.lines, a)
		b.Add(ts, []byte(a.host), []byte(a.user), []byte(a.src))
		if b.Len() == 500 {
			if err := st.Apply(context.Background(), b, nil); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := st.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{
		Store: countingStore{st, &f.computes}, Location: time.UTC,
		Now: func() time.Time { return f.now }, NoDrill: noDrill,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(a)
	t.Cleanup(f.srv.Close)
	return f
}

// expected computes the ranking from the test's own lines: the values of
// kind (of the lines whose `kind` value is value, for drill).
func (f *fixture) expected(kind, drillKind, value string, from, to time.Time) (entries []stats.Entry, attempts int64) {
	sum := map[string]int64{}
	for _, l := range f.lines {
		d := time.Date(l.t.Year(), l.t.Month(), l.t.Day(), 0, 0, 0, 0, time.UTC)
		if d.Before(from) || d.After(to) {
			continue
		}
		if drillKind != "" && l.of(drillKind) != value {
			continue
		}
		sum[l.of(kind)]++
		attempts++
	}
	for v, c := range sum {
		entries = append(entries, stats.Entry{Member: v, Count: c})
	}
	slices.SortFunc(entries, func(a, b stats.Entry) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Member, b.Member)
	})
	return entries, attempts
}

type gotRanking struct {
	Kind, Of, Value, From, To string
	ValueB64                  string `json:"value_b64"`
	Attempts, Distinct        int64
	Top                       []struct {
		Value    string `json:"value"`
		ValueB64 string `json:"value_b64"`
		Count    int64  `json:"count"`
	}
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// valueParam names v the way a client must: value_b64 for invalid UTF-8.
func valueParam(r *rand.Rand, v string) string {
	if !utf8.ValidString(v) || r.Intn(2) == 0 {
		return "value_b64=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(v)))
	}
	return "value=" + url.QueryEscape(v)
}

func rawValue(t *testing.T, value, b64 string) string {
	if b64 == "" {
		if !utf8.ValidString(value) {
			t.Errorf("value %q is not valid UTF-8 and has no value_b64", value)
		}
		return value
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("value_b64 %q: %v", b64, err)
	}
	if jsonForm(string(raw)) != value {
		t.Errorf("value %q is not the U+FFFD form of %q", value, raw)
	}
	return string(raw)
}

// jsonForm is what encoding/json makes of invalid UTF-8: U+FFFD for each
// byte that is not part of a valid sequence.
func jsonForm(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// randomRange picks ranges of every shape: single days, whole years,
// whole months, ranges crossing months and years, ranges reaching today,
// ranges starting before any data.
func (f *fixture) randomRange(r *rand.Rand) (time.Time, time.Time) {
	today := time.Date(f.now.Year(), f.now.Month(), f.now.Day(), 0, 0, 0, 0, time.UTC)
	span := int(today.Sub(f.first)/(24*time.Hour)) + 1
	pick := func() time.Time { return f.first.AddDate(0, 0, r.Intn(span+20)-10) }
	switch r.Intn(6) {
	case 0:
		d := pick()
		return d, d
	case 1:
		y := f.first.Year() + r.Intn(today.Year()-f.first.Year()+1)
		return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)
	case 2:
		d := pick()
		s := time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
		return s, s.AddDate(0, 1+r.Intn(3), -1)
	case 3:
		return pick(), today
	}
	a, b := pick(), pick()
	if b.Before(a) {
		a, b = b, a
	}
	return a, b
}

func TestAnswersEqualIndependentCount(t *testing.T) {
	f := newFixture(t, 6000, false)
	r := rand.New(rand.NewSource(2))
	names := kinds.Names()
	for i := 0; i < 120; i++ {
		from, to := f.randomRange(r)
		kind := names[r.Intn(len(names))]
		rng := "&from=" + dayName(from) + "&to=" + dayName(to)

		// top, JSON with a limit, then CSV of the whole ranking.
		want, attempts := f.expected(kind, "", "", from, to)
		limit := 1 + r.Intn(60)
		code, body := get(t, f.srv.URL+"/api/v1/top?kind="+kind+rng+fmt.Sprintf("&limit=%d", limit))
		if code != 200 {
			t.Fatalf("top %s %s: %d %s", kind, rng, code, body)
		}
		f.check(t, "top "+kind+rng, body, want[:min(limit, len(want))], attempts, int64(len(want)))
		if i%4 == 0 {
			f.checkCSV(t, f.srv.URL+"/api/v1/top?format=csv&kind="+kind+rng, want)
		}

		// drill from a value that exists in the range (or, once in a
		// while, one never seen), to another kind.
		of := names[(slices.Index(names, kind)+1+r.Intn(len(names)-1))%len(names)]
		value := "never seen \xff"
		if len(want) > 0 && r.Intn(8) != 0 {
			value = want[r.Intn(len(want))].Member
		}
		dwant, dattempts := f.expected(of, kind, value, from, to)
		code, body = get(t, f.srv.URL+"/api/v1/drill?kind="+kind+"&of="+of+"&"+valueParam(r, value)+rng+"&limit=1000")
		if code != 200 {
			t.Fatalf("drill %s %q %s: %d %s", kind, value, rng, code, body)
		}
		var g gotRanking
		if err := json.Unmarshal(body, &g); err != nil {
			t.Fatal(err)
		}
		if g.Of != of || rawValue(t, g.Value, g.ValueB64) != value {
			t.Errorf("drill names of %q value %q, want %q %q", g.Of, rawValue(t, g.Value, g.ValueB64), of, value)
		}
		f.check(t, "drill "+kind+" "+value+" of "+of+rng, body, dwant, dattempts, int64(len(dwant)))

		// series: the value's attempts on every day.
		code, body = get(t, f.srv.URL+"/api/v1/series?kind="+kind+"&"+valueParam(r, value)+rng)
		if code != 200 {
			t.Fatalf("series: %d %s", code, body)
		}
		var s struct {
			Value    string `json:"value"`
			ValueB64 string `json:"value_b64"`
			Days     []struct {
				Day   string
				Count int64
			}
		}
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Days) != dayCount(from, to) {
			t.Fatalf("series %s has %d days, want %d", rng, len(s.Days), dayCount(from, to))
		}
		perDay := map[string]int64{}
		for _, l := range f.lines {
			if l.of(kind) == value {
				perDay[dayName(l.t)]++
			}
		}
		for j, d := range s.Days {
			day := from.AddDate(0, 0, j)
			if d.Day != dayName(day) {
				t.Fatalf("series day %d is %s, want %s", j, d.Day, dayName(day))
			}
			if n := perDay[d.Day]; d.Count != n {
				t.Errorf("series %s %q on %s = %d, want %d", kind, value, d.Day, d.Count, n)
			}
		}
	}
}

func (f *fixture) check(t *testing.T, what string, body []byte, want []stats.Entry, attempts, distinct int64) {
	t.Helper()
	var g gotRanking
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	if g.Attempts != attempts || g.Distinct != distinct {
		t.Errorf("%s: attempts %d distinct %d, want %d %d", what, g.Attempts, g.Distinct, attempts, distinct)
	}
	if len(g.Top) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(g.Top), len(want))
	}
	for i, e := range g.Top {
		if v := rawValue(t, e.Value, e.ValueB64); v != want[i].Member || e.Count != want[i].Count {
			t.Errorf("%s: #%d is %q=%d, want %q=%d", what, i, v, e.Count, want[i].Member, want[i].Count)
		}
	}
}

func (f *fixture) checkCSV(t *testing.T, u string, want []stats.Entry) {
	t.Helper()
	code, body := get(t, u)
	if code != 200 {
		t.Fatalf("csv: %d %s", code, body)
	}
	var b strings.Builder
	entries := make([]render.Entry, len(want))
	for i, e := range want {
		entries[i] = render.Entry{Value: e.Member, Count: e.Count}
	}
	sent := false
	if err := render.WriteCSV(&b, func() ([]render.Entry, error) {
		if sent {
			return nil, nil
		}
		sent = true
		return entries, nil
	}); err != nil {
		t.Fatal(err)
	}
	if string(body) != b.String() {
		t.Errorf("csv of %s differs:\n%s\nwant\n%s", u, body, b.String())
	}
	if _, err := csv.NewReader(strings.NewReader(string(body))).ReadAll(); err != nil {
		t.Errorf("csv of %s does not parse: %v", u, err)
	}
}

// A closed range asked twice is answered from the cache; a backfill into
// one of its days invalidates it, and the answer counts the backfill.
func TestCacheInvalidatedByBackfill(t *testing.T) {
	f := newFixture(t, 2000, false)
	from := f.first.AddDate(0, 2, 3)
	to := from.AddDate(0, 3, 0)
	u := f.srv.URL + "/api/v1/top?kind=username&limit=1000&from=" + dayName(from) + "&to=" + dayName(to)
	want, attempts := f.expected(kinds.User, "", "", from, to)
	_, body := get(t, u)
	f.check(t, "first", body, want, attempts, int64(len(want)))
	before := f.computes.Load()
	_, body = get(t, u)
	f.check(t, "cached", body, want, attempts, int64(len(want)))
	if f.computes.Load() != before {
		t.Fatalf("the same closed range was computed again instead of served from the cache")
	}

	late := attempt{t: from.AddDate(0, 0, 5).Add(time.Hour), user: "backfilled \xff", src: "203.0.113.1", host: "h"}
	f.lines = append(f.lines, late)
	b := stats.NewBatch()
	b.Add(late.t, []byte(late.host), []byte(late.user), []byte(late.src))
	if err := f.store.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	want, attempts = f.expected(kinds.User, "", "", from, to)
	_, body = get(t, u)
	f.check(t, "after backfill", body, want, attempts, int64(len(want)))
	if f.computes.Load() == before {
		t.Fatalf("a backfill into the range did not invalidate the cached answer")
	}
}

// -F rebuilds the drill-down data from DB 0: the answers stay the same.
func TestDrillRebuiltByFlush(t *testing.T) {
	f := newFixture(t, 1500, false)
	from, to := f.first, f.now
	u := f.srv.URL + "/api/v1/drill?kind=src&of=username&value=admin&limit=1000&from=" + dayName(from) + "&to=" + dayName(to)
	want, attempts := f.expected(kinds.User, kinds.Src, "admin", from, to)
	if len(want) == 0 {
		t.Fatal("the fixture has no attempt from source admin; the test would prove nothing")
	}
	if _, err := f.store.RebuildWith(context.Background(), stats.RebuildOptions{Location: time.UTC}); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, u)
	f.check(t, "drill after -F", body, want, attempts, int64(len(want)))
}

func TestDrillOffAnswers400(t *testing.T) {
	f := newFixture(t, 50, true)
	code, body := get(t, f.srv.URL+"/api/v1/drill?kind=src&of=username&value=x&from=20200101&to=20200102")
	if code != 400 || !strings.Contains(string(body), "drilldown = false") {
		t.Fatalf("drill with drilldown off: %d %s; want 400 saying drilldown is off", code, body)
	}
	c, err := f.store.Stats.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := redis.Strings(c.Do("KEYS", stats.LinksPattern))
	if err != nil || len(keys) != 0 {
		t.Fatalf("drilldown off still wrote %d drill keys (%v)", len(keys), err)
	}
}

func TestMalformedRequests(t *testing.T) {
	f := newFixture(t, 10, false)
	for _, c := range []struct{ path, param string }{
		{"/api/v1/top?from=20250101&to=20250102", "kind"},
		{"/api/v1/top?kind=user&from=20250101&to=20250102", "kind"},
		{"/api/v1/top?kind=src&to=20250102", "from"},
		{"/api/v1/top?kind=src&from=20250101", "to"},
		{"/api/v1/top?kind=src&from=20250230&to=20250302", "from"},
		{"/api/v1/top?kind=src&from=2025-01-01&to=20250102", "from"},
		{"/api/v1/top?kind=src&from=20250103&to=20250102", "from"},
		{"/api/v1/top?kind=src&from=20000101&to=20250102", "to"},
		{"/api/v1/top?kind=src&from=20250101&to=20250102&limit=0", "limit"},
		{"/api/v1/top?kind=src&from=20250101&to=20250102&limit=1001", "limit"},
		{"/api/v1/top?kind=src&from=20250101&to=20250102&limit=+5", "limit"},
		{"/api/v1/top?kind=src&from=20250101&to=20250102&format=xml", "format"},
		{"/api/v1/top?kind=src&from=20250101&to=20250102&colour=red", "colour"},
		{"/api/v1/top?kind=src&kind=host&from=20250101&to=20250102", "kind"},
		{"/api/v1/top?kind=src&from=20250101&to=20250102&value=x", "value"},
		{"/api/v1/drill?kind=src&from=20250101&to=20250102&value=x", "of"},
		{"/api/v1/drill?kind=src&of=src&from=20250101&to=20250102&value=x", "of"},
		{"/api/v1/drill?kind=src&of=host&from=20250101&to=20250102", "value"},
		{"/api/v1/drill?kind=src&of=host&from=20250101&to=20250102&value_b64=%%%", "query string"},
		{"/api/v1/drill?kind=src&of=host&from=20250101&to=20250102&value_b64=abc", "value_b64"},
		{"/api/v1/drill?kind=src&of=host&from=20250101&to=20250102&value=a&value_b64=YQ==", "value_b64"},
		{"/api/v1/series?kind=src&value=x&from=20250101&to=20250102&limit=5", "limit"},
	} {
		code, body := get(t, f.srv.URL+c.path)
		var e struct{ Error string }
		if err := json.Unmarshal(body, &e); err != nil || code != 400 {
			t.Errorf("%s: %d %s; want 400 with a JSON error", c.path, code, body)
			continue
		}
		if !strings.HasPrefix(e.Error, c.param+":") && !strings.HasPrefix(e.Error, fmt.Sprintf("unknown parameter %q", c.param)) || !strings.Contains(e.Error, "want") && !strings.Contains(e.Error, "allowed") && !strings.Contains(e.Error, "give") {
			t.Errorf("%s: error %q does not name %s and what is allowed", c.path, e.Error, c.param)
		}
	}
	// A value never seen: 200 with zero attempts.
	code, body := get(t, f.srv.URL+"/api/v1/drill?kind=src&of=host&value=nobody&from=20250101&to=20250102")
	if code != 200 || !strings.Contains(string(body), `"attempts":0`) {
		t.Errorf("never-seen value: %d %s", code, body)
	}
}

func TestCover(t *testing.T) {
	d := func(s string) time.Time { t, _ := parseDay(s); return t }
	for _, c := range []struct {
		from, to, live string
		want           string
	}{
		{"20240315", "20250314", "20990101", "20240315 … 20240331 202404 … 202502 20250301 … 20250314"},
		{"20240101", "20241231", "20990101", "2024"},
		{"20240101", "20241231", "20241231", "202401 … 202411 20241201 … 20241231"},
		{"20240201", "20240229", "20990101", "202402"},
		{"20240201", "20240228", "20990101", "20240201 … 20240228"},
	} {
		got := cover(d(c.from), d(c.to), c.live)
		// Runs of consecutive days or months shown as "first … last".
		var parts []string
		for i := 0; i < len(got); {
			j := i
			for j+1 < len(got) && len(got[j+1]) == len(got[i]) && len(got[i]) != 4 && next(got[j]) == got[j+1] {
				j++
			}
			if j > i+1 {
				parts = append(parts, got[i]+" … "+got[j])
			} else {
				parts = append(parts, got[i:j+1]...)
			}
			i = j + 1
		}
		if s := strings.Join(parts, " "); s != c.want {
			t.Errorf("cover(%s, %s, live %s) = %s, want %s", c.from, c.to, c.live, s, c.want)
		}
	}
}

func next(p string) string {
	if len(p) == 8 {
		t, _ := parseDay(p)
		return dayName(t.AddDate(0, 0, 1))
	}
	t, _ := parseDay(p + "01")
	return t.AddDate(0, 1, 0).Format("200601")
}
