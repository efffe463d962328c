package render

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

//go:embed assets/overview.html.tmpl
var overviewTemplate string

// The overview's shape. They are part of what the page promises, so the
// caller reads exactly the periods they imply (OverviewDays, OverviewMonths).
const (
	// TrendDays is how many calendar days the daily trend shows, ending at
	// the newest day.
	TrendDays = 90
	// AverageDays is the trailing window of the daily trend's moving average.
	AverageDays = 7
	// MaxTrendMonths bounds the monthly trend (twenty years): one stamp
	// from the year 1000 in an attacker's line must not turn the chart
	// into twelve thousand empty months.
	MaxTrendMonths = 240
	// OverviewTop is how many values the period tables list per kind.
	OverviewTop = 10
	// NewTop is how many of the values first seen on the newest day are
	// listed; the CSV beside the page holds all of them.
	NewTop = 25
)

// Files of the overview, in the sshd output directory.
const (
	OverviewFile     = "index.html"
	OverviewJSONFile = "overview.json"
	TrendDailyFile   = "trend-daily.svg"
	TrendMonthlyFile = "trend-monthly.svg"
)

// NewCSVPath gives the path of the full list of values of kind first seen
// on day, relative to the sshd output directory:
// "<day>/<day>:new<kind>.csv".
func NewCSVPath(day, kind string) string {
	return filepath.Join(day, day+":new"+kind+".csv")
}

// PeriodCount is the attempts of one period.
type PeriodCount struct {
	Period   string
	Attempts int64
}

// KindTop is one kind's part of a period: its distinct values and the most
// tried of them.
type KindTop struct {
	Kind     string
	Distinct int64
	Top      []Entry // count desc, then value; at most OverviewTop are shown
}

// PeriodTop is a period's attempts and its KindTop for each kind.
type PeriodTop struct {
	Period   string
	Attempts int64
	Kinds    []KindTop
}

// NewValues are the values of one kind first seen on the newest day.
type NewValues struct {
	Kind  string
	Count int64   // how many values were first seen that day
	Top   []Entry // the most tried of them (count desc, then value), at most NewTop shown
}

// Overview is everything index.html shows, as plain data.
type Overview struct {
	Oldest, Newest string // YYYYMMDD; Newest is "" until something is counted
	// Days are the days OverviewDays(Newest) names, oldest first, with
	// their attempts (0 for a day without data).
	Days []PeriodCount
	// Months are the months OverviewMonths(Oldest, Newest) names.
	Months []PeriodCount
	// Periods are the newest day, its month and its year, in that order.
	Periods []PeriodTop
	// New holds, per kind, the values first seen on the newest day.
	New []NewValues
	// Kinds are the kinds counted, in page order (nil: the three of
	// every line; country and asn join them when configured).
	Kinds []string
	// Names holds, by named kind, the names beside its values shown.
	Names map[string]Names
}

const dayLayout = "20060102"

// parseDay reads a yyyymmdd period as a calendar date (UTC: only the
// calendar matters, never an instant).
func parseDay(p string) (time.Time, error) {
	if len(p) != 8 || !kinds.Digits(p) {
		return time.Time{}, fmt.Errorf("%q is not a day (yyyymmdd)", p)
	}
	t, err := time.Parse(dayLayout, p)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a day: %w", p, err)
	}
	return t, nil
}

// OverviewDays names the calendar days the overview needs, oldest first,
// ending at newest: the TrendDays of the trend and the AverageDays-1
// before them, over which the first days' moving average runs. The day
// before newest and the one a week before are among them.
func OverviewDays(newest string) ([]string, error) {
	end, err := parseDay(newest)
	if err != nil {
		return nil, fmt.Errorf("overview days: %w", err)
	}
	n := TrendDays + AverageDays - 1
	out := make([]string, n)
	for i := range out {
		out[i] = end.AddDate(0, 0, i-(n-1)).Format(dayLayout)
	}
	return out, nil
}

