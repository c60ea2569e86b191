package figure

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Phase shading colours: light tints of Okabe–Ito sky blue (prefill) and
// orange (decode); grey for window time outside every phase (between
// batches, scheduling).
var (
	prefillFill = withAlpha(rgb(0x56B4E9), 70)
	decodeFill  = withAlpha(rgb(0xE69F00), 60)
	otherFill   = withAlpha(color.Gray{Y: 128}, 40)
	throttleCol = rgb(0xD55E00)
)

// maxTracePoints bounds the points per trace in a figure; longer traces
// keep each bucket's minimum and maximum, so peaks survive.
const maxTracePoints = 2000

// PowerTimeline draws a measured window: instant power per device, the
// counter-derived mean, the idle baseline, prefill/decode shading and
// throttling marks, with temperature in a panel below when it was read.
// It returns nil when the window has no power samples.
func PowerTimeline(tl Timeline) *Figure {
	p := newPlot("", "power (W)")
	p.Title.Text = tl.Title
	p.X.Label.Text = ""
	f := &Figure{Name: tl.Name, Title: tl.Title, plots: []*plot.Plot{p}}

	tmin, tmax, pmax := 0.0, tl.WindowS, 0.0
	hasTemp := false
	for _, c := range tl.Channels {
		for i, t := range c.T {
			if !bad(c.PowerW[i]) {
				f.Points++
				tmin, tmax, pmax = math.Min(tmin, t), math.Max(tmax, t), math.Max(pmax, c.PowerW[i])
			}
			if i < len(c.TempC) && !bad(c.TempC[i]) {
				hasTemp = true
			}
		}
	}
	if f.Points == 0 {
		return nil
	}
	for _, v := range []float64{tl.MeanW, tl.BaselineW} {
		if !bad(v) {
			pmax = math.Max(pmax, v)
		}
	}
	if pmax <= 0 {
		pmax = 1
	}
	ytop := pmax * 1.12
	p.Y.Min, p.Y.Max = 0, ytop
	p.X.Min, p.X.Max = tmin, tmax

	// Phase shading first, so the traces are drawn over it.
	shade := func(s, e float64, fill color.Color) {
		poly, err := plotter.NewPolygon(plotter.XYs{{X: s, Y: 0}, {X: e, Y: 0}, {X: e, Y: ytop}, {X: s, Y: ytop}})
		if err != nil {
			return
		}
		poly.Color = fill
		poly.LineStyle.Width = 0
		p.Add(poly)
	}
	spans := append([]Span(nil), tl.Phases...)
	sort.Slice(spans, func(i, j int) bool { return spans[i].Start < spans[j].Start })
	seen := map[string]bool{}
	at := 0.0
	for _, s := range spans {
		if s.Start > at+1e-6 && len(spans) > 0 {
			shade(at, math.Min(s.Start, tl.WindowS), otherFill)
			seen["other"] = true
		}
		fill := decodeFill
		if s.Name == "prefill" {
			fill = prefillFill
		}
		shade(s.Start, s.End, fill)
		seen[s.Name] = true
		at = math.Max(at, s.End)
	}
	if len(spans) > 0 && at < tl.WindowS-1e-6 {
		shade(at, tl.WindowS, otherFill)
		seen["other"] = true
	}
	for _, k := range []struct{ name, label string }{{"prefill", "prefill"}, {"decode", "decode"}, {"other", "between phases"}} {
		if seen[k.name] {
			fill := map[string]color.Color{"prefill": prefillFill, "decode": decodeFill, "other": otherFill}[k.name]
			poly, _ := plotter.NewPolygon(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 0}, {X: 1, Y: 1}})
			poly.Color = fill
			poly.LineStyle.Width = 0
			f.addLegend(k.label, poly)
		}
	}

	for i, c := range tl.Channels {
		xys := downsample(c.T, c.PowerW)
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			continue
		}
		l.Color = traceColour(i)
		l.Width = 1.2
		p.Add(l)
		name := "instant power"
		if len(tl.Channels) > 1 {
			name = "instant power, " + c.Name
		}
		f.addLegend(name, l)
		var thr plotter.XYs
		for j, t := range c.T {
			if j < len(c.Throttle) && c.Throttle[j] {
				thr = append(thr, plotter.XY{X: t, Y: ytop * 0.96})
			}
		}
		if len(thr) > 0 {
			s, err := plotter.NewScatter(thr)
			if err == nil {
				s.GlyphStyle = draw.GlyphStyle{Color: throttleCol, Radius: 2.5, Shape: draw.PyramidGlyph{}}
				p.Add(s)
				if i == 0 || !f.hasLegend("throttling") {
					f.addLegend("throttling", s)
				}
			}
		}
	}
	hline := func(y float64, name string, col color.Color, dashes []vg.Length) {
		if bad(y) {
			return
		}
		l, err := plotter.NewLine(plotter.XYs{{X: tmin, Y: y}, {X: tmax, Y: y}})
		if err != nil {
			return
		}
		l.Color = col
		l.Width = 1.2
		l.Dashes = dashes
		p.Add(l)
		f.addLegend(name, l)
	}
	meanName := "window mean"
	if tl.MeanMethod != "" {
		meanName = fmt.Sprintf("window mean (%s)", tl.MeanMethod)
	}
	if len(tl.Channels) > 1 {
		meanName += ", all devices"
	}
	hline(tl.MeanW, meanName, color.Black, []vg.Length{5, 3})
	hline(tl.BaselineW, "idle baseline", color.Gray{Y: 90}, []vg.Length{1.5, 2.5})

	if !hasTemp {
		p.X.Label.Text = "time since window start (s)"
		return f
	}
	tp := newPlot("time since window start (s)", "temp. (°C)")
	tp.X.Min, tp.X.Max = tmin, tmax
	for i, c := range tl.Channels {
		if len(c.TempC) != len(c.T) {
			continue
		}
		xys := downsample(c.T, c.TempC)
		if len(xys) == 0 {
			continue
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			continue
		}
		l.Color = traceColour(i)
		l.Width = 1
		tp.Add(l)
	}
	f.plots = append(f.plots, tp)
	f.Height = Height + 1.1*vg.Inch
	f.layout = func(c draw.Canvas) []draw.Canvas {
		rest := f.legendStrip(c)
		cs := plot.Align([][]*plot.Plot{{p}, {tp}}, draw.Tiles{Rows: 2, Cols: 1, PadY: 6}, rest)
		top, bot := cs[0][0], cs[1][0]
		H := rest.Max.Y - rest.Min.Y
		split := rest.Min.Y + H*0.34
		bot.Rectangle.Min.Y, bot.Rectangle.Max.Y = rest.Min.Y, split
		top.Rectangle.Min.Y, top.Rectangle.Max.Y = split+6, rest.Max.Y
		return []draw.Canvas{top, bot}
	}
	return f
}

