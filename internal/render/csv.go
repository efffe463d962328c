package render

import (
	"encoding/csv"
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
// Cells are quoted per RFC 4180 and values are written byte for byte, with
// one exception that keeps a spreadsheet from running an attacker's value as
// a formula: a value that starts with =, +, -, @, a tab or a carriage return
// (or their full-width forms, which some spreadsheets fold into the ASCII
// ones) gets a leading apostrophe. A value that already starts with an
// apostrophe gets one too, so that a reader recovers every value exactly by
// removing one leading apostrophe where there is one.
//
// Lines end in "\n", not "\r\n": encoding/csv drops a lone "\r" inside a
// quoted cell when asked for CRLF, and values must survive unchanged.
func WriteCSV(w io.Writer, next func() ([]Entry, error)) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"value", "count"}); err != nil {
		return fmt.Errorf("write csv header: %w", err)
	}
	rec := make([]string, 2)
	for {
		chunk, err := next()
		if err != nil {
			return fmt.Errorf("read ranking for csv: %w", err)
		}
		if len(chunk) == 0 {
			break
		}
		for _, e := range chunk {
			rec[0] = csvValue(e.Value)
			rec[1] = strconv.FormatInt(e.Count, 10)
			if err := cw.Write(rec); err != nil {
				return fmt.Errorf("write csv row: %w", err)
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// csvValue neutralises a value a spreadsheet would evaluate (see WriteCSV).
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
