package render_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/D4-project/analyzer-d4-log/internal/api"
	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
	"github.com/D4-project/analyzer-d4-log/internal/render"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
	"github.com/D4-project/analyzer-d4-log/internal/web"
)

func chromiumOrSkip(t *testing.T) string {
	t.Helper()
	chromium, err := render.FindChromium()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI: %v", err)
		}
		t.Skipf("chromium not installed: %v", err)
	}
	return chromium
}

// noConsole fails on any console message, script error or CSP report.
func noConsole(t *testing.T, where, logs, dom string) {
	t.Helper()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") || strings.Contains(line, "Content Security Policy") {
			t.Errorf("%s: browser console: %s", where, line)
		}
	}
	if m := regexp.MustCompile(`(?s)<pre id="js-error"[^>]*>(.*?)</pre>`).FindStringSubmatch(dom); m == nil || m[1] != "" {
		t.Errorf("%s: script error element: %q", where, m)
	}
}

type apiItem struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

type apiRanking struct {
	Attempts int64     `json:"attempts"`
	Top      []apiItem `json:"top"`
}

func getRanking(t *testing.T, u string) apiRanking {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r apiRanking
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return r
}

type shownRow struct{ value, count, delta string }

var tagRE = regexp.MustCompile(`<[^>]*>`)

func text(s string) string { return html.UnescapeString(tagRE.ReplaceAllString(s, "")) }

