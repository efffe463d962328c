package render

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/D4-project/analyzer-d4-log/internal/kinds"
)

// The page template and its script are compiled into the binary, so the
// daemon runs from any directory and never pairs its code with pages from
// another version (the original read them from the source tree at run time).
var (
	//go:embed assets/common.html.tmpl
	commonTemplate string
	//go:embed assets/page.html.tmpl
	pageTemplate string
	//go:embed assets/load.js
	loadJS string
	//go:embed assets/fresh.js
	freshJS string
	//go:embed assets/favicon.svg
	faviconSVG string
	//go:embed assets/explore.html.tmpl
	exploreTemplate string
	//go:embed assets/explore.js
	exploreJS string
)

// Index is what the pages need to offer only periods that have data.
type Index struct {
	Oldest, Newest string   // YYYYMMDD, "" when there is no data yet
	Days           []string // YYYYMMDD with data, ascending
	Months         []string // YYYYMM with data, ascending
	Years          []string // YYYY with data, ascending
	// Kinds are the kinds offered, in page order (nil: the three of
	// every line; country and asn join them when configured).
	Kinds []string
	// Archived are the days pruned from the counting Redis (SPEC §12)
	// whose compiled files stay on disk (ArchivedDays): the daily page
	// offers them too, labelled as archived. Not in Days.
	Archived []string
}

// pageIndex is Index as the page script reads it.
type pageIndex struct {
	Oldest string   `json:"oldest"`
	Newest string   `json:"newest"`
	Days   []string `json:"days"`
	Months []string `json:"months"`
	Years  []string `json:"years"`
	// Left out when empty, so pages without retention are as before.
	Archived []string `json:"archived,omitempty"`
}

// page describes one of the three statistics pages.
type page struct {
	Name  string // "daily", "monthly" or "yearly"; the script keys on it
	File  string
	Nav   string // link text
	Title string
}

func pages() []page {
	return []page{
		{Name: "daily", File: "dailystatistics.html", Nav: "Daily", Title: "Daily statistics"},
		{Name: "monthly", File: "monthlystatistics.html", Nav: "Monthly", Title: "Monthly statistics"},
		{Name: "yearly", File: "yearlystatistics.html", Nav: "Yearly", Title: "Yearly statistics"},
	}
}

// overviewPage is index.html, the page an operator opens first.
func overviewPage() page {
	return page{Name: "overview", File: "index.html", Nav: "Overview", Title: "Overview"}
}

// ExploreFile is the page that asks the daemon's investigation API
// (SPEC §10) about any range of days.
const ExploreFile = "explore.html"

// explorePage is explore.html; it works only when served by the daemon.
func explorePage() page {
	return page{Name: "explore", File: ExploreFile, Nav: "Explore", Title: "Explore"}
}

// navPages lists every page in the order the navigation shows them.
func navPages() []page { return append(append([]page{overviewPage()}, pages()...), explorePage()) }

// kindOption is one entry of the kind select.
type kindOption struct{ Value, Label string }

// pageData is what the template sees.
type pageData struct {
	Page     page
	Pages    []page // the navigation
	Kinds    []kindOption
	Index    pageIndex
	Fallback []fallbackChart // newest period's charts for browsers without JavaScript
}

type fallbackChart struct {
	Src, CSV, Alt string
}

// WritePages writes dailystatistics.html, monthlystatistics.html,
// yearlystatistics.html, explore.html, load.js, explore.js, fresh.js and
// favicon.svg into dir (the sshd output directory),
// each atomically. The index is embedded in each page as JSON, so the pages
// work from file:// as well as from any static server at any path; every
// link they make is relative.
func WritePages(dir string, idx Index) error {
	tmpl, err := parseTemplate("page", pageTemplate)
	if err != nil {
		return err
	}
	explore, err := parseTemplate("explore", exploreTemplate)
	if err != nil {
		return err
	}
	var kindOpts []kindOption
	names := idx.Kinds
	if names == nil {
		names = kindNames()
	}
	for _, k := range names {
		kindOpts = append(kindOpts, kindOption{Value: k, Label: KindLabel(k)})
	}
	pi := pageIndex{
		Oldest:   idx.Oldest,
		Newest:   idx.Newest,
		Days:     nonNil(idx.Days),
		Months:   nonNil(idx.Months),
		Years:    nonNil(idx.Years),
		Archived: idx.Archived,
	}
	for _, p := range pages() {
		data := pageData{
			Page:     p,
			Pages:    navPages(),
			Kinds:    kindOpts,
			Index:    pi,
			Fallback: fallback(p.Name, idx, names),
		}
		err := WriteFileAtomic(filepath.Join(dir, p.File), func(w io.Writer) error {
			return tmpl.Execute(w, data)
		})
		if err != nil {
			return fmt.Errorf("write %s page: %w", p.Name, err)
		}
	}
	// The explore page carries the index only for its presets' anchor (the
	// newest day); everything else it asks the daemon.
	ex := pageData{Page: explorePage(), Pages: navPages(), Kinds: kindOpts, Index: pi}
	err = WriteFileAtomic(filepath.Join(dir, ExploreFile), func(w io.Writer) error {
		return explore.Execute(w, ex)
	})
	if err != nil {
		return fmt.Errorf("write explore page: %w", err)
	}
	return writeAssets(dir)
}

// writeAssets writes the scripts and the icon every page refers to. The
// favicon is a file rather than a data: URL so that the pages' and the
// daemon's Content-Security-Policy need not allow data: images.
func writeAssets(dir string) error {
	for _, a := range []struct{ name, body string }{{"load.js", loadJS}, {"explore.js", exploreJS}, {"fresh.js", freshJS}, {"favicon.svg", faviconSVG}} {
		err := WriteFileAtomic(filepath.Join(dir, a.name), func(w io.Writer) error {
			_, err := io.WriteString(w, a.body)
			return err
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", a.name, err)
		}
	}
	return nil
}

// parseTemplate parses a page's template with the parts every page shares.
func parseTemplate(name, body string) (*template.Template, error) {
	tmpl, err := template.New(name).Parse(commonTemplate)
	if err == nil {
		tmpl, err = tmpl.Parse(body)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s template: %w", name, err)
	}
	return tmpl, nil
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// fallback picks the newest period of the page's granularity, one chart
// per kind shown.
func fallback(name string, idx Index, kindList []string) []fallbackChart {
	var list []string
	switch name {
	case "daily":
		list = idx.Days
	case "monthly":
		list = idx.Months
	case "yearly":
		list = idx.Years
	}
	if len(list) == 0 {
		return nil
	}
	period := list[len(list)-1]
	if formatPeriod(period) == "" {
		return nil // not a period: no link is better than a wrong one
	}
	out := make([]fallbackChart, 0, len(kindList))
	for _, k := range kindList {
		out = append(out, fallbackChart{
			Src: chartURL(period, k, ".svg"),
			CSV: chartURL(period, k, ".csv"),
			Alt: KindLabel(k) + " · " + formatPeriod(period),
		})
	}
	return out
}

// chartURL is the relative URL of a chart or ranking file. The colon in
// the file name is percent-encoded: left bare, "20261125:statssrc.svg"
// could be read as a URL scheme by a browser or a proxy.
func chartURL(period, kind, ext string) string {
	esc := func(s string) string { return strings.ReplaceAll(url.PathEscape(s), ":", "%3A") }
	return esc(period) + "/" + esc(kinds.StatsName(period, kind)+ext)
}
