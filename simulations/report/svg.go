package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// line is one series of a chart.
type line struct {
	name   string
	color  string
	dashed bool
	thin   bool
	xs, ys []float64
}

// chart is a line chart rendered as a self-contained SVG.
type chart struct {
	title, xLabel, yLabel string
	lines                 []line
	// yMax fixes the top of the y axis (0: from the data).
	yMax float64
	// xScale divides x values for the tick labels (3600 for hours) and xUnit names it.
	xScale float64
}

const (
	width, height                    = 820, 420
	left, right, top, bottom float64 = 70, 190, 40, 50
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

func (c *chart) render(w io.Writer) error {
	xMax, yMax := 0.0, c.yMax
	for _, l := range c.lines {
		for _, x := range l.xs {
			xMax = math.Max(xMax, x)
		}
		if c.yMax == 0 {
			for _, y := range l.ys {
				yMax = math.Max(yMax, y)
			}
		}
	}
	if xMax == 0 {
		xMax = 1
	}
	if yMax == 0 {
		yMax = 1
	}
	yMax = niceCeil(yMax)
	pw, ph := width-left-right, height-top-bottom
	px := func(x float64) float64 { return left + x/xMax*pw }
	py := func(y float64) float64 { return top + ph - y/yMax*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(c.title))
	// Grid and ticks.
	for i := 0; i <= 5; i++ {
		y := yMax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), left+pw, py(y))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, tick(y))
		x := xMax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`+"\n", px(x), top, px(x), top+ph)
		xs := x
		if c.xScale > 0 {
			xs = x / c.xScale
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(x), top+ph+16, tick(xs))
	}
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", left+pw/2, top+ph+38, html.EscapeString(c.xLabel))
	fmt.Fprintf(&b, `<text transform="translate(16,%g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+ph/2, html.EscapeString(c.yLabel))
	// Lines and legend.
	for i, l := range c.lines {
		var pts strings.Builder
		for j := range l.xs {
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(l.xs[j]), py(math.Min(l.ys[j], yMax)))
		}
		style := ""
		if l.dashed {
			style = ` stroke-dasharray="6 4"`
		}
		sw := 2.0
		if l.thin {
			sw, style = 1, ` stroke-dasharray="2 3"`
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%g"%s points="%s"/>`+"\n", l.color, sw, style, strings.TrimSpace(pts.String()))
		ly := top + 10 + float64(i)*18
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="%g"%s/>`+"\n", left+pw+12, ly, left+pw+40, ly, l.color, sw, style)
		fmt.Fprintf(&b, `<text x="%g" y="%g">%s</text>`+"\n", left+pw+46, ly+4, html.EscapeString(l.name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v*0.999999 {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
	default:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
	}
}
