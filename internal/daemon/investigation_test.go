package daemon

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/geoip/geoiptest"
	"github.com/D4-project/analyzer-d4-log/internal/redistest"
)

// TestInvestigationAnswersTheKindsCounted: the API the daemon serves
// answers kind=country and kind=asn exactly when their databases are
// configured, and refuses them with 400 otherwise.
func TestInvestigationAnswersTheKindsCounted(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{})
	dir := t.TempDir()
	cfg := &config.Config{
		D4: config.RedisAddr{Addr: cnt.Addr(), DB: 2}, Queue: queue, Parsers: cnt.Addr(), Pool: 1,
		Location: time.UTC, CompileInterval: time.Hour, OutputDir: dir, ChartTop: 10,
		BatchSize: 50, MaxLineBytes: 1 << 20, Drilldown: true,
		GeoIPCountryDB: filepath.Join(dir, "country.mmdb"), GeoIPASNDB: filepath.Join(dir, "asn.mmdb"),
	}
	if err := geoiptest.Write(cfg.GeoIPCountryDB, geoiptest.GeoLite2Country, geoiptest.Sample()); err != nil {
		t.Fatal(err)
	}
	if err := geoiptest.Write(cfg.GeoIPASNDB, geoiptest.GeoLite2ASN, geoiptest.Sample()); err != nil {
		t.Fatal(err)
	}
	dbs, err := openGeoIP(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Format("20060102")
	ask := func(d *Daemon, q string) (int, string) {
		t.Helper()
		inv, err := d.investigation()
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(inv)
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/api/v1/" + q + "&from=" + day + "&to=" + day)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	with := New(Options{Config: cfg, GeoIP: dbs})
	t.Cleanup(with.Close)
	for _, q := range []string{"top?kind=country", "top?kind=asn", "drill?kind=src&value=1.2.3.4&of=country", "drill?kind=asn&value=AS1&of=username"} {
		if code, body := ask(with, q); code != 200 {
			t.Errorf("%s with the databases: %d %s", q, code, body)
		}
	}

	plain := *cfg
	plain.GeoIPCountryDB, plain.GeoIPASNDB = "", ""
	without := New(Options{Config: &plain})
	t.Cleanup(without.Close)
	for _, q := range []string{"top?kind=country", "drill?kind=src&value=1.2.3.4&of=asn"} {
		if code, body := ask(without, q); code != 400 || !strings.Contains(body, "is not a kind") {
			t.Errorf("%s without the databases: %d %s, want 400 naming the kind", q, code, body)
		}
	}
}

// TestWebServerRunsTheWarmUp: the web server part runs the investigation
// API's warm-up beside it; a first question sets it off, and both end with
// the part's context.
func TestWebServerRunsTheWarmUp(t *testing.T) {
	cnt := redistest.Start(t, redistest.Options{})
	dir := t.TempDir()
	cfg := &config.Config{
		Dir: dir, D4: config.RedisAddr{Addr: cnt.Addr(), DB: 2}, Queue: queue, Parsers: cnt.Addr(), Pool: 1,
		HTTPServer: "127.0.0.1:0", Location: time.UTC, CompileInterval: time.Hour, OutputDir: dir, ChartTop: 10,
		BatchSize: 50, MaxLineBytes: 1 << 20, Drilldown: true, APICacheMB: 16,
	}
	d := New(Options{Config: cfg})
	t.Cleanup(d.Close)
	srv, err := d.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.serve(srv)(ctx) }()
	day := time.Now().UTC().Format("20060102")
	resp, err := http.Get("http://" + srv.Addr().String() + "/api/v1/top?kind=src&from=" + day + "&to=" + day)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("top: %d", resp.StatusCode)
	}
	for deadline := time.Now().Add(time.Minute); d.inv.WarmedSeconds() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the warm-up did not end within a minute of the first question")
		}
		time.Sleep(5 * time.Millisecond) // polls the condition above
	}
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the web server part did not end with its context")
	}
}
