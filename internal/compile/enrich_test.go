package compile

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
	"github.com/D4-project/analyzer-d4-log/internal/stats"
)

// worldEnricher answers from a fixed table, as a database would.
type worldEnricher map[string][2]stats.Derived

func (worldEnricher) Kinds() []string { return []string{kinds.Country, kinds.ASN} }
func (worldEnricher) Begin()          {}
func (w worldEnricher) Enrich(src []byte, out []stats.Derived) {
	a, ok := w[string(src)]
	if !ok {
		a = [2]stats.Derived{{Value: "??"}, {Value: "AS0"}}
	}
	out[0], out[1] = a[0], a[1]
}

const markupOrg = `<script>alert("x")</script> & 'Andrews' "Arnold"`

// TestCompileNamedKinds compiles country and asn charts, CSV, JSON and
// pages with the names beside the codes, markup shown literally; and
// the pages of a compiler without them keep only the three kinds.
func TestCompileNamedKinds(t *testing.T) {
	c, s := setup(t)
	c.Kinds = kinds.Active(kinds.Country, kinds.ASN)
	w := worldEnricher{
		"81.2.69.1": {{Value: "GB", Name: "United Kingdom"}, {Value: "AS20712", Name: markupOrg}},
		"1.2.3.4":   {{Value: "AU", Name: "Australia"}, {Value: "AS13335", Name: "Cloudflare, Inc."}},
	}
	b := stats.NewBatch()
	b.SetEnricher(w)
	day := time.Now().UTC().AddDate(0, 0, -1)
	for i, src := range []string{"81.2.69.1", "81.2.69.1", "1.2.3.4", "host.example"} {
		b.Add(day.Add(time.Duration(i)*time.Second), []byte("h"), []byte("root"), []byte(src))
	}
	ctx := context.Background()
	if err := s.SaveNames(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile(ctx, false); err != nil {
		t.Fatal(err)
	}
	d := day.Format("20060102")
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(c.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	csvText := read(d + "/" + d + ":statsasn.csv")
	wantCSV := "value,count,name\n" +
		`"AS20712",2,"<script>alert(""x"")</script> & 'Andrews' ""Arnold"""` + "\n" +
		`"AS0",1,""` + "\n" +
		`"AS13335",1,"Cloudflare, Inc."` + "\n"
	if csvText != wantCSV {
		t.Errorf("asn CSV:\n%s\nwant:\n%s", csvText, wantCSV)
	}
	if got := read(d + "/" + d + ":statscountry.csv"); !strings.Contains(got, `"GB",2,"United Kingdom"`) || !strings.Contains(got, `"??",1,""`) {
		t.Errorf("country CSV:\n%s", got)
	}
	if got := read(d + "/" + d + ":statsusername.csv"); !strings.HasPrefix(got, "value,count\n") {
		t.Errorf("user name CSV changed its header:\n%s", got)
	}
	var doc struct {
		Top []struct{ Value, Name string }
	}
	if err := json.Unmarshal([]byte(read(d+"/"+d+":statsasn.json")), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Top) != 3 || doc.Top[0].Value != "AS20712" || doc.Top[0].Name != markupOrg || doc.Top[1].Name != "" {
		t.Errorf("asn JSON top: %+v", doc.Top)
	}
	for _, p := range []string{d, d[:6], d[:4]} {
		svg := read(p + "/" + p + ":statsasn.svg")
		if !wellFormed(svg) || !strings.Contains(svg, "AS20712") || strings.Contains(svg, "<script") || !strings.Contains(svg, "&lt;script&gt;") {
			t.Errorf("%s asn chart is not well-formed or lacks the escaped name", p)
		}
	}
	page := read("dailystatistics.html")
	for _, want := range []string{`id="panel-country" data-kind="country" data-label="Countries"`, `id="panel-asn" data-kind="asn" data-label="Autonomous systems"`} {
		if !strings.Contains(page, want) {
			t.Errorf("daily page lacks %s", want)
		}
	}
	index := read("index.html")
	if !strings.Contains(index, "Cloudflare, Inc.") || strings.Contains(index, markupOrg) || !strings.Contains(index, "Distinct autonomous systems") {
		t.Errorf("overview lacks the AS names, escaped, or the distinct count")
	}

	// The same statistics compiled by a daemon without the databases:
	// the pages offer the three kinds only, as before.
	c2 := &Compiler{Store: s, Dir: filepath.Join(t.TempDir(), "sshd"), ChartTop: 5, Log: c.Log}
	if _, err := c2.Compile(ctx, true); err != nil {
		t.Fatal(err)
	}
	b2, err := os.ReadFile(filepath.Join(c2.Dir, "dailystatistics.html"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b2), `value="asn"`) || strings.Contains(string(b2), `value="country"`) {
		t.Error("pages without the databases offer country or asn")
	}
	if b3, err := os.ReadFile(filepath.Join(c2.Dir, "index.html")); err != nil || strings.Contains(string(b3), "autonomous systems") || strings.Contains(string(b3), "Cloudflare") {
		t.Errorf("overview without the databases shows the AS kind (%v)", err)
	}
}

func wellFormed(s string) bool {
	d := xml.NewDecoder(strings.NewReader(s))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
}
