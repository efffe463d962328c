package config

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/D4-project/analyzer-d4-log/internal/uuidv5"
)

// Keys of analyzer.toml for sharing (SPEC §11): the MISP feed and the
// blocklist.
const (
	keyMISP             = "misp"
	keyMISPOrgName      = "misp_org_name"
	keyMISPOrgUUID      = "misp_org_uuid"
	keyMISPEventInfo    = "misp_event_info"
	keyMISPTags         = "misp_tags"
	keyMISPDistribution = "misp_distribution"
	keyMISPPublished    = "misp_published"
	keyMISPTop          = "misp_top"
	keyMISPDays         = "misp_days"
	keyBlocklistDays    = "blocklist_days"
	keyBlocklistMin     = "blocklist_min"
)

func shareKeys() []string {
	return []string{keyMISP, keyMISPOrgName, keyMISPOrgUUID, keyMISPEventInfo, keyMISPTags, keyMISPDistribution,
		keyMISPPublished, keyMISPTop, keyMISPDays, keyBlocklistDays, keyBlocklistMin}
}

// Defaults and ranges of the sharing keys.
const (
	defaultMISPOrgName   = "analyzer-d4-log"
	defaultMISPEventInfo = "analyzer-d4-log: SSH attempts for invalid user names on"
	defaultMISPTag       = "tlp:clear"
	defaultMISPTop       = 100
	minMISPTop           = 1
	maxMISPTop           = 1000
	defaultMISPDays      = 30
	minMISPDays          = 1
	maxMISPDays          = 3660
	maxMISPDistribution  = 3
	defaultBlocklistDays = 7
	minBlocklistDays     = 1
	maxBlocklistDays     = 3660
	defaultBlocklistMin  = 5
	minBlocklistMin      = 1
	maxBlocklistMin      = 1_000_000_000
	// MISP keeps organisation and tag names in 255-character columns.
	maxMISPNameBytes = 255
	maxMISPInfoBytes = 1000
	maxMISPTags      = 32
	// orgUUIDName is the name whose UUID v5 in the queue's namespace is
	// the default organisation UUID.
	orgUUIDName = "analyzer-d4-log misp org"
)

const (
	wantBool      = "true or false"
	wantOrgName   = "the organisation's name as MISP shows it, 1 to 255 bytes of printable UTF-8"
	wantOrgUUID   = "the organisation's UUID in MISP, like " + exampleQueue
	wantEventInfo = "a prefix of the event titles (the day follows), 1 to 1000 bytes of printable UTF-8"
	wantTags      = `an array of tag names like ["tlp:clear"], at most 32, each 1 to 255 bytes of printable UTF-8`
)

// DefaultMISPOrgUUID is the organisation UUID used when misp_org_uuid is
// not set: the UUID v5 of "analyzer-d4-log misp org" in the namespace of
// the queue's UUID, so that it is the same at every start without any
// configuration.
func DefaultMISPOrgUUID(queue string) string {
	ns, err := uuidv5.Parse(queue)
	if err != nil {
		return ""
	}
	return uuidv5.New(ns, orgUUIDName).String()
}

func shareDefaults(cfg *Config) {
	cfg.MISP = true
	cfg.MISPOrgName = defaultMISPOrgName
	cfg.MISPOrgUUID = DefaultMISPOrgUUID(cfg.Queue)
	cfg.MISPEventInfo = defaultMISPEventInfo
	cfg.MISPTags = []string{defaultMISPTag}
	cfg.MISPDistribution = 0
	cfg.MISPPublished = false
	cfg.MISPTop = defaultMISPTop
	cfg.MISPDays = defaultMISPDays
	cfg.BlocklistDays = defaultBlocklistDays
	cfg.BlocklistMin = defaultBlocklistMin
}

