package geoip_test

import (
	"bytes"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/geoip"
	"github.com/D4-project/analyzer-d4-log/internal/geoip/geoiptest"
)

// clock is a settable clock for Refresh's pacing.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{t: time.Now()} }
func write(t *testing.T, path string, l geoiptest.Layout, nets []geoiptest.Network) {
	t.Helper()
	if err := geoiptest.Write(path, l, nets); err != nil {
		t.Fatal(err)
	}
}

func sampleDBs(t *testing.T) (country, asn string) {
	dir := t.TempDir()
	country, asn = filepath.Join(dir, "c.mmdb"), filepath.Join(dir, "a.mmdb")
	write(t, country, geoiptest.GeoLite2Country, geoiptest.Sample())
	write(t, asn, geoiptest.GeoLite2ASN, geoiptest.Sample())
	return country, asn
}

func TestLookup(t *testing.T) {
	country, asn := sampleDBs(t)
	ipinfo := filepath.Join(filepath.Dir(country), "ipinfo.mmdb")
	write(t, ipinfo, geoiptest.IPinfoLite, geoiptest.Sample())
	markup := geoiptest.Sample()[1].Org
	want := []struct {
		src  string
		want geoip.Answer
	}{
		{"1.2.3.4", geoip.Answer{"AU", "Australia", "AS13335", "Cloudflare, Inc."}},
		{"81.2.69.160", geoip.Answer{"GB", "United Kingdom", "AS20712", markup}},
		{"::ffff:81.2.69.1", geoip.Answer{"GB", "United Kingdom", "AS20712", markup}},
		{"89.160.23.255", geoip.Answer{"SE", "Sweden", "AS29518", "Bredband2 AB"}},
		{"2a02:cf40::1", geoip.Answer{"NO", "Norway", "AS29695", "Altibox AS"}},
		{"2A02:CF47:ffff::1", geoip.Answer{"NO", "Norway", "AS29695", "Altibox AS"}},
		{"fe80::1%eth0", geoip.Answer{"??", "", "AS0", ""}},
		{"2001:480::5%1", geoip.Answer{"US", "United States", "AS668", "DoD Network Information Center"}},
		{"5.6.7.8", geoip.Answer{"??", "", "AS64512", "No Country Ltd"}},
		{"8.8.8.8", geoip.Answer{"US", "United States", "AS0", ""}},
		{"10.1.2.3", geoip.Answer{"??", "", "AS0", ""}},
		{"2001:db8::1", geoip.Answer{"??", "", "AS0", ""}},
		{"9.9.9.9", geoip.Answer{"??", "", "AS0", ""}},
		{"host.example.org", geoip.Answer{"??", "", "AS0", ""}},
		{"1.2.3.4.example.org", geoip.Answer{"??", "", "AS0", ""}},
		{"", geoip.Answer{"??", "", "AS0", ""}},
		{"1.2.3.256", geoip.Answer{"??", "", "AS0", ""}},
	}
	for _, files := range [][2]string{{country, asn}, {ipinfo, ipinfo}} {
		d, err := geoip.Open(files[0], files[1], nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		snap := d.Snapshot()
		for _, tc := range want {
			if got := snap.Lookup([]byte(tc.src)); got != tc.want {
				t.Errorf("%s: Lookup(%q) = %+v, want %+v", filepath.Base(files[0]), tc.src, got, tc.want)
			}
		}
	}
	// Only one database: the other answers unknown.
	d, err := geoip.Open("", asn, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c, a := d.Kinds(); c || !a {
		t.Errorf("Kinds() = %v, %v; want false, true", c, a)
	}
	if got := d.Snapshot().Lookup([]byte("1.2.3.4")); got != (geoip.Answer{"??", "", "AS13335", "Cloudflare, Inc."}) {
		t.Errorf("AS only: %+v", got)
	}
}

func TestOpenRefuses(t *testing.T) {
	country, asn := sampleDBs(t)
	dir := filepath.Dir(country)
	text := filepath.Join(dir, "text.mmdb")
	os.WriteFile(text, []byte("not a database\n"), 0o644)
	b, _ := os.ReadFile(country)
	half := filepath.Join(dir, "half.mmdb")
	os.WriteFile(half, b[:len(b)/2], 0o644)
	// The whole file but for a few bytes of its search tree: it opens,
	// only Verify finds it broken.
	broken := append([]byte(nil), b...)
	for i := 0; i < 64; i++ {
		broken[i] = 0xff
	}
	brokenPath := filepath.Join(dir, "broken.mmdb")
	os.WriteFile(brokenPath, broken, 0o644)
	for _, tc := range []struct {
		path string
		role geoip.Role
		want string
	}{
		{filepath.Join(dir, "missing.mmdb"), geoip.CountryRole, "no such file"},
		{dir, geoip.CountryRole, "is a directory"},
		{text, geoip.CountryRole, "not a MaxMind-format (.mmdb) database"},
		{half, geoip.CountryRole, "not a MaxMind-format (.mmdb) database"},
		{brokenPath, geoip.CountryRole, "not a complete MaxMind-format"},
		{asn, geoip.CountryRole, "not a country database: none of its first 256 records has country.iso_code"},
		{country, geoip.ASNRole, "not an AS database: none of its first 256 records has autonomous_system_number"},
	} {
		err := geoip.Check(tc.path, tc.role)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%s, %s) = %v, want %q", filepath.Base(tc.path), tc.role, err, tc.want)
		}
	}
	if err := geoip.Check(country, geoip.CountryRole); err != nil {
		t.Errorf("a good country database refused: %v", err)
	}
}