// OverviewMonths names every month from oldest's to newest's, at most the
// last MaxTrendMonths, oldest first. An oldest that is not a day before
// newest counts as newest.
func OverviewMonths(oldest, newest string) ([]string, error) {
	end, err := parseDay(newest)
	if err != nil {
		return nil, fmt.Errorf("overview months: %w", err)
	}
	start := end
	if t, err := parseDay(oldest); err == nil && t.Before(end) {
		start = t
	}
	n := (end.Year()-start.Year())*12 + int(end.Month()) - int(start.Month()) + 1
	n = min(n, MaxTrendMonths)
	first := time.Date(end.Year(), end.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -(n - 1), 0)
	out := make([]string, n)
	for i := range out {
		out[i] = first.AddDate(0, i, 0).Format("200601")
	}
	return out, nil
}

// trendDay is one day of the daily trend.
type trendDay struct {
	Period   string
	Attempts int64
	Average  float64 // over the trailing AverageDays from Oldest on
}

// dailyTrend returns the last TrendDays of o.Days with their moving
// average. The average of a day runs over the AverageDays calendar days
// ending at it that are not before Oldest: before the first attempt was
// counted, nobody was counting, and averaging those days in as zeros would
// show a rise that never happened.
func dailyTrend(o Overview) []trendDay {
	days := o.Days
	first := max(0, len(days)-TrendDays)
	out := make([]trendDay, 0, len(days)-first)
	for i := first; i < len(days); i++ {
		var sum, n int64
		for j := max(0, i-AverageDays+1); j <= i; j++ {
			if days[j].Period >= o.Oldest {
				sum += days[j].Attempts
				n++
			}
		}
		var avg float64
		if n > 0 {
			avg = float64(sum) / float64(n)
		}
		out = append(out, trendDay{Period: days[i].Period, Attempts: days[i].Attempts, Average: avg})
	}
	return out
}

// comparison is the newest day against an earlier one.
type comparison struct {
	Period   string
	Attempts int64    // on Period
	Change   int64    // newest minus Period
	Percent  *float64 // Change relative to Period's attempts, to 0.1; nil when Period had none
}

func compare(newest int64, period string, attempts int64) comparison {
	c := comparison{Period: period, Attempts: attempts, Change: newest - attempts}
	if attempts != 0 {
		p := round1(float64(c.Change) / float64(attempts) * 100)
		c.Percent = &p
	}
	return c
}

// round1 rounds to one decimal, the precision the page and the JSON show.
func round1(x float64) float64 { return math.Round(x*10) / 10 }

// figures are the overview's numbers, derived once for the page and the
// JSON so that both always say the same.
type figures struct {
	newest     string
	attempts   int64
	distinct   map[string]int64
	prev, week comparison
	daily      []trendDay
	monthly    []PeriodCount
	periods    []PeriodTop
	newValues  []NewValues
	kinds      []string
	names      map[string]Names
}

func deriveFigures(o Overview) (figures, error) {
	end, err := parseDay(o.Newest)
	if err != nil {
		return figures{}, fmt.Errorf("newest day: %w", err)
	}
	f := figures{newest: o.Newest, distinct: map[string]int64{}, monthly: o.Months, newValues: o.New, kinds: o.Kinds, names: o.Names}
	if f.kinds == nil {
		f.kinds = kindNames()
	}
	for _, k := range f.kinds {
		if !knownKind(k) {
			return figures{}, fmt.Errorf("overview kind %q is not one of %v", k, kindNames())
		}
	}
	byDay := make(map[string]int64, len(o.Days))
	for _, d := range o.Days {
		byDay[d.Period] = d.Attempts
	}
	f.attempts = byDay[o.Newest]
	for _, p := range o.Periods {
		if formatPeriod(p.Period) == "" {
			return figures{}, fmt.Errorf("overview period %q is not a day, month or year", p.Period)
		}
		for _, k := range p.Kinds {
			if !knownKind(k.Kind) {
				return figures{}, fmt.Errorf("overview kind %q is not one of %v", k.Kind, kindNames())
			}
		}
		if p.Period == o.Newest {
			f.attempts = p.Attempts
			for _, k := range p.Kinds {
				f.distinct[k.Kind] = k.Distinct
			}
		}
		f.periods = append(f.periods, p)
	}
	for _, n := range o.New {
		if !knownKind(n.Kind) {
			return figures{}, fmt.Errorf("new-value kind %q is not one of %v", n.Kind, kindNames())
		}
	}
	for _, m := range o.Months {
		if len(m.Period) != 6 || formatPeriod(m.Period) == "" {
			return figures{}, fmt.Errorf("trend month %q is not yyyymm", m.Period)
		}
	}
	for _, d := range o.Days {
		if _, err := parseDay(d.Period); err != nil {
			return figures{}, fmt.Errorf("trend day: %w", err)
		}
	}
	prev := end.AddDate(0, 0, -1).Format(dayLayout)
	week := end.AddDate(0, 0, -7).Format(dayLayout)
	f.prev = compare(f.attempts, prev, byDay[prev])
	f.week = compare(f.attempts, week, byDay[week])
	f.daily = dailyTrend(o)
	return f, nil
}

