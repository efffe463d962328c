package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// goldenOverview is the fixed data set behind the overview's golden files:
// a daily series with a weekly rhythm, quiet days and days before the first
// attempt; months since the spring of the year before; a day that brought
// new values, one of them chosen by an attacker.
func goldenOverview() Overview {
	o := Overview{Oldest: "20250310", Newest: "20261125"}
	days, err := OverviewDays(o.Newest)
	if err != nil {
		panic(err)
	}
	for i, d := range days {
		n := int64(800 + (i*137)%400 + i*6)
		if t, _ := parseDay(d); t.Weekday() == 0 {
			n /= 3
		}
		switch d {
		case "20261003", "20261004", "20261118":
			n = 0 // the sensor was down; the week before has nothing to compare with
		}
		o.Days = append(o.Days, PeriodCount{Period: d, Attempts: n})
	}
	months, err := OverviewMonths(o.Oldest, o.Newest)
	if err != nil {
		panic(err)
	}
	for i, m := range months {
		o.Months = append(o.Months, PeriodCount{Period: m, Attempts: int64(9000 + (i*5021)%14000 + i*700)})
	}
	day := o.Days[len(o.Days)-1].Attempts
	o.Periods = []PeriodTop{
		{Period: "20261125", Attempts: day, Kinds: []KindTop{
			{Kind: KindUsername, Distinct: 61, Top: []Entry{{"root", 301}, {"admin", 122}, {"</td><script>alert(1)</script>", 40}, {"ubuntu", 33}, {"git", 33}, {"", 4}}},
			{Kind: KindSrc, Distinct: 212, Top: []Entry{{"192.0.2.7", 90}, {"2001:db8::1", 61}, {"scanner.example.net", 5}}},
			{Kind: KindHost, Distinct: 3, Top: []Entry{{"web1", 500}, {"web2", 400}, {"db.example.org", 122}}},
		}},
		{Period: "202611", Attempts: 25003, Kinds: []KindTop{
			{Kind: KindUsername, Distinct: 802, Top: []Entry{{"root", 9001}, {"admin", 4000}, {"test", 1200}}},
			{Kind: KindSrc, Distinct: 3000, Top: []Entry{{"192.0.2.7", 2000}}},
			{Kind: KindHost, Distinct: 3},
		}},
		{Period: "2026", Attempts: 290003, Kinds: []KindTop{
			{Kind: KindUsername, Distinct: 5000, Top: []Entry{{"root", 90001}, {"admin\u202egnp.exe", 3}}},
			{Kind: KindSrc, Distinct: 30000, Top: []Entry{{"192.0.2.7", 20000}}},
			{Kind: KindHost, Distinct: 3, Top: []Entry{{"web1", 100000}}},
		}},
	}
	o.New = []NewValues{
		{Kind: KindUsername, Count: 3, Top: []Entry{{"</td><script>alert(1)</script>", 40}, {"zabbix", 2}, {"a\x00\xff", 1}}},
		{Kind: KindSrc, Count: 0},
	}
	return o
}

func writeOverviewDir(t *testing.T, o Overview) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteOverview(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGoldenOverview(t *testing.T) {
	dir := writeOverviewDir(t, goldenOverview())
	for _, name := range []string{OverviewFile, OverviewJSONFile, TrendDailyFile, TrendMonthlyFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name+".golden", b)
	}
}

// TestWriteOverviewIsDeterministic: the same statistics give the same bytes,
// so that a flush reproduces the overview exactly.
func TestWriteOverviewIsDeterministic(t *testing.T) {
	a, b := writeOverviewDir(t, goldenOverview()), writeOverviewDir(t, goldenOverview())
	for _, name := range []string{OverviewFile, OverviewJSONFile, TrendDailyFile, TrendMonthlyFile} {
		if readPage(t, a, name) != readPage(t, b, name) {
			t.Errorf("%s differs between two writes of the same overview", name)
		}
	}
}

