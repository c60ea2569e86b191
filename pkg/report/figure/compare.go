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

// MaxSeriesLines bounds the configurations drawn as separate lines in the
// cycle figure; the rest are left out (and the caption says so).
const MaxSeriesLines = 16

// groups returns the distinct categories and series of cs in order of
// first appearance.
func groups(cs []Config) (cats, series []string) {
	seenC, seenS := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		if k := category(c); !seenC[k] {
			seenC[k] = true
			cats = append(cats, k)
		}
		if !seenS[c.Series] {
			seenS[c.Series] = true
			series = append(series, c.Series)
		}
	}
	return cats, series
}

func category(c Config) string {
	if c.Category == "" {
		return c.ID
	}
	return c.Category
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

func seriesName(g Grouping, s string) string {
	if g.Series == "" {
		return s
	}
	return g.Series + " " + s
}

// EnergyPerToken draws each configuration's mean J per output token with
// its CI as whiskers, categories on the axis and series as colours.
func EnergyPerToken(cs []Config, g Grouping, level float64) *Figure {
	xlabel := g.Category
	if xlabel == "" {
		xlabel = "configuration"
	}
	p := newPlot(xlabel, "energy per output token (J)")
	f := &Figure{Name: "energy-per-token", Title: "Energy per output token",
		Caption: fmt.Sprintf("Mean over valid cycles; whiskers are the %.0f%% bootstrap confidence interval (BCa where defined).", level*100),
		plots:   []*plot.Plot{p}}
	cats, series := groups(cs)
	nominal(&p.X, cats)
	p.Y.Min = 0
	width := 0.7
	for j, s := range series {
		var xys plotter.XYs
		var errs plotter.YErrors
		for _, c := range cs {
			if c.Series != s || !c.EnergyPerToken.OK {
				continue
			}
			x := float64(indexOf(cats, category(c)))
			if len(series) > 1 {
				x += (float64(j)+0.5)/float64(len(series))*width - width/2
			}
			e := c.EnergyPerToken
			xys = append(xys, plotter.XY{X: x, Y: e.Mean})
			lo, hi := 0.0, 0.0
			if e.HasCI {
				lo, hi = e.Mean-e.Lo, e.Hi-e.Mean
			}
			errs = append(errs, struct{ Low, High float64 }{lo, hi})
		}
		if len(xys) == 0 {
			continue
		}
		f.Points += len(xys)
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			continue
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: Colour(j), Radius: 3.5, Shape: Shape(j)}
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{xys, errs})
		if err == nil {
			eb.Color = Colour(j)
			eb.Width = 1.2
			eb.CapWidth = 6
			p.Add(eb)
		}
		p.Add(sc)
		if len(series) > 1 || s != "" {
			f.addLegend(seriesName(g, s), sc)
		}
	}
	return f
}

// PhaseSplit draws each configuration's window energy as stacked bars:
// prefill, decode, and the rest of the window (between phases).
func PhaseSplit(cs []Config) *Figure {
	p := newPlot("configuration", "energy per measured window (J)")
	f := &Figure{Name: "phase-split", Title: "Prefill vs decode energy",
		Caption: "Mean energy of one measured window split by worker phase; 'between phases' is window energy outside every prefill and decode interval.",
		plots:   []*plot.Plot{p}}
	var ids []string
	var pre, dec, other plotter.Values
	for _, c := range cs {
		if !c.PrefillJ.OK || !c.DecodeJ.OK {
			continue
		}
		ids = append(ids, c.ID)
		pre = append(pre, c.PrefillJ.Mean)
		dec = append(dec, c.DecodeJ.Mean)
		o := 0.0
		if c.TotalJ.OK {
			o = max(0, c.TotalJ.Mean-c.PrefillJ.Mean-c.DecodeJ.Mean)
		}
		other = append(other, o)
	}
	if len(ids) == 0 {
		return nil
	}
	f.Points = len(ids)
	nominal(&p.X, ids)
	p.Y.Min = 0
	w := vg.Length(min(32.0, 380.0/float64(len(ids))*0.6))
	var below *plotter.BarChart
	for _, s := range []struct {
		name string
		v    plotter.Values
		col  color.Color
	}{{"prefill", pre, rgb(0x56B4E9)}, {"decode", dec, rgb(0xE69F00)}, {"between phases", other, color.Gray{Y: 170}}} {
		if s.name == "between phases" && sum(s.v) <= 0.005*(sum(pre)+sum(dec)) {
			continue
		}
		b, err := plotter.NewBarChart(s.v, w)
		if err != nil {
			continue
		}
		b.Color = s.col
		b.LineStyle.Width = 0.5
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		f.addLegend(s.name, b)
	}
	return f
}

func sum(v plotter.Values) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

// Tradeoff draws output throughput against J per output token, each with
// its CI, and the Pareto frontier: the configurations no other beats on
// both (more tokens/s for fewer J/token).
func Tradeoff(cs []Config, g Grouping) *Figure {
	return tradeoff(cs, g, "tradeoff", "Throughput vs energy per token", "output throughput (tokens/s)",
		func(c Config) Estimate { return c.Throughput })
}

