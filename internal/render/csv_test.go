package render

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestWriteCSVHostile(t *testing.T) {
	values := append(hostileValues(),
		"'already quoted", "''", "'", "\t=1", "\r=1", "＝1+1", "＋1", "－1", "＠x",
		"a,b", `say "hi"`, "line\nbreak", "cr\rinside", "crlf\r\ninside", " leading space", `\.`,
		"x;=cmd|' /C calc'!A0", "x\t=1+1", "x;\"=1+1", "\x1b]0;pwned\x07", "\x1b[2J\x1b[H", "evil\u202egnp.exe")
	var entries []Entry
	for i, v := range values {
		entries = append(entries, Entry{Value: v, Count: int64(len(values) - i)})
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, chunks(entries, 4)); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	checkTerminalSafe(t, raw)

	r := csv.NewReader(bytes.NewReader(raw))
	r.FieldsPerRecord = 2
	records, err := r.ReadAll()
	if err != nil {
		t.Fatalf("output is not valid CSV: %v", err)
	}
	if len(records) != len(values)+1 {
		t.Fatalf("%d records, want header + %d", len(records), len(values))
	}
	if records[0][0] != "value" || records[0][1] != "count" {
		t.Errorf("header = %q", records[0])
	}
	for i, v := range values {
		rec := records[i+1]
		checkNoFormula(t, rec)
		back, err := unescapeVisible(strings.TrimPrefix(rec[0], "'"))
		if err != nil || back != v {
			t.Errorf("row %d: value %q read back as %q (%q, %v)", i, v, rec[0], back, err)
		}
		if rec[1] != strconv.Itoa(len(values)-i) {
			t.Errorf("row %d: count %q", i, rec[1])
		}
	}
	// A spreadsheet whose separator is ";" or a tab splits the rows on it;
	// it must still find no cell that starts a formula.
	for _, sep := range []rune{';', '\t'} {
		r := csv.NewReader(bytes.NewReader(raw))
		r.Comma, r.LazyQuotes, r.FieldsPerRecord = sep, true, -1
		records, err := r.ReadAll()
		if err != nil {
			t.Fatalf("read with separator %q: %v", sep, err)
		}
		for _, rec := range records {
			checkNoFormula(t, rec)
		}
	}
	for _, want := range []string{
		"\n\"x;=cmd|' /C calc'!A0\",", "\n\"x\\t=1+1\",", "\n\"\\x1b]0;pwned\\x07\",", "\n\"evil\\u202egnp.exe\",",
		"\n\"'''\",", "\n\"'=cmd|' /C calc'!A0\",", "\n\"\\xff\",", "\n\"'\xef\xbc\x9d1+1\",", "\n\"a\\x00b\",",
		"\n\"\\\\.\",", "\n\"say \"\"hi\"\"\",", "\n\"crlf\\r\\ninside\",", "\n\"\\t=1\",",
	} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("raw csv lacks %q", want)
		}
	}
	if !bytes.Contains(raw, []byte(strings.Repeat("A", 100*1024))) {
		t.Error("the 100 KB value was not written whole")
	}
}

// checkNoFormula fails for a cell that a spreadsheet would evaluate.
func checkNoFormula(t *testing.T, rec []string) {
	t.Helper()
	for _, cell := range rec {
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			t.Errorf("cell %q starts with a formula character", cell)
		}
		for _, fw := range []string{"＝", "＋", "－", "＠"} {
			if strings.HasPrefix(cell, fw) {
				t.Errorf("cell %q starts with a full-width formula character", cell)
			}
		}
	}
}

// checkTerminalSafe fails when raw holds anything a terminal acts on or a
// reader cannot see: control bytes other than the line ends, bidi and
// other format characters, invalid UTF-8.
func checkTerminalSafe(t *testing.T, raw []byte) {
	t.Helper()
	if !utf8.Valid(raw) {
		t.Error("csv is not valid UTF-8")
	}
	for _, r := range string(raw) {
		if r != '\n' && mustEscape(r) {
			t.Errorf("csv holds %U raw", r)
			return
		}
	}
}

