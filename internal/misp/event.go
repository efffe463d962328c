package misp

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
)

// Facts of the authentication-failure-report template of the MISP object
// repository (objects/authentication-failure-report/definition.json) that
// MISP checks an object against.
const (
	TemplateName        = "authentication-failure-report"
	TemplateUUID        = "9b39afe0-9809-4fe0-8a0b-4cec2b140dd2"
	TemplateVersion     = 4
	TemplateMeta        = "network"
	TemplateDescription = "Authentication Failure Report"
)

// Event fields that are the same for every day: analysis 2 is "complete"
// (the day is over), threat level 3 is "low" (opportunistic scanning).
const (
	analysisComplete = 2
	threatLevelLow   = 3
)

// The MISP core format writes numbers as strings in event files (PyMISP's
// feed output does the same); the manifest keeps them numbers.
type eventFile struct {
	Event eventBody `json:"Event"`
}

type eventBody struct {
	UUID          string      `json:"uuid"`
	Info          string      `json:"info"`
	Date          string      `json:"date"`
	Analysis      string      `json:"analysis"`
	ThreatLevelID string      `json:"threat_level_id"`
	Distribution  string      `json:"distribution"`
	Published     bool        `json:"published"`
	Timestamp     string      `json:"timestamp"`
	Orgc          org         `json:"Orgc"`
	Tag           []tag       `json:"Tag"`
	Attribute     []attribute `json:"Attribute"`
	Object        []object    `json:"Object"`
}

type org struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

type tag struct {
	Name   string `json:"name"`
	Colour string `json:"colour"`
}

type object struct {
	Name            string      `json:"name"`
	MetaCategory    string      `json:"meta-category"`
	Description     string      `json:"description"`
	TemplateUUID    string      `json:"template_uuid"`
	TemplateVersion string      `json:"template_version"`
	UUID            string      `json:"uuid"`
	Timestamp       string      `json:"timestamp"`
	Comment         string      `json:"comment"`
	Deleted         bool        `json:"deleted"`
	Attribute       []attribute `json:"Attribute"`
}

type attribute struct {
	UUID               string `json:"uuid"`
	ObjectRelation     string `json:"object_relation,omitempty"`
	Category           string `json:"category"`
	Type               string `json:"type"`
	Value              string `json:"value"`
	ToIDS              bool   `json:"to_ids"`
	DisableCorrelation bool   `json:"disable_correlation"`
	Comment            string `json:"comment"`
	Timestamp          string `json:"timestamp"`
	Deleted            bool   `json:"deleted"`
}

// manifestEntry is one event's line in manifest.json.
type manifestEntry struct {
	Orgc          org    `json:"Orgc"`
	Tag           []tag  `json:"Tag"`
	Info          string `json:"info"`
	Date          string `json:"date"`
	Analysis      int    `json:"analysis"`
	ThreatLevelID int    `json:"threat_level_id"`
	Timestamp     int64  `json:"timestamp"`
}

// stamp sets the event's timestamp on the event, its objects and their
// attributes. Everything carries the event's: MISP updates an object or
// attribute of a pulled event only when its timestamp is newer than the
// one it holds, so a changed total must come with a newer timestamp, and
// the event's is the newest there is.
func (e *eventBody) stamp(ts int64) {
	s := strconv.FormatInt(ts, 10)
	e.Timestamp = s
	for i := range e.Attribute {
		e.Attribute[i].Timestamp = s
	}
	for i := range e.Object {
		e.Object[i].Timestamp = s
		for j := range e.Object[i].Attribute {
			e.Object[i].Attribute[j].Timestamp = s
		}
	}
}

// encode renders the event file at timestamp ts.
func (e *eventBody) encode(ts int64) ([]byte, error) {
	e.stamp(ts)
	return marshal(eventFile{Event: *e})
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Values are attackers' bytes; escaping <, > and & as \u003c is valid
	// JSON but makes the feed harder to read for nothing.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (e *eventBody) manifest(ts int64) manifestEntry {
	return manifestEntry{
		Orgc: e.Orgc, Tag: e.Tag, Info: e.Info, Date: e.Date,
		Analysis: analysisComplete, ThreatLevelID: threatLevelLow, Timestamp: ts,
	}
}

// hashes are the hashes.csv lines of the event: the MD5 of every
// attribute value, the event's own attributes first, then each object's,
// in the order the event file holds them.
func (e *eventBody) hashes() []string {
	var out []string
	add := func(a attribute) {
		sum := md5.Sum([]byte(a.Value))
		out = append(out, hex.EncodeToString(sum[:])+","+e.UUID)
	}
	for _, a := range e.Attribute {
		add(a)
	}
	for _, o := range e.Object {
		for _, a := range o.Attribute {
			add(a)
		}
	}
	return out
}

// storedTimestamp reads the event timestamp of an event file this package
// wrote earlier. The file lies on disk where anyone with access may have
// changed it, so anything else than a positive integer timestamp in the
// expected place counts as no file.
func storedTimestamp(b []byte) (int64, bool) {
	var f struct {
		Event struct {
			Timestamp string `json:"timestamp"`
		} `json:"Event"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return 0, false
	}
	ts, err := strconv.ParseInt(f.Event.Timestamp, 10, 64)
	if err != nil || ts <= 0 {
		return 0, false
	}
	return ts, true
}

// tagColour is the colour MISP's taxonomies give the TLP tags, so that a
// MISP that does not have the tag yet creates it as its taxonomy would;
// other tags are white.
func tagColour(name string) string {
	switch name {
	case "tlp:red":
		return "#CC0033"
	case "tlp:amber", "tlp:amber+strict":
		return "#FFC000"
	case "tlp:green":
		return "#339900"
	}
	return "#ffffff"
}

// isoDay turns YYYYMMDD into YYYY-MM-DD.
func isoDay(day string) string {
	if len(day) != 8 {
		return day
	}
	return fmt.Sprintf("%s-%s-%s", day[:4], day[4:6], day[6:])
}
