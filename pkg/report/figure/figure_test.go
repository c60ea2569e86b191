package figure

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func est(m, w float64) Estimate {
	return Estimate{Mean: m, Lo: m - w, Hi: m + w, HasCI: true, OK: true}
}

// configs is a 2×2 grid: batch size on the axis, precision as colour.
func configs() []Config {
	var cs []Config
	i := 0
	for _, prec := range []string{"fp32", "bf16"} {
		for _, bs := range []int{1, 8} {
			i++
			e := 0.08 / float64(bs) * map[string]float64{"fp32": 1, "bf16": 0.6}[prec]
			c := Config{ID: fmt.Sprintf("C%d", i), Label: fmt.Sprintf("native / llama / %s / bs %d", prec, bs),
				Category: fmt.Sprint(bs), Series: prec,
				EnergyPerToken: est(e, e*0.08), Throughput: est(200*float64(bs)/map[string]float64{"fp32": 1, "bf16": 0.7}[prec], 20),
				PrefillJ: est(3*e*100, 1), DecodeJ: est(7*e*100, 1), TotalJ: est(11*e*100, 1),
				TTFT:   Percentiles{N: 10, Min: 10, P50: 15, P90: 20, P95: 22, P99: 25, Max: 30, Mean: 16},
				ITL:    Percentiles{N: 100, Min: 2, P50: 3, P90: 3.5, P95: 4, P99: 5, Max: 7, Mean: 3.2},
				Cycles: []int{1, 2, 3, 4, 5}, SteadyAt: 4}
			for k := range 5 {
				c.CycleEnergyPerToken = append(c.CycleEnergyPerToken, e*(1+0.2/float64(k+1)))
			}
			cs = append(cs, c)
		}
	}
	return cs
}

func timeline() Timeline {
	tl := Timeline{Name: "timeline-run-c1", Title: "C1 cycle 1", WindowS: 10, BaselineW: 60, MeanW: 240, MeanMethod: "counter"}
	for d := range 2 {
		tr := Trace{Name: fmt.Sprintf("GPU %d", d)}
		for i := -1; i <= 101; i++ {
			t := float64(i) * 0.1
			pw := 250 + 30*math.Sin(t*3) + float64(d)*20
			if t < 1 {
				pw = 320
			}
			tr.T = append(tr.T, t)
			tr.PowerW = append(tr.PowerW, pw)
			tr.TempC = append(tr.TempC, 50+t+float64(d))
			tr.Throttle = append(tr.Throttle, t > 6 && t < 6.5)
		}
		tl.Channels = append(tl.Channels, tr)
	}
	tl.Phases = []Span{{"prefill", 0, 1}, {"decode", 1, 4.8}, {"prefill", 5, 5.6}, {"decode", 5.6, 9.9}}
	return tl
}

func all(t *testing.T) []*Figure {
	cs := configs()
	g := Grouping{Category: "batch size", Series: "precision"}
	figs := []*Figure{PowerTimeline(timeline()), EnergyPerToken(cs, g, 0.95), PhaseSplit(cs), Tradeoff(cs, g), Latency(cs, g), Cycles(cs, 0.05, 3), frontier()}
	for i, f := range figs {
		if f == nil {
			t.Fatalf("figure %d is nil", i)
		}
	}
	return figs
}

// TestFigures renders every figure as SVG and PNG and checks it. With
// LLEM_FIGURE_DIR set, the PNGs are written there to look at.
func TestFigures(t *testing.T) {
	out := os.Getenv("LLEM_FIGURE_DIR")
	for _, f := range all(t) {
		t.Run(f.Name, func(t *testing.T) {
			if p := f.Check(); len(p) > 0 {
				t.Errorf("check: %v", p)
			}
			svg, err := f.SVG(false)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(svg, []byte("NaN")) || !bytes.Contains(svg, []byte("Liberation Sans")) {
				t.Errorf("SVG has NaN or lacks the font name")
			}
			emb, err := f.SVG(true)
			if err != nil || !bytes.Contains(emb, []byte("@font-face")) {
				t.Errorf("embedded-font SVG: %v", err)
			}
			png, err := f.PNG()
			if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
				t.Fatalf("png: %v", err)
			}
			if out != "" {
				os.WriteFile(filepath.Join(out, f.Name+".png"), png, 0o644)
			}
		})
	}
}

