package render

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteCSV streams a full ranking: the header "value,count", then one row
// per entry in the order next delivers them. next returns the ranking in
// chunks; a nil or empty chunk ends it. Rankings of a year hold millions of
// values, so nothing is collected in memory.
//
// Values are chosen by attackers and a CSV is opened in spreadsheets and
// printed to terminals, so a value cell is written for people, not byte for
// byte (the JSON beside each CSV keeps the exact bytes, see jsonEntry):
//
//   - it shows the value as the pages do (VisibleText): control bytes,
//     bidi controls and invalid UTF-8 appear as \x1b, \u202e or \xff and a
//     backslash as \\, so `cat` of a CSV cannot drive the terminal, a row
//     is one line, and undoing the escapes gives the value back;
//   - every value cell is quoted, so that a spreadsheet splitting rows on
//     ";" or a tab rather than "," cannot start a cell inside a value
//     ("x;=cmd|' /C calc'!A0" stays one text cell);
//   - a cell that would start with =, +, -, @ (or their full-width forms,
//     which some spreadsheets fold into the ASCII ones) or with an
//     apostrophe gets a leading apostrophe, so it is never a formula and a
//     reader recovers the text by removing one leading apostrophe where
//     there is one.
//
// Counts are digits and are written bare. Lines end in "\n".
func WriteCSV(w io.Writer, next func() ([]Entry, error)) error {
	if _, err := io.WriteString(w, "value,count\n"); err != nil {
		return fmt.Errorf("write csv header: %w", err)
	}
	var row []byte
	for {
		chunk, err := next()
		if err != nil {
			return fmt.Errorf("read ranking for csv: %w", err)
		}
		if len(chunk) == 0 {
			return nil
		}
		for _, e := range chunk {
			row = appendCSVRow(row[:0], e)
			if _, err := w.Write(row); err != nil {
				return fmt.Errorf("write csv row: %w", err)
			}
		}
		// A row of a megabyte value should not stay allocated for the
		// rest of a million-row ranking.
		if cap(row) > 64<<10 {
			row = nil
		}
	}
}

// appendCSVRow appends the row of e (see WriteCSV) to b.
func appendCSVRow(b []byte, e Entry) []byte {
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(csvValue(VisibleText(e.Value)), `"`, `""`)...)
	b = append(b, '"', ',')
	b = strconv.AppendInt(b, e.Count, 10)
	return append(b, '\n')
}

// WriteNamedCSV is WriteCSV for a named kind (an AS, a country): a third
// column "name" holds the organisation or the country, quoted and
// neutralised like a value, since it comes from a database file.
func WriteNamedCSV(w io.Writer, next func() ([]Entry, Names, error)) error {
	if _, err := io.WriteString(w, "value,count,name\n"); err != nil {
		return fmt.Errorf("write csv header: %w", err)
	}
	var row []byte
	for {
		chunk, names, err := next()
		if err != nil {
			return fmt.Errorf("read ranking for csv: %w", err)
		}
		if len(chunk) == 0 {
			return nil
		}
		for _, e := range chunk {
			row = appendCSVRow(row[:0], e)
			row = append(row[:len(row)-1], ',', '"')
			row = append(row, strings.ReplaceAll(csvValue(VisibleText(names[e.Value])), `"`, `""`)...)
			row = append(row, '"', '\n')
			if _, err := w.Write(row); err != nil {
				return fmt.Errorf("write csv row: %w", err)
			}
		}
	}
}

// csvValue neutralises a value a spreadsheet would evaluate (see WriteCSV).
// A tab or carriage return cannot start a visible text, but the guard keeps
// them for whoever calls it with raw bytes.
func csvValue(v string) string {
	if v == "" {
		return v
	}
	switch v[0] {
	case '=', '+', '-', '@', '\t', '\r', '\'':
		return "'" + v
	}
	for _, p := range []string{"\uff1d", "\uff0b", "\uff0d", "\uff20"} { // ＝ ＋ － ＠
		if strings.HasPrefix(v, p) {
			return "'" + v
		}
	}
	return v
}
