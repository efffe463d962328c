// Package parsers is the registry that -a and -o choose from: every parser
// the daemon can run, by name, with the skip reasons it reports.
//
// Adding a parser for another message is one file in this package (an
// adapter from the parser's own package to Parser) plus one line in
// Registry. The counting side never learns which parser produced an
// attempt: an attempt is a time, a reporting host, a user name and a
// source, whatever message it came from.
package parsers

import (
	"fmt"
	"strings"
	"time"
)

// Event is one attempt a line reports. The byte fields may alias the line
// or the parser's scratch space: they are valid until the next Parse.
type Event struct {
	Time            time.Time
	Host, User, Src []byte
}

// Options configure every parser alike.
type Options struct {
	// Location is the zone of stamps without one, and of calendar days.
	Location *time.Location
	// MaxAge skips attempts older than this before the reference time;
	// 0 is no limit.
	MaxAge time.Duration
	// MaxValueBytes caps a stored user name, source or host; 0 is no cap.
	MaxValueBytes int
}

// Parser parses lines one at a time; one goroutine uses it at a time.
type Parser interface {
	// Parse returns the attempt the line reports with reason 0, or a
	// reason above 0 (an index into its entry's Reasons) why it was
	// skipped. ref is the time the line was read, for year inference.
	Parse(line []byte, ref time.Time) (Event, int)
}

// Entry is one registered parser.
type Entry struct {
	Name string
	// Reasons names the skip reasons by index; Reasons[0] is the counted
	// case and is never reported as a skip.
	Reasons []string
	New     func(Options) Parser
}

// Registry lists every parser, in the order a line is offered to them.
func Registry() []Entry { return []Entry{sshdEntry()} }

// Names lists the registered parsers' names.
func Names() []string {
	var out []string
	for _, e := range Registry() {
		out = append(out, e.Name)
	}
	return out
}

// Select returns the parsers named by -o (one name), or all of them when
// name is empty (-a, the default).
func Select(name string) ([]Entry, error) {
	all := Registry()
	if name == "" {
		return all, nil
	}
	for _, e := range all {
		if e.Name == name {
			return []Entry{e}, nil
		}
	}
	return nil, fmt.Errorf("no parser named %q; parsers: %s", name, strings.Join(Names(), ", "))
}

// Set runs several parsers as one: a line is counted by the first that
// counts it, and otherwise skipped for the reason the last one gave.
// Reasons of all parsers are merged by name.
type Set struct {
	parsers []Parser
	maps    [][]int // per parser: its reason index -> index in reasons
	reasons []string
}

// NewSet builds the parsers of entries with o.
func NewSet(entries []Entry, o Options) *Set {
	s := &Set{reasons: []string{""}}
	index := map[string]int{}
	for _, e := range entries {
		m := make([]int, len(e.Reasons))
		for i, r := range e.Reasons {
			if i == 0 {
				continue
			}
			j, ok := index[r]
			if !ok {
				j = len(s.reasons)
				index[r] = j
				s.reasons = append(s.reasons, r)
			}
			m[i] = j
		}
		s.parsers = append(s.parsers, e.New(o))
		s.maps = append(s.maps, m)
	}
	return s
}

// Reasons names the set's merged reasons by index; index 0 is counted.
func (s *Set) Reasons() []string { return s.reasons }

// Parse offers the line to each parser in turn.
func (s *Set) Parse(line []byte, ref time.Time) (Event, int) {
	reason := 0
	for i, p := range s.parsers {
		ev, r := p.Parse(line, ref)
		if r == 0 {
			return ev, 0
		}
		reason = s.maps[i][r]
	}
	return Event{}, reason
}

// ReasonNames is the union of the reasons of entries, in Set order; for
// metrics registered before any Set is built.
func ReasonNames(entries []Entry) []string {
	return NewSet(entries, Options{Location: time.UTC}).Reasons()[1:]
}
