package config

import "fmt"

// Keys of analyzer.toml for the investigation API (SPEC §10): drilldown
// turns its drill-down data on or off; api_cache_mb bounds the closed
// periods' rankings the daemon keeps between questions.
const (
	keyDrilldown  = "drilldown"
	keyAPICacheMB = "api_cache_mb"
)

// Range of api_cache_mb. 0 keeps nothing; 64 GiB is past any year of
// rankings a counting Redis holds.
const (
	defaultAPICacheMB = 256
	minAPICacheMB     = 0
	maxAPICacheMB     = 65536
)

func investigateDefaults(cfg *Config) {
	cfg.Drilldown = true
	cfg.APICacheMB = defaultAPICacheMB
}

// decodeInvestigate validates the investigation keys of raw into cfg.
func decodeInvestigate(path string, raw *tomlFile, cfg *Config) error {
	if raw.Drilldown != nil {
		b, ok := raw.Drilldown.(bool)
		if !ok {
			return notA(path, keyDrilldown, raw.Drilldown, "a boolean", wantBool)
		}
		cfg.Drilldown = b
	}
	if raw.APICacheMB != nil {
		want := fmt.Sprintf("an integer of MiB from %d to %d (0: keep none)", minAPICacheMB, maxAPICacheMB)
		n, ok := raw.APICacheMB.(int64)
		if !ok {
			return notA(path, keyAPICacheMB, raw.APICacheMB, "an integer", want)
		}
		if n < minAPICacheMB || n > maxAPICacheMB {
			return fmt.Errorf("%s: %s %d is out of range; want %s", path, keyAPICacheMB, n, want)
		}
		cfg.APICacheMB = int(n)
	}
	return nil
}
