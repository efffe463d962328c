package render

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func readPage(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pageIndexJSON extracts and decodes the index embedded in a page.
func pageIndexJSON(t *testing.T, page string) pageIndex {
	t.Helper()
	const open = `<script type="application/json" id="alog-index">`
	i := strings.Index(page, open)
	if i < 0 {
		t.Fatal("page has no index script")
	}
	rest := page[i+len(open):]
	j := strings.Index(rest, "</script>")
	if j < 0 {
		t.Fatal("index script is not closed")
	}
	var pi pageIndex
	if err := json.Unmarshal([]byte(rest[:j]), &pi); err != nil {
		t.Fatalf("index is not JSON: %v\n%s", err, rest[:j])
	}
	return pi
}

func TestWritePages(t *testing.T) {
	dir := t.TempDir()
	idx := goldenIndex()
	if err := WritePages(dir, idx); err != nil {
		t.Fatal(err)
	}
	js := readPage(t, dir, "load.js")
	if js != loadJS || !strings.Contains(js, "addEventListener('error'") {
		t.Error("load.js is not the embedded script")
	}
	for _, p := range pages() {
		page := readPage(t, dir, p.File)
		pi := pageIndexJSON(t, page)
		if pi.Newest != idx.Newest || strings.Join(pi.Days, ",") != strings.Join(idx.Days, ",") ||
			strings.Join(pi.Months, ",") != strings.Join(idx.Months, ",") || strings.Join(pi.Years, ",") != strings.Join(idx.Years, ",") {
			t.Errorf("%s: index %+v, want %+v", p.File, pi, idx)
		}
		if !strings.Contains(page, `<body data-page="`+p.Name+`">`) {
			t.Errorf("%s: does not name its page for the script", p.File)
		}
		// Every reference is relative, so the pages work under any path.
		for _, m := range regexp.MustCompile(`(?:href|src)="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			u := m[1]
			if strings.HasPrefix(u, "/") || strings.Contains(u, "//") || (strings.Contains(u, ":") && u != "data:,") {
				t.Errorf("%s: reference %q is not relative", p.File, u)
			}
		}
		// The navigation links every page, the overview first.
		for _, other := range navPages() {
			if !strings.Contains(page, `href="`+other.File+`"`) {
				t.Errorf("%s: no link to %s", p.File, other.File)
			}
		}
		if i := strings.Index(page, `<a id="nav-overview" href="index.html">Overview</a>`); i < 0 || i > strings.Index(page, `id="nav-daily"`) {
			t.Errorf("%s: the overview is not the first link of the navigation", p.File)
		}
		if regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(page) {
			t.Errorf("%s: inline event handler", p.File)
		}
		if strings.Count(page, "<script") != 3 || !strings.Contains(page, `<script src="load.js"></script>`) || !strings.Contains(page, `<script src="fresh.js"></script>`) {
			t.Errorf("%s: want exactly the index, load.js and fresh.js scripts", p.File)
		}
	}
	daily := readPage(t, dir, "dailystatistics.html")
	// The day is typed and shown as YYYY-MM-DD whatever the browser's
	// locale: a text field with a pattern, never type=date.
	if !strings.Contains(daily, `<input type="text" id="day" inputmode="numeric" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" placeholder="YYYY-MM-DD"`) || strings.Contains(daily, `type="date"`) {
		t.Error("daily page has no ISO day field")
	}
	monthly := readPage(t, dir, "monthlystatistics.html")
	if !strings.Contains(monthly, `<select id="year">`) || !strings.Contains(monthly, `<select id="month">`) {
		t.Error("monthly page lacks the year and month selects")
	}
	// Without JavaScript the newest period's charts are still there.
	for _, k := range kindNames() {
		if !strings.Contains(daily, `<img src="20261125/20261125%3Astats`+k+`.svg"`) {
			t.Errorf("daily page lacks the newest %s chart for browsers without JavaScript", k)
		}
	}
}

func TestWritePagesEmptyIndex(t *testing.T) {
	dir := t.TempDir()
	if err := WritePages(dir, Index{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pages() {
		page := readPage(t, dir, p.File)
		pi := pageIndexJSON(t, page)
		if pi.Days == nil || pi.Months == nil || pi.Years == nil {
			t.Errorf("%s: empty lists must be [] for the script, got %+v", p.File, pi)
		}
		if !strings.Contains(page, "No data yet") {
			t.Errorf("%s: says nothing when there is no data", p.File)
		}
	}
}

// TestWritePagesHostileIndex feeds markup through every index field. Real
// periods are digits, but the templates must escape whatever they get.
func TestWritePagesHostileIndex(t *testing.T) {
	evil := []string{
		`</script><script>alert(1)</script>`,
		`"><img src=x onerror=alert(1)>`,
		`<!--`, `]]>`, "\u2028\u2029", "javascript:alert(1)", "\xff\x00",
	}
	dir := t.TempDir()
	idx := Index{Oldest: evil[0], Newest: evil[1], Days: evil, Months: evil, Years: evil}
	if err := WritePages(dir, idx); err != nil {
		t.Fatal(err)
	}
	for _, p := range pages() {
		page := readPage(t, dir, p.File)
		pi := pageIndexJSON(t, page)
		// Inside the JSON the values are inert strings, as long as nothing
		// in them can end the script element or a JavaScript line.
		const open = `<script type="application/json" id="alog-index">`
		start := strings.Index(page, open) + len(open)
		end := start + strings.Index(page[start:], "</script>")
		data, rest := page[start:end], page[:start]+page[end:]
		for _, bad := range []string{"<", ">", "\u2028", "\u2029", "\x00"} {
			if strings.Contains(data, bad) {
				t.Errorf("%s: index JSON holds a raw %q", p.File, bad)
			}
		}
		for _, bad := range []string{"<script>alert", "<img src=x", "onerror", "<!--", "javascript:", "\x00", "\u2028"} {
			if strings.Contains(rest, bad) {
				t.Errorf("%s contains %q outside the index data", p.File, bad)
			}
		}
		if pi.Oldest != evil[0] || pi.Newest != evil[1] || len(pi.Days) != len(evil) || pi.Days[0] != evil[0] {
			t.Errorf("%s: index did not survive as data: %+v", p.File, pi)
		}
	}
}
