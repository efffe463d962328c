package render

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/web"
	"github.com/prometheus/client_golang/prometheus"
)

// TestPagesServedByDaemonInChromium loads every page through the daemon's
// own handler (its Content-Security-Policy and content types), mounted
// under a nested path as behind a reverse proxy: not one console message,
// and the freshness line right for a newest day of today and of 22 days ago.
func TestPagesServedByDaemonInChromium(t *testing.T) {
	chromium := needChromium(t)
	now := time.Now().UTC()
	day := func(d time.Time) string { return d.Format("20060102") }
	mux := http.NewServeMux()
	for _, c := range []struct {
		name   string
		newest time.Time
	}{{"today", now}, {"stale", now.AddDate(0, 0, -22)}} {
		data := t.TempDir()
		dir := filepath.Join(data, "sshd")
		idx := Index{Oldest: day(c.newest), Newest: day(c.newest), Days: []string{day(c.newest)},
			Months: []string{c.newest.Format("200601")}, Years: []string{c.newest.Format("2006")}}
		if err := WritePages(dir, idx); err != nil {
			t.Fatal(err)
		}
		if err := WriteOverview(dir, Overview{}); err != nil {
			t.Fatal(err)
		}
		if err := WriteStatus(dir, Status{CompiledAt: now, LastCounted: now.Add(-19 * time.Second), NewestLine: now.Add(-25 * time.Second), Location: time.UTC, Refresh: time.Minute, Index: idx}); err != nil {
			t.Fatal(err)
		}
		h, err := web.Handler(data, func(context.Context) web.Status { return web.Status{D4Redis: true, CountingRedis: true} }, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		mux.Handle("/proxy/"+c.name+"/", http.StripPrefix("/proxy/"+c.name, h))
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	sem := make(chan struct{}, 2) // two browsers at once, as the other page tests
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, c := range []struct{ site, want string }{
		{"today", "newest day " + now.Format("2006-01-02") + " may be incomplete"},
		{"stale", "newest day " + now.AddDate(0, 0, -22).Format("2006-01-02") + " is 22 days old"},
	} {
		for _, page := range []string{"index.html", "dailystatistics.html", "monthlystatistics.html", "yearlystatistics.html"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				url := srv.URL + "/proxy/" + c.site + "/sshd/" + page
				dom, logs := dumpDOM(t, chromium, url)
				for _, line := range strings.Split(logs, "\n") {
					if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") || strings.Contains(line, "Content Security Policy") {
						t.Errorf("%s: browser console: %s", url, line)
					}
				}
				m := regexp.MustCompile(`<p id="freshness"[^>]*>([^<]*)</p>`).FindStringSubmatch(dom)
				if m == nil || !strings.HasPrefix(m[1], "Counted up to ") || !strings.Contains(m[1], now.Add(-25*time.Second).Format("15:04:05")+", compiled") || !strings.Contains(m[1], ", compiled ") || !strings.Contains(m[1], c.want) {
					t.Errorf("%s: freshness line %q, want it to say %q", url, m, c.want)
				}
			}()
		}
	}
}
