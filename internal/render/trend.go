package render

import (
	"fmt"
	"io"
	"math"
	"strconv"
)

// The trend charts have a fixed size, like the rankings: ninety days or
// twenty years of months fit the same frame, bars thinning as they come.
const (
	trendWidth  = 1000
	trendHeight = 380

	trendPlotTop    = 118
	trendPlotBottom = 326
)

// Colours of the trend charts, on top of the ranking chart's palette:
// orange against blue stays distinct for the common colour blindnesses.
const (
	colAverage uint32 = 0xe8590c
	colPartial uint32 = 0x9db8f4
)

// trendPoint is one bar of a trend chart.
type trendPoint struct {
	value int64
	avg   float64
	label string // x axis label under the bar, "" for none
	sub   string // a second label line (the year), "" for none
}

// trendChart is a bar chart of attempts over time, with an optional line.
type trendChart struct {
	title, summary string
	points         []trendPoint
	average        bool // draw each point's avg as a line
	// partialLast draws the last bar lighter: the newest period is often
	// still being counted, and its short bar must not read as a decline.
	partialLast   bool
	barLegend     string
	avgLegend     string
	partialLegend string
	empty         string // said instead of bars when there were no attempts
}

var monthAbbr = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// dailyTrendChart draws attempts per day with the moving average, the
// 1st and 15th of each month labelled.
func dailyTrendChart(days []trendDay) trendChart {
	c := trendChart{
		average:       true,
		partialLast:   true,
		barLegend:     "attempts per day",
		avgLegend:     strconv.Itoa(AverageDays) + "-day average",
		partialLegend: "newest day, may be incomplete",
		empty:         "No attempts in these " + strconv.Itoa(len(days)) + " days",
	}
	if len(days) == 0 {
		c.title = "Attempts per day"
		return c
	}
	first, last := days[0].Period, days[len(days)-1].Period
	c.title = fmt.Sprintf("Attempts per day · %s to %s", formatPeriod(first), formatPeriod(last))
	var total, peak int64
	peakDay := ""
	for _, d := range days {
		total += d.Attempts
		if d.Attempts > peak {
			peak, peakDay = d.Attempts, d.Period
		}
		p := trendPoint{value: d.Attempts, avg: d.Average}
		if t, err := parseDay(d.Period); err == nil && (t.Day() == 1 || t.Day() == 15) {
			p.label = monthAbbr[t.Month()-1] + " " + strconv.Itoa(t.Day())
			if t.Day() == 1 && t.Month() == 1 {
				p.sub = strconv.Itoa(t.Year())
			}
		}
		c.points = append(c.points, p)
	}
	c.summary = fmt.Sprintf("%s attempts in %d days", groupThousands(total), len(days))
	if peakDay != "" {
		c.summary += fmt.Sprintf(" · busiest %s (%s)", formatPeriod(peakDay), groupThousands(peak))
	}
	c.summary += fmt.Sprintf(" · %d-day average now %s", AverageDays, averageText(days[len(days)-1].Average))
	return c
}

// averageText shows an average to one decimal, with thousands grouped.
func averageText(x float64) string {
	x = round1(x)
	whole := int64(x)
	tenth := int64(math.Round((x - float64(whole)) * 10))
	return groupThousands(whole) + "." + strconv.FormatInt(tenth, 10)
}

// monthlyTrendChart draws attempts per month.
func monthlyTrendChart(months []PeriodCount) trendChart {
	c := trendChart{
		partialLast:   true,
		barLegend:     "attempts per month",
		partialLegend: "newest month, may be incomplete",
		empty:         "No attempts in these months",
	}
	if len(months) == 0 {
		c.title = "Attempts per month"
		return c
	}
	first, last := months[0].Period, months[len(months)-1].Period
	c.title = fmt.Sprintf("Attempts per month · %s to %s", formatPeriod(first), formatPeriod(last))
	if first == last {
		c.title = "Attempts per month · " + formatPeriod(first)
	}
	// Label every step-th month, aligned on January, so labels stay apart.
	slot := float64(trendWidth-2*margin-80) / float64(len(months))
	step := 1
	for _, s := range []int{1, 2, 3, 6, 12, 24, 60, 120} {
		step = s
		if slot*float64(s) >= 56 {
			break
		}
	}
	var total, peak int64
	peakMonth := ""
	for i, m := range months {
		total += m.Attempts
		if m.Attempts > peak {
			peak, peakMonth = m.Attempts, m.Period
		}
		p := trendPoint{value: m.Attempts}
		year, _ := strconv.Atoi(m.Period[:4])
		month, _ := strconv.Atoi(m.Period[4:])
		if month >= 1 && month <= 12 && (year*12+month-1)%step == 0 {
			if step >= 12 {
				p.label = m.Period[:4]
			} else {
				p.label = monthAbbr[month-1]
				if month == 1 || i < step {
					p.sub = m.Period[:4]
				}
			}
		}
		c.points = append(c.points, p)
	}
	c.summary = fmt.Sprintf("%s attempts in %d months", groupThousands(total), len(months))
	if len(months) == 1 {
		c.summary = fmt.Sprintf("%s attempts in 1 month", groupThousands(total))
	}
	if peakMonth != "" {
		c.summary += fmt.Sprintf(" · busiest %s (%s)", formatPeriod(peakMonth), groupThousands(peak))
	}
	return c
}

