package config

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Keys of analyzer.toml.
const (
	keyTimezone        = "timezone"
	keyCompileInterval = "compile_interval"
	keyOutputDir       = "output_dir"
	keyChartTop        = "chart_top"
	keyBatchSize       = "batch_size"
	keyMaxLineBytes    = "max_line_bytes"
	keyMaxAgeDays      = "max_age_days"
	keyMaxValueBytes   = "max_value_bytes"
	keyGeoIPCountryDB  = "geoip_country_db"
	keyGeoIPASNDB      = "geoip_asn_db"
	keyDedupeDays      = "dedupe_days"
	keyMinReplicas     = "min_replicas"
)

// tomlFile is analyzer.toml as decoded. Every field is untyped so that a
// value of the wrong type reaches validation, which names the key, the value
// and what is allowed, instead of the decoder's Go-flavoured type error. A
// field left nil was not in the file (TOML has no null).
type tomlFile struct {
	Timezone        any `toml:"timezone"`
	CompileInterval any `toml:"compile_interval"`
	OutputDir       any `toml:"output_dir"`
	ChartTop        any `toml:"chart_top"`
	BatchSize       any `toml:"batch_size"`
	MaxLineBytes    any `toml:"max_line_bytes"`
	MaxAgeDays      any `toml:"max_age_days"`
	MaxValueBytes   any `toml:"max_value_bytes"`
	GeoIPCountryDB  any `toml:"geoip_country_db"`
	GeoIPASNDB      any `toml:"geoip_asn_db"`
	MinReplicas     any `toml:"min_replicas"`

	// Sharing (share.go).
	MISP             any `toml:"misp"`
	MISPOrgName      any `toml:"misp_org_name"`
	MISPOrgUUID      any `toml:"misp_org_uuid"`
	MISPEventInfo    any `toml:"misp_event_info"`
	MISPTags         any `toml:"misp_tags"`
	MISPDistribution any `toml:"misp_distribution"`
	MISPPublished    any `toml:"misp_published"`
	MISPTop          any `toml:"misp_top"`
	MISPDays         any `toml:"misp_days"`
	BlocklistDays    any `toml:"blocklist_days"`
	BlocklistMin     any `toml:"blocklist_min"`
	DedupeDays       any `toml:"dedupe_days"`
	HTTPTLSCert      any `toml:"http_tls_cert"`
	HTTPTLSKey       any `toml:"http_tls_key"`
	HTTPUsers        any `toml:"http_users"`
	RetainDays       any `toml:"retain_days"`

	// Investigation (investigate.go).
	Drilldown  any `toml:"drilldown"`
	APICacheMB any `toml:"api_cache_mb"`
}

// tomlKeys lists the allowed keys, sorted, as messages and Files show them.
// Keys lists every key analyzer.toml accepts, sorted.
func Keys() []string { return tomlKeys() }

func tomlKeys() []string {
	keys := []string{keyTimezone, keyCompileInterval, keyOutputDir, keyChartTop, keyBatchSize, keyMaxLineBytes, keyMaxAgeDays, keyMaxValueBytes, keyDedupeDays, keyTLSCert, keyTLSKey, keyHTTPUsers, keyRetainDays, keyGeoIPCountryDB, keyGeoIPASNDB, keyMinReplicas}
	keys = append(keys, shareKeys()...)
	keys = append(keys, keyDrilldown, keyAPICacheMB)
	sort.Strings(keys)
	return keys
}

// What each key allows, said when its value is refused.
const (
	wantTimezone        = "a name like Europe/Luxembourg or UTC"
	wantCompileInterval = `a Go duration like "60s" or "5m", or whole seconds like 60; at least 1s`
	wantOutputDir       = `a directory path like "data"`
)

// Most unknown keys named in one message: a wrong file given as
// analyzer.toml must not produce a message as long as itself.
const maxUnknownShown = 5

// loadTOML applies analyzer.toml at path to cfg: defaults first, then the
// file's values, each validated. A missing file means every default.
func loadTOML(path string, cfg *Config) error {
	cfg.TimezoneName = ""
	cfg.Location = time.Local
	cfg.CompileInterval = defaultCompileInterval
	cfg.OutputDir = defaultOutputDir
	cfg.ChartTop = defaultChartTop
	cfg.BatchSize = defaultBatchSize
	cfg.MaxLineBytes = defaultMaxLineBytes
	cfg.MaxAgeDays = defaultMaxAgeDays
	cfg.MaxValueBytes = defaultMaxValueBytes
	cfg.GeoIPCountryDB, cfg.GeoIPASNDB = "", ""
	shareDefaults(cfg)
	investigateDefaults(cfg)
	cfg.DedupeDays = defaultDedupeDays
	cfg.MinReplicas = defaultMinReplicas
	cfg.TLSCert, cfg.TLSKey, cfg.HTTPUsers = "", "", ""
	cfg.RetainDays = defaultRetainDays

	data, found, err := readFile(path, maxTOMLFileBytes, "a few lines of TOML settings")
	if err != nil || !found {
		return err
	}
	return decodeTOML(path, data, cfg)
}

