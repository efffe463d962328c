// Package kinds is the vocabulary shared by counting, compiling and
// rendering: the kinds of value counted per attempt (user name, source,
// host), how each is named in Redis keys and file names, and how people
// read it. It is declared here once so that a new kind (a country, an AS)
// is one line in list below plus its tests, and stats, compile and render
// cannot disagree about which kinds exist.
//
// Some kinds are derived from another value rather than read from the line
// (the country and the AS of a source, SPEC §13) and exist only when the
// operator configures what derives them. Which kinds a daemon counts is a
// Set, built once from the configuration and handed to the parts that list
// kinds; the package-level functions answer for the kinds every daemon
// counts, so that without the optional ones nothing changes.
//
// It depends on the standard library only, so every package can import it
// without pulling in Redis or the renderer.
package kinds

// The names of the kinds, as they appear in the key suffix "stats<kind>"
// (the original analyzer's names, kept so that tools reading DB 1 and the
// file links keep working).
const (
	User = "username"
	Src  = "src"
	Host = "host"
	// Country and ASN are derived from the source (SPEC §13): an ISO 3166
	// alpha-2 code or "??", and "AS<number>" or "AS0".
	Country = "country"
	ASN     = "asn"
)

// Kind describes one kind of counted value.
type Kind struct {
	Name  string // key and file suffix: "<period>:stats<Name>"
	Label string // a heading people read: "Usernames"
	Noun  string // plural in running text: "5,000 distinct user names"
	// FirstSeen says whether the overview lists the values of this kind
	// first seen on the newest day: user names and sources are what
	// attackers bring, while a new host is one of ours.
	FirstSeen bool
	// Optional kinds are counted only when the configuration enables
	// them (see Active): a country needs a country database.
	Optional bool
	// Named kinds have a name people read beside each value (an AS
	// number's organisation, a country code's country), kept by stats.
	Named bool
}

// list is every kind, in the order the pages show them. Adding a kind is
// adding its line here.
var list = []Kind{
	{Name: User, Label: "Usernames", Noun: "user names", FirstSeen: true},
	{Name: Src, Label: "Sources", Noun: "sources", FirstSeen: true},
	{Name: Host, Label: "Hosts", Noun: "hosts"},
	{Name: Country, Label: "Countries", Noun: "countries", FirstSeen: true, Optional: true, Named: true},
	{Name: ASN, Label: "Autonomous systems", Noun: "autonomous systems", FirstSeen: true, Optional: true, Named: true},
}

// Set is the kinds one daemon counts, in page order. The zero Set is the
// kinds every daemon counts (no optional one).
type Set struct {
	optional map[string]bool
}

// Active returns the Set of the kinds every daemon counts plus the
// optional kinds named; an unknown or non-optional name is ignored, as
// the callers name constants of this package.
func Active(optional ...string) Set {
	s := Set{optional: map[string]bool{}}
	for _, n := range optional {
		if k, ok := Lookup(n); ok && k.Optional {
			s.optional[n] = true
		}
	}
	return s
}

func (s Set) on(k Kind) bool { return !k.Optional || s.optional[k.Name] }

// All returns the kinds of the set in page order, as a copy.
func (s Set) All() []Kind {
	var out []Kind
	for _, k := range list {
		if s.on(k) {
			out = append(out, k)
		}
	}
	return out
}

// Names returns the names of the kinds of the set in page order.
func (s Set) Names() []string {
	var out []string
	for _, k := range list {
		if s.on(k) {
			out = append(out, k.Name)
		}
	}
	return out
}

// FirstSeenNames returns the names of the kinds of the set whose
// first-seen values the overview lists, in page order.
func (s Set) FirstSeenNames() []string {
	var out []string
	for _, k := range list {
		if s.on(k) && k.FirstSeen {
			out = append(out, k.Name)
		}
	}
	return out
}

// Derived returns the names of the optional kinds of the set, in page
// order: the kinds counted from a value the line does not hold itself.
func (s Set) Derived() []string {
	var out []string
	for _, k := range list {
		if k.Optional && s.optional[k.Name] {
			out = append(out, k.Name)
		}
	}
	return out
}

// Has reports whether the set counts kind name.
func (s Set) Has(name string) bool {
	k, ok := Lookup(name)
	return ok && s.on(k)
}

// All returns the kinds every daemon counts, in page order. The slice is a
// copy: callers may keep or change it without touching the vocabulary.
func All() []Kind { return Set{}.All() }

// Names returns the names of the kinds every daemon counts, in page order.
func Names() []string { return Set{}.Names() }

// FirstSeenNames returns the names of the kinds every daemon counts whose
// first-seen values the overview lists, in page order.
func FirstSeenNames() []string { return Set{}.FirstSeenNames() }

// Lookup returns the kind called name, optional or not: a key or file of
// an optional kind keeps its name whether or not it is counted now.
func Lookup(name string) (Kind, bool) {
	for _, k := range list {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Named reports whether the values of kind name have names beside them.
func Named(name string) bool {
	k, ok := Lookup(name)
	return ok && k.Named
}

// Known reports whether name is a kind. Names end up in Redis keys, file
// names and URLs, so anything else is refused by the callers.
func Known(name string) bool {
	_, ok := Lookup(name)
	return ok
}

// Label returns the heading of kind name ("Usernames"); an unknown name is
// returned unchanged so that a caller's mistake stays visible.
func Label(name string) string {
	if k, ok := Lookup(name); ok {
		return k.Label
	}
	return name
}

// Noun returns the plural of kind name for running text ("user names"),
// or "values" for an unknown name.
func Noun(name string) string {
	if k, ok := Lookup(name); ok {
		return k.Noun
	}
	return "values"
}

// statsInfix joins a period to a kind in key and file names.
const statsInfix = ":stats"

// StatsName is the name of one period's ranking of one kind, as a Redis
// key and as the base of its files: "20261125:statssrc". period and kind
// are not checked: callers build them from validated digits and Names.
func StatsName(period, kind string) string { return period + statsInfix + kind }

// SplitStatsName splits "20261125:statssrc" into its period and kind. It
// reports false unless the period is 8, 6 or 4 digits (a day, a month, a
// year) and the kind is known.
func SplitStatsName(name string) (period, kind string, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] != ':' {
			continue
		}
		period, rest := name[:i], name[i:]
		if len(rest) < len(statsInfix) || rest[:len(statsInfix)] != statsInfix {
			return "", "", false
		}
		kind = rest[len(statsInfix):]
		if !Digits(period) || !Known(kind) {
			return "", "", false
		}
		switch len(period) {
		case 8, 6, 4:
			return period, kind, true
		}
		return "", "", false
	}
	return "", "", false
}

// Digits reports whether s is non-empty and only ASCII digits: periods are
// checked with it before they become key or file names.
func Digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Every names every kind of the vocabulary, optional ones included, for
// work that must cover whatever any configuration counted (pruning a day
// deletes its country and AS rankings too, if an earlier run kept them).
func Every() []string {
	out := make([]string, len(list))
	for i, k := range list {
		out[i] = k.Name
	}
	return out
}