// unescapeVisible undoes VisibleText, as a reader of the CSV would to get
// a value's bytes back.
func unescapeVisible(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", errors.New("lone backslash at the end")
		}
		i++
		width := 0
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'x':
			width = 2
		case 'u':
			width = 4
		case 'U':
			width = 8
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
		if width == 0 {
			continue
		}
		if i+1+width > len(s) {
			return "", errors.New("short escape")
		}
		n, err := strconv.ParseUint(s[i+1:i+1+width], 16, 32)
		if err != nil {
			return "", err
		}
		if width == 2 {
			b.WriteByte(byte(n))
		} else {
			b.WriteRune(rune(n))
		}
		i += width
	}
	return b.String(), nil
}

// FuzzWriteCSV holds WriteCSV to its contract for any value: one line per
// row, nothing a terminal acts on, no formula whatever the separator, and
// the value recovered exactly by removing one apostrophe and the escapes.
func FuzzWriteCSV(f *testing.F) {
	for _, v := range hostileValues() {
		if len(v) < 1024 {
			f.Add(v)
		}
	}
	f.Add("x;=1+1")
	f.Fuzz(func(t *testing.T, v string) {
		var buf bytes.Buffer
		if err := WriteCSV(&buf, chunks([]Entry{{Value: v, Count: 7}}, 1)); err != nil {
			t.Fatal(err)
		}
		raw := buf.Bytes()
		checkTerminalSafe(t, raw)
		if n := bytes.Count(raw, []byte("\n")); n != 2 {
			t.Fatalf("%d lines for one value: %q", n, raw)
		}
		for _, sep := range []rune{';', '\t'} {
			r := csv.NewReader(bytes.NewReader(raw))
			r.Comma, r.LazyQuotes, r.FieldsPerRecord = sep, true, -1
			records, err := r.ReadAll()
			if err != nil {
				continue // a reader that refuses the file runs nothing either
			}
			for _, rec := range records {
				checkNoFormula(t, rec)
			}
		}
		records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		if err != nil || len(records) != 2 || records[1][1] != "7" {
			t.Fatalf("read back %q: %v", records, err)
		}
		checkNoFormula(t, records[1])
		back, err := unescapeVisible(strings.TrimPrefix(records[1][0], "'"))
		if err != nil || back != v {
			t.Errorf("value %q read back as %q (%v)", v, back, err)
		}
	})
}

func TestCSVValue(t *testing.T) {
	for in, want := range map[string]string{
		"":         "",
		"root":     "root",
		"=1+1":     "'=1+1",
		"+1":       "'+1",
		"-1":       "'-1",
		"@a":       "'@a",
		"\tx":      "'\tx",
		"\rx":      "'\rx",
		"'x":       "''x",
		"＝x":       "'＝x",
		"a=b":      "a=b",
		" =x":      " =x",
		"\xff=":    "\xff=",
		"\x00root": "\x00root",
	} {
		if got := csvValue(in); got != want {
			t.Errorf("csvValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteCSVStream(t *testing.T) {
	t.Run("empty ranking", func(t *testing.T) {
		var buf bytes.Buffer
		if err := WriteCSV(&buf, chunks(nil, 10)); err != nil {
			t.Fatal(err)
		}
		if buf.String() != "value,count\n" {
			t.Errorf("got %q", buf.String())
		}
	})
	t.Run("empty chunk ends", func(t *testing.T) {
		calls := 0
		var buf bytes.Buffer
		err := WriteCSV(&buf, func() ([]Entry, error) {
			calls++
			if calls == 1 {
				return []Entry{{"a", 1}}, nil
			}
			return []Entry{}, nil
		})
		if err != nil || calls != 2 || buf.String() != "value,count\n\"a\",1\n" {
			t.Errorf("err %v, calls %d, output %q", err, calls, buf.String())
		}
	})
	t.Run("error from the source", func(t *testing.T) {
		boom := errors.New("redis gone")
		calls := 0
		err := WriteCSV(&bytes.Buffer{}, func() ([]Entry, error) {
			calls++
			if calls > 2 {
				return nil, boom
			}
			return []Entry{{"a", 1}}, nil
		})
		if !errors.Is(err, boom) {
			t.Errorf("err = %v, want it to wrap %v", err, boom)
		}
	})
	t.Run("error from the writer", func(t *testing.T) {
		entries := make([]Entry, 10000)
		for i := range entries {
			entries[i] = Entry{Value: strings.Repeat("x", 100), Count: 1}
		}
		err := WriteCSV(failingWriter{}, chunks(entries, 1000))
		if !errors.Is(err, errDiskFull) {
			t.Errorf("err = %v, want it to wrap %v", err, errDiskFull)
		}
	})
}

var errDiskFull = errors.New("disk full")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }
