// Package figure draws llem's result figures with gonum.org/v1/plot: the
// power timeline of a measured window, energy per output token with its
// confidence interval, the prefill/decode energy split, the throughput vs
// energy Pareto frontier, latency distributions and cycle-to-cycle values.
//
// It takes plain data (this package's input types) and returns Figures; it
// reads no files. A Figure renders to SVG (for the HTML report, and with the
// fonts embedded for a standalone file) and PNG at print size, and Check
// reports what would make it misleading or unreadable: no data points,
// NaN/infinite axes, overlapping tick or point labels.
//
// Text uses gonum/plot's embedded Liberation Sans (no system fonts needed);
// colours are the Okabe–Ito palette, which stays distinguishable with the
// common colour-vision deficiencies.
package figure

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/font/liberation"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/recorder"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Print sizes: a full text width of a single-column paper (6.5 in) and a
// height that keeps labels readable when scaled to a two-column width.
const (
	Width  = 6.5 * vg.Inch
	Height = 3.6 * vg.Inch
	// DPI of PNG output.
	DPI = 300
)

// Okabe–Ito (Okabe & Ito 2008, "Color Universal Design"), in the order
// series take them; yellow is last because it is faint on white.
var Palette = []color.Color{
	rgb(0x0072B2), // blue
	rgb(0xE69F00), // orange
	rgb(0x009E73), // bluish green
	rgb(0xD55E00), // vermillion
	rgb(0xCC79A7), // reddish purple
	rgb(0x56B4E9), // sky blue
	rgb(0x000000), // black
	rgb(0xF0E442), // yellow
}

func rgb(v uint32) color.RGBA {
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}
}

func withAlpha(c color.Color, a uint8) color.Color {
	r, g, b, _ := c.RGBA()
	// premultiplied for color.RGBA
	return color.RGBA{R: uint8(uint32(r>>8) * uint32(a) / 255), G: uint8(uint32(g>>8) * uint32(a) / 255), B: uint8(uint32(b>>8) * uint32(a) / 255), A: a}
}

// Colour returns series i's colour (the palette repeats after 8 series;
// shapes tell repeated colours apart).
func Colour(i int) color.Color { return Palette[i%len(Palette)] }

var shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}

// Shape returns series i's marker shape.
func Shape(i int) draw.GlyphDrawer { return shapes[(i/len(Palette)+i)%len(shapes)] }

// Sans is the typeface of every text in a figure: Liberation Sans,
// embedded in gonum/plot.
var Sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

func init() {
	// Liberation is gonum/plot's default collection; make sure it is in
	// the cache whatever the library's defaults become.
	font.DefaultCache.Add(liberation.Collection())
}

// A Figure is one drawing: one plot, or panels sharing an axis.
type Figure struct {
	// Name is the file stem when written to a directory.
	Name string
	// Title is a short heading; Caption says how to read it.
	Title, Caption string
	// Points is how many data points it shows.
	Points int
	Width  vg.Length
	Height vg.Length

	plots  []*plot.Plot
	legend []legendEntry
	// labels are point labels per plot, checked for overlaps.
	labels map[*plot.Plot][]*plotter.Labels
	// layout places the plots (and legend) on the canvas; nil is one plot
	// (with the legend, if any, in a strip above it).
	layout func(c draw.Canvas) []draw.Canvas
	// tidied is set once tidy has laid out the labels.
	tidied bool
}

// tidy keeps a figure readable however many configurations it shows (the
// H200 study of 2026-12-04 had 13, and its report 84 overlap warnings):
// x tick labels that would overlap are set vertical, and a point label
// that would cover one already placed is left out (the table beside the
// figure names every point). It runs once, before drawing or checking.
func (f *Figure) tidy() {
	if f.tidied {
		return
	}
	f.tidied = true
	w, h := f.size()
	cs := f.canvases(draw.NewCanvas(&recorder.Canvas{}, w, h))
	for i, p := range f.plots {
		if bad(p.X.Min) || bad(p.X.Max) || bad(p.Y.Min) || bad(p.Y.Max) {
			continue
		}
		data := p.DataCanvas(cs[i])
		xf, _ := p.Transforms(&data)
		if len(tickOverlaps(i, "x", &p.X, xf, true)) > 0 {
			p.X.Tick.Label.Rotation = math.Pi / 2
			p.X.Tick.Label.XAlign = draw.XRight
			p.X.Tick.Label.YAlign = draw.YCenter
			data = p.DataCanvas(cs[i]) // the axis is taller now
		}
		f.dropCoveredLabels(p, data)
	}
}