// knownKind keeps names that end up in file names and URLs to our own.
func knownKind(k string) bool { return kinds.Known(k) }

// WriteOverview writes the overview into dir (the sshd output directory):
// the two trend charts, overview.json with exactly the figures the page
// shows, and index.html, each atomically and in that order, so that the
// page never links to a chart older than itself. With no data yet
// (o.Newest empty) the page says so and no chart is drawn.
//
// Everything written depends on o only: no clock, no map order, so the
// same statistics give the same bytes (a flush reproduces the overview).
// The new-value CSVs are the caller's to write (NewCSVPath, WriteCSV).
func WriteOverview(dir string, o Overview) error {
	tmpl, err := parseTemplate("overview", overviewTemplate)
	if err != nil {
		return err
	}
	view := overviewView{Page: overviewPage(), Pages: navPages()}
	doc := overviewJSON{Oldest: o.Oldest, Newest: o.Newest, New: map[string]newJSON{}, Top: []periodJSON{}, TrendDaily: []trendDayJSON{}, TrendMonthly: []countJSON{}}
	if o.Newest != "" {
		f, err := deriveFigures(o)
		if err != nil {
			return fmt.Errorf("overview: %w", err)
		}
		daily, monthly := dailyTrendChart(f.daily), monthlyTrendChart(f.monthly)
		for _, t := range []struct {
			file string
			c    trendChart
		}{{TrendDailyFile, daily}, {TrendMonthlyFile, monthly}} {
			err := WriteFileAtomic(filepath.Join(dir, t.file), func(w io.Writer) error { return writeTrendSVG(w, t.c) })
			if err != nil {
				return fmt.Errorf("write trend chart: %w", err)
			}
		}
		view.fill(f, daily, monthly)
		doc.fill(f)
	}
	err = WriteFileAtomic(filepath.Join(dir, OverviewJSONFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	})
	if err != nil {
		return fmt.Errorf("write overview json: %w", err)
	}
	if err := writeAssets(dir); err != nil {
		return err
	}
	err = WriteFileAtomic(filepath.Join(dir, OverviewFile), func(w io.Writer) error { return tmpl.Execute(w, view) })
	if err != nil {
		return fmt.Errorf("write overview page: %w", err)
	}
	return nil
}

// overviewJSON is overview.json: the page's figures for scripts and tests.
type overviewJSON struct {
	Oldest       string             `json:"oldest"`
	Newest       string             `json:"newest"`
	NewestDay    *dayJSON           `json:"newest_day"`
	New          map[string]newJSON `json:"new"`
	Top          []periodJSON       `json:"top"`
	TrendDaily   []trendDayJSON     `json:"trend_daily"`
	TrendMonthly []countJSON        `json:"trend_monthly"`
}

