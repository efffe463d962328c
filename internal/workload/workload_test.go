package workload

import (
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// The generator's answers and the parser must agree line by line; a
// disagreement is a bug in one of them, found here rather than as a
// mismatched count in an end-to-end test.
func TestParserAgreesWithGeneratedLines(t *testing.T) {
	for _, zone := range []string{"UTC", "Europe/Luxembourg", "America/New_York"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		ref := time.Date(2026, 11, 25, 12, 0, 0, 0, loc)
		lines := Generate(Options{Lines: 20000, Ref: ref, Loc: loc, Noise: 0.3, Hostile: true, Seed: 7, Users: 50, Sources: 300, Hosts: 9})
		counting := 0
		for i, l := range lines {
			ev, reason := sshd.Parse(l.Raw, ref, loc)
			if (reason == sshd.OK) != l.Counts {
				t.Fatalf("%s line %d %q: parser says %v, generator says counts=%v", zone, i, l.Raw, reason, l.Counts)
			}
			if !l.Counts {
				continue
			}
			counting++
			// Compare wall clocks: in the hour a DST change repeats, a
			// classic stamp names two instants and either is right.
			const wall = "2006-01-02 15:04:05"
			if ev.Time.In(loc).Format(wall) != l.Time.In(loc).Format(wall) || string(ev.User) != l.User || string(ev.Src) != l.Src || string(ev.Host) != l.Host {
				t.Fatalf("%s line %d %q:\nparsed    %v %q %q %q\ngenerated %v %q %q %q", zone, i, l.Raw,
					ev.Time, ev.User, ev.Src, ev.Host, l.Time, l.User, l.Src, l.Host)
			}
		}
		if counting < 12000 {
			t.Fatalf("%s: only %d counting lines", zone, counting)
		}
	}
}

// The expected form of a capped value agrees with the parser's, on the
// README's example and on values around multi-byte characters.
func TestCapValuesAgreesWithTheParser(t *testing.T) {
	p := sshd.New(sshd.Options{Location: time.UTC, MaxValueBytes: 64})
	for _, user := range []string{
		strings.Repeat("A", 307200),
		strings.Repeat("é", 100),
		strings.Repeat("x", 20) + strings.Repeat("😀", 30),
		strings.Repeat("\xff", 200),
		strings.Repeat("b", 64),
	} {
		line := "2026-01-22T11:59:37Z h sshd[1]: Invalid user " + user + " from 192.0.2.1"
		ev, r := p.Parse([]byte(line), time.Date(2026, 1, 23, 0, 0, 0, 0, time.UTC))
		if r != sshd.OK {
			t.Fatalf("%.20q: reason %v", user, r)
		}
		got := CapValues([]Line{{User: user}}, 64)[0].User
		if got != string(ev.User) {
			t.Errorf("%.20q: CapValues %q, parser %q", user, got, ev.User)
		}
	}
}
