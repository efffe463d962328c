package render

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/golang/freetype/truetype"
	chart "github.com/wcharczuk/go-chart/v2"
	"github.com/wcharczuk/go-chart/v2/drawing"
	"github.com/wcharczuk/go-chart/v2/roboto"
	"golang.org/x/image/math/fixed"
)

// The chart has a fixed size whatever the number of entries: the original
// drew every value of a year into one ever-taller image nobody could read.
// Bars get thinner as entries are added, down to maxBars of them.
const (
	svgWidth  = 1000
	svgHeight = 700

	// maxBars caps the bars drawn; entries beyond it join the "others" bar.
	// Past this, rows are thinner than readable text.
	maxBars = 50

	margin     = 24
	labelWidth = 300 // column for the values, left-aligned like a table
	labelGap   = 14  // between the label column and the bars
	plotTop    = 100
	plotBottom = 650
	maxRowH    = 44 // a handful of entries should not make bars fat as bricks

	// widthSlack makes room for viewers that lack the embedded Roboto whose
	// metrics we measure with: their fallback sans-serif (Arial, Liberation
	// Sans, DejaVu Sans) runs up to about twelve percent wider.
	widthSlack = 1.12
)

// Colours (0xRRGGBB), chosen to be told apart by people with common colour
// blindness and to survive printing in grey.
const (
	colBackground uint32 = 0xffffff
	colStripe     uint32 = 0xf3f5f8
	colGrid       uint32 = 0xd6dbe2
	colAxis       uint32 = 0x6b7280
	colBar        uint32 = 0x2563eb
	colOthers     uint32 = 0x9ca3af
	colText       uint32 = 0x111827
	colMuted      uint32 = 0x4b5563
)

// darkColours are the colours the charts take where the viewer prefers a
// dark scheme (the page's own dark palette): a chart shown as an image on
// a dark page is not a bright white box. SVG shown by <img> follows the
// page's prefers-color-scheme; go-chart writes every colour as an inline
// style, so the dark ones are set by attribute selectors with !important.
var darkColours = []struct {
	light, dark uint32
}{
	{colBackground, 0x1a2029},
	{colStripe, 0x212833},
	{colGrid, 0x343d49},
	{colAxis, 0x9ca3af},
	{colBar, 0x5b8cff},
	{colOthers, 0x6b7280},
	{colText, 0xe5e7eb},
	{colMuted, 0x9ca3af},
	{colPartial, 0x3b5bab},
}

// darkStyle is the style rule that repaints a chart in darkColours.
var darkStyle = func() string {
	var b strings.Builder
	b.WriteString("@media (prefers-color-scheme: dark){")
	for _, c := range darkColours {
		l := rgb(c.light)
		for _, prop := range []string{"fill", "stroke"} {
			fmt.Fprintf(&b, `[style*="%s:rgba(%d,%d,%d,1.0)"]{%s:#%06x!important}`, prop, l.R, l.G, l.B, prop, c.dark)
		}
	}
	b.WriteString("}")
	return b.String()
}()

func rgb(c uint32) drawing.Color {
	return drawing.Color{R: uint8(c >> 16), G: uint8(c >> 8), B: uint8(c), A: 255}
}

// goChartHeader is what go-chart writes first (with the width and height).
// WriteSVG replaces it with a header of its own that adds an intrinsic
// size, a title for screen readers and a font stack, and drops the unused
// xlink namespace.
const goChartHeader = `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 %d %d">`

// fontStack overrides go-chart's "'Roboto',sans-serif" so that viewers
// without Roboto get a face with similar metrics before the generic one.
const fontStack = `text{font-family:Roboto,"Helvetica Neue",Arial,"Liberation Sans",sans-serif!important}`