type dayJSON struct {
	Period      string           `json:"period"`
	Attempts    int64            `json:"attempts"`
	Distinct    map[string]int64 `json:"distinct"`
	PreviousDay changeJSON       `json:"previous_day"`
	WeekBefore  changeJSON       `json:"week_before"`
}

type changeJSON struct {
	Period   string   `json:"period"`
	Attempts int64    `json:"attempts"`
	Change   int64    `json:"change"`
	Percent  *float64 `json:"percent"`
}

type newJSON struct {
	Count int64       `json:"count"`
	CSV   string      `json:"csv"`
	Top   []jsonEntry `json:"top"`
}

type periodJSON struct {
	Period   string                 `json:"period"`
	Attempts int64                  `json:"attempts"`
	Distinct map[string]int64       `json:"distinct"`
	Top      map[string][]jsonEntry `json:"top"`
}

type trendDayJSON struct {
	Period    string  `json:"period"`
	Attempts  int64   `json:"attempts"`
	Average7d float64 `json:"average_7d"`
}

type countJSON struct {
	Period   string `json:"period"`
	Attempts int64  `json:"attempts"`
}

func changeDoc(c comparison) changeJSON {
	return changeJSON{Period: c.Period, Attempts: c.Attempts, Change: c.Change, Percent: c.Percent}
}

func (doc *overviewJSON) fill(f figures) {
	doc.NewestDay = &dayJSON{
		Period:      f.newest,
		Attempts:    f.attempts,
		Distinct:    f.distinct,
		PreviousDay: changeDoc(f.prev),
		WeekBefore:  changeDoc(f.week),
	}
	for _, n := range f.newValues {
		top := rankedCopy(n.Top)
		doc.New[n.Kind] = newJSON{
			Count: n.Count,
			CSV:   filepath.ToSlash(NewCSVPath(f.newest, n.Kind)),
			Top:   jsonEntries(top[:min(len(top), NewTop)], f.names[n.Kind]),
		}
	}
	for _, p := range f.periods {
		pj := periodJSON{Period: p.Period, Attempts: p.Attempts, Distinct: map[string]int64{}, Top: map[string][]jsonEntry{}}
		for _, k := range p.Kinds {
			top := rankedCopy(k.Top)
			pj.Distinct[k.Kind] = k.Distinct
			pj.Top[k.Kind] = jsonEntries(top[:min(len(top), OverviewTop)], f.names[k.Kind])
		}
		doc.Top = append(doc.Top, pj)
	}
	for _, d := range f.daily {
		doc.TrendDaily = append(doc.TrendDaily, trendDayJSON{Period: d.Period, Attempts: d.Attempts, Average7d: round1(d.Average)})
	}
	for _, m := range f.monthly {
		doc.TrendMonthly = append(doc.TrendMonthly, countJSON(m))
	}
}

// overviewView is what the overview template sees. Every value an
// attacker chose arrives as template.HTML built by valueHTML, every other
// string is ours and escaped by html/template.
type overviewView struct {
	Page    page
	Pages   []page
	HasData bool

	Day         string // "2026-11-25"
	Weekday     string
	DayLink     string
	Attempts    string
	Comparisons []comparisonView
	Distinct    []distinctView

	Trends  []trendView
	TopN    int
	New     []newView
	Periods []periodView
}

type comparisonView struct {
	Label, Day, Link string
	Attempts         string // on that day
	Delta            string // "+1,234 (+12.5%)", "−12 (−0.4%)", "new", "no change"
	Trend            string // "up", "down" or "same": the CSS class
}

type distinctView struct {
	Label, Count, Link string
	New                string // "12 new", or "" when there is no new-value list
}

type trendView struct {
	ID, Src, Alt  string
	Width, Height int
}

type newView struct {
	Kind, Label, Noun string
	Count             string
	None              bool
	Rows              []rowView
	CSV               string
}

type rowView struct {
	Rank  int
	Value template.HTML
	Title string // the longer visible form when Value is cut, else ""
	Count string
	Share string // of the period's attempts, "12.3%"; "" when not shown
}

type periodView struct {
	Heading, Summary, Link string
	Kinds                  []kindView
}

