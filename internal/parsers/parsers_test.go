package parsers

import (
	"slices"
	"testing"
	"time"
)

func TestSelect(t *testing.T) {
	all, err := Select("")
	if err != nil || len(all) != len(Registry()) {
		t.Fatalf("Select(\"\") = %d entries, %v; want every registered parser", len(all), err)
	}
	one, err := Select("sshd")
	if err != nil || len(one) != 1 || one[0].Name != "sshd" {
		t.Fatalf("Select(sshd) = %v, %v", one, err)
	}
	if _, err := Select("apache"); err == nil {
		t.Fatal("Select(apache) succeeded; want an error naming the parsers")
	}
}

// fixed reports the same reason for every line.
type fixed struct{ reason int }

func (f fixed) Parse([]byte, time.Time) (Event, int) {
	if f.reason == 0 {
		return Event{User: []byte("u")}, 0
	}
	return Event{}, f.reason
}

func TestSetMergesReasonsByName(t *testing.T) {
	a := Entry{Name: "a", Reasons: []string{"", "empty", "not_a"}, New: func(Options) Parser { return fixed{2} }}
	b := Entry{Name: "b", Reasons: []string{"", "not_b", "empty"}, New: func(Options) Parser { return fixed{2} }}
	s := NewSet([]Entry{a, b}, Options{})
	if want := []string{"", "empty", "not_a", "not_b"}; !slices.Equal(s.Reasons(), want) {
		t.Fatalf("reasons = %q, want %q", s.Reasons(), want)
	}
	// Neither counts: the last parser's reason ("empty", its index 2) is
	// reported under the merged index of "empty".
	if _, r := s.Parse([]byte("x"), time.Now()); s.Reasons()[r] != "empty" {
		t.Fatalf("reason = %q, want empty", s.Reasons()[r])
	}
	c := Entry{Name: "c", Reasons: []string{""}, New: func(Options) Parser { return fixed{0} }}
	if ev, r := NewSet([]Entry{a, c}, Options{}).Parse([]byte("x"), time.Now()); r != 0 || string(ev.User) != "u" {
		t.Fatalf("a line counted by the second parser: reason %d, event %+v", r, ev)
	}
}

func TestSSHDEntryParses(t *testing.T) {
	s := NewSet(Registry(), Options{Location: time.UTC})
	line := []byte("2026-01-22T11:59:37Z web1 sshd[1]: Invalid user git from 192.0.2.1 port 22")
	ev, r := s.Parse(line, time.Date(2026, 1, 23, 0, 0, 0, 0, time.UTC))
	if r != 0 || string(ev.User) != "git" || string(ev.Src) != "192.0.2.1" || string(ev.Host) != "web1" {
		t.Fatalf("Parse = %+v, reason %q", ev, s.Reasons()[r])
	}
	if _, r := s.Parse([]byte("hello"), time.Now()); s.Reasons()[r] != "no_timestamp" {
		t.Fatalf("reason = %q, want no_timestamp", s.Reasons()[r])
	}
}