// dropCoveredLabels blanks each point label whose box intersects the box
// of a label kept before it, in the order the labels were added.
func (f *Figure) dropCoveredLabels(p *plot.Plot, data draw.Canvas) {
	var kept []vg.Rectangle
	for _, l := range f.labels[p] {
		for i, gb := range l.GlyphBoxes(p) {
			if l.Labels[i] == "" {
				continue
			}
			// GlyphBox X and Y are normalised axis positions (0..1).
			r := gb.Rectangle.Add(vg.Point{X: data.X(gb.X), Y: data.Y(gb.Y)})
			covered := false
			for _, k := range kept {
				if r.Min.X < k.Max.X && k.Min.X < r.Max.X && r.Min.Y < k.Max.Y && k.Min.Y < r.Max.Y {
					covered = true
					break
				}
			}
			if covered {
				l.Labels[i] = ""
				continue
			}
			kept = append(kept, r)
		}
	}
}

func (f *Figure) canvases(c draw.Canvas) []draw.Canvas {
	if f.layout != nil {
		return f.layout(c)
	}
	return []draw.Canvas{f.legendStrip(c)}
}

// legendStrip draws the legend in a strip at the top of c, in as many
// columns as fit, and returns the rest; the legend never covers data.
func (f *Figure) legendStrip(c draw.Canvas) draw.Canvas {
	if len(f.legend) == 0 {
		return c
	}
	style := legendStyle()
	var widest vg.Length
	for _, e := range f.legend {
		widest = max(widest, style.Width(e.name))
	}
	thumb := 0.25 * vg.Inch
	colW := thumb + widest + 14
	W := c.Max.X - c.Min.X
	cols := max(1, min(len(f.legend), int(W/colW)))
	rows := (len(f.legend) + cols - 1) / cols
	var ls []plot.Legend
	var h vg.Length
	for col := range cols {
		l := plot.NewLegend()
		l.TextStyle = style
		l.ThumbnailWidth = thumb
		l.Top, l.Left = true, true
		l.XOffs = vg.Length(col) * colW
		for i := col * rows; i < min(len(f.legend), (col+1)*rows); i++ {
			l.Add(f.legend[i].name, f.legend[i].thumbs...)
		}
		r := l.Rectangle(c)
		h = max(h, r.Max.Y-r.Min.Y)
		ls = append(ls, l)
	}
	h += 6
	strip := draw.Crop(c, 0, 0, c.Max.Y-c.Min.Y-h, 0)
	for _, l := range ls {
		l.Draw(strip)
	}
	return draw.Crop(c, 0, 0, 0, -h)
}

type legendEntry struct {
	name   string
	thumbs []plot.Thumbnailer
}

func legendStyle() text.Style {
	s := plot.NewLegend().TextStyle
	s.Font = Sans
	s.Font.Size = 9
	return s
}

func (f *Figure) addLegend(name string, thumbs ...plot.Thumbnailer) {
	f.legend = append(f.legend, legendEntry{name, thumbs})
}

func (f *Figure) draw(c draw.Canvas) {
	f.tidy()
	for i, dc := range f.canvases(c) {
		f.plots[i].Draw(dc)
	}
}

func (f *Figure) size() (vg.Length, vg.Length) {
	w, h := f.Width, f.Height
	if w == 0 {
		w = Width
	}
	if h == 0 {
		h = Height
	}
	return w, h
}

// SVG renders the figure. With embedFonts the SVG carries its font (about
// 400 KB) and displays the same anywhere; without, it names "Liberation
// Sans" and the page that shows it supplies the font (the HTML report does,
// once for all figures).
func (f *Figure) SVG(embedFonts bool) ([]byte, error) {
	w, h := f.size()
	c := vgsvg.NewWith(vgsvg.UseWH(w, h), vgsvg.EmbedFonts(embedFonts))
	f.draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("render %s as SVG: %w", f.Name, err)
	}
	return buf.Bytes(), nil
}

// PNG renders the figure at print size and DPI.
func (f *Figure) PNG() ([]byte, error) {
	w, h := f.size()
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI), vgimg.UseBackgroundColor(color.White))
	f.draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("render %s as PNG: %w", f.Name, err)
	}
	return buf.Bytes(), nil
}

// Check returns what is wrong with the figure: no data points, an axis with
// a NaN or infinite end, tick labels along an axis that overlap, or point
// labels that overlap each other, as laid out by gonum/plot at print size.
func (f *Figure) Check() []string {
	var problems []string
	if f.Points == 0 {
		problems = append(problems, "no data points")
	}
	f.tidy()
	w, h := f.size()
	cs := f.canvases(draw.NewCanvas(&recorder.Canvas{}, w, h))
	for i, p := range f.plots {
		for _, ax := range []struct {
			name string
			a    *plot.Axis
		}{{"x", &p.X}, {"y", &p.Y}} {
			if bad(ax.a.Min) || bad(ax.a.Max) {
				problems = append(problems, fmt.Sprintf("panel %d: %s axis range [%v, %v] is not finite", i, ax.name, ax.a.Min, ax.a.Max))
			}
		}
		if len(problems) > 0 {
			continue
		}
		dc := cs[i]
		data := p.DataCanvas(dc)
		xf, yf := p.Transforms(&data)
		problems = append(problems, tickOverlaps(i, "x", &p.X, xf, true)...)
		problems = append(problems, tickOverlaps(i, "y", &p.Y, yf, false)...)
		problems = append(problems, f.labelOverlaps(i, p, data)...)
	}
	return problems
}

