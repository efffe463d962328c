package render

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// probeJS is added to every page the fixed-page tests serve (the test
// server injects it, the pages do not carry it): once the page has settled
// it writes what only a script can measure into the DOM that
// --dump-dom returns: the scroll width, the colour scheme in force and the
// colours the charts were actually painted with.
const probeJS = `'use strict';
setTimeout(function () {
  const css = function (sel, prop) {
    const n = document.querySelector(sel);
    return n ? getComputedStyle(n)[prop] : '';
  };
  const tops = new Set();
  document.querySelectorAll('#panels > section.panel').forEach(function (s) { tops.add(s.offsetTop); });
  document.documentElement.setAttribute('data-probe', JSON.stringify({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    dark: matchMedia('(prefers-color-scheme: dark)').matches,
    body: css('body', 'backgroundColor'),
    panel: css('section.panel', 'backgroundColor'),
    bar: css('svg.bars rect.bar', 'fill'),
    label: css('svg.bars text', 'fill'),
    rows: tops.size,
    images: Array.from(document.images).filter(function (i) { return i.offsetParent !== null; }).map(function (i) {
      return { id: i.id, width: i.getBoundingClientRect().width, right: i.getBoundingClientRect().right, loaded: i.complete && i.naturalWidth > 0 };
    }),
  }));
}, 3000);
`

// frameJS runs in the test's frame page: headless Chromium will not make a
// window narrower than 500 px, so a phone's 390 px viewport is an iframe of
// that width; once the page in it has settled, its DOM is copied into the
// frame page's, which --dump-dom returns.
const frameJS = `'use strict';
(function copy() {
  const d = document.getElementById('f').contentDocument;
  if (d && d.documentElement && d.documentElement.hasAttribute('data-probe')) {
    document.getElementById('inner').textContent = d.documentElement.outerHTML;
    return;
  }
  setTimeout(copy, 250);
}());
`

type probe struct {
	ScrollWidth int    `json:"scrollWidth"`
	InnerWidth  int    `json:"innerWidth"`
	Dark        bool   `json:"dark"`
	Body        string `json:"body"`
	Panel       string `json:"panel"`
	Bar         string `json:"bar"`
	Label       string `json:"label"`
	Rows        int    `json:"rows"`
	Images      []struct {
		ID     string  `json:"id"`
		Width  float64 `json:"width"`
		Right  float64 `json:"right"`
		Loaded bool    `json:"loaded"`
	} `json:"images"`
}

// withProbe serves inner with the probe added to every HTML page, and the
// frame page that shows a page in an iframe of a given width (frame.html?
// src=PATH&w=PX) and copies its DOM out once the probe has run.
func withProbe(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/probe.js", "/frame.js":
			w.Header().Set("Content-Type", "text/javascript")
			_, _ = io.WriteString(w, map[string]string{"/probe.js": probeJS, "/frame.js": frameJS}[r.URL.Path])
			return
		case "/frame.html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body style="margin:0"><iframe id="f" src="%s" style="border:0;width:%spx;height:844px"></iframe><textarea id="inner"></textarea><script src="/frame.js"></script></body></html>`,
				html.EscapeString(r.URL.Query().Get("src")), html.EscapeString(r.URL.Query().Get("w")))
			return
		}
		if !strings.HasSuffix(r.URL.Path, ".html") && !strings.HasSuffix(r.URL.Path, "/") {
			inner.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		r.Header.Del("If-Modified-Since")
		inner.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(bytes.Replace(rec.Body.Bytes(), []byte("</body>"), []byte(`<script src="/probe.js"></script></body>`), 1))
	})
}

// framedDOM loads path of srv in an iframe width px wide, light or dark,
// and returns the page's DOM once the probe has run, its probe, and the
// browser's log.
func framedDOM(t *testing.T, chromium, srv, path string, width int, dark bool) (string, probe, string) {
	t.Helper()
	extra := []string{fmt.Sprintf("--window-size=%d,900", max(width, 500)+40)}
	if dark {
		extra = append(extra, "--force-dark-mode", "--blink-settings=preferredColorScheme=0")
	}
	frame := srv + "/frame.html?" + url.Values{"src": {path}, "w": {strconv.Itoa(width)}}.Encode()
	outer, logs := dumpDOM(t, chromium, frame, extra...)
	m := regexp.MustCompile(`(?s)<textarea id="inner">(.*?)</textarea>`).FindStringSubmatch(outer)
	if m == nil {
		t.Fatalf("the frame page did not copy the page's DOM: %s", outer)
	}
	dom := html.UnescapeString(m[1])
	var pr probe
	p := regexp.MustCompile(`data-probe="([^"]*)"`).FindStringSubmatch(dom)
	if p == nil {
		t.Fatalf("the page did not settle: no probe")
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(p[1])), &pr); err != nil {
		t.Fatalf("probe %q: %v", p[1], err)
	}
	if pr.InnerWidth != width || pr.ScrollWidth > width {
		t.Errorf("%s: window %d px wide, page %d px wide: something is cut off or scrolls sideways", path, pr.InnerWidth, pr.ScrollWidth)
	}
	if pr.Dark != dark {
		t.Errorf("%s: dark colour scheme %v, want %v", path, pr.Dark, dark)
	}
	return dom, pr, logs
}