// WriteSVG draws c as a horizontal bar chart: one bar per entry of c.Top,
// largest on top, the count and share printed at the end of each bar, and
// one grey "others" bar standing for every value not drawn. The image is
// always 1000x700; a chart without data says so.
//
// Values are shown through visiblePieces and cut with an ellipsis to fit
// their column, so any bytes at all give a well-formed SVG with no active
// content and no text outside its place.
func WriteSVG(w io.Writer, c Chart) error {
	cv, err := newCanvas(svgWidth, svgHeight)
	if err != nil {
		return err
	}

	rows, total, distinct := chartRows(c)

	cv.rect(0, 0, svgWidth, svgHeight, colBackground)
	title := chartTitle(c)
	cv.text(escapeXML(title), margin, 44, 24, colText)
	summary := fmt.Sprintf("%s attempts · %s distinct %s", groupThousands(total), groupThousands(distinct), kindNoun(c.Kind))
	if n := len(rows); n > 0 && rows[n-1].others {
		summary += fmt.Sprintf(" · top %d shown", n-1)
	}
	cv.text(escapeXML(summary), margin, 72, 15, colMuted)

	if len(rows) == 0 {
		msg := "No attempts recorded in this period"
		size := 20.0
		x := (svgWidth - cv.width(msg, size)) / 2
		cv.text(escapeXML(msg), int(x), (plotTop+plotBottom)/2, size, colMuted)
	} else {
		cv.bars(rows, total)
	}

	return cv.writeSVG(w, title+": "+summary)
}

// newCanvas starts a drawing of width × height SVG units with the embedded
// font, for the bar charts and the trend charts alike.
func newCanvas(width, height int) (*canvas, error) {
	f, err := parseChartFont()
	if err != nil {
		return nil, fmt.Errorf("parse embedded chart font: %w", err)
	}
	r, err := chart.SVG(width, height)
	if err != nil {
		return nil, fmt.Errorf("start svg renderer: %w", err)
	}
	// At 72 DPI a point is a pixel, so font sizes are in SVG units.
	r.SetDPI(72)
	return &canvas{r: r, font: f, advance: map[rune]float64{}, width0: width, height0: height}, nil
}