// QualityEnergy draws task quality against J per output token with the
// Pareto frontier; nil when no configuration has a quality score.
func QualityEnergy(cs []Config, g Grouping) *Figure {
	for _, c := range cs {
		if c.Quality.OK {
			return tradeoff(cs, g, "quality-energy", "Quality vs energy per token", "quality score", func(c Config) Estimate { return c.Quality })
		}
	}
	return nil
}

func tradeoff(cs []Config, g Grouping, name, title, xlabel string, get func(Config) Estimate) *Figure {
	var pts []FrontierPoint
	for _, c := range cs {
		if x, y := get(c), c.EnergyPerToken; x.OK && y.OK {
			pts = append(pts, FrontierPoint{ID: c.ID, Series: c.Series, X: x, Y: y})
		}
	}
	// Frontier on means: walk from the highest x down, keeping each point
	// with a lower y than all seen.
	order := make([]int, len(pts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return pts[order[i]].X.Mean > pts[order[j]].X.Mean })
	best := 0.0
	for k, i := range order {
		if k == 0 || pts[i].Y.Mean < best {
			pts[i].Status = StatusFrontier
			best = pts[i].Y.Mean
		}
	}
	return Frontier(pts, FrontierAxes{Name: name, Title: title, XLabel: xlabel, YLabel: "energy per output token (J)", Grouping: g,
		Caption: "Each point is a configuration (mean, whiskers the confidence intervals); the line joins the Pareto-optimal ones: no other configuration has both a higher x and a lower energy per token."})
}

// Frontier statuses of a FrontierPoint (pkg/pareto's names).
const (
	StatusFrontier          = "frontier"
	StatusPossiblyDominated = "possibly_dominated"
	StatusDominated         = "dominated"
)

// FrontierPoint is one configuration of a Pareto figure: two estimates
// and its status as the caller classified it (StatusFrontier, …).
type FrontierPoint struct {
	ID, Series string
	X, Y       Estimate
	Status     string
}

// FrontierAxes names a Pareto figure and its axes.
type FrontierAxes struct {
	Name, Title, Caption string
	XLabel, YLabel       string
	Grouping             Grouping
}

// Frontier draws configurations on two metrics with their CIs as
// whiskers, coloured by series and labelled by ID; a dashed line and
// rings join the frontier points (in x order), and grey squares mark the
// "possibly dominated" ones (dominated on means only). Dominated points
// are plain. nil when there is no point.
func Frontier(pts []FrontierPoint, ax FrontierAxes) *Figure {
	p := newPlot(ax.XLabel, ax.YLabel)
	f := &Figure{Name: ax.Name, Title: ax.Title, Caption: ax.Caption,
		plots: []*plot.Plot{p}, labels: map[*plot.Plot][]*plotter.Labels{}}
	if len(pts) == 0 {
		return nil
	}
	var series []string
	seen := map[string]bool{}
	for _, q := range pts {
		if !seen[q.Series] {
			seen[q.Series] = true
			series = append(series, q.Series)
		}
	}
	for j, s := range series {
		var xys plotter.XYs
		var xe plotter.XErrors
		var ye plotter.YErrors
		for _, q := range pts {
			if q.Series != s {
				continue
			}
			xys = append(xys, plotter.XY{X: q.X.Mean, Y: q.Y.Mean})
			xe = append(xe, ciErr(q.X))
			ye = append(ye, ciErr(q.Y))
		}
		if eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{xys, ye}); err == nil {
			eb.Color, eb.Width, eb.CapWidth = withAlpha(Colour(j), 160), 0.8, 4
			p.Add(eb)
		}
		if eb, err := plotter.NewXErrorBars(struct {
			plotter.XYs
			plotter.XErrors
		}{xys, xe}); err == nil {
			eb.Color, eb.Width, eb.CapWidth = withAlpha(Colour(j), 160), 0.8, 4
			p.Add(eb)
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			continue
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: Colour(j), Radius: 3.5, Shape: Shape(j)}
		p.Add(sc)
		if len(series) > 1 || s != "" {
			f.addLegend(seriesName(ax.Grouping, s), sc)
		}
	}
	f.Points = len(pts)
	var front, possibly plotter.XYs
	for _, q := range pts {
		switch q.Status {
		case StatusFrontier:
			front = append(front, plotter.XY{X: q.X.Mean, Y: q.Y.Mean})
		case StatusPossiblyDominated:
			possibly = append(possibly, plotter.XY{X: q.X.Mean, Y: q.Y.Mean})
		}
	}
	sort.SliceStable(front, func(i, j int) bool { return front[i].X < front[j].X })
	var thumbs []plot.Thumbnailer
	if len(front) > 1 {
		if l, err := plotter.NewLine(front); err == nil {
			l.Color = color.Black
			l.Width = 1
			l.Dashes = []vg.Length{4, 2}
			p.Add(l)
			thumbs = append(thumbs, l)
		}
	}
	if len(front) > 0 {
		if s, err := plotter.NewScatter(front); err == nil {
			s.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: 6.5, Shape: draw.RingGlyph{}}
			p.Add(s)
			thumbs = append(thumbs, s)
		}
		f.addLegend("Pareto frontier", thumbs...)
	}
	if len(possibly) > 0 {
		if s, err := plotter.NewScatter(possibly); err == nil {
			s.GlyphStyle = draw.GlyphStyle{Color: color.Gray{Y: 110}, Radius: 6, Shape: draw.SquareGlyph{}}
			p.Add(s)
			f.addLegend("possibly dominated (means only)", s)
		}
	}
	// Frontier points are labelled first: where labels would cover one
	// another, tidy keeps the earlier ones.
	var lab plotter.XYLabels
	for _, front := range []bool{true, false} {
		for _, q := range pts {
			if (q.Status == StatusFrontier) == front {
				lab.XYs = append(lab.XYs, plotter.XY{X: q.X.Mean, Y: q.Y.Mean})
				lab.Labels = append(lab.Labels, q.ID)
			}
		}
	}
	if l, err := plotter.NewLabels(lab); err == nil {
		for i := range l.TextStyle {
			l.TextStyle[i].Font = Sans
			l.TextStyle[i].Font.Size = 8
			l.TextStyle[i].XAlign = -0.0
		}
		l.Offset = vg.Point{X: 5, Y: 3}
		p.Add(l)
		f.labels[p] = append(f.labels[p], l)
	}
	// Room for the labels right of the last point; y from zero when every
	// value is positive (energy, quality).
	xmin, xmax := pts[0].X.Mean, pts[0].X.Mean
	ymin := pts[0].Y.Mean
	for _, q := range pts {
		xmin, xmax = min(xmin, q.X.Mean), max(xmax, q.X.Mean)
		if q.X.HasCI {
			xmin, xmax = min(xmin, q.X.Lo), max(xmax, q.X.Hi)
		}
		ymin = min(ymin, q.Y.Mean)
		if q.Y.HasCI {
			ymin = min(ymin, q.Y.Lo)
		}
	}
	pad := max((xmax-xmin)*0.08, math.Abs(xmax)*0.02)
	if pad == 0 {
		pad = 1
	}
	p.X.Min, p.X.Max = xmin-pad, xmax+pad
	if xmin >= 0 {
		p.X.Min = max(0, p.X.Min)
	}
	if ymin >= 0 {
		p.Y.Min = 0
	}
	return f
}