// hostileTop is a ranking whose values a browser, a terminal or a
// spreadsheet would misread if shown raw.
func hostileTop(kind string) []Entry {
	long := strings.Repeat("very-long-user-name-", 5)
	switch kind {
	case KindUsername:
		return []Entry{{"root", 1204}, {"<b>x</b>&amp;", 40}, {"\xff\xfeinvalid", 31}, {"a\x1b[31mred", 22},
			{"\u202eevil", 17}, {"=cmd|' /C calc'!A0", 12}, {"", 9}, {long, 7}, {`back\slash`, 5}, {"'quoted", 3}}
	case KindSrc:
		return []Entry{{"192.0.2.7", 300}, {"2001:db8::1", 120}, {"scanner.example.net", 2}}
	}
	return []Entry{{"sensor-" + kind, 50}}
}

// writeFixedSite writes, for every period of idx and every kind, the
// chart, the CSV and the JSON a compile writes.
func writeFixedSite(t *testing.T, dir string, idx Index) {
	t.Helper()
	if err := WritePages(dir, idx); err != nil {
		t.Fatal(err)
	}
	var periods []string
	periods = append(append(append(periods, idx.Days...), idx.Months...), idx.Years...)
	for _, p := range periods {
		for _, k := range kindNames() {
			top := hostileTop(k)
			var total int64
			for _, e := range top {
				total += e.Count
			}
			c := Chart{Period: p, Kind: k, Top: top, Total: total + 100, Distinct: int64(len(top)) + 20}
			for path, write := range map[string]func(io.Writer) error{
				ChartPath(p, k): func(w io.Writer) error { return WriteSVG(w, c) },
				CSVPath(p, k):   func(w io.Writer) error { return WriteCSV(w, chunks(top, 4)) },
				JSONPath(p, k):  func(w io.Writer) error { return WriteStatsJSON(w, c) },
			} {
				if err := WriteFileAtomic(filepath.Join(dir, path), write); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// tableRow is one row of a panel's ranking as the browser shows it.
type tableRow struct {
	rank, value, count, share, href string
	empty                           bool
}

var (
	panelRe = regexp.MustCompile(`(?s)<section class="panel[^"]*" id="panel-([a-z]+)"[^>]*>(.*?)</section>`)
	rowRe   = regexp.MustCompile(`(?s)<tr><td class="rank">(\d+)</td><td class="v"><a class="val" href="([^"]*)"[^>]*>(.*?)</a>(?:<span class="nm">.*?</span>)?</td><td class="num">([^<]*)</td><td class="share">([^<]*)</td></tr>`)
	tagRe   = regexp.MustCompile(`<[^>]*>`)
)

func panelRows(body string) []tableRow {
	var out []tableRow
	for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
		out = append(out, tableRow{rank: m[1], href: html.UnescapeString(m[2]), value: html.UnescapeString(tagRe.ReplaceAllString(m[3], "")),
			count: m[4], share: m[5], empty: strings.Contains(m[3], `class="mark"`)})
	}
	return out
}

// csvRows reads a compiled CSV back as value cells without the formula
// guard, the text a person is shown.
func csvRows(t *testing.T, path string) [][2]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for _, r := range recs[1:] {
		out = append(out, [2]string{strings.TrimPrefix(r[0], "'"), r[1]})
	}
	return out
}

// TestFixedPagesInChromium loads the daily, monthly and yearly pages in a
// real browser, served from a nested path as any static server would, at
// 1400 px and 390 px, light and dark: every kind of the period has its
// chart and its table, the table says exactly what the CSV says (hostile
// values included), each value links to its explore view, each bar tells
// its full value on hover, the charts take the page's colours, nothing is
// wider than a phone, and not one console message.
func TestFixedPagesInChromium(t *testing.T) {
	chromium := needChromium(t)

	root := t.TempDir()
	const base = "/a/b/data/sshd/"
	dir := filepath.Join(root, "a", "b", "data", "sshd")
	idx := goldenIndex()
	writeFixedSite(t, dir, idx)
	if err := WritePages(filepath.Join(root, "empty", "sshd"), Index{}); err != nil {
		t.Fatal(err)
	}
	writeTestStatus(t, root)

	// The server records every request, so that a URL the page gets wrong
	// shows up as a 404 even though Chromium does not log it; it adds the
	// probe to every page.
	var mu sync.Mutex
	served := map[string]int{}
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(withProbe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(rec, r)
		mu.Lock()
		served[r.URL.Path] = rec.status
		mu.Unlock()
	})))
	defer srv.Close()

	const phone, desktop = 390, 1400
	tests := []struct {
		name, page, fragment string
		width                int
		dark                 bool
		period, focus        string // shown; "" for none
		from, to             string // the explore range of the period
		wantStatus           string // text expected in the status line
	}{
		{name: "daily newest desktop light", page: "dailystatistics.html", width: desktop, period: "20261125", from: "2026-11-25", to: "2026-11-25"},
		{name: "daily fragment phone dark", page: "dailystatistics.html", fragment: "#20261123/src", width: phone, dark: true, period: "20261123", focus: "src", from: "2026-11-23", to: "2026-11-23"},
		{name: "monthly newest phone light", page: "monthlystatistics.html", width: phone, period: "202611", from: "2026-11-01", to: "2026-11-30"},
		{name: "monthly fragment desktop dark", page: "monthlystatistics.html", fragment: "#202510/host", width: desktop, dark: true, period: "202510", focus: "host", from: "2025-10-01", to: "2025-10-31"},
		{name: "yearly newest desktop dark", page: "yearlystatistics.html", width: desktop, dark: true, period: "2026", from: "2026-01-01", to: "2026-12-31"},
		{name: "yearly invalid fragment phone dark", page: "yearlystatistics.html", fragment: "#20x6/%3Cscript%3E", width: phone, dark: true, period: "2026", from: "2026-01-01", to: "2026-12-31"},
		{name: "daily without data", page: "dailystatistics.html", fragment: "#20261124/host", width: phone, wantStatus: "No attempts were recorded on 2026-11-24."},
		{name: "no data at all", page: "../../../../empty/sshd/dailystatistics.html", fragment: "#20261125/src", width: desktop, wantStatus: "No data yet"},
	}
	// Browsers spend most of their time waiting, so more of them run at
	// once than -parallel would allow on a small machine.
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(tt.name, func(t *testing.T) {
				dom, pr, logs := framedDOM(t, chromium, srv.URL, base+tt.page+tt.fragment, tt.width, tt.dark)
				checkFixedPage(t, dom, pr, logs, dir, tt.period, tt.focus, tt.from, tt.to, tt.wantStatus, tt.width, tt.dark)
			})
		}()
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for path, status := range served {
		if status != http.StatusOK && status != http.StatusNotModified {
			t.Errorf("the pages requested %s: HTTP %d", path, status)
		}
	}
	for _, tt := range tests {
		if tt.period == "" {
			continue
		}
		for _, k := range kindNames() {
			if p := base + JSONPath(tt.period, k); served[p] != http.StatusOK {
				t.Errorf("the ranking %s was not fetched (status %d)", p, served[p])
			}
		}
	}
}

