package render

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"net/http"
	"net/http/httptest"
)

// TestArchivedDaysInChromium: days pruned from the counting Redis whose
// files stay on disk are found by ArchivedDays, offered by the daily page
// (the day list of the ISO date field, Previous/Next) with their rankings,
// and labelled as archived; a day still counted is not; no console message.
func TestArchivedDaysInChromium(t *testing.T) {
	chromium := needChromium(t)
	root := t.TempDir()
	dir := filepath.Join(root, "data", "sshd")
	idx := goldenIndex() // days 20261120, 20261123, 20261125 still counted
	pruned := []string{"20261101", "20261110"}
	for _, p := range append(append(append([]string{}, pruned...), idx.Days...), idx.Months...) {
		for _, k := range kindNames() {
			c := Chart{Period: p, Kind: k, Top: []Entry{{"root", 3}}, Total: 3, Distinct: 1}
			if err := WriteFileAtomic(filepath.Join(dir, ChartPath(p, k)), func(w io.Writer) error { return WriteSVG(w, c) }); err != nil {
				t.Fatal(err)
			}
			if err := WriteFileAtomic(filepath.Join(dir, JSONPath(p, k)), func(w io.Writer) error { return WriteStatsJSON(w, c) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Not days with files: no chart inside, not a calendar day, a file.
	for _, d := range []string{"20261105", "20261131", "notaday"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "20261106"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	idx.Archived, err = ArchivedDays(dir, idx.Days)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(idx.Archived, pruned) {
		t.Fatalf("ArchivedDays = %v, want %v", idx.Archived, pruned)
	}
	if err := WritePages(dir, idx); err != nil {
		t.Fatal(err)
	}
	if err := WriteStatus(dir, Status{CompiledAt: time.Now(), Location: time.UTC, Refresh: time.Minute, Index: idx}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	failed := map[string]int{}
	files := http.FileServer(http.Dir(root))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		files.ServeHTTP(rec, r)
		if rec.status != http.StatusOK && rec.status != http.StatusNotModified {
			mu.Lock()
			failed[r.URL.Path] = rec.status
			mu.Unlock()
		}
	}))
	defer srv.Close()

	tests := []struct {
		fragment, wantDay, wantStatus string
		prevDisabled                  bool
	}{
		{"#20261110/src", "2026-11-10", "Archived: 2026-11-10 was pruned from the counting Redis", false},
		{"#20261101/host", "2026-11-01", "Archived: 2026-11-01", true},
		{"#20261120/src", "2026-11-20", "", false},
	}
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, tt := range tests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			t.Run(tt.fragment, func(t *testing.T) {
				dom, logs := dumpDOM(t, chromium, srv.URL+"/data/sshd/dailystatistics.html"+tt.fragment)
				for _, line := range strings.Split(logs, "\n") {
					if strings.Contains(line, ":CONSOLE") || strings.Contains(line, "Uncaught") {
						t.Errorf("%s: browser console: %s", tt.fragment, line)
					}
				}
				if m := regexp.MustCompile(`(?s)<pre id="js-error"[^>]*>(.*?)</pre>`).FindStringSubmatch(dom); m == nil || m[1] != "" {
					t.Errorf("%s: script error element: %q", tt.fragment, m)
				}
				// Every kind's ranking of the day, archived or not, is shown.
				if !strings.Contains(dom, `<div id="panels" class="panels">`) || strings.Count(dom, `<td class="v"><a class="val"`) != len(kindNames()) {
					t.Errorf("%s: the day's rankings are not shown", tt.fragment)
				}
				status := regexp.MustCompile(`<p id="status"[^>]*>([^<]*)</p>`).FindStringSubmatch(dom)
				if status == nil || !strings.Contains(status[1], tt.wantStatus) || (tt.wantStatus == "" && status[1] != "") {
					t.Errorf("%s: status %q, want %q", tt.fragment, status, tt.wantStatus)
				}
				// The ISO day field shows the day; its list offers every day
				// with files, newest first, the archived ones labelled.
				if !regexp.MustCompile(`<input type="text" id="day"[^>]*>`).MatchString(dom) {
					t.Errorf("%s: no ISO day field", tt.fragment)
				}
				list := regexp.MustCompile(`(?s)<datalist id="day-list">(.*?)</datalist>`).FindStringSubmatch(dom)
				want := `<option value="2026-11-25"></option><option value="2026-11-23"></option><option value="2026-11-20"></option>` +
					`<option value="2026-11-10" label="archived"></option><option value="2026-11-01" label="archived"></option>`
				if list == nil || list[1] != want {
					t.Errorf("%s: day list %q, want %q", tt.fragment, list, want)
				}
				prev := regexp.MustCompile(`<button type="button" id="prev"[^>]*>`).FindString(dom)
				if strings.Contains(prev, "disabled") != tt.prevDisabled {
					t.Errorf("%s: previous button %q, want disabled %v", tt.fragment, prev, tt.prevDisabled)
				}
			})
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for p, code := range failed {
		t.Errorf("the page requested %s: HTTP %d", p, code)
	}
}