// decodeShare validates the sharing keys of raw into cfg.
func decodeShare(path string, raw *tomlFile, cfg *Config) error {
	for _, r := range []struct {
		key string
		v   any
		dst *bool
	}{{keyMISP, raw.MISP, &cfg.MISP}, {keyMISPPublished, raw.MISPPublished, &cfg.MISPPublished}} {
		if r.v == nil {
			continue
		}
		b, ok := r.v.(bool)
		if !ok {
			return notA(path, r.key, r.v, "a boolean", wantBool)
		}
		*r.dst = b
	}
	for _, r := range []struct {
		key, want string
		v         any
		most      int
		dst       *string
	}{
		{keyMISPOrgName, wantOrgName, raw.MISPOrgName, maxMISPNameBytes, &cfg.MISPOrgName},
		{keyMISPEventInfo, wantEventInfo, raw.MISPEventInfo, maxMISPInfoBytes, &cfg.MISPEventInfo},
	} {
		if r.v == nil {
			continue
		}
		s, ok := r.v.(string)
		if !ok {
			return notA(path, r.key, r.v, "a string", r.want)
		}
		if why := badText(s, r.most); why != "" {
			return fmt.Errorf("%s: %s %s %s; want %s", path, r.key, quote(s), why, r.want)
		}
		*r.dst = s
	}
	if raw.MISPOrgUUID != nil {
		s, ok := raw.MISPOrgUUID.(string)
		if !ok {
			return notA(path, keyMISPOrgUUID, raw.MISPOrgUUID, "a string", wantOrgUUID)
		}
		u, ok := canonicalUUID(s)
		if !ok {
			return fmt.Errorf("%s: %s %s is not a UUID; want %s", path, keyMISPOrgUUID, quote(s), wantOrgUUID)
		}
		cfg.MISPOrgUUID = u
	}
	if raw.MISPTags != nil {
		list, ok := raw.MISPTags.([]any)
		if !ok {
			return notA(path, keyMISPTags, raw.MISPTags, "an array", wantTags)
		}
		if len(list) > maxMISPTags {
			return fmt.Errorf("%s: %s has %d tags; want %s", path, keyMISPTags, len(list), wantTags)
		}
		tags := make([]string, 0, len(list))
		for i, v := range list {
			s, ok := v.(string)
			if !ok {
				text, kind := describeValue(v)
				return fmt.Errorf("%s: %s[%d] %sis %s, not a string; want %s", path, keyMISPTags, i, text, kind, wantTags)
			}
			if why := badText(s, maxMISPNameBytes); why != "" {
				return fmt.Errorf("%s: %s[%d] %s %s; want %s", path, keyMISPTags, i, quote(s), why, wantTags)
			}
			tags = append(tags, s)
		}
		cfg.MISPTags = tags
	}
	return decodeInts(path, []intKey{
		{keyMISPDistribution, raw.MISPDistribution, 0, maxMISPDistribution, " (0: your organisation only, 1: this community, 2: connected communities, 3: all communities)", &cfg.MISPDistribution},
		{keyMISPTop, raw.MISPTop, minMISPTop, maxMISPTop, "", &cfg.MISPTop},
		{keyMISPDays, raw.MISPDays, minMISPDays, maxMISPDays, "", &cfg.MISPDays},
		{keyBlocklistDays, raw.BlocklistDays, minBlocklistDays, maxBlocklistDays, "", &cfg.BlocklistDays},
		{keyBlocklistMin, raw.BlocklistMin, minBlocklistMin, maxBlocklistMin, "", &cfg.BlocklistMin},
	})
}

// badText says what is wrong with a name shown in MISP, "" if nothing.
func badText(s string, most int) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "is empty"
	case len(s) > most:
		return fmt.Sprintf("is longer than %d bytes", most)
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "contains a control or invisible character"
	}
	return ""
}

// validateShare guards the sharing values for configurations built in code.
func (c *Config) validateShare() error {
	if _, ok := canonicalUUID(c.MISPOrgUUID); c.MISP && !ok {
		return fmt.Errorf("%s %s is not a UUID", keyMISPOrgUUID, quote(c.MISPOrgUUID))
	}
	for _, r := range []struct {
		key            string
		v, least, most int
	}{
		{keyMISPDistribution, c.MISPDistribution, 0, maxMISPDistribution},
		{keyMISPTop, c.MISPTop, minMISPTop, maxMISPTop},
		{keyMISPDays, c.MISPDays, minMISPDays, maxMISPDays},
		{keyBlocklistDays, c.BlocklistDays, minBlocklistDays, maxBlocklistDays},
		{keyBlocklistMin, c.BlocklistMin, minBlocklistMin, maxBlocklistMin},
	} {
		if r.v < r.least || r.v > r.most {
			return fmt.Errorf("%s %d is out of range; want %d to %d", r.key, r.v, r.least, r.most)
		}
	}
	return nil
}
