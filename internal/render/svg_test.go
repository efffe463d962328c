package render

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostileValues are the nastiest user names and sources we can think of.
func hostileValues() []string {
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	return []string{
		"</text><svg onload=alert(1)>",
		"<script>alert(1)</script>",
		`"><foreignObject><iframe src="javascript:alert(1)"/></foreignObject>`,
		`<a xlink:href="javascript:alert(1)">x</a>`,
		"]]>",
		"<![CDATA[x]]>",
		"<!-- x -->",
		"&amp;&lt;&#0;&#x202e;",
		"a\x00b",
		"\xff",
		"tab\there\nnew\rline",
		strings.Repeat("A", 100*1024),
		"admin\u202egnp.exe",
		"\u2066\u2067\u2068\u2069", "\u200e\u200f\u061c", "\u202a\u202b\u202c\u202d",
		"zero\u200bwidth\ufeffbom",
		"=cmd|' /C calc'!A0",
		"+1", "-1", "@SUM(1)",
		string(all),
		"\xed\xa0\x80",                      // a UTF-16 surrogate encoded in UTF-8
		"\xef\xbf\xbe\xef\xbf\xbf",          // U+FFFE U+FFFF: not allowed in XML
		"e" + strings.Repeat("\u0301", 500), // combining marks that would stack
		"\U000e0041\U000e0042",              // tag characters
		"\u00a0nbsp\u3000",
		"root ", " root", "",
		`back\slash`,
		"用户名",
		"\x7f\u0085\u009b",
	}
}

// svgCheck parses svg as XML, walking every token, and fails on anything
// that could run or fetch: elements other than the few a chart needs,
// event handler attributes, links of any kind. It returns the text shown.
func svgCheck(t *testing.T, svg []byte) string {
	t.Helper()
	if !utf8.Valid(svg) {
		t.Fatal("svg is not valid UTF-8")
	}
	allowed := map[string]bool{"svg": true, "title": true, "style": true, "path": true, "text": true, "tspan": true}
	d := xml.NewDecoder(bytes.NewReader(svg))
	d.Strict = true
	var text strings.Builder
	depth, roots := 0, 0
	var stack []string
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("svg is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if tok.Name.Local != "svg" || tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root element is %v, want svg", tok.Name)
				}
			}
			depth++
			stack = append(stack, tok.Name.Local)
			if !allowed[tok.Name.Local] {
				t.Errorf("unexpected element <%s>", tok.Name.Local)
			}
			for _, a := range tok.Attr {
				name := strings.ToLower(a.Name.Local)
				if strings.HasPrefix(name, "on") || strings.Contains(name, "href") || a.Name.Space == "xmlns" && a.Name.Local == "xlink" ||
					strings.Contains(strings.ToLower(a.Name.Space), "xlink") {
					t.Errorf("forbidden attribute %s:%s=%q on <%s>", a.Name.Space, a.Name.Local, a.Value, tok.Name.Local)
				}
				if strings.Contains(strings.ToLower(a.Value), "javascript:") || strings.Contains(a.Value, "url(") {
					t.Errorf("attribute %s=%q references something", a.Name.Local, a.Value)
				}
			}
		case xml.EndElement:
			depth--
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && (stack[len(stack)-1] == "text" || stack[len(stack)-1] == "tspan") {
				text.Write(tok)
			}
		case xml.ProcInst, xml.Directive:
			t.Errorf("unexpected %T in svg", tok)
		}
	}
	if roots != 1 {
		t.Errorf("svg has %d root elements, want 1", roots)
	}
	// Values are text, so raw markup can only come from the renderer.
	for _, bad := range []string{"<script", "<foreignObject", "<iframe", "<a ", "<use", "<image", "<!ENTITY", "<!DOCTYPE", "xmlns:xlink"} {
		if bytes.Contains(bytes.ToLower(svg), bytes.ToLower([]byte(bad))) {
			t.Errorf("svg contains %q", bad)
		}
	}
	return text.String()
}