func TestCheckFindsProblems(t *testing.T) {
	// Labels of points on top of each other overlap (tidy bypassed, so
	// the check itself is tested).
	cs := configs()
	for i := range cs {
		cs[i].Throughput, cs[i].EnergyPerToken = est(100, 1), est(0.05, 0.001)
	}
	f := Tradeoff(cs, Grouping{})
	f.tidied = true
	if p := f.Check(); !strings.Contains(strings.Join(p, ";"), "overlap") {
		t.Errorf("coincident point labels: want an overlap problem, got %v", p)
	}
	// Many long category names overlap on the axis.
	cs = nil
	for i := range 30 {
		cs = append(cs, Config{ID: fmt.Sprintf("configuration-%02d", i), EnergyPerToken: est(1, 0.1)})
	}
	f = EnergyPerToken(cs, Grouping{}, 0.95)
	f.tidied = true
	if p := f.Check(); !strings.Contains(strings.Join(p, ";"), "tick labels") {
		t.Errorf("crowded axis: want a tick overlap problem, got %v", p)
	}
	// No data, NaN axis.
	f = EnergyPerToken([]Config{{ID: "C1"}}, Grouping{}, 0.95)
	f.plots[0].Y.Max = math.NaN()
	p := strings.Join(f.Check(), ";")
	if !strings.Contains(p, "no data points") || !strings.Contains(p, "not finite") {
		t.Errorf("empty figure with NaN axis: got %v", p)
	}
	if PowerTimeline(Timeline{Name: "x", WindowS: 1}) != nil {
		t.Error("a timeline without samples should be nil")
	}
}

// frontier is a quality-vs-energy Pareto figure with every status.
func frontier() *Figure {
	return Frontier([]FrontierPoint{
		{ID: "C1", Series: "a", X: est(0.80, 0.02), Y: est(2.0, 0.1), Status: StatusFrontier},
		{ID: "C2", Series: "a", X: est(0.60, 0.02), Y: est(0.5, 0.05), Status: StatusFrontier},
		{ID: "C3", Series: "b", X: est(0.70, 0.02), Y: est(2.5, 0.1), Status: StatusDominated},
		{ID: "C4", Series: "b", X: est(0.59, 0.03), Y: est(0.55, 0.08), Status: StatusPossiblyDominated},
	}, FrontierAxes{Name: "pareto", Title: "Pareto", XLabel: "quality (score)", YLabel: "J/token", Grouping: Grouping{Series: "study"}})
}

// The frontier figure draws a legend entry for each status it shows and
// nothing for an empty input.
func TestFrontierFigure(t *testing.T) {
	f := frontier()
	if f.Points != 4 {
		t.Errorf("points = %d", f.Points)
	}
	var names []string
	for _, l := range f.legend {
		names = append(names, l.name)
	}
	if got := strings.Join(names, ","); got != "study a,study b,Pareto frontier,possibly dominated (means only)" {
		t.Errorf("legend = %s", got)
	}
	if Frontier(nil, FrontierAxes{Name: "x"}) != nil {
		t.Error("an empty frontier should be nil")
	}
	// One point, no intervals, zero x: the axes stay finite.
	one := Frontier([]FrontierPoint{{ID: "C1", X: Estimate{OK: true}, Y: Estimate{Mean: 1, OK: true}, Status: StatusFrontier}}, FrontierAxes{Name: "one"})
	if p := one.Check(); len(p) > 0 {
		t.Errorf("single point: %v", p)
	}
}

// TestTidy: what the check finds above, tidy fixes — coincident points keep
// one label (a frontier point's first), crowded category names turn
// vertical — so a figure of many configurations draws without overlaps.
func TestTidy(t *testing.T) {
	cs := configs()
	for i := range cs {
		cs[i].Throughput, cs[i].EnergyPerToken = est(100, 1), est(0.05, 0.001)
	}
	f := Tradeoff(cs, Grouping{})
	if p := f.Check(); len(p) != 0 {
		t.Errorf("coincident points after tidy: %v", p)
	}
	kept := 0
	for _, ls := range f.labels {
		for _, l := range ls {
			for _, s := range l.Labels {
				if s != "" {
					kept++
				}
			}
		}
	}
	if kept != 1 {
		t.Errorf("%d labels kept on coincident points, want 1", kept)
	}
	cs = nil
	for i := range 30 {
		cs = append(cs, Config{ID: fmt.Sprintf("configuration-%02d", i), EnergyPerToken: est(1, 0.1)})
	}
	f = EnergyPerToken(cs, Grouping{}, 0.95)
	if p := f.Check(); len(p) != 0 || f.plots[0].X.Tick.Label.Rotation == 0 {
		t.Errorf("crowded axis after tidy: %v, rotation %v", p, f.plots[0].X.Tick.Label.Rotation)
	}
	if _, err := f.PNG(); err != nil {
		t.Fatal(err)
	}
}
