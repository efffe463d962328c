// Package kinds is the vocabulary shared by counting, compiling and
// rendering: the kinds of value counted per attempt (user name, source,
// host), how each is named in Redis keys and file names, and how people
// read it. It is declared here once so that a new kind (a country, an AS)
// is one line in list below plus its tests, and stats, compile and render
// cannot disagree about which kinds exist.
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
}

// list is every kind, in the order the pages show them. Adding a kind is
// adding its line here.
var list = []Kind{
	{Name: User, Label: "Usernames", Noun: "user names", FirstSeen: true},
	{Name: Src, Label: "Sources", Noun: "sources", FirstSeen: true},
	{Name: Host, Label: "Hosts", Noun: "hosts"},
}

// All returns every kind in page order. The slice is a copy: callers may
// keep or change it without touching the vocabulary.
func All() []Kind { return append([]Kind(nil), list...) }

// Names returns the names of every kind in page order.
func Names() []string {
	out := make([]string, len(list))
	for i, k := range list {
		out[i] = k.Name
	}
	return out
}

// FirstSeenNames returns the names of the kinds whose first-seen values
// the overview lists, in page order.
func FirstSeenNames() []string {
	var out []string
	for _, k := range list {
		if k.FirstSeen {
			out = append(out, k.Name)
		}
	}
	return out
}

// Lookup returns the kind called name.
func Lookup(name string) (Kind, bool) {
	for _, k := range list {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
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