func (f *Figure) hasLegend(name string) bool {
	for _, e := range f.legend {
		if e.name == name {
			return true
		}
	}
	return false
}

// traceColour skips the palette's orange and sky blue, which shade the
// phases.
func traceColour(i int) color.Color {
	cs := []color.Color{rgb(0x0072B2), rgb(0x009E73), rgb(0xCC79A7), rgb(0x000000), rgb(0xD55E00)}
	return cs[i%len(cs)]
}

// downsample drops unread values and bounds the number of points, keeping
// each bucket's extremes in time order.
func downsample(t, v []float64) plotter.XYs {
	var xys plotter.XYs
	for i := range t {
		if i < len(v) && !bad(v[i]) && !bad(t[i]) {
			xys = append(xys, plotter.XY{X: t[i], Y: v[i]})
		}
	}
	if len(xys) <= maxTracePoints {
		return xys
	}
	per := (len(xys) + maxTracePoints/2 - 1) / (maxTracePoints / 2)
	out := make(plotter.XYs, 0, maxTracePoints+2)
	for s := 0; s < len(xys); s += per {
		b := xys[s:min(len(xys), s+per)]
		lo, hi := 0, 0
		for i := range b {
			if b[i].Y < b[lo].Y {
				lo = i
			}
			if b[i].Y > b[hi].Y {
				hi = i
			}
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		out = append(out, b[lo])
		if hi != lo {
			out = append(out, b[hi])
		}
	}
	return out
}
