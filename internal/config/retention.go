package config

import "fmt"

// keyRetainDays is the analyzer.toml key of retention (SPEC §12).
const keyRetainDays = "retain_days"

// Range of retain_days. 0 keeps every day, as the original did; a century
// is as far as max_age_days goes, so no counted day outlives it anyway.
const (
	defaultRetainDays = 0
	minRetainDays     = 0
	maxRetainDays     = 36500
)

// decodeRetention validates retain_days of raw into cfg. It runs after
// the sharing keys, whose windows it must cover.
func decodeRetention(path string, raw *tomlFile, cfg *Config) error {
	if raw.RetainDays != nil {
		want := fmt.Sprintf("an integer from %d to %d (0: keep every day)", minRetainDays, maxRetainDays)
		n, ok := raw.RetainDays.(int64)
		if !ok {
			return notA(path, keyRetainDays, raw.RetainDays, "an integer", want)
		}
		if n < minRetainDays || n > maxRetainDays {
			return fmt.Errorf("%s: %s %d is out of range; want %s", path, keyRetainDays, n, want)
		}
		cfg.RetainDays = int(n)
	}
	if err := cfg.validateRetention(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// validateRetention refuses a retention shorter than the windows that read
// per-day statistics: the MISP feed and the blocklist are written from the
// day keys of their last days, and a pruned day would vanish from them.
func (c *Config) validateRetention() error {
	if c.RetainDays < minRetainDays || c.RetainDays > maxRetainDays {
		return fmt.Errorf("%s %d is out of range; want %d to %d (0: keep every day)", keyRetainDays, c.RetainDays, minRetainDays, maxRetainDays)
	}
	if c.RetainDays == 0 {
		return nil
	}
	// The windows are of complete days before today; today is kept too.
	least, why := c.BlocklistDays+1, fmt.Sprintf("blocklist_days %d", c.BlocklistDays)
	if c.MISP && c.MISPDays+1 > least {
		least, why = c.MISPDays+1, fmt.Sprintf("misp_days %d", c.MISPDays)
	}
	if c.RetainDays < least {
		return fmt.Errorf("%s %d is shorter than %s, which is written from the statistics of each of its days and today's; want 0 (keep every day) or from %d to %d",
			keyRetainDays, c.RetainDays, why, least, maxRetainDays)
	}
	return nil
}
