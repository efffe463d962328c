package config

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
	return decodeInts(path, []intKey{
		{keyAPICacheMB, raw.APICacheMB, minAPICacheMB, maxAPICacheMB, " (MiB; 0: keep none)", &cfg.APICacheMB},
	})
}
