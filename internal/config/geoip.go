package config

import (
	"fmt"

	"github.com/D4-project/analyzer-d4-log/internal/geoip"
)

// What the geoip keys allow, said when a value is refused.
const (
	wantGeoIPCountryDB = `the path of a MaxMind-format country database with country.iso_code, like "GeoLite2-Country.mmdb" (GeoLite2-Country, DB-IP country lite, IPinfo lite)`
	wantGeoIPASNDB     = `the path of a MaxMind-format AS database with autonomous_system_number, like "GeoLite2-ASN.mmdb" (GeoLite2-ASN, DB-IP ASN lite, IPinfo lite)`
)

// decodeGeoIP checks the database paths of SPEC §13 by opening them: a
// file that is missing, unreadable, not a whole .mmdb, or of the other
// role is refused at start, not found wanting at the first line. Relative
// paths are relative to the working directory, like output_dir.
func decodeGeoIP(path string, raw tomlFile, cfg *Config) error {
	for _, g := range []struct {
		key  string
		v    any
		role geoip.Role
		want string
		dst  *string
	}{
		{keyGeoIPCountryDB, raw.GeoIPCountryDB, geoip.CountryRole, wantGeoIPCountryDB, &cfg.GeoIPCountryDB},
		{keyGeoIPASNDB, raw.GeoIPASNDB, geoip.ASNRole, wantGeoIPASNDB, &cfg.GeoIPASNDB},
	} {
		if g.v == nil {
			continue
		}
		file, ok := g.v.(string)
		if !ok {
			return notA(path, g.key, g.v, "a string", g.want)
		}
		if file == "" {
			continue // the default: no database, as without the line
		}
		if err := geoip.Check(file, g.role); err != nil {
			return fmt.Errorf("%s: %s %s: %s; want %s", path, g.key, quote(file), printable(err.Error()), g.want)
		}
		*g.dst = file
	}
	return nil
}