func TestWriteSVGHostile(t *testing.T) {
	values := hostileValues()
	var top []Entry
	for i, v := range values {
		top = append(top, Entry{Value: v, Count: int64(1000 - i)})
	}
	// All at once, then one by one, so each gets the widest label room.
	charts := []Chart{{Period: "20261125", Kind: KindUsername, Top: top, Total: 100000, Distinct: 5000}}
	for _, e := range top {
		charts = append(charts, Chart{Period: "2026", Kind: KindSrc, Top: []Entry{e}, Total: e.Count, Distinct: 1})
	}
	for i, c := range charts {
		var buf bytes.Buffer
		if err := WriteSVG(&buf, c); err != nil {
			t.Fatal(err)
		}
		if buf.Len() > 64<<10 {
			t.Errorf("chart %d is %d bytes; labels must be cut, not copied whole", i, buf.Len())
		}
		svgCheck(t, buf.Bytes())
	}

	// What a viewer reads, for each value drawn alone.
	want := map[string]string{
		"</text><svg onload=alert(1)>": "</text><svg onload=alert(1)>",
		"]]>":                          "]]>",
		"&amp;&lt;&#0;&#x202e;":        "&amp;&lt;&#0;&#x202e;",
		"a\x00b":                       `a\x00b`,
		"\xff":                         `\xff`,
		"tab\there\nnew\rline":         `tab\there\nnew\rline`,
		"admin\u202egnp.exe":           `admin\u202egnp.exe`,
		"\u2066\u2067\u2068\u2069":     `\u2066\u2067\u2068\u2069`,
		"\u200e\u200f\u061c":           `\u200e\u200f\u061c`,
		"\u202a\u202b\u202c\u202d":     `\u202a\u202b\u202c\u202d`,
		"zero\u200bwidth\ufeffbom":     `zero\u200bwidth\ufeffbom`,
		"=cmd|' /C calc'!A0":           "=cmd|' /C calc'!A0",
		"\xed\xa0\x80":                 `\xed\xa0\x80`,
		"\xef\xbf\xbe\xef\xbf\xbf":     `\ufffe\uffff`,
		"\U000e0041\U000e0042":         `\U000e0041\U000e0042`,
		"\u00a0nbsp\u3000":             `\u00a0nbsp\u3000`,
		"root ":                        `root\x20`,
		" root":                        `\x20root`,
		"":                             "(empty)",
		`back\slash`:                   `back\\slash`,
		"用户名":                          "用户名",
		"\x7f\u0085\u009b":             `\x7f\u0085\u009b`,
	}
	for i, v := range values {
		text := svgCheck(t, mustSVG(t, charts[i+1]))
		label := labelText(t, mustSVG(t, charts[i+1]))
		if w, ok := want[v]; ok {
			if label != w {
				t.Errorf("value %q is shown as %q, want %q", v, label, w)
			}
			continue
		}
		// The rest are either plain ASCII, shown as is (or cut with an
		// ellipsis), or long: their visible start must be right and cut.
		switch {
		case isPlainASCII(v):
			if label != v && !(strings.HasSuffix(label, "…") && strings.HasPrefix(v, strings.TrimSuffix(label, "…"))) {
				t.Errorf("value %q is shown as %q", v, label)
			}
		case strings.HasPrefix(v, "AAAA"):
			if !strings.HasPrefix(label, "AAAAAAAAAA") || !strings.HasSuffix(label, "…") {
				t.Errorf("100 KB value shown as %q, want A's cut with an ellipsis", label)
			}
		case v[0] == 0 && len(v) == 256:
			if !strings.HasPrefix(label, `\x00\x01\x02\x03`) || !strings.HasSuffix(label, "…") {
				t.Errorf("all bytes shown as %q", label)
			}
		case strings.HasPrefix(v, "e\u0301"):
			if !strings.HasPrefix(label, "e\u0301\u0301\u0301"+`\u0301`) {
				t.Errorf("stacked marks shown as %q, want the fourth escaped", label)
			}
		}
		if strings.ContainsAny(text, "\x00\u202e\u2066\ufffe") {
			t.Errorf("text of %q shows a raw control or bidi character: %q", v, text)
		}
	}
}

func isPlainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '\\' {
			return false
		}
	}
	return s != "" && s[0] != ' ' && s[len(s)-1] != ' '
}

func mustSVG(t *testing.T, c Chart) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSVG(&buf, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// labels returns the text of every value label, top to bottom, with its
// font size: the text elements that start at the label column.
func labels(t *testing.T, svg []byte) (texts []string, sizes []float64) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	inLabel := 0
	var cur strings.Builder
	var size float64
	sizeRE := regexp.MustCompile(`font-size:([0-9.]+)px`)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return texts, sizes
		}
		if err != nil {
			t.Fatal(err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if inLabel > 0 {
				inLabel++
				continue
			}
			if tok.Name.Local == "text" && attr(tok, "x") == strconv.Itoa(margin+6) {
				inLabel = 1
				cur.Reset()
				m := sizeRE.FindStringSubmatch(attr(tok, "style"))
				if m == nil {
					t.Fatalf("label without font size: %v", tok.Attr)
				}
				size, _ = strconv.ParseFloat(m[1], 64)
			}
		case xml.EndElement:
			if inLabel > 0 {
				inLabel--
				if inLabel == 0 {
					texts = append(texts, cur.String())
					sizes = append(sizes, size)
				}
			}
		case xml.CharData:
			if inLabel > 0 {
				cur.Write(tok)
			}
		}
	}
}

