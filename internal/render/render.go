// Package render owns everything the analyzer writes for people to look at:
// the per-period SVG charts, the CSV rankings and JSON summaries behind
// them, the three HTML pages with their script, the overview (index.html,
// its trend charts and overview.json), and the atomic file writes that
// publish them.
//
// It knows nothing about Redis: callers hand it plain data (a Chart, a
// stream of Entry chunks, an Index, an Overview) and it returns errors,
// never exits. What it writes depends on that data alone, never on the
// clock, so the same statistics always give the same bytes.
//
// The contract that matters most: user names and sources are chosen by
// attackers, so every value is treated as arbitrary bytes. Charts show them
// literally but inertly (invalid UTF-8, control, bidi and invisible
// characters appear as backslash escapes; the SVG is well-formed XML with no
// active content whatever the input), CSV cells can never run as spreadsheet
// formulas, and the pages never put a value into markup unescaped. Files are
// replaced atomically so a web server never serves half of one.
package render

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// The statistics kinds, as in the Redis key suffix "stats<kind>"; the
// vocabulary lives in package kinds, shared with counting and compiling.
const (
	KindUsername = kinds.User
	KindSrc      = kinds.Src
	KindHost     = kinds.Host
)

// kindNames lists the kinds in the order the pages offer them.
func kindNames() []string { return kinds.Names() }

// KindLabel returns the label people read for a statistics kind: "username"
// is "Usernames", "src" is "Sources", "host" is "Hosts". An unknown kind is
// returned unchanged so a caller's mistake stays visible rather than hidden.
func KindLabel(kind string) string { return kinds.Label(kind) }

// kindNoun is the plural used in running text ("5,000 distinct sources").
func kindNoun(kind string) string { return kinds.Noun(kind) }

// Entry is one ranked value and its number of attempts.
type Entry struct {
	Value string // raw bytes from Redis (binary-safe, may be invalid UTF-8)
	Count int64
}

// Names maps the values of a named kind to what people read beside them
// (the organisation of "AS15169", the country of "DE"). A name comes from
// a database file and is shown as literally as a value. A nil Names names
// nothing.
type Names map[string]string

// label is v with its name beside it, when it has one.
func (n Names) label(v string) string {
	if name := n[v]; name != "" {
		return v + " " + name
	}
	return v
}

// Chart is one period's ranking for one kind.
type Chart struct {
	Period   string  // "20261125", "202611" or "2026"
	Kind     string  // "username", "src" or "host"
	Top      []Entry // sorted by count desc then value asc; at most the chart_top entries to draw
	Total    int64   // attempts in the period (all values)
	Distinct int64   // distinct values in the period
	Names    Names   // beside the values of a named kind (country, asn)
}

// ChartPath gives the chart's file path relative to the sshd output
// directory: "<period>/<period>:stats<kind>.svg". The layout is the original
// analyzer's, kept so existing links keep working. period and kind must be
// the validated digits and kind names the caller builds Redis keys from.
func ChartPath(period, kind string) string { return statsPath(period, kind, ".svg") }

// CSVPath gives the ranking's file path relative to the sshd output
// directory: "<period>/<period>:stats<kind>.csv".
func CSVPath(period, kind string) string { return statsPath(period, kind, ".csv") }

// statsPath is the one layout of a ranking's files: the period's directory,
// then the Redis key's name and the file's extension.
func statsPath(period, kind, ext string) string {
	return filepath.Join(period, kinds.StatsName(period, kind)+ext)
}

// formatPeriod turns "20261125", "202611" and "2026" into "2026-11-25",
// "2026-11" and "2026". Anything else is not a period the caller should
// have passed; it is returned as "" so callers fall back to a safe display.
func formatPeriod(p string) string {
	if !kinds.Digits(p) {
		return ""
	}
	switch len(p) {
	case 8:
		return p[:4] + "-" + p[4:6] + "-" + p[6:]
	case 6:
		return p[:4] + "-" + p[4:]
	case 4:
		return p
	}
	return ""
}

// groupThousands formats n with comma separators: counts of attempts run
// into the millions and unseparated digits are hard to compare at a glance.
func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	if len(s) <= 3 {
		if neg {
			return "-" + s
		}
		return s
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	head := len(s) % 3
	if head > 0 {
		b.WriteString(s[:head])
	}
	for i := head; i < len(s); i += 3 {
		if b.Len() > 0 && !(neg && b.Len() == 1) {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}
