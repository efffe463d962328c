package api

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// endpoint is one of the three questions.
type endpoint int

const (
	epTop endpoint = iota
	epDrill
	epSeries
)

// The request limits of SPEC §10.
const (
	defaultLimit = 25
	maxLimit     = 1000
	maxDays      = 3660
)

// query is a parsed, valid request.
type query struct {
	ep       endpoint
	kind, of string
	value    string
	from, to time.Time // midnight UTC of the calendar days named
	limit    int
	limitSet bool
	csv      bool
}

// badRequest is a request refused with 400; its message names the
// parameter and what is allowed.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func bad(format string, a ...interface{}) error { return &badRequest{fmt.Sprintf(format, a...)} }

// allowed lists the parameters of each endpoint.
var allowed = map[endpoint][]string{
	epTop:    {"kind", "from", "to", "limit", "format"},
	epDrill:  {"kind", "value", "value_b64", "of", "from", "to", "limit", "format"},
	epSeries: {"kind", "value", "value_b64", "from", "to"},
}

// parseQuery checks a request's parameters against SPEC §10. known tells
// the kinds counted. The query string is untrusted bytes: anything not
// exactly what is allowed is refused with a message naming the parameter.
func parseQuery(ep endpoint, rawQuery string, known func(string) bool, kindNames []string) (query, error) {
	q := query{ep: ep, limit: defaultLimit}
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return q, bad("query string: %v; want name=value pairs joined by &, percent-encoded", err)
	}
	allow := allowed[ep]
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ok := false
		for _, a := range allow {
			ok = ok || a == name
		}
		if !ok && name == "" {
			return q, bad("query string: a parameter without a name; want name=value pairs, names among %s", strings.Join(allow, ", "))
		}
		if !ok {
			return q, bad("unknown parameter %q; allowed: %s", printable(name), strings.Join(allow, ", "))
		}
		if len(vals[name]) > 1 {
			return q, bad("%s: given %d times; give it once", name, len(vals[name]))
		}
	}
	get := func(name string) (string, bool) {
		v, ok := vals[name]
		if !ok {
			return "", false
		}
		return v[0], true
	}
	kindList := strings.Join(kindNames, ", ")
	kind, ok := get("kind")
	switch {
	case !ok:
		return q, bad("kind: missing; want one of %s", kindList)
	case !known(kind):
		return q, bad("kind: %q is not a kind; want one of %s", printable(kind), kindList)
	}
	q.kind = kind
	if ep == epDrill {
		of, ok := get("of")
		switch {
		case !ok:
			return q, bad("of: missing; want one of %s other than kind", kindList)
		case !known(of):
			return q, bad("of: %q is not a kind; want one of %s other than kind", printable(of), kindList)
		case of == kind:
			return q, bad("of: %q is the kind itself; want one of %s other than %s", of, kindList, kind)
		}
		q.of = of
	}
	if ep != epTop {
		v, hasV := get("value")
		b, hasB := get("value_b64")
		switch {
		case hasV && hasB:
			return q, bad("value_b64: given with value; give one of them")
		case hasB:
			raw, err := base64.StdEncoding.Strict().DecodeString(b)
			if err != nil {
				return q, bad("value_b64: not standard padded base64 (%v); want the raw bytes of the value in standard base64", err)
			}
			q.value = string(raw)
		case hasV:
			q.value = v
		default:
			return q, bad("value: missing; want value=V (URL-encoded) or value_b64=standard base64 of its bytes")
		}
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.from}, {"to", &q.to}} {
		s, ok := get(p.name)
		if !ok {
			return q, bad("%s: missing; want a day as YYYYMMDD", p.name)
		}
		d, err := parseDay(s)
		if err != nil {
			return q, bad("%s: %q is not a day; want a calendar day as YYYYMMDD", p.name, printable(s))
		}
		*p.dst = d
	}
	if q.from.After(q.to) {
		return q, bad("from: %s is after to %s; want from on or before to", dayName(q.from), dayName(q.to))
	}
	if n := dayCount(q.from, q.to); n > maxDays {
		return q, bad("to: the range from %s to %s is %d days; want at most %d days", dayName(q.from), dayName(q.to), n, maxDays)
	}
	if s, ok := get("limit"); ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit || strings.TrimLeft(s, "0123456789") != "" {
			return q, bad("limit: %q; want an integer from 1 to %d", printable(s), maxLimit)
		}
		q.limit, q.limitSet = n, true
	}
	if s, ok := get("format"); ok {
		switch s {
		case "json":
		case "csv":
			q.csv = true
		default:
			return q, bad("format: %q; want json or csv", printable(s))
		}
	}
	return q, nil
}

// parseDay reads YYYYMMDD, refusing anything that is not a calendar day
// (20260230, signs, spaces).
func parseDay(s string) (time.Time, error) {
	if len(s) != 8 {
		return time.Time{}, fmt.Errorf("want 8 digits")
	}
	for i := 0; i < 8; i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, fmt.Errorf("want 8 digits")
		}
	}
	y, _ := strconv.Atoi(s[:4])
	m, _ := strconv.Atoi(s[4:6])
	d, _ := strconv.Atoi(s[6:])
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return time.Time{}, fmt.Errorf("no such day")
	}
	return t, nil
}

// dayName formats a day as its period name.
func dayName(t time.Time) string { return t.Format("20060102") }

// dayCount is the number of calendar days from a to b, both included.
func dayCount(a, b time.Time) int { return int(b.Sub(a)/(24*time.Hour)) + 1 }

// printable cuts and quotes-safe a parameter echoed in an error, so that a
// megabyte of junk is not sent back whole.
func printable(s string) string {
	const max = 64
	if len(s) > max {
		return strings.ToValidUTF8(s[:max], "\uFFFD") + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