func ciErr(e Estimate) struct{ Low, High float64 } {
	if !e.HasCI {
		return struct{ Low, High float64 }{}
	}
	return struct{ Low, High float64 }{e.Mean - e.Lo, e.Hi - e.Mean}
}

// Cycles draws J per output token cycle by cycle for each configuration,
// with a ring where steady state was reached.
func Cycles(cs []Config, threshold float64, window int) *Figure {
	p := newPlot("cycle", "energy per output token (J)")
	f := &Figure{Name: "cycles", Title: "Cycle-to-cycle energy per output token",
		Caption: fmt.Sprintf("One point per valid cycle. A ring marks the cycle at which steady state was reached: the coefficient of variation over the last %d cycles fell below %.0f%%.", window, threshold*100),
		plots:   []*plot.Plot{p}}
	maxCycle := 1
	var rings plotter.XYs
	drawn := 0
	for i, c := range cs {
		if len(c.CycleEnergyPerToken) == 0 {
			continue
		}
		if drawn == MaxSeriesLines {
			f.Caption += fmt.Sprintf(" Only the first %d configurations are drawn.", MaxSeriesLines)
			break
		}
		drawn++
		var xys plotter.XYs
		for k, v := range c.CycleEnergyPerToken {
			xys = append(xys, plotter.XY{X: float64(c.Cycles[k]), Y: v})
			maxCycle = max(maxCycle, c.Cycles[k])
			if c.Cycles[k] == c.SteadyAt {
				rings = append(rings, plotter.XY{X: float64(c.Cycles[k]), Y: v})
			}
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			continue
		}
		f.Points += len(xys)
		l.Color, l.Width = Colour(i), 1.2
		s.GlyphStyle = draw.GlyphStyle{Color: Colour(i), Radius: 3, Shape: Shape(i)}
		p.Add(l, s)
		f.addLegend(c.ID, l, s)
	}
	if f.Points == 0 {
		return nil
	}
	if len(rings) > 0 {
		s, err := plotter.NewScatter(rings)
		if err == nil {
			s.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: 7, Shape: draw.RingGlyph{}}
			p.Add(s)
			f.addLegend("steady state reached", s)
		}
	}
	var ticks []plot.Tick
	step := max(1, maxCycle/12)
	for c := 1; c <= maxCycle; c += step {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min, p.X.Max = 0.5, float64(maxCycle)+0.5
	p.Y.Min = 0
	return f
}