// writeSVG writes the drawing to w under our own root element: go-chart's
// has no size, title or font fallback, so it is replaced by one with a
// fixed size, an accessible title (title, escaped here) and the font stack.
func (cv *canvas) writeSVG(w io.Writer, title string) error {
	var buf bytes.Buffer
	if err := cv.r.Save(&buf); err != nil {
		return fmt.Errorf("render svg: %w", err)
	}
	body, ok := bytes.CutPrefix(buf.Bytes(), fmt.Appendf(nil, goChartHeader, cv.width0, cv.height0))
	if !ok {
		return errors.New("render svg: go-chart wrote an unexpected header; a go-chart upgrade needs goChartHeader updated")
	}
	head := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-labelledby="title"><title id="title">%s</title><style>%s</style>`,
		cv.width0, cv.height0, cv.width0, cv.height0, escapeXML(title), fontStack+darkStyle)
	if _, err := io.WriteString(w, head); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("write svg: %w", err)
	}
	return nil
}

// parseChartFont parses go-chart's embedded Roboto for each chart rather
// than through chart.GetDefaultFont, whose lazy initialisation races when
// charts are drawn concurrently; parsing costs well under a millisecond.
func parseChartFont() (*truetype.Font, error) {
	return truetype.Parse(roboto.Roboto)
}

// chartTitle names the kind and the period, e.g. "Sources · 2026-11-25".
func chartTitle(c Chart) string {
	label := KindLabel(c.Kind)
	if label == c.Kind {
		label = shortVisible(c.Kind, 24)
	}
	period := formatPeriod(c.Period)
	if period == "" {
		period = shortVisible(c.Period, 24)
	}
	return label + " · " + period
}

// shortVisible is the visible form of s cut to n pieces, for a caller's
// mistake that should show in a title without taking it over.
func shortVisible(s string, n int) string {
	ps, cut := visiblePieces(s)
	if len(ps) > n {
		ps, cut = ps[:n-1], true
	}
	if cut {
		ps = append(ps, piece{"…", marker})
	}
	return joinPieces(ps)
}

// row is one bar of the chart.
type row struct {
	label  []piece
	cut    bool // label was shortened by visiblePieces already
	count  int64
	others bool
	more   int64 // values folded into the others row
}

// othersLabel names the others row; the short form leaves the attempts to
// the count at the bar's end when the column is too narrow for both.
func othersLabel(more, attempts int64, long bool) string {
	if long {
		return fmt.Sprintf("others (%s more values, %s attempts)", groupThousands(more), groupThousands(attempts))
	}
	return fmt.Sprintf("others (%s more values)", groupThousands(more))
}

// chartRows orders and bounds c.Top, adds the "others" row, and returns the
// totals to print. It does not trust the caller's arithmetic: negative
// counts are drawn as zero and totals are never below what is drawn.
func chartRows(c Chart) (rows []row, total, distinct int64) {
	top := make([]Entry, len(c.Top))
	copy(top, c.Top)
	for i := range top {
		top[i].Count = max(top[i].Count, 0)
	}
	sort.SliceStable(top, func(i, j int) bool {
		if top[i].Count != top[j].Count {
			return top[i].Count > top[j].Count
		}
		return top[i].Value < top[j].Value
	})
	var sumAll int64
	for _, e := range top {
		sumAll += e.Count
	}
	total = max(c.Total, sumAll)
	distinct = max(c.Distinct, int64(len(top)))

	drawn := top[:min(len(top), maxBars)]
	var sumDrawn int64
	for _, e := range drawn {
		// The organisation beside "AS…", the country beside its code.
		ps, cut := visiblePieces(c.Names.label(e.Value))
		if len(ps) == 0 {
			ps = []piece{{"(empty)", marker}} // muted, so it cannot pass for a value typed as "(empty)"
		}

		rows = append(rows, row{label: ps, cut: cut, count: e.Count})
		sumDrawn += e.Count
	}
	if more := distinct - int64(len(drawn)); more > 0 {
		attempts := total - sumDrawn
		rows = append(rows, row{label: []piece{{othersLabel(more, attempts, true), plain}}, count: attempts, others: true, more: more})
	}
	return rows, total, distinct
}

// canvas wraps the go-chart renderer with the few primitives a bar chart
// needs and measures text the way it will be shown.
type canvas struct {
	r               chart.Renderer
	font            *truetype.Font
	advance         map[rune]float64 // advance widths in ems, filled as runes are met
	width0, height0 int              // size of the drawing, in SVG units
}

// width measures s in pixels at size, from the font's unhinted advance
// widths (hinting would cost a glyph load per rune and changes nothing at
// these sizes). A rune missing from the embedded font counts as a full em:
// the viewer draws it from another font, and CJK or emoji glyphs are that
// wide, far wider than the notdef box go-chart would measure.
func (cv *canvas) width(s string, size float64) float64 {
	em := 0.0
	for _, r := range s {
		adv, ok := cv.advance[r]
		if !ok {
			adv = 1
			if i := cv.font.Index(r); i != 0 {
				units := cv.font.FUnitsPerEm()
				adv = float64(cv.font.HMetric(fixed.Int26_6(units), i).AdvanceWidth) / float64(units)
			}
			cv.advance[r] = adv
		}
		em += adv
	}
	return em * size
}

// fits is width with room for a wider fallback font.
func (cv *canvas) fits(s string, size float64) float64 { return cv.width(s, size) * widthSlack }

func (cv *canvas) rect(x0, y0, x1, y1 int, c uint32) {
	cv.r.ResetStyle()
	cv.r.SetFillColor(rgb(c))
	cv.r.MoveTo(x0, y0)
	cv.r.LineTo(x1, y0)
	cv.r.LineTo(x1, y1)
	cv.r.LineTo(x0, y1)
	cv.r.Close()
	cv.r.Fill()
}

func (cv *canvas) line(x0, y0, x1, y1 int, c uint32, width float64) {
	cv.r.ResetStyle()
	cv.r.SetStrokeColor(rgb(c))
	cv.r.SetStrokeWidth(width)
	cv.r.MoveTo(x0, y0)
	cv.r.LineTo(x1, y1)
	cv.r.Stroke()
}

// text draws markup, which must already be escaped XML content.
func (cv *canvas) text(markup string, x, y int, size float64, c uint32) {
	cv.r.ResetStyle()
	cv.r.SetFont(cv.font)
	cv.r.SetFontSize(size)
	cv.r.SetFontColor(rgb(c))
	cv.r.Text(markup, x, y)
}

// bars draws the rows, their labels, counts and a value axis.
func (cv *canvas) bars(rows []row, total int64) {
	n := len(rows)
	rowH := math.Min(float64(plotBottom-plotTop)/float64(n), maxRowH)
	size := math.Max(8, math.Min(15, math.Round(rowH*0.56*2)/2))
	barH := math.Max(1, math.Round(rowH*0.68))
	barX := margin + labelWidth + labelGap

	counts := make([]string, n)
	countW := 0.0
	for i, rw := range rows {
		counts[i] = groupThousands(rw.count) + " " + share(rw.count, total)
		countW = math.Max(countW, cv.fits(counts[i], size))
	}
	barMax := float64(svgWidth-margin-barX) - countW - 8

	// The scale follows the largest ranked value, not "others": a long tail
	// can outweigh the top value and would flatten every real bar. An
	// "others" bar longer than the scale is drawn broken.
	var scaleMax int64
	for _, rw := range rows {
		if !rw.others {
			scaleMax = max(scaleMax, rw.count)
		}
	}
	if scaleMax == 0 {
		scaleMax = max(rows[n-1].count, 1)
	}
	xOf := func(v int64) int { return barX + int(math.Round(float64(v)/float64(scaleMax)*barMax)) }

	rowTop := func(i int) int { return plotTop + int(math.Round(float64(i)*rowH)) }
	plotEnd := rowTop(n)
	for i := 0; i < n; i += 2 {
		cv.rect(margin, rowTop(i), svgWidth-margin, rowTop(i+1), colStripe)
	}

	step := niceStep(float64(scaleMax) / 5)
	tickSize := 12.0
	for v := 0.0; v <= float64(scaleMax); v += step {
		x := xOf(int64(v))
		cv.line(x, plotTop, x, plotEnd, colGrid, 1)
		label := groupThousands(int64(v))
		cv.text(escapeXML(label), x-int(cv.width(label, tickSize)/2), plotEnd+18, tickSize, colAxis)
	}
	cv.line(barX, plotTop, barX, plotEnd, colAxis, 1)

	labelRoom := float64(labelWidth)
	for i, rw := range rows {
		top := rowTop(i)
		mid := float64(top) + rowH/2
		baseline := int(math.Round(mid + size*0.36))
		y0 := int(math.Round(mid - barH/2))
		y1 := y0 + int(barH)

		color, textColor := colBar, colText
		if rw.others {
			color, textColor = colOthers, colMuted
		}
		end := xOf(min(rw.count, scaleMax))
		if end > barX {
			cv.rect(barX, y0, end, y1, color)
		}
		if rw.count > scaleMax {
			// Two white slashes mark the bar as broken, not to scale.
			for _, dx := range []int{-22, -14} {
				cv.line(end+dx, y1+1, end+dx+6, y0-1, colBackground, 3)
			}
		}

		labelSize := size
		if rw.others {
			// The others label is ours and worth reading whole: a smaller
			// font first, the short form only when that is not enough.
			for labelSize > 9 && cv.fits(rw.label[0].s, labelSize) > labelRoom {
				labelSize -= 0.5
			}
			if cv.fits(rw.label[0].s, labelSize) > labelRoom {
				labelSize = size
				rw.label = []piece{{othersLabel(rw.more, rw.count, false), plain}}
			}
		}
		label := fitPieces(rw.label, rw.cut, labelRoom, func(s string) float64 { return cv.fits(s, labelSize) })
		cv.text(piecesMarkup(label), margin+6, baseline, labelSize, textColor)

		num := groupThousands(rw.count)
		markup := escapeXML(num) + `<tspan fill="` + ellipsisFill + `">` + escapeXML(counts[i][len(num):]) + `</tspan>`
		cv.text(markup, end+6, baseline, size, textColor)
	}
}

// share is count as a percentage of total, "(12.3%)", never "(0.0%)" for
// something that happened.
func share(count, total int64) string {
	if total <= 0 {
		return ""
	}
	p := float64(count) / float64(total) * 100
	switch {
	case count == 0:
		return "(0%)"
	case p < 0.1:
		return "(<0.1%)"
	}
	return "(" + strconv.FormatFloat(p, 'f', 1, 64) + "%)"
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten, so
// that the axis reads 0, 200, 400 rather than 0, 183, 366.
func niceStep(raw float64) float64 {
	if raw < 1 {
		return 1
	}
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*pow {
			return m * pow
		}
	}
	return 10 * pow
}
