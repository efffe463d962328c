package render

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// TestOverviewInChromium loads index.html in a real browser from a nested
// path of a plain static server: no console error, both trend charts
// fetched, the new-value tables there; and the page of a daemon that has
// counted nothing yet.
func TestOverviewInChromium(t *testing.T) {
	chromium := needChromium(t)
	root := t.TempDir()
	const base = "/a/b/data/sshd/"
	dir := filepath.Join(root, "a", "b", "data", "sshd")
	if err := WriteOverview(dir, goldenOverview()); err != nil {
		t.Fatal(err)
	}
	if err := WritePages(dir, goldenIndex()); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(root, "empty", "sshd")
	if err := WriteOverview(empty, Overview{}); err != nil {
		t.Fatal(err)
	}
	writeTestStatus(t, root)

	var mu sync.Mutex
	served := map[string]int{}
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(rec, r)
		mu.Lock()
		served[r.URL.Path] = rec.status
		mu.Unlock()
	}))
	defer srv.Close()

	// The directory URL, as an operator types it: the static server answers
	// with index.html (and redirects a request for index.html to it).
	var wg sync.WaitGroup
	var full, none string
	for _, load := range []struct {
		url string
		dom *string
	}{{srv.URL + base, &full}, {srv.URL + "/empty/sshd/", &none}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dom, logs := dumpDOM(t, chromium, load.url)
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
					t.Errorf("%s: browser console: %s", load.url, line)
				}
			}
			*load.dom = dom
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for _, id := range []string{"trend-daily", "trend-monthly"} {
		if !regexp.MustCompile(`<img id="` + id + `" src="` + id + `\.svg" width="1000" height="380" alt="[^"]+">`).MatchString(full) {
			t.Errorf("no %s chart on the page", id)
		}
	}
	newUsers := regexp.MustCompile(`(?s)<div class="tcard" id="new-username">(.*?)</table>`).FindStringSubmatch(full)
	if newUsers == nil || strings.Count(newUsers[1], "<tr>") != 4 || !strings.Contains(newUsers[1], "zabbix") {
		t.Errorf("new user names table missing or wrong: %q", newUsers)
	}
	if !regexp.MustCompile(`(?s)<div class="tcard" id="new-src">.*?No new sources on this day\.`).MatchString(full) {
		t.Error("the page does not say that no source was new")
	}
	for _, link := range []string{`href="dailystatistics.html#20261125/username"`, `href="monthlystatistics.html#202611/src"`, `href="20261125/20261125%3Anewusername.csv"`} {
		if !strings.Contains(full, link) {
			t.Errorf("no link %s", link)
		}
	}
	if !strings.Contains(none, "No data yet") || strings.Contains(none, "<img") {
		t.Error("the page without data does not say so, or shows a chart")
	}

	// On a phone, dark: the trend charts scale down to the screen (their
	// viewBox), nothing is cut off or scrolls sideways, and they are drawn.
	t.Run("phone dark", func(t *testing.T) {
		probed := httptest.NewServer(withProbe(http.FileServer(http.Dir(root))))
		defer probed.Close()
		_, pr, logs := framedDOM(t, chromium, probed.URL, base+"index.html", 390, true)
		for _, line := range strings.Split(logs, "\n") {
			if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
				t.Errorf("browser console: %s", line)
			}
		}
		trends := 0
		for _, img := range pr.Images {
			if strings.HasPrefix(img.ID, "trend-") {
				trends++
				if !img.Loaded || img.Right > 390 || img.Width < 300 {
					t.Errorf("%s: %+v, want it drawn whole within 390 px", img.ID, img)
				}
			}
		}
		if trends != 2 {
			t.Errorf("%d trend charts shown, want 2", trends)
		}
	})

	mu.Lock()
	defer mu.Unlock()
	for _, f := range []string{TrendDailyFile, TrendMonthlyFile} {
		if served[base+f] != http.StatusOK {
			t.Errorf("%s was not fetched (status %d)", f, served[base+f])
		}
	}
	for path, status := range served {
		if status != http.StatusOK && status != http.StatusNotModified {
			t.Errorf("the overview requested %s: HTTP %d", path, status)
		}
	}
}
