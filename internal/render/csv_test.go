package render

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestWriteCSVHostile(t *testing.T) {
	values := append(hostileValues(),
		"'already quoted", "''", "'", "\t=1", "\r=1", "＝1+1", "＋1", "－1", "＠x",
		"a,b", `say "hi"`, "line\nbreak", "cr\rinside", "crlf\r\ninside", " leading space", `\.`)
	var entries []Entry
	for i, v := range values {
		entries = append(entries, Entry{Value: v, Count: int64(len(values) - i)})
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, chunks(entries, 4)); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()

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
		got := rec[0]
		if strings.HasPrefix(got, "'") {
			got = got[1:]
		}
		// encoding/csv's reader turns "\r\n" inside a quoted cell into
		// "\n"; the bytes written are checked below.
		want := strings.ReplaceAll(v, "\r\n", "\n")
		if got != want {
			t.Errorf("row %d: value %q read back as %q", i, v, rec[0])
		}
		if rec[1] != strconv.Itoa(len(values)-i) {
			t.Errorf("row %d: count %q", i, rec[1])
		}
	}
	// Byte for byte: quoting only where RFC 4180 needs it, nothing else.
	for _, want := range []string{"\"crlf\r\ninside\"", "\"cr\rinside\"", "\n''',", "\n'=cmd|' /C calc'!A0,", "\n\xff,", "\n'\xef\xbc\x9d1+1,", "\na\x00b,", "\n\"\\.\","} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("raw csv lacks %q", want)
		}
	}
	if !bytes.Contains(raw, []byte(strings.Repeat("A", 100*1024))) {
		t.Error("the 100 KB value was not written whole")
	}
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
		if err != nil || calls != 2 || buf.String() != "value,count\na,1\n" {
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