// TestReplace replaces the files in the ways operators do (a rename, a
// copy in place seen half-written) and checks that answers switch only to
// a whole file, only after the pacing, with the switch logged.
func TestReplace(t *testing.T) {
	country, asn := sampleDBs(t)
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logBuf, &logMu}, nil))
	clk := newClock()
	d, err := geoip.Open(country, asn, log, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	src := []byte("1.2.3.4")
	if got := d.Snapshot().Lookup(src).Country; got != "AU" {
		t.Fatalf("before: %s", got)
	}
	moved := []geoiptest.Network{{CIDR: "1.2.0.0/16", Country: "FR", CountryName: "France", ASN: 3215, Org: "Orange"}}
	write(t, country, geoiptest.GeoLite2Country, moved)
	write(t, asn, geoiptest.GeoLite2ASN, moved)
	d.Refresh()
	if got := d.Snapshot().Lookup(src).Country; got != "AU" {
		t.Errorf("switched before CheckEvery passed: %s", got)
	}
	old := d.Snapshot()
	clk.add(d.CheckEvery)
	d.Refresh()
	if got := d.Snapshot().Lookup(src); got.Country != "FR" || got.ASN != "AS3215" {
		t.Errorf("after the check: %+v", got)
	}
	// A snapshot taken before keeps its answers: a batch sees one file.
	if got := old.Lookup(src).Country; got != "AU" {
		t.Errorf("old snapshot answers %s", got)
	}
	logMu.Lock()
	if n := strings.Count(logBuf.String(), "switched to the replaced database file"); n != 2 {
		t.Errorf("%d switches logged, want 2:\n%s", n, logBuf.String())
	}
	logMu.Unlock()

	// A copy in place, caught half-written: refused, the last good one
	// stays, and the whole file is taken once written.
	b, err := geoiptest.Build(geoiptest.GeoLite2Country, geoiptest.Sample())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(country, b[:len(b)-40], 0o644); err != nil {
		t.Fatal(err)
	}
	clk.add(d.CheckEvery)
	d.Refresh()
	if got := d.Snapshot().Lookup(src).Country; got != "FR" {
		t.Errorf("half-written file used: %s", got)
	}
	f, err := os.OpenFile(country, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b[len(b)-40:])
	f.Close()
	clk.add(d.CheckEvery)
	d.Refresh()
	if got := d.Snapshot().Lookup(src).Country; got != "AU" {
		t.Errorf("completed file not used: %s", got)
	}
	// Gone (between a remove and a rename): the loaded one stays.
	os.Remove(asn)
	d.Reload()
	if got := d.Snapshot().Lookup(src).ASN; got != "AS3215" {
		t.Errorf("after removal: %s", got)
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, w := range []string{"cannot be used yet", "cannot look at the database file"} {
		if !strings.Contains(logBuf.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, logBuf.String())
		}
	}
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestConcurrentRefresh runs lookups while the files switch back and
// forth (for -race): every answer is one of the two files'.
func TestConcurrentRefresh(t *testing.T) {
	country, asn := sampleDBs(t)
	d, err := geoip.Open(country, asn, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.CheckEvery = 0
	moved := []geoiptest.Network{{CIDR: "1.2.0.0/16", Country: "FR", CountryName: "France", ASN: 3215, Org: "Orange"}}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d.Refresh()
				got := d.Snapshot().Lookup([]byte("1.2.3.4")).Country
				if got != "AU" && got != "FR" {
					t.Errorf("answer %q", got)
					return
				}
			}
		}()
	}
	for i := range 6 {
		nets := geoiptest.Sample()
		if i%2 == 0 {
			nets = moved
		}
		write(t, country, geoiptest.GeoLite2Country, nets)
	}
	close(stop)
	wg.Wait()
}

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::ffff:1.2.3.4", "fe80::1%eth0", "host", "1.2.3.4.5", "::", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		a, ok := geoip.ParseSource(src)
		if ok && (!a.IsValid() || a.Is4In6() || a.Zone() != "") {
			t.Errorf("ParseSource(%q) = %v", src, a)
		}
	})
}

// TestDamagedFiles damages a database a few bytes at a time, the metadata
// at its end most often (where a half-copied or corrupted download
// differs), and opens each: it is refused, or opened and answering every
// source well-formed; never a panic. (The reader itself is fuzzed
// upstream; this checks what this package does around it.)
func TestDamagedFiles(t *testing.T) {
	good, err := geoiptest.Build(geoiptest.GeoLite2Country, geoiptest.Sample())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewSource(7))
	path := filepath.Join(t.TempDir(), "damaged.mmdb")
	refused := 0
	const n = 400
	for i := 0; i < n; i++ {
		d := append([]byte(nil), good...)
		for j := 0; j < 1+r.Intn(4); j++ {
			k := r.Intn(len(d))
			if r.Intn(2) == 0 {
				k = len(d) - 1 - r.Intn(min(300, len(d)))
			}
			d[k] = byte(r.Intn(256))
		}
		if r.Intn(10) == 0 {
			d = d[:r.Intn(len(d))]
		}
		if err := os.WriteFile(path, d, 0o644); err != nil {
			t.Fatal(err)
		}
		if geoip.Check(path, geoip.CountryRole) != nil {
			refused++
			continue
		}
		db, err := geoip.Open(path, "", nil, nil)
		if err != nil {
			t.Fatalf("checked, then refused: %v", err)
		}
		for _, src := range []string{"1.2.3.4", "81.2.69.1", "2a02:cf40::1", "::", "255.255.255.255"} {
			if ans := db.Snapshot().Lookup([]byte(src)); len(ans.Country) != 2 || ans.ASN != "AS0" {
				t.Fatalf("answer %+v", ans)
			}
		}
	}
	if refused == 0 || refused == n {
		t.Errorf("%d of %d damaged files refused; want some of each", refused, n)
	}
}
