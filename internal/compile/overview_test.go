package compile

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/workload"
)

// ranked is a JSON entry read back to its exact bytes.
type ranked struct {
	Value    string `json:"value"`
	ValueB64 string `json:"value_b64"`
	Count    int64  `json:"count"`
}

func (r ranked) bytes(t *testing.T) string {
	t.Helper()
	if r.ValueB64 == "" {
		return r.Value
	}
	b, err := base64.StdEncoding.DecodeString(r.ValueB64)
	if err != nil {
		t.Fatalf("value_b64 %q: %v", r.ValueB64, err)
	}
	return string(b)
}

type change struct {
	Period   string   `json:"period"`
	Attempts int64    `json:"attempts"`
	Change   int64    `json:"change"`
	Percent  *float64 `json:"percent"`
}

// overviewFile is overview.json as an operator's script reads it.
type overviewFile struct {
	Oldest    string `json:"oldest"`
	Newest    string `json:"newest"`
	NewestDay struct {
		Period      string           `json:"period"`
		Attempts    int64            `json:"attempts"`
		Distinct    map[string]int64 `json:"distinct"`
		PreviousDay change           `json:"previous_day"`
		WeekBefore  change           `json:"week_before"`
	} `json:"newest_day"`
	New map[string]struct {
		Count int64    `json:"count"`
		CSV   string   `json:"csv"`
		Top   []ranked `json:"top"`
	} `json:"new"`
	Top []struct {
		Period   string              `json:"period"`
		Attempts int64               `json:"attempts"`
		Distinct map[string]int64    `json:"distinct"`
		Top      map[string][]ranked `json:"top"`
	} `json:"top"`
	TrendDaily []struct {
		Period    string  `json:"period"`
		Attempts  int64   `json:"attempts"`
		Average7d float64 `json:"average_7d"`
	} `json:"trend_daily"`
	TrendMonthly []struct {
		Period   string `json:"period"`
		Attempts int64  `json:"attempts"`
	} `json:"trend_monthly"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// applyLines counts the attempts of lines in batches of n, as workers do.
func applyLines(t *testing.T, s *stats.Store, lines []workload.Line, n int) {
	t.Helper()
	b := stats.NewBatch()
	for _, l := range lines {
		b.Add(l.Time, []byte(l.Host), []byte(l.User), []byte(l.Src))
		if b.Len() >= n {
			if err := s.Apply(context.Background(), b, nil); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := s.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
}

func day(t *testing.T, p string, add int) string {
	t.Helper()
	d, err := time.Parse("20060102", p)
	if err != nil {
		t.Fatal(err)
	}
	return d.AddDate(0, 0, add).Format("20060102")
}

func sameRanking(t *testing.T, what string, got []ranked, want []workload.Ranked) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d entries, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if v := got[i].bytes(t); v != want[i].Value || got[i].Count != want[i].Count {
			t.Errorf("%s #%d: %q %d, want %q %d", what, i+1, v, got[i].Count, want[i].Value, want[i].Count)
		}
	}
}

// TestOverviewIsExact counts more than a year of generated attempts, the
// later part first and the older part as a backfill, with days and a month
// without data, then compares every figure of overview.json with what
// workload computes from the attempts themselves.
func TestOverviewIsExact(t *testing.T) {
	c, s := setup(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("Europe/Luxembourg")
	if err != nil {
		t.Fatal(err)
	}
	ref := time.Date(2026, 11, 25, 22, 0, 0, 0, loc)
	gaps := map[string]bool{"20261118": true, "20261003": true, "20261004": true}
	var counted []workload.Line
	keep := func(ls []workload.Line) []workload.Line {
		var out []workload.Line
		for _, l := range ls {
			d := l.Time.In(loc).Format("20060102")
			if l.Counts && !gaps[d] && d[:6] != "202508" {
				out = append(out, l)
			}
		}
		counted = append(counted, out...)
		return out
	}
	later := keep(workload.Generate(workload.Options{Lines: 24000, Ref: ref, Loc: loc, Days: 300, Users: 300, Sources: 5000, Hosts: 9, Hostile: true, Seed: 11}))
	earlier := keep(workload.Generate(workload.Options{Lines: 12000, Ref: ref.AddDate(0, 0, -230), Loc: loc, Days: 300, Users: 400, Sources: 5000, Hosts: 7, Hostile: true, Seed: 12}))
	applyLines(t, s, later, 3000)
	applyLines(t, s, earlier, 3000)
	// Drawing a year and a half of charts adds nothing here: they count as
	// drawn, and only the last attempts below are compiled.
	for _, g := range stats.Granularities() {
		keys, err := s.TakeToUpdate(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DoneRendering(ctx, g, keys...); err != nil {
			t.Fatal(err)
		}
	}
	// The newest day brings values never seen before, some of them hostile.
	var last []workload.Line
	at := time.Date(2026, 11, 25, 23, 0, 0, 0, loc)
	for i, u := range []string{"zz-new", "</td><script>alert(1)</script>", "\xff\xfe", "=cmd|' /C calc'!A0", "zz-new", "admin"} {
		last = append(last, workload.Line{Counts: true, Time: at.Add(time.Duration(i) * time.Second), Host: "srv1", User: u, Src: "198.51.100." + string(rune('1'+i%3))})
	}
	counted = append(counted, last...)
	applyLines(t, s, last, 100)
	if _, err := c.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}

	e := workload.Expect(counted, loc)
	totals := e.Totals()
	var doc overviewFile
	readJSON(t, filepath.Join(c.Dir, "overview.json"), &doc)
	newest := e.Newest
	if doc.Oldest != e.Oldest || doc.Newest != newest || newest != "20261125" || e.Oldest > "20250701" {
		t.Fatalf("oldest/newest %s/%s, want %s/%s", doc.Oldest, doc.Newest, e.Oldest, newest)
	}
	nd := doc.NewestDay
	if nd.Period != newest || nd.Attempts != totals[newest] || nd.Attempts == 0 {
		t.Errorf("newest day %s %d attempts, want %s %d", nd.Period, nd.Attempts, newest, totals[newest])
	}
	for _, k := range stats.Kinds() {
		if n := int64(len(e.Sets[stats.StatsKey(newest, k)])); nd.Distinct[k] != n {
			t.Errorf("distinct %s: %d, want %d", k, nd.Distinct[k], n)
		}
	}
	for _, cmp := range []struct {
		got  change
		back int
	}{{nd.PreviousDay, -1}, {nd.WeekBefore, -7}} {
		p := day(t, newest, cmp.back)
		want := change{Period: p, Attempts: totals[p], Change: totals[newest] - totals[p]}
		if totals[p] != 0 {
			pct := math.Round(float64(want.Change)/float64(totals[p])*100*10) / 10
			want.Percent = &pct
		}
		if cmp.got.Period != want.Period || cmp.got.Attempts != want.Attempts || cmp.got.Change != want.Change ||
			(cmp.got.Percent == nil) != (want.Percent == nil) || (want.Percent != nil && *cmp.got.Percent != *want.Percent) {
			t.Errorf("against %s: %+v, want %+v", p, cmp.got, want)
		}
	}
	if nd.WeekBefore.Percent != nil || nd.PreviousDay.Percent == nil {
		t.Error("the data set must compare once with a day without attempts and once with a day with some")
	}

	for _, k := range []string{stats.KindUser, stats.KindSrc} {
		want := e.NewOn(newest, k)
		got := doc.New[k]
		if got.Count != int64(len(want)) || got.Count == 0 {
			t.Errorf("new %s: %d, want %d", k, got.Count, len(want))
		}
		sameRanking(t, "new "+k, got.Top, want[:min(25, len(want))])
		// The CSV holds all of them, ranked, with CSV's formula guard.
		f, err := os.Open(filepath.Join(c.Dir, filepath.FromSlash(got.CSV)))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var all []ranked
		for _, r := range rows[1:] {
			var n int64
			for _, d := range r[1] {
				n = n*10 + int64(d-'0')
			}
			all = append(all, ranked{Value: strings.TrimPrefix(r[0], "'"), Count: n})
		}
		sameRanking(t, got.CSV, all, want)
	}
	if _, ok := doc.New[stats.KindHost]; ok {
		t.Error("new hosts listed; the overview lists user names and sources")
	}

	periods := []string{newest, newest[:6], newest[:4]}
	if len(doc.Top) != 3 {
		t.Fatalf("%d top periods, want 3", len(doc.Top))
	}
	for i, p := range periods {
		got := doc.Top[i]
		if got.Period != p || got.Attempts != totals[p] {
			t.Errorf("top period %d: %s %d attempts, want %s %d", i, got.Period, got.Attempts, p, totals[p])
		}
		for _, k := range stats.Kinds() {
			key := stats.StatsKey(p, k)
			if got.Distinct[k] != int64(len(e.Sets[key])) {
				t.Errorf("%s: %d distinct, want %d", key, got.Distinct[k], len(e.Sets[key]))
			}
			sameRanking(t, key, got.Top[k], e.Top(key, 10))
		}
	}

	if len(doc.TrendDaily) != 90 {
		t.Fatalf("daily trend of %d days", len(doc.TrendDaily))
	}
	for i, d := range doc.TrendDaily {
		p := day(t, newest, i-89)
		var sum, n int64
		for j := -6; j <= 0; j++ {
			if q := day(t, p, j); q >= e.Oldest {
				sum += totals[q]
				n++
			}
		}
		avg := math.Round(float64(sum)/float64(n)*10) / 10
		if d.Period != p || d.Attempts != totals[p] || d.Average7d != avg {
			t.Errorf("trend %s: %d, average %v; want %s %d, %v", d.Period, d.Attempts, d.Average7d, p, totals[p], avg)
		}
	}
	m := e.Oldest[:6]
	for i, got := range doc.TrendMonthly {
		if got.Period != m || got.Attempts != totals[m] {
			t.Errorf("month %d: %s %d, want %s %d", i, got.Period, got.Attempts, m, totals[m])
		}
		mt, _ := time.Parse("200601", m)
		m = mt.AddDate(0, 1, 0).Format("200601")
	}
	if m != "202612" || totals["202508"] != 0 {
		t.Errorf("monthly trend ends before %s", m)
	}

	// The JSON beside each chart drawn.
	var sj struct {
		Period   string   `json:"period"`
		Kind     string   `json:"kind"`
		Attempts int64    `json:"attempts"`
		Distinct int64    `json:"distinct"`
		Top      []ranked `json:"top"`
	}
	key := stats.StatsKey(newest, stats.KindUser)
	readJSON(t, filepath.Join(c.Dir, newest, key+".json"), &sj)
	if sj.Period != newest || sj.Kind != stats.KindUser || sj.Attempts != totals[newest] || sj.Distinct != int64(len(e.Sets[key])) {
		t.Errorf("%s.json: %+v", key, sj)
	}
	sameRanking(t, key+".json", sj.Top, e.Top(key, c.ChartTop))

	for _, f := range []string{"index.html", "trend-daily.svg", "trend-monthly.svg"} {
		if _, err := os.Stat(filepath.Join(c.Dir, f)); err != nil {
			t.Error(err)
		}
	}
}

// snapshot reads every file under dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFlushReproducesOutput: after a flush rebuilds the statistics from the
// stored attempts, a full compile writes every file byte for byte as it was,
// the overview, its JSON, its charts and the new-value lists included.
func TestFlushReproducesOutput(t *testing.T) {
	c, s := setup(t)
	ctx := context.Background()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	var lines []workload.Line
	for _, l := range workload.Generate(workload.Options{Lines: 4000, Ref: time.Date(2026, 11, 25, 12, 0, 0, 0, loc), Loc: loc, Days: 40, Users: 80, Sources: 600, Hosts: 4, Hostile: true, Seed: 3}) {
		if l.Counts {
			lines = append(lines, l)
		}
	}
	// Batches arrive newest first: first-seen days move back as they come.
	for i := len(lines); i > 0; i -= 500 {
		applyLines(t, s, lines[max(0, i-500):i], 500)
	}
	if _, err := c.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, c.Dir)
	for _, f := range []string{"index.html", "overview.json", "trend-daily.svg", "trend-monthly.svg", "20261125/20261125:newsrc.csv", "20261125/20261125:statssrc.json", "2026/2026:statsusername.json"} {
		if len(before[filepath.FromSlash(f)]) == 0 {
			t.Errorf("%s missing or empty", f)
		}
	}
	if _, err := s.Rebuild(ctx, loc, 700, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(ctx, true); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, c.Dir)
	if len(after) != len(before) {
		t.Errorf("%d files after the flush, %d before", len(after), len(before))
	}
	for name, b := range before {
		if !bytes.Equal(after[name], b) {
			t.Errorf("%s differs after the flush", name)
		}
	}
}

// TestOverviewIsRewrittenWhenSomethingChanged: an idle compile leaves the
// overview alone; one that draws anything rewrites it; a new Compiler
// (a restarted daemon) writes it at its first compile.
func TestOverviewIsRewrittenWhenSomethingChanged(t *testing.T) {
	c, s := setup(t)
	ctx := context.Background()
	index := filepath.Join(c.Dir, "index.html")
	if _, err := c.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(index); err != nil || !bytes.Contains(b, []byte("No data yet")) {
		t.Fatalf("overview without data: %v", err)
	}
	add(t, s, "2026-11-25T10:00:00Z", "h", "root", "192.0.2.1")
	if _, err := c.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(index); err != nil || bytes.Contains(b, []byte("No data yet")) {
		t.Fatalf("overview not rewritten after an attempt: %v", err)
	}
	if err := os.Remove(index); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(index); err == nil {
		t.Error("an idle compile rewrote the overview")
	}
	restarted := &Compiler{Store: c.Store, Dir: c.Dir, ChartTop: c.ChartTop, Log: c.Log}
	if _, err := restarted.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(index); err != nil {
		t.Errorf("the first compile of a new compiler did not write the overview: %v", err)
	}
}
