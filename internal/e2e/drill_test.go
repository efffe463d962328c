package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"

	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// The drill-down data (SPEC §10) rides in the same counting script as the
// rankings, so exactly-once must cover it as well: these checks compute it
// from the test's own lines, apart from the daemon's code, and compare it
// with the counting Redis's drill-down data (alog:links:*, read back per
// value with stats.DrillSets) and with the answers of the
// daemon's /api/v1/ endpoints.

// e2eKinds are the kinds a daemon without geoip databases counts, with the
// value each takes from a line.
var e2eKinds = []struct {
	name string
	of   func(workload.Line) string
}{
	{"username", func(l workload.Line) string { return l.User }},
	{"src", func(l workload.Line) string { return l.Src }},
	{"host", func(l workload.Line) string { return l.Host }},
}

// drillModel is the drill-down data and the daily counts of a set of lines.
type drillModel struct {
	// sets is what DB 1 must hold, as stats.DrillSets reads it back:
	// "<day> <kind> <value>" → "<kind>:<value>" → attempts.
	sets map[string]map[string]int64
	// daily is kind → value → day → attempts, for top and series.
	daily map[string]map[string]map[string]int64
	// links is day → kind → value → "<kind>:<value>" → attempts, for drill.
	links map[string]map[string]map[string]map[string]int64
	days  []string // every day with an attempt, ascending
}

// expectDrill computes the drill-down data of the counting lines, bucketed
// by UTC day as the tests' daemons count them: for every attempt and every
// kind, the attempt's values of the other kinds.
func expectDrill(lines []workload.Line) drillModel {
	m := drillModel{
		sets:  map[string]map[string]int64{},
		daily: map[string]map[string]map[string]int64{},
		links: map[string]map[string]map[string]map[string]int64{},
	}
	for _, l := range lines {
		if !l.Counts {
			continue
		}
		day := l.Time.UTC().Format("20060102")
		if m.links[day] == nil {
			m.links[day] = map[string]map[string]map[string]int64{}
			m.days = append(m.days, day)
		}
		for _, k := range e2eKinds {
			v := k.of(l)
			if m.daily[k.name] == nil {
				m.daily[k.name] = map[string]map[string]int64{}
			}
			if m.daily[k.name][v] == nil {
				m.daily[k.name][v] = map[string]int64{}
			}
			m.daily[k.name][v][day]++
			key := day + " " + k.name + " " + v
			set := m.sets[key]
			if set == nil {
				set = map[string]int64{}
				m.sets[key] = set
			}
			if m.links[day][k.name] == nil {
				m.links[day][k.name] = map[string]map[string]int64{}
			}
			lk := m.links[day][k.name][v]
			if lk == nil {
				lk = map[string]int64{}
				m.links[day][k.name][v] = lk
			}
			for _, o := range e2eKinds {
				if o.name != k.name {
					set[o.name+":"+o.of(l)]++
					lk[o.name+":"+o.of(l)]++
				}
			}
		}
	}
	sort.Strings(m.days)
	return m
}

// checkDrillKeys compares the drill-down data of DB 1, every value's, with
// the model, both ways, and fails with the differences.
func checkDrillKeys(t *testing.T, c redis.Conn, want drillModel) {
	t.Helper()
	began := time.Now()
	sets, err := stats.DrillSets(context.Background(), c)
	must(t, err)
	got := make(map[string]map[string]int64, len(sets))
	for set, linked := range sets {
		m := make(map[string]int64, len(linked))
		for l, n := range linked {
			m[l.Kind+":"+l.Value] = n
		}
		got[set.Day+" "+set.Kind+" "+set.Value] = m
	}
	var diffs []string
	for key, w := range want.sets {
		g, ok := got[key]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing, want %d members", short(key), len(w)))
			continue
		}
		for mem, n := range w {
			if g[mem] != n {
				diffs = append(diffs, fmt.Sprintf("%s %s: %d, want %d (%+d)", short(key), short(mem), g[mem], n, g[mem]-n))
			}
		}
		for mem, n := range g {
			if _, ok := w[mem]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s %s: %d, want none", short(key), short(mem), n))
			}
		}
	}
	for key, g := range got {
		if _, ok := want.sets[key]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected, with %d linked values", short(key), len(g)))
		}
	}
	failDiffs(t, fmt.Sprintf("drill-down data differs (%d values' days, want %d)", len(got), len(want.sets)), diffs)
	t.Logf("drill-down: %d values' days equal the test's own count (%.1f s)", len(got), time.Since(began).Seconds())
}

