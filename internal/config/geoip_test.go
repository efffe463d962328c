package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/D4-project/analyzer-d4-log/internal/geoip/geoiptest"
)

// TestGeoIPDatabases loads databases built by the test, and refuses each
// given in the other's place with a message naming the file and the field.
func TestGeoIPDatabases(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{FileRedisD4, FileRedisQueue, FileRedisParsers} {
		b, err := os.ReadFile(filepath.Join("testdata/good/minimal", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	country, asn := filepath.Join(dir, "c.mmdb"), filepath.Join(dir, "a.mmdb")
	if err := geoiptest.Write(country, geoiptest.GeoLite2Country, geoiptest.Sample()); err != nil {
		t.Fatal(err)
	}
	if err := geoiptest.Write(asn, geoiptest.GeoLite2ASN, geoiptest.Sample()); err != nil {
		t.Fatal(err)
	}
	toml := filepath.Join(dir, FileAnalyzerTOML)
	os.WriteFile(toml, []byte("geoip_country_db = '"+country+"'\ngeoip_asn_db = '"+asn+"'\n"), 0o644)
	cfg, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GeoIPCountryDB != country || cfg.GeoIPASNDB != asn {
		t.Errorf("loaded %q, %q", cfg.GeoIPCountryDB, cfg.GeoIPASNDB)
	}
	os.WriteFile(toml, []byte("geoip_country_db = '"+asn+"'\n"), 0o644)
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "geoip_country_db \""+asn+"\": it is not a country database: none of its first 256 records has country.iso_code") {
		t.Errorf("an AS database as the country one: %v", err)
	}
	os.WriteFile(toml, []byte("geoip_asn_db = '"+country+"'\n"), 0o644)
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "it is not an AS database: none of its first 256 records has autonomous_system_number") || strings.Contains(err.Error(), "\n") {
		t.Errorf("a country database as the AS one: %v", err)
	}
	// Without the keys, nothing is configured.
	os.Remove(toml)
	if cfg, err := Load(dir); err != nil || cfg.GeoIPCountryDB != "" || cfg.GeoIPASNDB != "" {
		t.Errorf("no analyzer.toml: %v %+v", err, cfg)
	}
}
