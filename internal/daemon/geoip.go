package daemon

import (
	"fmt"
	"log/slog"

	"github.com/D4-project/analyzer-d4-log/internal/config"
	"github.com/D4-project/analyzer-d4-log/internal/geoip"
	"github.com/D4-project/analyzer-d4-log/internal/ingest"
	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// openGeoIP opens the databases of SPEC §13 that the configuration names,
// or returns nil when it names none. The config check opened them once
// already; this open is the one kept, and fails only if a file changed
// in between.
func openGeoIP(cfg *config.Config, log *slog.Logger) (*geoip.Databases, error) {
	if cfg.GeoIPCountryDB == "" && cfg.GeoIPASNDB == "" {
		return nil, nil
	}
	dbs, err := geoip.Open(cfg.GeoIPCountryDB, cfg.GeoIPASNDB, log, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: geoip database: %w; check geoip_country_db and geoip_asn_db", cfg.Dir, err)
	}
	return dbs, nil
}

// activeKinds is the kinds this daemon counts and compiles: the three of
// every line, plus country and asn when their database is configured.
func activeKinds(dbs *geoip.Databases) kinds.Set {
	return kinds.Active(ingest.DerivedKinds(dbs)...)
}

// rebuildEnricher is what -F counts the derived kinds with, nil without a
// database (a nil *ingest.Enricher must not become a non-nil interface).
func rebuildEnricher(dbs *geoip.Databases) stats.Enricher {
	if e := ingest.NewEnricher(dbs); e != nil {
		return e
	}
	return nil
}