type kindView struct {
	Label, Distinct  string
	Link             string // the statistics page showing this chart
	Chart, CSV, JSON string
	Rows             []rowView
	NoneText         string
}

func weekday(p string) string {
	t, err := parseDay(p)
	if err != nil {
		return ""
	}
	return t.Weekday().String()
}

// pageLink is the statistics page showing period and kind, by fragment.
func pageLink(period, kind string) string {
	file := ""
	switch len(period) {
	case 8:
		file = "dailystatistics.html"
	case 6:
		file = "monthlystatistics.html"
	case 4:
		file = "yearlystatistics.html"
	}
	if file == "" || formatPeriod(period) == "" {
		return ""
	}
	return file + "#" + period + "/" + kind
}

// signed formats n with its sign; the minus is U+2212, which reads as a
// minus where a hyphen would look like a dash.
func signed(n int64) string {
	switch {
	case n > 0:
		return "+" + groupThousands(n)
	case n < 0:
		return "\u2212" + groupThousands(-n)
	}
	return "0"
}

func percentText(p float64) string {
	s := fmt.Sprintf("%.1f%%", math.Abs(p))
	switch {
	case p > 0:
		return "+" + s
	case p < 0:
		return "\u2212" + s
	}
	return s
}

func comparisonText(label string, c comparison) comparisonView {
	v := comparisonView{Label: label, Day: formatPeriod(c.Period), Link: pageLink(c.Period, KindUsername), Attempts: groupThousands(c.Attempts)}
	switch {
	case c.Change == 0:
		v.Delta, v.Trend = "no change", "same"
	case c.Percent == nil:
		// The other day had no attempts: a percentage would be infinite.
		v.Delta, v.Trend = signed(c.Change)+" (new)", "up"
	default:
		v.Delta = signed(c.Change) + " (" + percentText(*c.Percent) + ")"
		v.Trend = "up"
		if c.Change < 0 {
			v.Trend = "down"
		}
	}
	return v
}

func (v *overviewView) fill(f figures, daily, monthly trendChart) {
	v.HasData = true
	v.Day = formatPeriod(f.newest)
	v.Weekday = weekday(f.newest)
	v.DayLink = pageLink(f.newest, KindUsername)
	v.Attempts = groupThousands(f.attempts)
	v.Comparisons = []comparisonView{
		comparisonText("the day before", f.prev),
		comparisonText(weekday(f.week.Period)+" a week before", f.week),
	}
	newCount := map[string]int64{}
	for _, n := range f.newValues {
		newCount[n.Kind] = n.Count
	}
	for _, k := range f.kinds {
		d := distinctView{Label: "Distinct " + kindNoun(k), Count: groupThousands(f.distinct[k]), Link: pageLink(f.newest, k)}
		if n, ok := newCount[k]; ok {
			d.New = groupThousands(n) + " first seen on this day"
		}
		v.Distinct = append(v.Distinct, d)
	}
	v.Trends = []trendView{
		{ID: "trend-daily", Src: TrendDailyFile, Alt: daily.title + ". " + daily.summary, Width: trendWidth, Height: trendHeight},
		{ID: "trend-monthly", Src: TrendMonthlyFile, Alt: monthly.title + ". " + monthly.summary, Width: trendWidth, Height: trendHeight},
	}
	v.TopN = OverviewTop

	for _, n := range f.newValues {
		top := rankedCopy(n.Top)
		top = top[:min(len(top), NewTop)]
		nv := newView{
			Kind: n.Kind, Label: KindLabel(n.Kind), Noun: kindNoun(n.Kind),
			Count: groupThousands(n.Count), None: len(top) == 0,
			Rows: rows(top, 0, f.names[n.Kind]),
			CSV:  fileURL(NewCSVPath(f.newest, n.Kind)),
		}
		v.New = append(v.New, nv)
	}
	for i, p := range f.periods {
		pv := periodView{Summary: groupThousands(p.Attempts) + " attempts", Link: pageLink(p.Period, KindUsername)}
		switch len(p.Period) {
		case 8:
			pv.Heading = "Day " + formatPeriod(p.Period)
		case 6:
			pv.Heading = "Month " + formatPeriod(p.Period)
		default:
			pv.Heading = "Year " + formatPeriod(p.Period)
		}
		if i == 0 && p.Period == f.newest {
			pv.Heading = "Newest day " + formatPeriod(p.Period)
		}
		for _, k := range p.Kinds {
			top := rankedCopy(k.Top)
			top = top[:min(len(top), OverviewTop)]
			kv := kindView{
				Label: KindLabel(k.Kind), Distinct: groupThousands(k.Distinct) + " distinct",
				Link:  pageLink(p.Period, k.Kind),
				Chart: chartURL(p.Period, k.Kind, ".svg"), CSV: chartURL(p.Period, k.Kind, ".csv"), JSON: chartURL(p.Period, k.Kind, ".json"),
				Rows: rows(top, p.Attempts, f.names[k.Kind]),
			}
			if len(top) == 0 {
				kv.NoneText = "No " + kindNoun(k.Kind) + " in this period."
			}
			pv.Kinds = append(pv.Kinds, kv)
		}
		v.Periods = append(v.Periods, pv)
	}
}