func bad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

type span struct {
	lo, hi vg.Length
	label  string
}

// tickOverlaps finds adjacent tick labels along an axis whose extents
// (width along x, height along y, after rotation) intersect.
func tickOverlaps(panel int, name string, a *plot.Axis, tf func(float64) vg.Length, horizontal bool) []string {
	var spans []span
	for _, t := range a.Tick.Marker.Ticks(a.Min, a.Max) {
		if t.Label == "" || t.Value < a.Min || t.Value > a.Max {
			continue
		}
		r := a.Tick.Label.Rectangle(t.Label)
		ext := r.Max.Y - r.Min.Y
		if horizontal {
			ext = r.Max.X - r.Min.X
		}
		c := tf(t.Value)
		spans = append(spans, span{c - ext/2, c + ext/2, t.Label})
	}
	var out []string
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if a.lo > b.lo {
			a, b = b, a
		}
		if a.hi > b.lo {
			out = append(out, fmt.Sprintf("panel %d: %s tick labels %q and %q overlap", panel, name, a.label, b.label))
		}
	}
	return out
}

// labelOverlaps checks the text boxes of plotter.Labels, as the library
// reports them through GlyphBoxes.
func (f *Figure) labelOverlaps(panel int, p *plot.Plot, data draw.Canvas) []string {
	var boxes []vg.Rectangle
	var names []string
	for _, l := range f.labels[p] {
		for i, gb := range l.GlyphBoxes(p) {
			if l.Labels[i] == "" { // left out by tidy
				continue
			}
			// GlyphBox X and Y are normalised axis positions (0..1), not
			// data values: plotter.Labels.GlyphBoxes uses Axis.Norm.
			x, y := data.X(gb.X), data.Y(gb.Y)
			boxes = append(boxes, gb.Rectangle.Add(vg.Point{X: x, Y: y}))
			names = append(names, l.Labels[i])
		}
	}
	var out []string
	for i := range boxes {
		for j := i + 1; j < len(boxes); j++ {
			a, b := boxes[i], boxes[j]
			if a.Min.X < b.Max.X && b.Min.X < a.Max.X && a.Min.Y < b.Max.Y && b.Min.Y < a.Max.Y {
				out = append(out, fmt.Sprintf("panel %d: point labels %q and %q overlap", panel, names[i], names[j]))
			}
		}
	}
	return out
}

// newPlot returns a plot styled for print: Liberation Sans, axis labels
// with units, light grid.
func newPlot(xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	set := func(s *font.Font, size vg.Length) { *s = Sans; s.Size = size }
	set(&p.Title.TextStyle.Font, 11)
	set(&p.X.Label.TextStyle.Font, 10)
	set(&p.Y.Label.TextStyle.Font, 10)
	set(&p.X.Tick.Label.Font, 9)
	set(&p.Y.Tick.Label.Font, 9)
	set(&p.Legend.TextStyle.Font, 9)
	p.X.Label.Text, p.Y.Label.Text = xlabel, ylabel
	p.X.Label.Padding, p.Y.Label.Padding = 4, 4
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	g.Vertical.Width, g.Horizontal.Width = 0.5, 0.5
	p.Add(g)
	return p
}

// nominal labels a category axis with names at 0..n-1 and widens it by half
// a category on each side.
func nominal(a *plot.Axis, names []string) {
	var ticks []plot.Tick
	for i, n := range names {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: n})
	}
	a.Tick.Marker = plot.ConstantTicks(ticks)
	a.Min, a.Max = -0.5, float64(len(names))-0.5
	a.Tick.Width = 0
	a.Tick.Length = 0
	a.Padding = 0
}

// shorten cuts s to n runes with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// FontTTF returns the TrueType data of Sans at its regular weight, for a
// page that shows SVGs rendered without embedded fonts.
func FontTTF() ([]byte, error) {
	face := font.DefaultCache.Lookup(Sans, 10)
	var buf bytes.Buffer
	if _, err := face.Face.WriteSourceTo(nil, &buf); err != nil {
		return nil, fmt.Errorf("read font %s: %w", face.Name(), err)
	}
	return buf.Bytes(), nil
}