// decodeTOML validates the contents of analyzer.toml and applies them over
// the defaults already in cfg. path is only for messages.
func decodeTOML(path, data string, cfg *Config) error {
	if n := settingsBytes(data); n > maxTOMLSettingsBytes {
		return fmt.Errorf("%s: %d bytes outside comments; want a few lines like %s = 25, at most %d bytes besides comments",
			path, n, keyChartTop, maxTOMLSettingsBytes)
	}
	var raw tomlFile
	md, err := toml.Decode(data, &raw)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s: line %d: %s; want TOML lines like %s = 25", path, pe.Position.Line, printable(strings.TrimSuffix(pe.Message, ".")), keyChartTop)
		}
		return fmt.Errorf("%s: decode: %w", path, err)
	}
	if err := checkKeys(path, md); err != nil {
		return err
	}

	if raw.Timezone != nil {
		name, ok := raw.Timezone.(string)
		if !ok {
			return notA(path, keyTimezone, raw.Timezone, "a string", wantTimezone)
		}
		loc, err := loadLocation(name)
		if err != nil {
			return fmt.Errorf("%s: %s %s is not a known IANA time zone; want %s", path, keyTimezone, quote(name), wantTimezone)
		}
		cfg.TimezoneName, cfg.Location = name, loc
	}
	if raw.CompileInterval != nil {
		d, err := compileInterval(raw.CompileInterval)
		if err != nil {
			return fmt.Errorf("%s: %s %w; want %s", path, keyCompileInterval, err, wantCompileInterval)
		}
		cfg.CompileInterval = d
	}
	if raw.OutputDir != nil {
		dir, ok := raw.OutputDir.(string)
		switch {
		case !ok:
			return notA(path, keyOutputDir, raw.OutputDir, "a string", wantOutputDir)
		case dir == "":
			return fmt.Errorf("%s: %s %s is empty; want %s", path, keyOutputDir, quote(dir), wantOutputDir)
		case strings.IndexByte(dir, 0) >= 0:
			return fmt.Errorf("%s: %s %s contains a NUL byte; want %s", path, keyOutputDir, quote(dir), wantOutputDir)
		}
		cfg.OutputDir = dir
	}
	if err := decodeInts(path, []intKey{
		{keyChartTop, raw.ChartTop, minChartTop, maxChartTop, "", &cfg.ChartTop},
		{keyBatchSize, raw.BatchSize, minBatchSize, maxBatchSize, "", &cfg.BatchSize},
		{keyMaxLineBytes, raw.MaxLineBytes, minMaxLineBytes, maxMaxLineBytes, "", &cfg.MaxLineBytes},
		{keyMaxAgeDays, raw.MaxAgeDays, minMaxAgeDays, maxMaxAgeDays, " (0: no age limit)", &cfg.MaxAgeDays},
		{keyMaxValueBytes, raw.MaxValueBytes, minMaxValueBytes, maxMaxValueBytes, "", &cfg.MaxValueBytes},
		{keyDedupeDays, raw.DedupeDays, minDedupeDays, maxDedupeDays, " (0: count resent lines again)", &cfg.DedupeDays},
		{keyMinReplicas, raw.MinReplicas, minMinReplicas, maxMinReplicas, " (0: do not wait for replicas)", &cfg.MinReplicas},
	}); err != nil {
		return err
	}
	if err := decodeInvestigate(path, &raw, cfg); err != nil {
		return err
	}
	if err := decodeShare(path, &raw, cfg); err != nil {
		return err
	}
	if err := decodeWeb(path, &raw, cfg); err != nil {
		return err
	}
	if err := decodeRetention(path, &raw, cfg); err != nil {
		return err
	}
	return decodeGeoIP(path, raw, cfg)
}