// overviewDoc is overview.json as a script reads it.
type overviewDoc struct {
	Oldest    string `json:"oldest"`
	Newest    string `json:"newest"`
	NewestDay *struct {
		Period      string           `json:"period"`
		Attempts    int64            `json:"attempts"`
		Distinct    map[string]int64 `json:"distinct"`
		PreviousDay changeRead       `json:"previous_day"`
		WeekBefore  changeRead       `json:"week_before"`
	} `json:"newest_day"`
	New map[string]struct {
		Count int64       `json:"count"`
		CSV   string      `json:"csv"`
		Top   []jsonEntry `json:"top"`
	} `json:"new"`
	Top []struct {
		Period   string                 `json:"period"`
		Attempts int64                  `json:"attempts"`
		Distinct map[string]int64       `json:"distinct"`
		Top      map[string][]jsonEntry `json:"top"`
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

type changeRead struct {
	Period   string   `json:"period"`
	Attempts int64    `json:"attempts"`
	Change   int64    `json:"change"`
	Percent  *float64 `json:"percent"`
}

func readOverviewDoc(t *testing.T, dir string) overviewDoc {
	t.Helper()
	var doc overviewDoc
	if err := json.Unmarshal([]byte(readPage(t, dir, OverviewJSONFile)), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestOverviewFigures(t *testing.T) {
	o := goldenOverview()
	dir := writeOverviewDir(t, o)
	doc := readOverviewDoc(t, dir)
	byDay := map[string]int64{}
	for _, d := range o.Days {
		byDay[d.Period] = d.Attempts
	}
	nd := doc.NewestDay
	if nd == nil || nd.Period != "20261125" || nd.Attempts != byDay["20261125"] {
		t.Fatalf("newest day %+v, want 20261125 with %d attempts", nd, byDay["20261125"])
	}
	if nd.Distinct["username"] != 61 || nd.Distinct["src"] != 212 || nd.Distinct["host"] != 3 {
		t.Errorf("distinct %v", nd.Distinct)
	}
	prev := byDay["20261124"]
	wantPct := round1(float64(nd.Attempts-prev) / float64(prev) * 100)
	if p := nd.PreviousDay; p.Period != "20261124" || p.Attempts != prev || p.Change != nd.Attempts-prev || p.Percent == nil || *p.Percent != wantPct {
		t.Errorf("previous day %+v, want %d attempts, change %d, %.1f%%", p, prev, nd.Attempts-prev, wantPct)
	}
	// 2026-11-18 had no attempts: the change is "new", never an infinite percentage.
	if w := nd.WeekBefore; w.Period != "20261118" || w.Attempts != 0 || w.Change != nd.Attempts || w.Percent != nil {
		t.Errorf("week before %+v, want 20261118 with 0 attempts and no percentage", w)
	}
	page := readPage(t, dir, OverviewFile)
	if !strings.Contains(html.UnescapeString(page), "+"+groupThousands(nd.Attempts)+" (new)") {
		t.Error("the page does not say the week-before comparison is new")
	}
	if strings.Contains(page, "NaN") || strings.Contains(page, "Inf") {
		t.Error("the page shows NaN or Inf")
	}

	if len(doc.TrendDaily) != TrendDays {
		t.Fatalf("daily trend has %d days, want %d", len(doc.TrendDaily), TrendDays)
	}
	for i, d := range doc.TrendDaily {
		j := len(o.Days) - TrendDays + i
		var sum int64
		for k := j - AverageDays + 1; k <= j; k++ {
			sum += o.Days[k].Attempts
		}
		if d.Period != o.Days[j].Period || d.Attempts != o.Days[j].Attempts || d.Average7d != round1(float64(sum)/AverageDays) {
			t.Errorf("trend day %d: %+v, want %s %d average %.1f", i, d, o.Days[j].Period, o.Days[j].Attempts, round1(float64(sum)/AverageDays))
		}
	}
	if len(doc.TrendMonthly) != len(o.Months) || doc.TrendMonthly[0].Period != "202503" || doc.TrendMonthly[len(o.Months)-1].Period != "202611" {
		t.Errorf("monthly trend %v", doc.TrendMonthly)
	}
	if n := doc.New["username"]; n.Count != 3 || len(n.Top) != 3 || n.Top[0].Count != 40 || n.CSV != "20261125/20261125:newusername.csv" {
		t.Errorf("new user names %+v", n)
	}
	if n := doc.New["src"]; n.Count != 0 || n.Top == nil || len(n.Top) != 0 {
		t.Errorf("new sources %+v, want none as []", n)
	}
	if len(doc.Top) != 3 || doc.Top[1].Period != "202611" || doc.Top[1].Attempts != 25003 || doc.Top[2].Top["username"][1].Value != "admin\u202egnp.exe" {
		t.Errorf("top %+v", doc.Top)
	}
}

// TestMovingAverageStartsAtOldest: days before the first attempt are not
// averaged in as zeros.
func TestMovingAverageStartsAtOldest(t *testing.T) {
	days, _ := OverviewDays("20261125")
	o := Overview{Oldest: "20261123", Newest: "20261125"}
	for _, d := range days {
		var n int64
		if d >= o.Oldest {
			n = 10
		}
		o.Days = append(o.Days, PeriodCount{Period: d, Attempts: n})
	}
	o.Days[len(o.Days)-1].Attempts = 40
	trend := dailyTrend(o)
	last := trend[len(trend)-3:]
	want := []float64{10, 10, 20}
	for i, d := range last {
		if d.Average != want[i] {
			t.Errorf("%s: average %v, want %v", d.Period, d.Average, want[i])
		}
	}
	if trend[0].Average != 0 || trend[0].Attempts != 0 {
		t.Errorf("before the oldest day: %+v", trend[0])
	}
}

func TestCompare(t *testing.T) {
	for _, tt := range []struct {
		newest, other int64
		change        int64
		percent       string
	}{
		{10, 8, 2, "25.0"},
		{8, 10, -2, "-20.0"},
		{10, 0, 10, "nil"},
		{0, 0, 0, "nil"},
		{1, 3, -2, "-66.7"},
		{7, 7, 0, "0.0"},
	} {
		c := compare(tt.newest, "20261124", tt.other)
		got := "nil"
		if c.Percent != nil {
			got = fmt.Sprintf("%.1f", *c.Percent)
		}
		if c.Change != tt.change || got != tt.percent {
			t.Errorf("compare(%d, %d) = %+d %s%%, want %+d %s%%", tt.newest, tt.other, c.Change, got, tt.change, tt.percent)
		}
	}
	if v := comparisonText("x", compare(0, "20261124", 0)); v.Delta != "no change" {
		t.Errorf("0 against 0 reads %q", v.Delta)
	}
	if v := comparisonText("x", compare(5, "20261124", 0)); v.Delta != "+5 (new)" || v.Trend != "up" {
		t.Errorf("5 against 0 reads %q (%s)", v.Delta, v.Trend)
	}
	if v := comparisonText("x", compare(1000, "20261124", 2000)); v.Delta != "\u22121,000 (\u221250.0%)" || v.Trend != "down" {
		t.Errorf("1000 against 2000 reads %q (%s)", v.Delta, v.Trend)
	}
}

func TestOverviewDaysAndMonths(t *testing.T) {
	days, err := OverviewDays("20240305")
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != TrendDays+AverageDays-1 || days[len(days)-1] != "20240305" || days[len(days)-6] != "20240229" || days[0] != "20231201" {
		t.Errorf("days %v", days)
	}
	for _, bad := range []string{"", "2026112", "2026-11-25", "20261131", "abcdefgh"} {
		if _, err := OverviewDays(bad); err == nil {
			t.Errorf("OverviewDays(%q) accepted", bad)
		}
	}
	for _, tt := range []struct {
		oldest, newest string
		n              int
		first          string
	}{
		{"20251215", "20260110", 2, "202512"},
		{"20260101", "20260131", 1, "202601"},
		{"20270101", "20260131", 1, "202601"}, // oldest after newest: only newest's month
		{"", "20260131", 1, "202601"},
		{"00010101", "20261125", MaxTrendMonths, "200612"}, // a stamp from year 1 must not draw 24,000 months
	} {
		months, err := OverviewMonths(tt.oldest, tt.newest)
		if err != nil {
			t.Fatal(err)
		}
		if len(months) != tt.n || months[0] != tt.first || months[len(months)-1] != tt.newest[:6] {
			t.Errorf("OverviewMonths(%q, %q) = %d months from %v, want %d from %s", tt.oldest, tt.newest, len(months), months[0], tt.n, tt.first)
		}
	}
}

func TestOverviewWithoutData(t *testing.T) {
	dir := writeOverviewDir(t, Overview{})
	page := readPage(t, dir, OverviewFile)
	if !strings.Contains(page, "No data yet") || strings.Contains(page, "<img") {
		t.Error("an empty overview must say there is no data and show no chart")
	}
	for _, f := range []string{TrendDailyFile, TrendMonthlyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s drawn without data", f)
		}
	}
	doc := readOverviewDoc(t, dir)
	if doc.NewestDay != nil || doc.Newest != "" || doc.Top == nil || doc.TrendDaily == nil {
		t.Errorf("empty overview.json: %+v", doc)
	}
}

func TestOverviewRefusesBadPeriods(t *testing.T) {
	for _, o := range []Overview{
		{Newest: "2026-11-25"},
		{Newest: "20261125", Periods: []PeriodTop{{Period: "<b>"}}},
		{Newest: "20261125", Months: []PeriodCount{{Period: "2026x1"}}},
		{Newest: "20261125", Days: []PeriodCount{{Period: "20261199"}}},
		{Newest: "20261125", New: []NewValues{{Kind: "../x"}}},
		{Newest: "20261125", Periods: []PeriodTop{{Period: "2026", Kinds: []KindTop{{Kind: "<b>"}}}}},
	} {
		if err := WriteOverview(t.TempDir(), o); err == nil {
			t.Errorf("WriteOverview accepted %+v", o)
		}
	}
}

var cellRE = regexp.MustCompile(`<td class="v"(?: title="([^"]*)")?>(.*?)</td>`)

// cellText turns a value cell back into the text a reader sees.
func cellText(t *testing.T, cell string) string {
	t.Helper()
	rest := regexp.MustCompile(`<span class="(?:esc|mark)">|</span>`).ReplaceAllString(cell, "")
	if strings.ContainsAny(rest, "<>") {
		t.Errorf("cell holds markup beyond our spans: %q", cell)
	}
	return html.UnescapeString(rest)
}

// TestOverviewHostileValues puts the nastiest values into the new-value and
// top tables: each cell shows every byte literally (as an escape where it
// cannot be shown) and nothing of them becomes markup.
func TestOverviewHostileValues(t *testing.T) {
	values := hostileValues()
	var entries []Entry
	for i, v := range values {
		entries = append(entries, Entry{Value: v, Count: int64(len(values) - i)})
	}
	o := goldenOverview()
	o.New = []NewValues{{Kind: KindUsername, Count: int64(len(entries)), Top: entries}, {Kind: KindSrc, Count: 1, Top: entries[:1]}}
	for i := range o.Periods {
		for k := range o.Periods[i].Kinds {
			o.Periods[i].Kinds[k].Top = entries[k*3:]
		}
	}
	dir := writeOverviewDir(t, o)
	page := readPage(t, dir, OverviewFile)
	if !utf8.ValidString(page) {
		t.Fatal("page is not UTF-8")
	}
	// The one script is fresh.js, the same on every page; anything else is
	// hostile text that escaped.
	if strings.Count(page, "<script") != 1 || !strings.Contains(page, `<script src="fresh.js"></script>`) {
		t.Errorf("page has scripts besides fresh.js")
	}
	page = strings.Replace(page, `<script src="fresh.js"></script>`, "", 1)
	for _, bad := range []string{"<script", "<svg", "<iframe", "<foreignObject", "<a xlink", "<!--", "<![CDATA", "\x00", "\u202e", "\u2066", "\x7f", "\xff"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if m := regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`).FindString(page); m != "" {
		t.Errorf("event handler in a tag: %q", m)
	}
	for _, m := range regexp.MustCompile(`(?:href|src)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		if u := m[1]; strings.HasPrefix(u, "/") || strings.Contains(u, "//") || (strings.Contains(u, ":") && u != "data:,") {
			t.Errorf("reference %q is not relative", u)
		}
	}
	cells := cellRE.FindAllStringSubmatch(page, -1)
	want := min(NewTop, len(entries)) + 1 + 9*OverviewTop
	if len(cells) != want {
		t.Fatalf("%d value cells, want %d", len(cells), want)
	}
	// The first table is the new user names, in ranking order.
	ranked := rankedCopy(entries)
	for i := 0; i < NewTop; i++ {
		v := ranked[i].Value
		got := cellText(t, cells[i][2])
		title := html.UnescapeString(cells[i][1])
		ps, cut := visiblePieces(v)
		switch {
		case len(ps) == 0:
			if got != "(empty)" {
				t.Errorf("empty value shown as %q", got)
			}
		case !cut && utf8.RuneCountInString(joinPieces(ps)) <= cellRunes:
			if unescape(t, got) != v || title != "" {
				t.Errorf("%q shown as %q (title %q)", v, got, title)
			}
		default:
			// Cut: the cell shows a prefix and says so; the title holds more.
			if !strings.HasSuffix(got, "…") || !strings.HasPrefix(title, strings.TrimSuffix(got, "…")) {
				t.Errorf("long %q shown as %q, title %q", v[:min(len(v), 40)], got, title[:min(len(title), 80)])
			}
			if !cut && unescape(t, title) != v {
				t.Errorf("title of %q does not read back", v[:min(len(v), 40)])
			}
		}
	}
	// The cells of the attacker's markup are text.
	if !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("markup in a value is not shown escaped")
	}
}

func TestValueHTML(t *testing.T) {
	for _, tt := range []struct{ in, html, title string }{
		{"root", "root", ""},
		{"", `<span class="mark">(empty)</span>`, ""},
		{"a<b>&\"'", "a&lt;b&gt;&amp;&#34;&#39;", ""},
		{"a\x00\xffb", `a<span class="esc">\x00\xff</span>b`, ""},
		{" x\u202e", `<span class="esc">\x20</span>x<span class="esc">\u202e</span>`, ""},
		{strings.Repeat("a", cellRunes), strings.Repeat("a", cellRunes), ""},
		{strings.Repeat("a", cellRunes+1), strings.Repeat("a", cellRunes-1) + `<span class="mark">…</span>`, strings.Repeat("a", cellRunes+1)},
		{strings.Repeat("\x00", 21), `<span class="esc">` + strings.Repeat(`\x00`, 19) + `</span><span class="mark">…</span>`, strings.Repeat(`\x00`, 21)},
	} {
		h, title := valueHTML(tt.in)
		if string(h) != tt.html || title != tt.title {
			t.Errorf("valueHTML(%q) = %q, %q; want %q, %q", tt.in, h, title, tt.html, tt.title)
		}
	}
}

func TestWriteStatsJSON(t *testing.T) {
	values := hostileValues()
	var top []Entry
	for i, v := range values {
		top = append(top, Entry{Value: v, Count: int64(i % 4)})
	}
	c := Chart{Period: "20261125", Kind: KindSrc, Top: top, Total: 1000, Distinct: 77}
	var a, b bytes.Buffer
	if err := WriteStatsJSON(&a, c); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatsJSON(&b, c); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() || strings.Count(a.String(), "\n") != 1 || !strings.HasSuffix(a.String(), "\n") {
		t.Fatal("stats JSON is not one deterministic line")
	}
	for _, bad := range []string{"<", ">", "\u2028", "\x00"} {
		if strings.Contains(a.String(), bad) {
			t.Errorf("stats JSON holds a raw %q", bad)
		}
	}
	var doc statsJSON
	if err := json.Unmarshal(a.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Period != c.Period || doc.Kind != c.Kind || doc.Attempts != 1000 || doc.Distinct != 77 || len(doc.Top) != len(top) {
		t.Fatalf("stats JSON %+v", doc)
	}
	ranked := rankedCopy(top)
	for i, e := range doc.Top {
		got := e.Value
		if e.ValueB64 != "" {
			raw, err := base64.StdEncoding.DecodeString(e.ValueB64)
			if err != nil {
				t.Fatal(err)
			}
			got = string(raw)
			if utf8.ValidString(got) {
				t.Errorf("value_b64 for valid UTF-8 %q", got)
			}
		}
		if got != ranked[i].Value || e.Count != ranked[i].Count {
			t.Errorf("entry %d reads back as %q %d, want %q %d", i, got, e.Count, ranked[i].Value, ranked[i].Count)
		}
	}
	if JSONPath("2026", "host") != filepath.Join("2026", "2026:statshost.json") {
		t.Error(JSONPath("2026", "host"))
	}
}

func TestTrendCharts(t *testing.T) {
	var many []PeriodCount
	months, _ := OverviewMonths("00010101", "20261125")
	for i, m := range months {
		many = append(many, PeriodCount{Period: m, Attempts: int64(i * 1000)})
	}
	quiet := make([]trendDay, TrendDays)
	for i := range quiet {
		quiet[i].Period = fmt.Sprintf("202609%02d", 1+i%30)
	}
	for name, c := range map[string]trendChart{
		"golden daily":   dailyTrendChart(dailyTrend(goldenOverview())),
		"golden monthly": monthlyTrendChart(goldenOverview().Months),
		"240 months":     monthlyTrendChart(many),
		"one month":      monthlyTrendChart([]PeriodCount{{Period: "202611", Attempts: 5}}),
		"no attempts":    dailyTrendChart(quiet),
		"huge":           monthlyTrendChart([]PeriodCount{{Period: "202610", Attempts: 1 << 50}, {Period: "202611", Attempts: 1}}),
	} {
		var buf bytes.Buffer
		if err := writeTrendSVG(&buf, c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		text := svgCheck(t, buf.Bytes())
		if !strings.Contains(buf.String(), `width="1000" height="380"`) {
			t.Errorf("%s: not the fixed size", name)
		}
		if name == "no attempts" && !strings.Contains(text, "No attempts in these 90 days") {
			t.Errorf("%s: does not say so: %q", name, text)
		}
		if name == "240 months" && strings.Count(text, "20") > 30 {
			t.Errorf("%s: too many axis labels: %q", name, text)
		}
	}
}
