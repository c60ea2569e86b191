package figure

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// percentileBoxes is a gonum/plot Plotter for latency summaries, which keep
// percentiles rather than samples: per category, a whisker from the minimum
// to p99, a box from p50 to p95, a dot at the maximum and a diamond at the
// mean.
type percentileBoxes struct {
	xs     []float64
	ps     []Percentiles
	colour []color.Color
	width  vg.Length
}

var _ plot.Plotter = (*percentileBoxes)(nil)
var _ plot.DataRanger = (*percentileBoxes)(nil)

func (b *percentileBoxes) Plot(c draw.Canvas, p *plot.Plot) {
	xf, yf := p.Transforms(&c)
	for i, q := range b.ps {
		x := xf(b.xs[i])
		col := b.colour[i]
		line := draw.LineStyle{Color: col, Width: 1}
		c.StrokeLine2(line, x, yf(q.Min), x, yf(q.P50))
		c.StrokeLine2(line, x, yf(q.P95), x, yf(q.P99))
		c.StrokeLine2(line, x-b.width/4, yf(q.Min), x+b.width/4, yf(q.Min))
		c.StrokeLine2(line, x-b.width/4, yf(q.P99), x+b.width/4, yf(q.P99))
		box := vg.Path{}
		box.Move(vg.Point{X: x - b.width/2, Y: yf(q.P50)})
		box.Line(vg.Point{X: x + b.width/2, Y: yf(q.P50)})
		box.Line(vg.Point{X: x + b.width/2, Y: yf(q.P95)})
		box.Line(vg.Point{X: x - b.width/2, Y: yf(q.P95)})
		box.Close()
		c.SetColor(withAlpha(col, 70))
		c.Fill(box)
		c.SetLineStyle(draw.LineStyle{Color: col, Width: 1})
		c.Stroke(box)
		c.StrokeLine2(draw.LineStyle{Color: col, Width: 2}, x-b.width/2, yf(q.P50), x+b.width/2, yf(q.P50))
		c.DrawGlyph(draw.GlyphStyle{Color: col, Radius: 1.8, Shape: draw.CircleGlyph{}}, vg.Point{X: x, Y: yf(q.Max)})
		c.DrawGlyph(draw.GlyphStyle{Color: color.Black, Radius: 2.5, Shape: diamond{}}, vg.Point{X: x, Y: yf(q.Mean)})
	}
}

func (b *percentileBoxes) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, xmax, ymin, ymax = b.xs[0], b.xs[0], b.ps[0].Min, b.ps[0].Max
	for i, q := range b.ps {
		xmin, xmax = min(xmin, b.xs[i]), max(xmax, b.xs[i])
		ymin, ymax = min(ymin, q.Min), max(ymax, q.Max)
	}
	return
}

// diamond is a filled diamond glyph (gonum/plot has squares, not diamonds).
type diamond struct{}

func (diamond) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetColor(sty.Color)
	r := sty.Radius * 1.3
	var p vg.Path
	p.Move(vg.Point{X: pt.X, Y: pt.Y + r})
	p.Line(vg.Point{X: pt.X + r, Y: pt.Y})
	p.Line(vg.Point{X: pt.X, Y: pt.Y - r})
	p.Line(vg.Point{X: pt.X - r, Y: pt.Y})
	p.Close()
	c.Fill(p)
}

// Latency draws TTFT and ITL per configuration side by side, from the
// per-cycle percentiles averaged over valid cycles.
func Latency(cs []Config, g Grouping) *Figure {
	f := &Figure{Name: "latency", Title: "Latency distributions",
		Caption: "Per configuration: box from p50 to p95 (thick line at p50), whiskers from the minimum to p99, dot at the maximum, diamond at the mean; each percentile is the mean of the cycles' percentiles."}
	_, series := groups(cs)
	var panels []*plot.Plot
	for _, m := range []struct {
		label string
		get   func(Config) Percentiles
	}{{"time to first token (ms)", func(c Config) Percentiles { return c.TTFT }}, {"inter-token latency (ms)", func(c Config) Percentiles { return c.ITL }}} {
		p := newPlot("configuration", m.label)
		var ids []string
		b := &percentileBoxes{}
		for _, c := range cs {
			q := m.get(c)
			if q.N == 0 {
				continue
			}
			b.xs = append(b.xs, float64(len(ids)))
			ids = append(ids, c.ID)
			b.ps = append(b.ps, q)
			b.colour = append(b.colour, Colour(indexOf(series, c.Series)))
		}
		if len(ids) == 0 {
			continue
		}
		f.Points += len(ids)
		b.width = vg.Length(min(18.0, 180.0/float64(len(ids))*0.6))
		p.Add(b)
		nominal(&p.X, ids)
		p.Y.Min = 0
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil
	}
	if len(series) > 1 {
		for j, s := range series {
			f.addLegend(seriesName(g, s), legendSwatch{Colour(j)})
		}
	}
	f.plots = panels
	f.layout = func(c draw.Canvas) []draw.Canvas {
		rest := f.legendStrip(c)
		cs := plot.Align([][]*plot.Plot{panels}, draw.Tiles{Rows: 1, Cols: len(panels), PadX: 18}, rest)
		return cs[0]
	}
	return f
}

// legendSwatch is a filled square thumbnail in col.
type legendSwatch struct{ c color.Color }

func (s legendSwatch) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	h := (r.Max.Y - r.Min.Y) * 0.8
	var p vg.Path
	mid := (r.Min.Y + r.Max.Y) / 2
	p.Move(vg.Point{X: r.Min.X, Y: mid - h/2})
	p.Line(vg.Point{X: r.Min.X + h*1.6, Y: mid - h/2})
	p.Line(vg.Point{X: r.Min.X + h*1.6, Y: mid + h/2})
	p.Line(vg.Point{X: r.Min.X, Y: mid + h/2})
	p.Close()
	c.SetColor(s.c)
	c.Fill(p)
}