// rows renders ranked entries for a table. With total > 0 each row also
// carries its share of the period's attempts.
func rows(entries []Entry, total int64, names Names) []rowView {
	out := make([]rowView, len(entries))
	for i, e := range entries {
		// The organisation beside "AS…", the country beside its code.
		html, title := valueHTML(names.label(e.Value))
		r := rowView{Rank: i + 1, Value: html, Title: title, Count: groupThousands(e.Count)}
		if total > 0 {
			r.Share = strings.Trim(share(e.Count, total), "()")
		}
		out[i] = r
	}
	return out
}

// fileURL is the relative URL of a file under the sshd directory; the
// colon of "20261125:newsrc.csv" is encoded so that it is never read as a
// URL scheme.
func fileURL(rel string) string {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for i, p := range parts {
		parts[i] = escapePathPart(p)
	}
	return strings.Join(parts, "/")
}

// cellRunes is how many characters of a value a table cell shows; the
// cell's title and the CSV have the rest. It counts what is shown, escapes
// included, so that a value of invisible characters takes no more room
// than one of letters.
const cellRunes = 80

// valueHTML shows a value an attacker chose in a table cell: every byte
// through visiblePieces, plain text escaped, escapes and markers of ours in
// spans that set them apart. The result is safe to place as element
// content. title is the longer visible form (up to visiblePieces' bound)
// when the cell shows only the start of the value, "" otherwise.
func valueHTML(v string) (html template.HTML, title string) {
	ps, cut := visiblePieces(v)
	if len(ps) == 0 && !cut {
		return template.HTML(`<span class="mark">(empty)</span>`), ""
	}
	fitting := func(limit int) int {
		n := 0
		for i, p := range ps {
			if n += utf8.RuneCountInString(p.s); n > limit {
				return i
			}
		}
		return len(ps)
	}
	if cut || fitting(cellRunes) < len(ps) {
		title = joinPieces(ps)
		if cut {
			title += "…"
		}
		n := fitting(cellRunes - 1)
		ps = append(ps[:n:n], piece{"…", marker})
	}
	var b strings.Builder
	for i := 0; i < len(ps); {
		k := ps[i].kind
		var run strings.Builder
		for ; i < len(ps) && ps[i].kind == k; i++ {
			run.WriteString(ps[i].s)
		}
		text := template.HTMLEscapeString(run.String())
		switch k {
		case plain:
			b.WriteString(text)
		case escape:
			b.WriteString(`<span class="esc">` + text + `</span>`)
		case marker:
			b.WriteString(`<span class="mark">` + text + `</span>`)
		}
	}
	return template.HTML(b.String()), title
}

// escapePathPart escapes one segment of a relative URL, colon included.
func escapePathPart(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), ":", "%3A")
}
