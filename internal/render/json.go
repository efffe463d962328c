package render

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// JSONPath gives the path of a ranking's JSON summary relative to the sshd
// output directory: "<period>/<period>:stats<kind>.json", beside the CSV.
func JSONPath(period, kind string) string { return statsPath(period, kind, ".json") }

// jsonEntry is one ranked value in the JSON files.
//
// JSON strings are Unicode text, while values are whatever bytes an
// attacker sent. "value" is the value as text, each byte that is not valid
// UTF-8 replaced by U+FFFD (what encoding/json does); only when that
// replacement happened, "value_b64" also carries the exact bytes in
// standard padded base64. A reader recovers every value exactly by taking
// value_b64 when it is present and value otherwise.
type jsonEntry struct {
	Value    string `json:"value"`
	ValueB64 string `json:"value_b64,omitempty"`
	Count    int64  `json:"count"`
	// Name is the organisation or country beside an AS or country code.
	Name string `json:"name,omitempty"`
	// Shown is the value as the pages and the CSV show it (VisibleText),
	// present only when that differs from value: the pages' scripts then
	// show exactly the CSV's text without a second copy of the escaping
	// rules in JavaScript.
	Shown string `json:"shown,omitempty"`
}

func jsonEntries(entries []Entry, names Names) []jsonEntry {
	out := make([]jsonEntry, len(entries))
	for i, e := range entries {
		out[i] = jsonEntry{Value: e.Value, Count: e.Count, Name: names[e.Value]}
		if v := VisibleText(e.Value); v != e.Value {
			out[i].Shown = v
		}
		if !utf8.ValidString(e.Value) {
			out[i].ValueB64 = base64.StdEncoding.EncodeToString([]byte(e.Value))
		}
	}
	return out
}

// rankedCopy returns entries in ranking order (count descending, then value
// by bytes), whatever order the caller handed them in.
func rankedCopy(entries []Entry) []Entry {
	out := append([]Entry(nil), entries...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	return out
}

// statsJSON is the JSON summary of one period and kind.
type statsJSON struct {
	Period   string      `json:"period"`
	Kind     string      `json:"kind"`
	Attempts int64       `json:"attempts"`
	Distinct int64       `json:"distinct"`
	Top      []jsonEntry `json:"top"`
}

// WriteStatsJSON writes the summary of c that scripts read without Redis:
//
//	{"period":"20261125","kind":"src","attempts":123,"distinct":45,
//	 "top":[{"value":"192.0.2.1","count":9},...]}
//
// on one line ending in a newline. top holds c.Top in ranking order (the
// chart_top entries the chart draws; the CSV has the full ranking); values
// follow jsonEntry's rule for bytes that are not UTF-8. The output depends
// on c only, so the same statistics give the same bytes.
func WriteStatsJSON(w io.Writer, c Chart) error {
	doc := statsJSON{
		Period:   c.Period,
		Kind:     c.Kind,
		Attempts: c.Total,
		Distinct: c.Distinct,
		Top:      jsonEntries(rankedCopy(c.Top), c.Names),
	}
	if err := json.NewEncoder(w).Encode(doc); err != nil {
		return fmt.Errorf("write json of %s %s: %w", c.Period, c.Kind, err)
	}
	return nil
}
