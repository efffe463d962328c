package render

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (regenerate with go test ./internal/render -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; if the change is intended, regenerate with -update\n got: %q\nwant: %q",
			name, truncate(got, 2000), truncate(want, 2000))
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// goldenChart is the fixed data set behind the golden SVG and CSV: a day
// with more distinct values than drawn, ties broken by value, and one value
// an attacker chose.
func goldenChart() Chart {
	return Chart{
		Period: "20261125",
		Kind:   KindUsername,
		Top: []Entry{
			{Value: "root", Count: 1520},
			{Value: "admin", Count: 611},
			{Value: "ubuntu", Count: 230},
			{Value: "git", Count: 230},
			{Value: "oracle", Count: 97},
			{Value: "</text><svg onload=alert(1)>", Count: 12},
			{Value: "=cmd|' /C calc'!A0", Count: 3},
			{Value: "", Count: 1},
		},
		Total:    2890,
		Distinct: 31,
	}
}

func goldenIndex() Index {
	return Index{
		Oldest: "20261120",
		Newest: "20261125",
		Days:   []string{"20261120", "20261123", "20261125"},
		Months: []string{"202510", "202610", "202611"},
		Years:  []string{"2025", "2026"},
	}
}

func TestGoldenSVG(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSVG(&buf, goldenChart()); err != nil {
		t.Fatal(err)
	}
	golden(t, "chart.svg.golden", buf.Bytes())
}

func TestGoldenCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteCSV(&buf, chunks(goldenChart().Top, 3)); err != nil {
		t.Fatal(err)
	}
	golden(t, "ranking.csv.golden", buf.Bytes())
}

func TestGoldenPage(t *testing.T) {
	dir := t.TempDir()
	if err := WritePages(dir, goldenIndex()); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "dailystatistics.html"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "dailystatistics.html.golden", got)
}

// chunks serves entries to WriteCSV n at a time, as a Redis cursor would.
func chunks(entries []Entry, n int) func() ([]Entry, error) {
	return func() ([]Entry, error) {
		if len(entries) == 0 {
			return nil, nil
		}
		k := min(n, len(entries))
		out := entries[:k]
		entries = entries[k:]
		return out, nil
	}
}

func TestKindLabel(t *testing.T) {
	for kind, want := range map[string]string{
		"username": "Usernames",
		"src":      "Sources",
		"host":     "Hosts",
		"other":    "other",
	} {
		if got := KindLabel(kind); got != want {
			t.Errorf("KindLabel(%q) = %q, want %q", kind, got, want)
		}
	}
}

func TestPaths(t *testing.T) {
	tests := []struct{ got, want string }{
		{ChartPath("20261125", "src"), filepath.Join("20261125", "20261125:statssrc.svg")},
		{CSVPath("202611", "username"), filepath.Join("202611", "202611:statsusername.csv")},
		{ChartPath("2026", "host"), filepath.Join("2026", "2026:statshost.svg")},
		{chartURL("20261125", "src", ".svg"), "20261125/20261125%3Astatssrc.svg"},
		{chartURL("2026", "host", ".csv"), "2026/2026%3Astatshost.csv"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestFormatPeriod(t *testing.T) {
	for in, want := range map[string]string{
		"20261125": "2026-11-25",
		"202611":   "2026-11",
		"2026":     "2026",
		"":         "",
		"2026-11":  "",
		"1234567":  "",
		"2026x":    "",
	} {
		if got := formatPeriod(in); got != want {
			t.Errorf("formatPeriod(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupThousands(t *testing.T) {
	for in, want := range map[int64]string{
		0:          "0",
		7:          "7",
		999:        "999",
		1000:       "1,000",
		12345:      "12,345",
		123456:     "123,456",
		1234567:    "1,234,567",
		-1234:      "-1,234",
		-123456:    "-123,456",
		-999:       "-999",
		1000000000: "1,000,000,000",
	} {
		if got := groupThousands(in); got != want {
			t.Errorf("groupThousands(%d) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkWriteSVG(b *testing.B) {
	c := readabilityChart()
	for b.Loop() {
		if err := WriteSVG(io.Discard, c); err != nil {
			b.Fatal(err)
		}
	}
}
