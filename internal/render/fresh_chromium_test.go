package render

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestPageTakesANewerCompileByItself leaves a daily page open while a
// compile brings a new day: with nobody touching the tab, the page's
// refresh timer reads the new status.json, shows the new compile time and
// the new newest line, and shows the new day's rankings without a reload.
// The page runs in Chromium's virtual time, several refresh periods of it.
func TestPageTakesANewerCompileByItself(t *testing.T) {
	chromium := needChromium(t)
	now := time.Now().UTC()
	day := func(d time.Time) string { return d.Format("20060102") }
	yesterday, today := now.AddDate(0, 0, -1), now
	before := Index{Oldest: day(yesterday), Newest: day(yesterday), Days: []string{day(yesterday)},
		Months: []string{yesterday.Format("200601")}, Years: []string{yesterday.Format("2006")}}
	after := before
	after.Newest, after.Days = day(today), []string{day(yesterday), day(today)}
	after.Months = uniq(append(append([]string{}, before.Months...), today.Format("200601")))
	after.Years = uniq(append(append([]string{}, before.Years...), today.Format("2006")))

	root := t.TempDir()
	dir := filepath.Join(root, "sshd")
	if err := WritePages(dir, before); err != nil {
		t.Fatal(err)
	}
	rank := map[string][]Entry{day(yesterday): {{"olduser", 5}}, day(today): {{"newuser", 7}}}
	for p, top := range rank {
		for _, k := range kindNames() {
			c := Chart{Period: p, Kind: k, Top: top, Total: top[0].Count, Distinct: 1}
			if err := WriteFileAtomic(filepath.Join(dir, JSONPath(p, k)), func(w io.Writer) error { return WriteStatsJSON(w, c) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The first compile's status, then the next one's: the server answers
	// the first look with the first, every later look with the second.
	first, second := now.Add(-2*time.Minute).Truncate(time.Second), now.Truncate(time.Second)
	statuses := [2][]byte{}
	for i, s := range []Status{
		{CompiledAt: first, NewestLine: first.Add(-7 * time.Second), Location: time.UTC, Refresh: 15 * time.Second, Index: before},
		{CompiledAt: second, NewestLine: second.Add(-3 * time.Second), Location: time.UTC, Refresh: 15 * time.Second, Index: after},
	} {
		if err := WriteStatus(dir, s); err != nil {
			t.Fatal(err)
		}
		var err error
		statuses[i], err = os.ReadFile(filepath.Join(dir, StatusFile))
		if err != nil {
			t.Fatal(err)
		}
	}
	var looks atomic.Int32
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sshd/"+StatusFile {
			n := looks.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(statuses[min(n-1, 1)])
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()

	// 100 s of the page's time: the look at load, then one every 15 s.
	dom, logs := dumpDOMAfter(t, chromium, srv.URL+"/sshd/dailystatistics.html", 100*time.Second)
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("browser console: %s", line)
		}
	}
	if n := looks.Load(); n < 3 || n > 9 {
		t.Errorf("status.json was read %d times in 100 s of page time, want one look every 15 s", n)
	}
	fresh := regexp.MustCompile(`<p id="freshness"[^>]*>([^<]*)</p>`).FindStringSubmatch(dom)
	wantLine := "Counted up to " + clockOf(second.Add(-3*time.Second), now) + ", compiled " + clockOf(second, now)
	if fresh == nil || !strings.HasPrefix(fresh[1], wantLine) {
		t.Errorf("freshness line %q, want it to start %q", fresh, wantLine)
	}
	if !strings.Contains(dom, `value="`+today.Format("2006-01-02")+`"`) || !strings.Contains(dom, ">newuser</a>") || strings.Contains(dom, "olduser") {
		t.Errorf("the page does not show the new day's ranking by itself:\n%s", dom)
	}
}

// clockOf is how fresh.js writes an instant in UTC: the time alone on the
// day of now, with the date on another.
func clockOf(at, now time.Time) string {
	if at.Format("20060102") == now.Format("20060102") {
		return at.Format("15:04:05")
	}
	return at.Format("2006-01-02 15:04:05")
}

func uniq(s []string) []string {
	out := s[:0]
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
