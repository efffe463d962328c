package sshd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// BenchmarkParse reports ns/line with the configured defaults (ten years
// of age, values capped at 1024 bytes); the budget is under 1 µs and no
// allocation for a counting line. A capped value costs a SHA-256 of the
// whole value on top: the 2KB and 300KB cases show it.
func BenchmarkParse(b *testing.B) {
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, time.UTC)
	lux := mustZone(b, "Europe/Luxembourg")

	var corpus [][]byte
	for _, l := range readCorpus(b) {
		corpus = append(corpus, l.text)
	}
	run := func(name string, lines [][]byte, loc *time.Location) {
		b.Run(name, func(b *testing.B) {
			p := sshd.New(sshd.Options{Location: loc, MaxAge: 3650 * 24 * time.Hour, MaxValueBytes: 1024})
			b.ReportAllocs()
			for b.Loop() {
				for _, l := range lines {
					p.Parse(l, ref)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
		})
	}
	one := func(s string) [][]byte { return [][]byte{[]byte(s)} }

	run("corpus", corpus, lux)
	run("classic", one("Jan 22 11:59:37 sigmund sshd[26514]: Invalid user git from 106.12.14.144 port 53502"), lux)
	run("classic-utc", one("Jan 22 11:59:37 sigmund sshd[26514]: Invalid user git from 106.12.14.144 port 53502"), time.UTC)
	run("rfc3339", one("2026-01-22T11:59:37.123456+01:00 sigmund sshd-session[26514]: Invalid user git from 2001:db8::1 port 53502"), lux)
	run("follow-up", one("Jan 22 11:59:38 sigmund sshd[26514]: Connection closed by invalid user git 106.12.14.144 port 53502 [preauth]"), lux)
	run("2KB-user", one("Jan 22 11:59:37 sigmund sshd[26514]: Invalid user "+strings.Repeat("A", 2<<10)+" from 106.12.14.144 port 53502"), lux)
	run("300KB-user", one("Jan 22 11:59:37 sigmund sshd[26514]: Invalid user "+strings.Repeat("A", 300<<10)+" from 106.12.14.144 port 53502"), lux)
}
