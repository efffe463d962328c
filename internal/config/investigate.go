package config

// keyDrilldown of analyzer.toml turns the drill-down data of the
// investigation API (SPEC §10) on or off.
const keyDrilldown = "drilldown"

func investigateDefaults(cfg *Config) { cfg.Drilldown = true }

// decodeInvestigate validates the investigation keys of raw into cfg.
func decodeInvestigate(path string, raw *tomlFile, cfg *Config) error {
	if raw.Drilldown == nil {
		return nil
	}
	b, ok := raw.Drilldown.(bool)
	if !ok {
		return notA(path, keyDrilldown, raw.Drilldown, "a boolean", wantBool)
	}
	cfg.Drilldown = b
	return nil
}