// tableRows reads the rows of the table body with the given id.
func tableRows(dom, id string) []shownRow {
	body := regexp.MustCompile(`(?s)<(?:tbody|div) id="` + id + `"[^>]*>(.*?)</(?:tbody|table)>`).FindStringSubmatch(dom)
	if body == nil {
		return nil
	}
	var out []shownRow
	for _, tr := range regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`).FindAllStringSubmatch(body[1], -1) {
		v := regexp.MustCompile(`(?s)<button[^>]*>(.*?)</button>`).FindStringSubmatch(tr[1])
		c := regexp.MustCompile(`data-count="(\d+)"`).FindStringSubmatch(tr[1])
		if v == nil || c == nil {
			continue
		}
		r := shownRow{value: text(v[1]), count: c[1]}
		if d := regexp.MustCompile(`<td class="delta [a-z]+">([^<]*)</td>`).FindStringSubmatch(tr[1]); d != nil {
			r.delta = html.UnescapeString(d[1])
		}
		out = append(out, r)
	}
	return out
}

// TestExploreServedByDaemonInChromium loads explore.html through the
// daemon's handler under a nested path, with the investigation API over a
// real counting Redis, at a desktop and a phone width: the ranking, its
// deltas against the period before, the chosen value's drill-down and
// series are the API's own figures, and the console stays empty.
func TestExploreServedByDaemonInChromium(t *testing.T) {
	chromium := chromiumOrSkip(t)
	rs := redistest.Start(t, redistest.Options{})
	pool := func(db int) *redis.Pool {
		return &redis.Pool{Dial: func() (redis.Conn, error) { return redis.Dial("tcp", rs.Addr(), redis.DialDatabase(db)) }, MaxActive: api.Connections() + 2, Wait: true}
	}
	st := &stats.Store{Stats: pool(stats.StatsDB), Attempts: pool(stats.AttemptsDB)}
	t.Cleanup(func() { st.Stats.Close(); st.Attempts.Close() })

	y, m, d := time.Now().UTC().Date()
	today := time.Date(y, m, d, 12, 0, 0, 0, time.UTC)
	from := today.AddDate(0, 0, -6) // "last 7 days"; the period before is the 7 days ahead of it
	b := stats.NewBatch()
	add := func(daysAgo, n int, user, src, host string) {
		for i := 0; i < n; i++ {
			b.Add(today.AddDate(0, 0, -daysAgo), []byte(host), []byte(user), []byte(src))
		}
	}
	add(0, 3, "root", "192.0.2.1", "h1")
	add(5, 2, "root", "192.0.2.2", "h1")
	add(9, 2, "root", "192.0.2.1", "h2")    // before: root goes up by 3
	add(2, 3, "admin", "192.0.2.1", "h2")   // new in range
	add(10, 4, "oracle", "192.0.2.9", "h1") // gone
	add(6, 1, "<b>x</b>", "192.0.2.3", "h2")
	if err := st.Apply(context.Background(), b, nil); err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Options{Store: st, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	day := func(t time.Time) string { return t.Format("20060102") }
	idx := render.Index{Oldest: day(today.AddDate(0, 0, -10)), Newest: day(today), Days: []string{day(today)}, Months: []string{today.Format("200601")}, Years: []string{today.Format("2006")}}
	if err := render.WritePages(filepath.Join(data, "sshd"), idx); err != nil {
		t.Fatal(err)
	}
	h, err := web.Handler(data, func(context.Context) web.Status { return web.Status{D4Redis: true, CountingRedis: true} }, prometheus.NewRegistry(), web.Route{Prefix: api.Prefix, Handler: a})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/proxy/x/", http.StripPrefix("/proxy/x", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	q := url.Values{"kind": {kinds.User}, "from": {day(from)}, "to": {day(today)}}
	want := getRanking(t, srv.URL+"/proxy/x/api/v1/top?limit=100&"+q.Encode())
	if len(want.Top) != 3 || want.Attempts != 9 {
		t.Fatalf("the API's own ranking is not the data counted: %+v", want)
	}
	wantDeltas := map[string]string{"root": "+3", "admin": "new", "<b>x</b>": "new"}
	drillWant := getRanking(t, srv.URL+"/proxy/x/api/v1/drill?of=src&value=root&limit=10&"+q.Encode())

	frag := "#from=" + from.Format("2006-01-02") + "&to=" + today.Format("2006-01-02") + "&kind=username&value=root"
	for _, size := range []struct{ name, flag string }{{"desktop", "--window-size=1400,900"}, {"phone", "--window-size=390,844"}} {
		extra := []string{size.flag}
		if size.name == "phone" {
			extra = append(extra, "--force-dark-mode", "--blink-settings=preferredColorScheme=0")
		}
		u := srv.URL + "/proxy/x/sshd/explore.html" + frag
		dom, logs := render.DumpDOM(t, chromium, u, extra...)
		noConsole(t, size.name, logs, dom)
		rows := tableRows(dom, "top-rows")
		if len(rows) != len(want.Top) {
			t.Fatalf("%s: %d rows shown, the API ranks %d: %+v", size.name, len(rows), len(want.Top), rows)
		}
		for i, it := range want.Top {
			if rows[i].value != it.Value || rows[i].count != strconv.FormatInt(it.Count, 10) {
				t.Errorf("%s: row %d shows %q %s, the API says %q %d", size.name, i+1, rows[i].value, rows[i].count, it.Value, it.Count)
			}
			if rows[i].delta != wantDeltas[it.Value] {
				t.Errorf("%s: %q vs the period before: %q, want %q", size.name, it.Value, rows[i].delta, wantDeltas[it.Value])
			}
		}
		if !strings.Contains(dom, "Gone since the period before: 1 value") || !strings.Contains(dom, ">oracle</span> 4") {
			t.Errorf("%s: oracle, ranked only before, is not listed as gone", size.name)
		}
		drill := tableRows(dom, "drill-src")
		if len(drill) != len(drillWant.Top) {
			t.Fatalf("%s: drill-down shows %+v, the API says %+v", size.name, drill, drillWant.Top)
		}
		for i, it := range drillWant.Top {
			if drill[i].value != it.Value || drill[i].count != strconv.FormatInt(it.Count, 10) {
				t.Errorf("%s: drill row %d shows %q %s, the API says %q %d", size.name, i+1, drill[i].value, drill[i].count, it.Value, it.Count)
			}
		}
		for id, want := range map[string]string{"d-attempts": "5", "d-first": from.AddDate(0, 0, 1).Format("2006-01-02"), "d-last": today.Format("2006-01-02")} {
			m := regexp.MustCompile(`<dd id="` + id + `">([^<]*)</dd>`).FindStringSubmatch(dom)
			if m == nil || m[1] != want {
				t.Errorf("%s: %s shows %q, want %q", size.name, id, m, want)
			}
		}
		if n := strings.Count(dom, "<circle "); n != 7 || !strings.Contains(dom, `<svg viewBox="0 0 640 180" role="img" id="series-svg">`) {
			t.Errorf("%s: series chart with %d points, want 7", size.name, n)
		}
		csv := fmt.Sprintf(`id="top-csv" href="../api/v1/top?kind=username&amp;from=%s&amp;to=%s&amp;format=csv"`, day(from), day(today))
		if !strings.Contains(dom, csv) {
			t.Errorf("%s: no link to the CSV of the ranking shown (%s)", size.name, csv)
		}
		if !strings.Contains(dom, `<p id="need-server" class="status" hidden="">`) {
			t.Errorf("%s: the no-server notice is shown although the daemon answers", size.name)
		}
	}
}

// TestExploreOnStaticServerInChromium serves explore.html from a plain
// file server under a nested path: the page says in one sentence that it
// needs the daemon's web server, links the fixed pages, and logs nothing.
func TestExploreOnStaticServerInChromium(t *testing.T) {
	chromium := chromiumOrSkip(t)
	root := t.TempDir()
	if err := render.WritePages(filepath.Join(root, "a", "b", "data", "sshd"), render.Index{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer srv.Close()
	dom, logs := render.DumpDOM(t, chromium, srv.URL+"/a/b/data/sshd/explore.html#from=2020-01-01&to=2020-01-31&kind=src&value=x")
	noConsole(t, "static", logs, dom)
	m := regexp.MustCompile(`(?s)<p id="need-server" class="status">(.*?)</p>`).FindStringSubmatch(dom)
	if m == nil || !strings.Contains(text(m[1]), "needs the daemon's web server (http_server)") {
		t.Fatalf("no visible notice that the page needs the daemon: %q", m)
	}
	for _, f := range []string{"index.html", "dailystatistics.html", "monthlystatistics.html", "yearlystatistics.html"} {
		if !strings.Contains(m[1], `href="`+f+`"`) {
			t.Errorf("the notice does not link %s", f)
		}
	}
	if !strings.Contains(dom, `<div class="grid" id="results" hidden="">`) {
		t.Errorf("results shown without a server to answer")
	}
}