// writeTrendSVG draws c into a fixed-size SVG with the same header,
// fonts and palette as the ranking charts.
func writeTrendSVG(w io.Writer, c trendChart) error {
	cv, err := newCanvas(trendWidth, trendHeight)
	if err != nil {
		return err
	}

	cv.rect(0, 0, trendWidth, trendHeight, colBackground)
	cv.text(escapeXML(c.title), margin, 40, 22, colText)
	cv.text(escapeXML(c.summary), margin, 66, 14, colMuted)
	cv.trendLegend(c, 96)

	var top float64
	for _, p := range c.points {
		top = math.Max(top, math.Max(float64(p.value), p.avg))
	}
	if top == 0 {
		size := 18.0
		x := (trendWidth - cv.width(c.empty, size)) / 2
		cv.line(margin, trendPlotBottom, trendWidth-margin, trendPlotBottom, colAxis, 1)
		cv.text(escapeXML(c.empty), int(x), (trendPlotTop+trendPlotBottom)/2, size, colMuted)
	} else {
		cv.trendBars(c, top)
	}

	return cv.writeSVG(w, c.title+": "+c.summary)
}

// trendLegend explains the marks, left-aligned under the summary.
func (cv *canvas) trendLegend(c trendChart, y int) {
	const size = 13.0
	x := margin
	item := func(label string, draw func(x int)) {
		draw(x)
		cv.text(escapeXML(label), x+22, y, size, colMuted)
		x += 22 + int(cv.width(label, size)) + 24
	}
	item(c.barLegend, func(x int) { cv.rect(x, y-10, x+14, y+1, colBar) })
	if c.average {
		item(c.avgLegend, func(x int) { cv.line(x, y-5, x+16, y-5, colAverage, 3) })
	}
	if c.partialLast {
		item(c.partialLegend, func(x int) { cv.rect(x, y-10, x+14, y+1, colPartial) })
	}
}

// trendBars draws the value axis, the bars, the average line and the
// period labels; top is the largest value to fit.
func (cv *canvas) trendBars(c trendChart, top float64) {
	const tickSize = 12.0
	step := niceStep(top / 4)
	yMax := math.Ceil(top/step) * step
	labelW := 0.0
	for v := 0.0; v <= yMax; v += step {
		labelW = math.Max(labelW, cv.width(groupThousands(int64(v)), tickSize))
	}
	left := margin + int(math.Ceil(labelW)) + 10
	right := trendWidth - margin
	plotH := float64(trendPlotBottom - trendPlotTop)
	yOf := func(v float64) int { return trendPlotBottom - int(math.Round(v/yMax*plotH)) }

	for v := 0.0; v <= yMax; v += step {
		y := yOf(v)
		cv.line(left, y, right, y, colGrid, 1)
		label := groupThousands(int64(v))
		cv.text(escapeXML(label), left-8-int(math.Ceil(cv.width(label, tickSize))), y+4, tickSize, colAxis)
	}

	n := len(c.points)
	slot := float64(right-left) / float64(n)
	barW := math.Max(1, math.Round(slot*0.72))
	center := func(i int) int { return left + int(math.Round((float64(i)+0.5)*slot)) }
	for i, p := range c.points {
		color := colBar
		if c.partialLast && i == n-1 {
			color = colPartial
		}
		if p.value > 0 {
			x0 := left + int(math.Round(float64(i)*slot+(slot-barW)/2))
			y0 := min(yOf(float64(p.value)), trendPlotBottom-1) // something happened: at least a pixel
			cv.rect(x0, y0, x0+int(barW), trendPlotBottom, color)
		}
		if p.label != "" {
			x := center(i)
			cv.line(x, trendPlotBottom, x, trendPlotBottom+5, colAxis, 1)
			cv.text(escapeXML(p.label), x-int(cv.width(p.label, tickSize)/2), trendPlotBottom+20, tickSize, colAxis)
			if p.sub != "" {
				cv.text(escapeXML(p.sub), x-int(cv.width(p.sub, tickSize)/2), trendPlotBottom+36, tickSize, colMuted)
			}
		}
	}
	cv.line(left, trendPlotBottom, right, trendPlotBottom, colAxis, 1)

	if c.average && n > 1 {
		// A white band under the line keeps it readable across the bars.
		for _, s := range []struct {
			color uint32
			width float64
		}{{colBackground, 5}, {colAverage, 2}} {
			cv.r.ResetStyle()
			cv.r.SetStrokeColor(rgb(s.color))
			cv.r.SetStrokeWidth(s.width)
			for i, p := range c.points {
				if i == 0 {
					cv.r.MoveTo(center(i), yOf(p.avg))
				} else {
					cv.r.LineTo(center(i), yOf(p.avg))
				}
			}
			cv.r.Stroke()
		}
	}
}