func checkFixedPage(t *testing.T, dom string, pr probe, logs, dir, period, focus, from, to, wantStatus string, width int, dark bool) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("browser console: %s", line)
		}
	}
	if m := regexp.MustCompile(`(?s)<pre id="js-error"[^>]*>(.*?)</pre>`).FindStringSubmatch(dom); m == nil || m[1] != "" {
		t.Errorf("script error element: %q", m)
	}
	status := regexp.MustCompile(`<p id="status"[^>]*>([^<]*)</p>`).FindStringSubmatch(dom)
	if status == nil || !strings.Contains(status[1], wantStatus) || (wantStatus == "" && status[1] != "") {
		t.Errorf("status %q, want %q", status, wantStatus)
	}
	panelsShown := strings.Contains(dom, `<div id="panels" class="panels">`)
	if period == "" {
		if panelsShown || strings.Contains(dom, "<svg") {
			t.Errorf("charts shown where the page should say there are none")
		}
		return
	}
	if !panelsShown {
		t.Fatalf("the panels are not shown")
	}
	// The charts are painted in the page's colours: the accent and the
	// text colour of the scheme in force, on the card, never on white.
	want := map[bool][3]string{false: {"rgb(37, 99, 235)", "rgb(17, 24, 39)", "rgb(255, 255, 255)"}, true: {"rgb(91, 140, 255)", "rgb(229, 231, 235)", "rgb(26, 32, 41)"}}[dark]
	if pr.Bar != want[0] || pr.Label != want[1] || pr.Panel != want[2] {
		t.Errorf("chart colours bar %s, label %s on %s; want %v", pr.Bar, pr.Label, pr.Panel, want)
	}
	if width == 1400 && pr.Rows != 1 {
		t.Errorf("at 1400 px the kinds stand in %d rows, want side by side", pr.Rows)
	}
	if width == 390 && pr.Rows != len(kindNames()) {
		t.Errorf("at 390 px the kinds stand in %d rows, want stacked", pr.Rows)
	}
	panels := panelRe.FindAllStringSubmatch(dom, -1)
	if len(panels) != len(kindNames()) {
		t.Fatalf("%d panels, want one per kind", len(panels))
	}
	for i, p := range panels {
		kind, body := p[1], p[2]
		if kind != kindNames()[i] {
			t.Errorf("panel %d is %s, want %s", i, kind, kindNames()[i])
		}
		if focused := strings.Contains(p[0], `class="panel focus"`); focused != (kind == focus) {
			t.Errorf("%s: marked %v, the fragment names %q", kind, focused, focus)
		}
		top := rankedCopy(hostileTop(kind))
		var total int64
		for _, e := range top {
			total += e.Count
		}
		total += 100
		rows := panelRows(body)
		want := csvRows(t, filepath.Join(dir, CSVPath(period, kind)))
		if len(rows) != len(want) || len(rows) != len(top) {
			t.Fatalf("%s: %d table rows, the CSV has %d", kind, len(rows), len(want))
		}
		for j, r := range rows {
			shown := r.value
			if r.empty {
				shown = ""
			}
			count := strings.ReplaceAll(r.count, ",", "")
			if r.rank != strconv.Itoa(j+1) || shown != want[j][0] || count != want[j][1] {
				t.Errorf("%s row %d: %s %q %s, the CSV says %q %s", kind, j+1, r.rank, shown, count, want[j][0], want[j][1])
			}
			if s := fmt.Sprintf("%.1f %%", float64(top[j].Count)*100/float64(total)); r.share != s {
				t.Errorf("%s row %d: share %q, want %q", kind, j+1, r.share, s)
			}
			checkExploreLink(t, kind, r.href, from, to, top[j].Value)
		}
		// Each bar has a tooltip with the whole value and its count.
		titles := regexp.MustCompile(`<g><title>([^<]*)</title>`).FindAllStringSubmatch(body, -1)
		if len(titles) != min(len(top), 15) {
			t.Errorf("%s: %d bars with a tooltip, want %d", kind, len(titles), min(len(top), 15))
		}
		for j, ti := range titles {
			text := html.UnescapeString(ti[1])
			if !strings.HasPrefix(text, cmpOr(want[j][0], "(empty)")+": ") || !strings.Contains(text, ": "+groupThousands(top[j].Count)+" attempts") {
				t.Errorf("%s bar %d: tooltip %q, want the value %q and its count %d", kind, j+1, text, want[j][0], top[j].Count)
			}
		}
		if !strings.Contains(body, `<svg class="bars" viewBox="0 0 420 `) {
			t.Errorf("%s: no chart scaled by its viewBox", kind)
		}
		for _, ext := range []string{".csv", ".svg", ".json"} {
			if !strings.Contains(body, `href="`+fileURLOf(period, kind, ext)+`"`) {
				t.Errorf("%s: no link to the %s", kind, ext)
			}
		}
	}
}

func cmpOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// fileURLOf is the relative URL load.js makes of a file of a period.
func fileURLOf(period, kind, ext string) string {
	return period + "/" + period + "%3Astats" + kind + ext
}

// checkExploreLink checks that href opens the explore page on value over
// the period, in the fragment format explore.js reads.
func checkExploreLink(t *testing.T, kind, href, from, to, value string) {
	t.Helper()
	frag, ok := strings.CutPrefix(href, "explore.html#")
	if !ok {
		t.Errorf("%s %q: link %q is not to the explore page", kind, value, href)
		return
	}
	q, err := url.ParseQuery(frag)
	if err != nil {
		t.Errorf("%s %q: fragment %q: %v", kind, value, frag, err)
		return
	}
	got := q.Get("value")
	if b := q.Get("value_b64"); b != "" {
		raw, err := base64.StdEncoding.DecodeString(b)
		if err != nil {
			t.Errorf("%s: value_b64 %q: %v", kind, b, err)
		}
		got = string(raw)
	}
	if q.Get("from") != from || q.Get("to") != to || q.Get("kind") != kind || got != value {
		t.Errorf("%s %q: explore link %q, want from=%s to=%s", kind, value, href, from, to)
	}
}