// checkKeys refuses keys that the daemon does not know: a misspelt key
// silently ignored would leave the operator wondering why nothing changed.
func checkKeys(path string, md toml.MetaData) error {
	allowed := make(map[string]bool)
	for _, k := range tomlKeys() {
		allowed[k] = true
	}
	var unknown []string
	seen := make(map[string]bool)
	note := func(k toml.Key) {
		// A table's sub-keys are named through the table: "[foo] bar = 1"
		// is one unknown key "foo". Sub-keys of an allowed key are left to
		// its type check ("chart_top is a table").
		if name := k[0]; !allowed[name] && !seen[name] {
			seen[name] = true
			unknown = append(unknown, name)
		}
	}
	for _, k := range md.Undecoded() {
		note(k)
	}
	// The decoder matches struct fields case-insensitively; keys are case
	// sensitive in TOML, so "Chart_Top" is a key we do not know.
	for _, k := range md.Keys() {
		note(k)
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	shown := unknown
	if len(shown) > maxUnknownShown {
		shown = shown[:maxUnknownShown]
	}
	quoted := make([]string, len(shown))
	for i, k := range shown {
		quoted[i] = quote(k)
	}
	list := strings.Join(quoted, ", ")
	if more := len(unknown) - len(shown); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	noun := "key"
	if len(unknown) > 1 {
		noun = "keys"
	}
	return fmt.Errorf("%s: unknown %s %s; allowed keys: %s", path, noun, list, strings.Join(tomlKeys(), ", "))
}

// loadLocation resolves an IANA name; "" is the machine's local zone.
func loadLocation(name string) (*time.Location, error) {
	if name == "" {
		return time.Local, nil
	}
	return time.LoadLocation(name)
}

// compileInterval reads compile_interval: a Go duration string or whole
// seconds. Its errors continue the key name ("compile_interval ...").
func compileInterval(v any) (time.Duration, error) {
	var d time.Duration
	switch x := v.(type) {
	case string:
		var err error
		if d, err = time.ParseDuration(x); err != nil {
			return 0, fmt.Errorf("%s is not a duration", quote(x))
		}
	case int64:
		if x > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("%d is too long", x)
		}
		d = time.Duration(x) * time.Second
	default:
		text, kind := describeValue(v)
		return 0, fmt.Errorf("%sis %s, not a duration", text, kind)
	}
	shown, _ := describeValue(v)
	switch {
	case d <= 0:
		return 0, fmt.Errorf("%sis not positive", shown)
	case d < minCompileInterval:
		return 0, fmt.Errorf("%sis shorter than %s", shown, minCompileInterval)
	}
	return d, nil
}

// notA refuses a value of the wrong type.
func notA(path, key string, v any, wantType, want string) error {
	text, kind := describeValue(v)
	return fmt.Errorf("%s: %s %sis %s, not %s; want %s", path, key, text, kind, wantType, want)
}

// describeValue shows a decoded TOML value for a message, followed by a
// space (empty for arrays and tables, which are not worth printing), and
// names its type.
func describeValue(v any) (text, kind string) {
	switch x := v.(type) {
	case string:
		return quote(x) + " ", "a string"
	case int64:
		return strconv.FormatInt(x, 10) + " ", "an integer"
	case float64:
		// 1e3 would print as "1000", hiding why it is refused.
		f := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(f, ".eIN") {
			f += ".0"
		}
		return f + " ", "a float"
	case bool:
		return strconv.FormatBool(x) + " ", "a boolean"
	case time.Time:
		return "", "a date or time"
	case map[string]any:
		return "", "a table"
	case []any, []map[string]any:
		return "", "an array"
	}
	return "", fmt.Sprintf("a %T", v)
}

// settingsBytes counts the bytes of data outside lines that start (after
// blanks) with "#". A "#" line inside a multi-line string is counted as a
// comment too; that is harmless, since strings cost the decoder little:
// what costs it is keys and nesting, which cannot hide in such lines.
func settingsBytes(data string) int {
	n := 0
	for len(data) > 0 {
		line := data
		if i := strings.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = ""
		}
		if !strings.HasPrefix(strings.TrimLeft(line, " \t"), "#") {
			n += len(line)
		}
	}
	return n
}

// printable makes a decoder message fit for a log line: the decoder quotes
// some of the file's bytes raw into its messages, so control and invalid
// bytes are escaped and the length is capped like any shown value.
func printable(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); {
		r, size := utf8.DecodeRuneInString(msg[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, msg[i])
		case !unicode.IsPrint(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
		if b.Len() > 4*maxShownBytes {
			b.WriteString("...")
			break
		}
	}
	return b.String()
}

// intKey is an integer setting of analyzer.toml: its raw value (nil when
// absent), the range allowed, what the number means when the key does not
// say, and where it goes.
type intKey struct {
	key         string
	v           any
	least, most int64
	note        string
	dst         *int
}

// decodeInts checks and stores integer settings, refusing the first that
// is not an integer in its range with the usual one-line message.
func decodeInts(path string, keys []intKey) error {
	for _, r := range keys {
		if r.v == nil {
			continue
		}
		want := fmt.Sprintf("an integer from %d to %d%s", r.least, r.most, r.note)
		n, ok := r.v.(int64)
		if !ok {
			return notA(path, r.key, r.v, "an integer", want)
		}
		if n < r.least || n > r.most {
			return fmt.Errorf("%s: %s %d is out of range; want %s", path, r.key, n, want)
		}
		*r.dst = int(n)
	}
	return nil
}
