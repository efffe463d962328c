// Package workload generates realistic sshd log traffic with known answers,
// for the end-to-end, fault and speed tests: counting lines of every shape
// the parser accepts, noise that must not count, and hostile bytes. The
// expected statistics are computed here from the generated attempts, not by
// the daemon's own code, so a test compares two independent results.
package workload

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// Line is one generated log line.
type Line struct {
	Raw    []byte
	Counts bool
	// For counting lines: the attempt, Time in the configured location.
	Time            time.Time
	Host, User, Src string
}

// Options shape a workload.
type Options struct {
	Lines   int
	Ref     time.Time      // lines are dated in the Days before Ref
	Loc     *time.Location // the daemon's configured zone
	Days    int            // spread; at most 300 so classic stamps stay unambiguous
	Users   int            // distinct user names (Zipf-like skew)
	Sources int            // distinct sources
	Hosts   int            // distinct reporting hosts
	Noise   float64        // share of lines that do not count
	Hostile bool           // mix in attacker-chosen names and junk lines
	Seed    uint64
}

// Generate returns o.Lines lines in time order, as a live feed or a log
// file has them.
func Generate(o Options) []Line {
	if o.Days <= 0 || o.Days > 300 {
		o.Days = 300
	}
	if o.Users <= 0 {
		o.Users = 500
	}
	if o.Sources <= 0 {
		o.Sources = 50000
	}
	if o.Hosts <= 0 {
		o.Hosts = 50
	}
	if o.Loc == nil {
		o.Loc = time.UTC
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	userZipf := rand.NewZipf(r, 1.2, 4, uint64(o.Users-1))
	srcZipf := rand.NewZipf(r, 1.05, 8, uint64(o.Sources-1))
	start := o.Ref.Add(-time.Duration(o.Days) * 24 * time.Hour)
	span := float64(o.Ref.Sub(start) - time.Hour)
	out := make([]Line, o.Lines)
	for i := range out {
		// Evenly spread, in order, a little jitter that keeps the order.
		t := start.Add(time.Duration(span * (float64(i) + r.Float64()*0.5) / float64(o.Lines))).Truncate(time.Second).In(o.Loc)
		host := hostName(int(r.Uint64() % uint64(o.Hosts)))
		if r.Float64() < o.Noise {
			out[i] = Line{Raw: noise(r, t, host, o.Hostile)}
			continue
		}
		user := userName(int(userZipf.Uint64()))
		src := SourceName(int(srcZipf.Uint64()))
		if o.Hostile && r.IntN(20) == 0 {
			user = hostileNames[r.IntN(len(hostileNames))]
		}
		out[i] = Line{Raw: counting(r, t, host, user, src), Counts: true, Time: t, Host: host, User: user, Src: src}
	}
	return out
}

var hostileNames = []string{
	"</text><svg onload=alert(1)>", "]]>", "\x00", "a\tb", "\xff\xfe", "=cmd|' /C calc'!A0",
	"+1", "-1", "@SUM(A1)", "\u202eevil", "<script>alert(1)</script>", "\"quoted\"", "a from b",
	" lead", "trail ", "", "x y z", "日本語", "\x1b[31mred", "&amp;", "'", "\r",
}

func userName(i int) string {
	common := []string{"admin", "root", "test", "user", "oracle", "postgres", "ubuntu", "git", "guest", "ftp"}
	if i < len(common) {
		return common[i]
	}
	return "user" + strconv.Itoa(i)
}

// SourceName is source number i: IPv4 addresses, one in ten an IPv6
// address and one in ten a host name, each number its own name.
func SourceName(i int) string {
	switch i % 10 {
	case 7:
		return fmt.Sprintf("2001:db8:%x::%x", i/65536, i%65536)
	case 9:
		return fmt.Sprintf("scanner-%d.example.net", i)
	}
	return fmt.Sprintf("%d.%d.%d.%d", 11+i/16777216%200, i/65536%256, i/256%256, i%256)
}

func hostName(i int) string {
	if i%5 == 4 {
		return fmt.Sprintf("web%d.dc%d.example.org", i, i%3)
	}
	return "srv" + strconv.Itoa(i)
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// stamp writes t in one of the shapes real logs have.
func stamp(r *rand.Rand, t time.Time) string {
	switch r.IntN(6) {
	case 0:
		return t.Format("2006-01-02T15:04:05.000000-07:00")
	case 1:
		return t.UTC().Format("2006-01-02T15:04:05Z")
	case 2:
		// Another offset: the daemon converts it into its zone.
		return t.In(time.FixedZone("", 5*3600+1800)).Format("2006-01-02T15:04:05.000-07:00")
	case 3:
		return fmt.Sprintf("%s %02d %s", months[t.Month()-1], t.Day(), t.Format("15:04:05"))
	case 4:
		return fmt.Sprintf("%s %d %s", months[t.Month()-1], t.Day(), t.Format("15:04:05"))
	}
	return fmt.Sprintf("%s %2d %s", months[t.Month()-1], t.Day(), t.Format("15:04:05"))
}

func counting(r *rand.Rand, t time.Time, host, user, src string) []byte {
	tag := "sshd"
	if r.IntN(4) == 0 {
		tag = "sshd-session"
	}
	line := fmt.Sprintf("%s %s %s[%d]: Invalid user %s from %s", stamp(r, t), host, tag, 1000+r.IntN(60000), user, src)
	if r.IntN(3) != 0 {
		line += " port " + strconv.Itoa(1024+r.IntN(60000))
	}
	if r.IntN(50) == 0 {
		line += "\r"
	}
	return []byte(line)
}

func noise(r *rand.Rand, t time.Time, host string, hostile bool) []byte {
	s := stamp(r, t)
	pid := 1000 + r.IntN(60000)
	if hostile && r.IntN(10) == 0 {
		switch r.IntN(6) {
		case 0:
			b := make([]byte, 1+r.IntN(200))
			for i := range b {
				// A queue element never holds '\n': the D4 client splits
				// lines there.
				if b[i] = byte(r.Uint32()); b[i] == '\n' {
					b[i] = ' '
				}
			}
			return b
		case 1:
			return []byte(s + " " + host + " sshd[1]: Invalid user \xff\x00 from ")
		case 2:
			return []byte("Invalid user nostamp from 192.0.2.1")
		case 3:
			return []byte(s + " " + host + " sshd[1]: Invalid user x from 192.0.2.1 port 22 [preauth]")
		case 4:
			return []byte("Feb 30 10:00:00 " + host + " sshd[1]: Invalid user x from 192.0.2.1")
		}
		return []byte(s + " " + host + " sshd[x]: Invalid user x from 192.0.2.1")
	}
	switch r.IntN(8) {
	case 0:
		return []byte(fmt.Sprintf("%s %s sshd[%d]: Failed password for invalid user admin from 198.51.100.%d port %d ssh2", s, host, pid, r.IntN(255), 1024+r.IntN(60000)))
	case 1:
		return []byte(fmt.Sprintf("%s %s sshd[%d]: Connection closed by invalid user admin 198.51.100.%d port %d [preauth]", s, host, pid, r.IntN(255), 1024+r.IntN(60000)))
	case 2:
		return []byte(fmt.Sprintf("%s %s sshd[%d]: Accepted publickey for deploy from 203.0.113.%d port %d ssh2: ED25519 SHA256:abc", s, host, pid, r.IntN(255), 1024+r.IntN(60000)))
	case 3:
		return []byte(fmt.Sprintf("%s %s CRON[%d]: pam_unix(cron:session): session opened for user root by (uid=0)", s, host, pid))
	case 4:
		return []byte(fmt.Sprintf("%s %s sshd[%d]: input_userauth_request: invalid user test [preauth]", s, host, pid))
	case 5:
		return []byte(fmt.Sprintf("%s %s sudo: alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/ls", s, host))
	case 6:
		return []byte(fmt.Sprintf("%s %s sshd[%d]: Disconnected from invalid user oracle 192.0.2.%d port %d [preauth]", s, host, pid, r.IntN(255), 1024+r.IntN(60000)))
	}
	return []byte(fmt.Sprintf("%s %s sshd[%d]: Received disconnect from 192.0.2.%d port %d:11: Bye Bye [preauth]", s, host, pid, r.IntN(255), 1024+r.IntN(60000)))
}

// Expected is the statistics a set of lines must produce in DB 1.
type Expected struct {
	Sets           map[string]map[string]int64 // "<period>:stats<kind>" → member → count
	Oldest, Newest string
	Attempts       int
}

// Expect computes the statistics of the counting lines, bucketed by day in
// loc, independently of the daemon's code.
func Expect(lines []Line, loc *time.Location) Expected {
	e := Expected{Sets: map[string]map[string]int64{}}
	add := func(key, member string) {
		m := e.Sets[key]
		if m == nil {
			m = map[string]int64{}
			e.Sets[key] = m
		}
		m[member]++
	}
	for _, l := range lines {
		if !l.Counts {
			continue
		}
		e.Attempts++
		day := l.Time.In(loc).Format("20060102")
		if e.Oldest == "" || day < e.Oldest {
			e.Oldest = day
		}
		if day > e.Newest {
			e.Newest = day
		}
		for _, p := range []string{day, day[:6], day[:4]} {
			add(p+":statsusername", l.User)
			add(p+":statssrc", l.Src)
			add(p+":statshost", l.Host)
		}
	}
	return e
}

// Diff compares the expected sets with what a reader returns for each key
// (member → score) and lists every difference, over or under, sorted.
func (e Expected) Diff(got map[string]map[string]float64) []string {
	var diffs []string
	for key, want := range e.Sets {
		g := got[key]
		for m, n := range want {
			if gv := g[m]; gv != float64(n) {
				diffs = append(diffs, fmt.Sprintf("%s %q: got %v, want %d (%+v)", key, m, gv, n, gv-float64(n)))
			}
		}
		for m, gv := range g {
			if _, ok := want[m]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s %q: got %v, want none (+%v)", key, m, gv, gv))
			}
		}
	}
	for key, g := range got {
		if _, ok := e.Sets[key]; !ok {
			var sum float64
			for _, v := range g {
				sum += v
			}
			diffs = append(diffs, fmt.Sprintf("%s: unexpected key with %d members, %v attempts", key, len(g), sum))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// CapValues returns lines whose user names, sources and hosts are stored as
// the daemon stores a value longer than max bytes (SPEC §5, max_value_bytes):
// its first bytes, cut where no valid UTF-8 character is split, then
// "…[+N bytes, sha256:H]" with N the bytes left out and H the first 16 hex
// digits of the SHA-256 of the whole value, in max bytes at most. Raw lines
// are kept as they are: they are what a sensor sends. Written here from the
// specification, apart from the parser, so tests compare two accounts.
func CapValues(lines []Line, max int) []Line {
	out := make([]Line, len(lines))
	for i, l := range lines {
		l.User, l.Src, l.Host = capValue(l.User, max), capValue(l.Src, max), capValue(l.Host, max)
		out[i] = l
	}
	return out
}

func capValue(v string, max int) string {
	if max <= 0 || len(v) <= max {
		return v
	}
	marker := len("…[+") + len(strconv.Itoa(len(v))) + len(" bytes, sha256:") + 16 + len("]")
	cut := max - marker
	if cut < 0 {
		cut = 0
	}
	// Step back over a valid multi-byte character the cut would split.
	for start := cut - 1; start >= 0 && start > cut-utf8.UTFMax; start-- {
		if !utf8.RuneStart(v[start]) {
			continue
		}
		if r, size := utf8.DecodeRuneInString(v[start:]); r != utf8.RuneError && size > 1 && start+size > cut {
			cut = start
		}
		break
	}
	sum := sha256.Sum256([]byte(v))
	return fmt.Sprintf("%s…[+%d bytes, sha256:%x]", v[:cut], len(v)-cut, sum[:8])
}