// short quotes s for a message, cut to a readable length (a capped value
// is a kilobyte long).
func short(s string) string {
	if len(s) > 100 {
		return fmt.Sprintf("%q…(%d bytes)", s[:100], len(s))
	}
	return fmt.Sprintf("%q", s)
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func failDiffs(t *testing.T, what string, diffs []string) {
	t.Helper()
	if len(diffs) == 0 {
		return
	}
	sort.Strings(diffs)
	if len(diffs) > 30 {
		diffs = append(diffs[:30], fmt.Sprintf("… and %d more", len(diffs)-30))
	}
	t.Fatalf("%s:\n%s", what, strings.Join(diffs, "\n"))
}

// ranked is one expected row of an answer.
type ranked struct {
	value string
	count int64
}

// rank orders as SPEC §10 says: count descending, then value bytewise.
func rank(m map[string]int64) []ranked {
	out := make([]ranked, 0, len(m))
	for v, n := range m {
		out = append(out, ranked{v, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].count != out[j].count {
			return out[i].count > out[j].count
		}
		return out[i].value < out[j].value
	})
	return out
}

// inRange lists the model's days from from to to, inclusive.
func (m drillModel) inRange(from, to string) []string {
	var out []string
	for _, d := range m.days {
		if d >= from && d <= to {
			out = append(out, d)
		}
	}
	return out
}

func (m drillModel) top(kind, from, to string) (rows []ranked, attempts int64) {
	sum := map[string]int64{}
	for v, byDay := range m.daily[kind] {
		for d, n := range byDay {
			if d >= from && d <= to {
				sum[v] += n
				attempts += n
			}
		}
	}
	return rank(sum), attempts
}

func (m drillModel) drill(kind, value, of, from, to string) (rows []ranked, attempts int64) {
	sum := map[string]int64{}
	for _, d := range m.inRange(from, to) {
		for mem, n := range m.links[d][kind][value] {
			if k, v, _ := strings.Cut(mem, ":"); k == of {
				sum[v] += n
			}
		}
		attempts += m.daily[kind][value][d]
	}
	return rank(sum), attempts
}

// apiRanking is the JSON of top and drill (SPEC §10).
type apiRanking struct {
	Kind, Of, From, To string
	Value              string `json:"value"`
	ValueB64           string `json:"value_b64"`
	Attempts, Distinct int64
	Top                []struct {
		Value    string `json:"value"`
		ValueB64 string `json:"value_b64"`
		Count    int64  `json:"count"`
	}
}

// raw is the bytes an answer names: value_b64 when the value is not valid
// UTF-8, value otherwise.
func raw(t *testing.T, value, b64 string) string {
	t.Helper()
	if b64 == "" {
		return value
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	must(t, err)
	return string(b)
}

// apiGet fetches u and decodes its JSON into v, requiring 200.
func apiGet(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	must(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	must(t, err)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %.300s", u, err, body)
	}
}

// waitAPI waits until the daemon's web server answers.
func waitAPI(t *testing.T, base string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon's web server at %s did not answer within %v: %v", base, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// valueParam names value in a request: value_b64 for bytes that are not
// UTF-8, and for a third of the others, so that both forms are asked.
func valueParam(r *rand.Rand, v string) string {
	if !utf8.ValidString(v) || r.IntN(3) == 0 {
		return "value_b64=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(v)))
	}
	return "value=" + url.QueryEscape(v)
}

// compareRanking checks an answer's rows, attempts and distinct against
// the expected full ranking, of which the answer holds the first limit rows.
func compareRanking(t *testing.T, what string, got apiRanking, want []ranked, attempts int64, limit int) []string {
	t.Helper()
	var diffs []string
	if got.Attempts != attempts || got.Distinct != int64(len(want)) {
		diffs = append(diffs, fmt.Sprintf("%s: attempts %d distinct %d, want %d and %d", what, got.Attempts, got.Distinct, attempts, len(want)))
	}
	want = want[:min(limit, len(want))]
	if len(got.Top) != len(want) {
		diffs = append(diffs, fmt.Sprintf("%s: %d rows, want %d", what, len(got.Top), len(want)))
	}
	// The first row that differs says it: the rows after it shift.
	for i := 0; i < min(len(got.Top), len(want)); i++ {
		g := got.Top[i]
		if v := raw(t, g.Value, g.ValueB64); v != want[i].value || g.Count != want[i].count {
			diffs = append(diffs, fmt.Sprintf("%s: row %d is %s %d, want %s %d", what, i, short(v), g.Count, short(want[i].value), want[i].count))
			break
		}
	}
	return diffs
}

// checkAPI asks the daemon's /api/v1/top, /drill and /series for ranges
// drawn over the counted days (single days, ranges crossing months, the
// whole span and past its ends) and values drawn from the answers, and
// compares every answer with the model.
func checkAPI(t *testing.T, base string, want drillModel, r *rand.Rand, ranges int) {
	t.Helper()
	if len(want.days) == 0 {
		t.Fatal("no counted day to ask about")
	}
	const limit = 1000
	began := time.Now()
	first, _ := time.Parse("20060102", want.days[0])
	last, _ := time.Parse("20060102", want.days[len(want.days)-1])
	span := int(last.Sub(first).Hours()/24) + 1
	var diffs []string
	asked := 0
	for i := 0; i < ranges; i++ {
		var from, to time.Time
		switch i {
		case 0: // the whole span and a few days on each side
			from, to = first.AddDate(0, 0, -3), last.AddDate(0, 0, 3)
		case 1: // one day
			from = first.AddDate(0, 0, r.IntN(span))
			to = from
		default:
			from = first.AddDate(0, 0, r.IntN(span))
			to = from.AddDate(0, 0, r.IntN(span))
		}
		f, tt := from.Format("20060102"), to.Format("20060102")
		rng := "&from=" + f + "&to=" + tt
		for _, k := range e2eKinds {
			rows, attempts := want.top(k.name, f, tt)
			var got apiRanking
			apiGet(t, fmt.Sprintf("%s/api/v1/top?kind=%s%s&limit=%d", base, k.name, rng, limit), &got)
			asked++
			diffs = append(diffs, compareRanking(t, "top "+k.name+rng, got, rows, attempts, limit)...)
			if len(rows) == 0 {
				continue
			}
			// A value drawn from the ranking; hostile bytes now and then.
			value := rows[r.IntN(len(rows))].value
			for _, row := range rows {
				if !utf8.ValidString(row.value) && r.IntN(2) == 0 {
					value = row.value
					break
				}
			}
			for _, o := range e2eKinds {
				if o.name == k.name {
					continue
				}
				drows, dattempts := want.drill(k.name, value, o.name, f, tt)
				var got apiRanking
				apiGet(t, fmt.Sprintf("%s/api/v1/drill?kind=%s&of=%s&%s%s&limit=%d", base, k.name, o.name, valueParam(r, value), rng, limit), &got)
				asked++
				if raw(t, got.Value, got.ValueB64) != value || got.Of != o.name {
					diffs = append(diffs, fmt.Sprintf("drill %s %s of %s%s names %s of %s", k.name, short(value), o.name, rng, short(raw(t, got.Value, got.ValueB64)), got.Of))
				}
				diffs = append(diffs, compareRanking(t, fmt.Sprintf("drill %s %s of %s%s", k.name, short(value), o.name, rng), got, drows, dattempts, limit)...)
			}
			var s struct {
				Days []struct {
					Day   string `json:"day"`
					Count int64  `json:"count"`
				} `json:"days"`
			}
			apiGet(t, fmt.Sprintf("%s/api/v1/series?kind=%s&%s%s", base, k.name, valueParam(r, value), rng), &s)
			asked++
			n := int(to.Sub(from).Hours()/24) + 1
			if len(s.Days) != n {
				diffs = append(diffs, fmt.Sprintf("series %s %s%s: %d days, want %d", k.name, short(value), rng, len(s.Days), n))
				continue
			}
			for j, d := range s.Days {
				day := from.AddDate(0, 0, j).Format("20060102")
				if w := want.daily[k.name][value][day]; d.Day != day || d.Count != w {
					diffs = append(diffs, fmt.Sprintf("series %s %s%s: day %d is %s %d, want %s %d", k.name, short(value), rng, j, d.Day, d.Count, day, w))
				}
			}
		}
	}
	failDiffs(t, "the daemon's API answers differ from the test's own count", diffs)
	t.Logf("API: %d answers over %d ranges equal the test's own count (%.1f s)", asked, ranges, time.Since(began).Seconds())
}

// serveHTTP gives the daemon an http_server on a loopback port that was
// free a moment ago and returns its base URL.
func (e *env) serveHTTP() string {
	e.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(e.t, err)
	addr := l.Addr().String()
	must(e.t, l.Close())
	must(e.t, os.WriteFile(filepath.Join(e.conf, "http_server"), []byte(addr+"\n"), 0o644))
	return "http://" + addr
}