// labelText is the one label of a one-entry chart.
func labelText(t *testing.T, svg []byte) string {
	t.Helper()
	texts, _ := labels(t, svg)
	if len(texts) != 1 {
		t.Fatalf("found %d labels, want 1: %q", len(texts), texts)
	}
	return texts[0]
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// readabilityChart is a year of sources: 25 drawn of 5000, long and
// hostile labels among them.
func readabilityChart() Chart {
	var top []Entry
	hostile := hostileValues()
	for i := 0; i < 25; i++ {
		v := fmt.Sprintf("2001:db8:%x:%x::%x", i*7919, i*104729, i)
		if i%3 == 1 {
			v = hostile[i%len(hostile)]
		}
		if i == 4 {
			v = "ec2-203-0-113-254.eu-west-3.compute.amazonaws.com.example.invalid"
		}
		top = append(top, Entry{Value: v, Count: int64(90000 / (i + 1))})
	}
	return Chart{Period: "2026", Kind: KindSrc, Top: top, Total: 4_000_000, Distinct: 5000}
}

func TestWriteSVGLayout(t *testing.T) {
	f, err := parseChartFont()
	if err != nil {
		t.Fatal(err)
	}
	cv := &canvas{font: f, advance: map[rune]float64{}}
	headerRE := regexp.MustCompile(`^<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="700" viewBox="0 0 1000 700"`)

	t.Run("fixed size and labels that fit", func(t *testing.T) {
		for _, n := range []int{0, 1, 3, 25, 50, 51, 500} {
			var top []Entry
			for i := 0; i < n; i++ {
				top = append(top, Entry{Value: strings.Repeat("W", i%80) + "m", Count: int64(n - i)})
			}
			svg := mustSVG(t, Chart{Period: "202611", Kind: KindHost, Top: top, Total: int64(n * n), Distinct: int64(n)})
			if !headerRE.Match(svg) {
				t.Fatalf("%d entries: svg header %q is not the fixed 1000x700 one", n, svg[:120])
			}
			svgCheck(t, svg)
			texts, sizes := labels(t, svg)
			wantRows := min(n, maxBars)
			if n > maxBars {
				wantRows++ // the others row
			}
			if len(texts) != wantRows {
				t.Errorf("%d entries: %d labels, want %d", n, len(texts), wantRows)
			}
			for i, s := range texts {
				if w := cv.width(s, sizes[i]) * widthSlack; w > labelWidth {
					t.Errorf("%d entries: label %q is %.0f px wide, the column is %d", n, s, w, labelWidth)
				}
				if sizes[i] < 8 {
					t.Errorf("%d entries: label font %.1f px is too small to read", n, sizes[i])
				}
			}
		}
	})

	t.Run("largest on top and others", func(t *testing.T) {
		svg := mustSVG(t, Chart{
			Period: "20261125", Kind: KindUsername,
			Top:   []Entry{{"b", 5}, {"a", 5}, {"c", 50}, {"d", 1}},
			Total: 100, Distinct: 10,
		})
		texts, _ := labels(t, svg)
		want := []string{"c", "a", "b", "d", "others (6 more values, 39 attempts)"}
		if strings.Join(texts, "|") != strings.Join(want, "|") {
			t.Errorf("labels top to bottom = %q, want %q", texts, want)
		}
		text := svgCheck(t, svg)
		for _, s := range []string{"Usernames · 2026-11-25", "100 attempts", "10 distinct user names", "50 (50.0%)", "39 (39.0%)"} {
			if !strings.Contains(text, s) {
				t.Errorf("chart text lacks %q:\n%s", s, text)
			}
		}
	})

	t.Run("titles", func(t *testing.T) {
		for _, tt := range []struct {
			c    Chart
			want string
		}{
			{Chart{Period: "20261125", Kind: KindUsername}, "Usernames · 2026-11-25"},
			{Chart{Period: "202611", Kind: KindSrc}, "Sources · 2026-11"},
			{Chart{Period: "2026", Kind: KindHost}, "Hosts · 2026"},
			{Chart{Period: "<b>", Kind: "\u202e"}, `\u202e · <b>`},
		} {
			text := svgCheck(t, mustSVG(t, tt.c))
			if !strings.Contains(text, tt.want) {
				t.Errorf("title of %+v: text %q lacks %q", tt.c, text, tt.want)
			}
		}
	})

	t.Run("no data", func(t *testing.T) {
		text := svgCheck(t, mustSVG(t, Chart{Period: "20261125", Kind: KindSrc}))
		for _, s := range []string{"No attempts recorded", "0 attempts", "Sources · 2026-11-25"} {
			if !strings.Contains(text, s) {
				t.Errorf("empty chart text %q lacks %q", text, s)
			}
		}
	})

	t.Run("inconsistent numbers", func(t *testing.T) {
		// Totals below what is drawn and negative counts must not panic
		// nor print negative attempts.
		svg := mustSVG(t, Chart{Period: "2026", Kind: KindSrc, Top: []Entry{{"x", -5}, {"y", 10}}, Total: 3, Distinct: 1})
		text := svgCheck(t, svg)
		if strings.Contains(text, "-") {
			t.Errorf("chart shows a negative number: %q", text)
		}
		if !strings.Contains(text, "10 attempts · 2 distinct sources") {
			t.Errorf("totals not corrected: %q", text)
		}
	})

	t.Run("others longer than the top bar", func(t *testing.T) {
		svg := mustSVG(t, Chart{Period: "2026", Kind: KindSrc, Top: []Entry{{"x", 10}}, Total: 1_000_000, Distinct: 5000})
		text := svgCheck(t, svg)
		if !strings.Contains(text, "999,990 (100.0%)") || !strings.Contains(text, "10 (<0.1%)") {
			t.Errorf("counts missing: %q", text)
		}
	})
}
