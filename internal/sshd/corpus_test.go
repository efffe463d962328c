package sshd_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/sshd"
)

// corpusDir holds real-world lines with known answers (see its README).
const corpusDir = "../../testdata/corpus"

type corpusLine struct {
	file string
	no   int // 1-based
	text []byte
}

// readCorpus returns every line of lines/*.log, files in name order, as the
// corpus checker reads them. A missing corpus fails the test: silently
// skipping would let the parser drift from the reference answers.
func readCorpus(tb testing.TB) []corpusLine {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir, "lines", "*.log"))
	if err != nil {
		tb.Fatalf("list corpus files: %v", err)
	}
	if len(paths) == 0 {
		tb.Fatalf("no corpus files under %s/lines: the corpus is part of the repository and must be present", corpusDir)
	}
	slices.Sort(paths)
	var out []corpusLine
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatalf("read corpus file: %v", err)
		}
		if !bytes.HasSuffix(data, []byte("\n")) {
			tb.Fatalf("%s: no final newline", p)
		}
		for i, l := range bytes.Split(data[:len(data)-1], []byte("\n")) {
			out = append(out, corpusLine{file: filepath.Base(p), no: i + 1, text: l})
		}
	}
	return out
}

type expectedRecord struct {
	File   string  `json:"file"`
	Line   int     `json:"line"`
	Counts bool    `json:"counts"`
	User   *string `json:"user"`
	Src    *string `json:"src"`
	Host   *string `json:"host"`
	Stamp  string  `json:"stamp"`
}

func readExpected(t *testing.T) []expectedRecord {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "expected.jsonl"))
	if err != nil {
		t.Fatalf("open expected answers: %v", err)
	}
	defer f.Close()
	var out []expectedRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r expectedRecord
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("expected.jsonl record %d: %v", len(out)+1, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read expected answers: %v", err)
	}
	return out
}

// stampTime reads a corpus stamp with the standard library, a second opinion
// on the parser's own stamp reader. Classic stamps come back in year 0.
func stampTime(t *testing.T, s string, loc *time.Location) (tm time.Time, classic bool) {
	t.Helper()
	if tm, err := time.ParseInLocation("Jan _2 15:04:05", s, loc); err == nil {
		return tm, true
	}
	if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return tm, false
	}
	tm, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		t.Fatalf("corpus stamp %q: %v", s, err)
	}
	return tm, false
}

func TestCorpus(t *testing.T) {
	lines := readCorpus(t)
	want := readExpected(t)
	if len(lines) != len(want) {
		t.Fatalf("corpus has %d lines but expected.jsonl has %d records", len(lines), len(want))
	}
	loc := time.UTC
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, loc)
	// The corpus spans years (2013 onwards), so the age limit is left off
	// here and checked against it in TestCorpusAgeLimit. The value cap is
	// the configured default: no real value comes near it.
	p := sshd.New(sshd.Options{Location: loc, MaxValueBytes: 1024})

	counted := 0
	for i, l := range lines {
		w := want[i]
		where := fmt.Sprintf("%s:%d", l.file, l.no)
		if w.File != l.file || w.Line != l.no {
			t.Fatalf("%s: expected.jsonl record %d is for %s:%d; the two are out of step", where, i+1, w.File, w.Line)
		}
		ev, r := p.Parse(l.text, ref)
		if got := r == sshd.OK; got != w.Counts {
			t.Errorf("%s: counts = %v (reason %s), want %v\n  line: %q", where, got, r, w.Counts, l.text)
			continue
		}
		if !w.Counts {
			// Every corpus line is syslog-shaped with a real stamp, so
			// only the two content reasons may skip it.
			if r != sshd.NotSSHD && r != sshd.NotInvalidUser {
				t.Errorf("%s: reason %s, want not_sshd or not_invalid_user\n  line: %q", where, r, l.text)
			}
			continue
		}
		counted++
		if w.User == nil || w.Src == nil || w.Host == nil {
			t.Fatalf("%s: counting record without user, src or host", where)
		}
		if string(ev.User) != *w.User || string(ev.Src) != *w.Src || string(ev.Host) != *w.Host {
			t.Errorf("%s: got user %q src %q host %q, want user %q src %q host %q",
				where, ev.User, ev.Src, ev.Host, *w.User, *w.Src, *w.Host)
		}
		st, classic := stampTime(t, w.Stamp, loc)
		if classic {
			if ev.Time.Month() != st.Month() || ev.Time.Day() != st.Day() ||
				ev.Time.Hour() != st.Hour() || ev.Time.Minute() != st.Minute() || ev.Time.Second() != st.Second() {
				t.Errorf("%s: time %v does not match stamp %q", where, ev.Time, w.Stamp)
			}
			if ev.Time.After(ref.Add(24 * time.Hour)) {
				t.Errorf("%s: time %v is more than a day after the reference %v", where, ev.Time, ref)
			}
		} else if !ev.Time.Equal(st) {
			t.Errorf("%s: time %v, want %v (stamp %q)", where, ev.Time, st, w.Stamp)
		}
		if ev.Time.Location() != loc {
			t.Errorf("%s: time in %v, want %v", where, ev.Time.Location(), loc)
		}
	}
	t.Logf("corpus: %d lines, %d counting", len(lines), counted)
	if len(lines) != 323 || counted != 70 {
		t.Errorf("corpus totals: %d lines, %d counting; the README says 323 and 70", len(lines), counted)
	}
}

// TestCorpusAgeLimit reads the corpus with the default age limit of ten
// years: a counting line is skipped as too_old exactly when its stamp is
// more than ten years before the reference, and every other line keeps its
// verdict.
func TestCorpusAgeLimit(t *testing.T) {
	loc := time.UTC
	ref := time.Date(2026, time.March, 15, 12, 0, 0, 0, loc)
	const maxAge = 3650 * 24 * time.Hour
	free := sshd.New(sshd.Options{Location: loc})
	limited := sshd.New(sshd.Options{Location: loc, MaxAge: maxAge})
	old := 0
	for _, l := range readCorpus(t) {
		ev, r := free.Parse(l.text, ref)
		_, rl := limited.Parse(l.text, ref)
		want := r
		if r == sshd.OK && ref.Sub(ev.Time) > maxAge {
			want = sshd.TooOld
			old++
		}
		if rl != want {
			t.Errorf("%s:%d: reason %s with the age limit, want %s (time %v)\n  line: %q", l.file, l.no, rl, want, ev.Time, l.text)
		}
	}
	// The 2013 lines of the corpus make the limit bite at least once, so
	// the test above is not vacuous.
	if old == 0 {
		t.Errorf("no corpus line is older than the limit; the test checks nothing")
	}
	t.Logf("corpus: %d counting lines older than %v", old, maxAge)
}
