package pareto

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/stats"
)

var (
	throughput = Axis{Metric: "output_tokens_per_sec", Higher: true}
	jPerToken  = Axis{Metric: "energy_per_output_token_j", Higher: false}
	quality    = Axis{Metric: "quality", Higher: true}
)

// ci is an estimate over 5 cycles with an interval.
func ci(mean, lo, hi float64) Estimate {
	return Estimate{Mean: mean, Lo: lo, Hi: hi, HasCI: true, N: 5}
}

// once is an estimate from one cycle: no interval.
func once(mean float64) Estimate { return Estimate{Mean: mean, N: 1} }

func pt(id string, x, y Estimate) Point { return Point{ID: id, Label: id, X: x, Y: y} }

type verdict struct {
	Status   Status
	By       []string
	Possibly []string
	Tied     []string
}

func verdicts(es []Entry) map[string]verdict {
	out := map[string]verdict{}
	for _, e := range es {
		out[e.ID] = verdict{e.Status, e.DominatedBy, e.PossiblyDominatedBy, e.TiedWith}
	}
	return out
}

func v(s Status, by, possibly, tied []string) verdict {
	if by == nil {
		by = []string{}
	}
	if possibly == nil {
		possibly = []string{}
	}
	if tied == nil {
		tied = []string{}
	}
	return verdict{s, by, possibly, tied}
}

// Each case is worked out by hand from the rule in the package doc; the
// comments give the comparison that decides it.
func TestClassifyByHand(t *testing.T) {
	cases := []struct {
		name string
		x, y Axis
		pts  []Point
		want map[string]verdict
	}{{
		name: "clear frontier, a clear loser, a within-noise loser",
		x:    throughput, y: jPerToken,
		pts: []Point{
			pt("C1", ci(100, 95, 105), ci(1.0, 0.95, 1.05)),
			// C1: 100>50 (95>55 clear), 1.0<2.0 (1.05<1.9 clear). C3 and C4 too.
			pt("C2", ci(50, 45, 55), ci(2.0, 1.9, 2.1)),
			// Faster than C1, costlier per token: a trade-off, frontier.
			pt("C3", ci(150, 140, 160), ci(1.5, 1.4, 1.6)),
			// C1 has better means on both (100>98, 1.0<1.02) but both
			// intervals overlap: possibly dominated. C3 is worse on y.
			pt("C4", ci(98, 90, 106), ci(1.02, 0.9, 1.1)),
		},
		want: map[string]verdict{
			"C1": v(Frontier, nil, nil, nil),
			"C2": v(Dominated, []string{"C1", "C3", "C4"}, nil, nil),
			"C3": v(Frontier, nil, nil, nil),
			"C4": v(PossiblyDominated, nil, []string{"C1"}, nil),
		},
	}, {
		// B's x mean is higher within noise, its y is clearly lower: the
		// clear axis is enough, A is dominated.
		name: "one clear axis, the other better on means within noise",
		x:    throughput, y: jPerToken,
		pts: []Point{
			pt("A", ci(100, 90, 110), ci(1.0, 0.9, 1.1)),
			pt("B", ci(100.5, 91, 111), ci(0.5, 0.45, 0.55)),
		},
		want: map[string]verdict{"A": v(Dominated, []string{"B"}, nil, nil), "B": v(Frontier, nil, nil, nil)},
	}, {
		// B is clearly lower on y but its x mean is lower (within noise):
		// not dominance on means, both stay on the frontier.
		name: "clear on one axis, worse mean on the other",
		x:    throughput, y: jPerToken,
		pts: []Point{
			pt("A", ci(100, 90, 110), ci(1.0, 0.9, 1.1)),
			pt("B", ci(99, 89, 109), ci(0.5, 0.45, 0.55)),
		},
		want: map[string]verdict{"A": v(Frontier, nil, nil, nil), "B": v(Frontier, nil, nil, nil)},
	}, {
		name: "ties: equal means on both axes dominate nothing; a third is dominated by both",
		x:    throughput, y: jPerToken,
		pts: []Point{
			pt("A", ci(100, 90, 110), ci(1.0, 0.9, 1.1)),
			pt("B", ci(100, 80, 120), ci(1.0, 0.8, 1.2)),
			pt("C", ci(10, 9, 11), ci(5, 4.5, 5.5)),
		},
		want: map[string]verdict{
			"A": v(Frontier, nil, nil, []string{"B"}),
			"B": v(Frontier, nil, nil, []string{"A"}),
			"C": v(Dominated, []string{"A", "B"}, nil, nil),
		},
	}, {
		// Equal x, clearly lower y: dominance, not a tie.
		name: "equal on one axis, clearly better on the other",
		x:    throughput, y: jPerToken,
		pts: []Point{
			pt("A", ci(100, 90, 110), ci(1.0, 0.9, 1.1)),
			pt("B", ci(100, 90, 110), ci(0.5, 0.45, 0.55)),
		},
		want: map[string]verdict{"A": v(Dominated, []string{"B"}, nil, nil), "B": v(Frontier, nil, nil, nil)},
	}, {
		// One cycle each: no intervals, so however large the gap it is
		// only "possibly".
		name: "no intervals (one cycle)",
		x:    throughput, y: jPerToken,
		pts:  []Point{pt("A", once(10), once(9)), pt("B", once(1000), once(0.1))},
		want: map[string]verdict{"A": v(PossiblyDominated, nil, []string{"B"}, nil), "B": v(Frontier, nil, nil, nil)},
	}, {
		// Intervals on one side only: still no "by the CIs" claim.
		name: "interval on one side only",
		x:    throughput, y: jPerToken,
		pts:  []Point{pt("A", once(10), once(9)), pt("B", ci(1000, 990, 1010), ci(0.1, 0.09, 0.11))},
		want: map[string]verdict{"A": v(PossiblyDominated, nil, []string{"B"}, nil), "B": v(Frontier, nil, nil, nil)},
	}, {
		// B's lower x bound equals A's upper: the intervals touch, which
		// is overlap (stats.CI.Overlaps).
		name: "touching intervals overlap",
		x:    throughput, y: jPerToken,
		pts: []Point{
			pt("A", ci(100, 90, 110), ci(1.0, 0.9, 1.1)),
			pt("B", ci(120, 110, 130), ci(0.99, 0.9, 1.08)),
		},
		want: map[string]verdict{"A": v(PossiblyDominated, nil, []string{"B"}, nil), "B": v(Frontier, nil, nil, nil)},
	}, {
		// n ≥ 2 equal cycles give a zero-width interval, a real one: 11
		// against 10 does not overlap.
		name: "zero-width intervals are intervals",
		x:    throughput, y: jPerToken,
		pts: []Point{
			pt("A", ci(10, 10, 10), ci(1, 1, 1)),
			pt("B", ci(11, 11, 11), ci(1, 1, 1)),
		},
		want: map[string]verdict{"A": v(Dominated, []string{"B"}, nil, nil), "B": v(Frontier, nil, nil, nil)},
	}, {
		// Both axes lower-is-better (latency vs J/token): B is lower on
		// both, clearly on latency.
		name: "both axes lower is better",
		x:    Axis{Metric: "e2e_p95_ms"}, y: jPerToken,
		pts: []Point{
			pt("A", ci(200, 190, 210), ci(1.0, 0.9, 1.1)),
			pt("B", ci(100, 95, 105), ci(0.95, 0.85, 1.05)),
			pt("C", ci(50, 45, 55), ci(2, 1.9, 2.1)),
		},
		want: map[string]verdict{
			"A": v(Dominated, []string{"B"}, nil, nil),
			"B": v(Frontier, nil, nil, nil),
			"C": v(Frontier, nil, nil, nil),
		},
	}, {
		// Quality up, J/token down: the small model is cheaper but
		// clearly worse, the quantized one is cheaper at equal quality.
		name: "quality vs energy",
		x:    quality, y: jPerToken,
		pts: []Point{
			pt("big-fp16", ci(0.80, 0.78, 0.82), ci(2.0, 1.9, 2.1)),
			pt("big-int8", ci(0.795, 0.775, 0.815), ci(1.2, 1.1, 1.3)),
			pt("small", ci(0.60, 0.58, 0.62), ci(0.5, 0.45, 0.55)),
		},
		want: map[string]verdict{
			"big-fp16": v(Frontier, nil, nil, nil),
			"big-int8": v(Frontier, nil, nil, nil),
			"small":    v(Frontier, nil, nil, nil),
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := verdicts(Classify(c.pts, c.x, c.y))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// A swept frontier (sort by x best first, keep each point better on y
// than all before it) is an independent algorithm for the frontier on
// means; on distinct random points it must agree with Classify, and the
// statuses must be consistent with their dominator lists.
func TestClassifyAgreesWithSweep(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		n := 1 + rng.IntN(12)
		var pts []Point
		for i := range n {
			x, y := rng.Float64()*100, rng.Float64()*10
			wx, wy := rng.Float64()*20, rng.Float64()*2
			p := pt(string(rune('A'+i)), ci(x, x-wx, x+wx), ci(y, y-wy, y+wy))
			if rng.IntN(5) == 0 {
				p.X = once(x)
			}
			pts = append(pts, p)
		}
		es := Classify(pts, throughput, jPerToken)
		sorted := slices.Clone(pts)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].X.Mean > sorted[j].X.Mean })
		sweep := map[string]bool{}
		for i, p := range sorted {
			if i == 0 || p.Y.Mean < bestY(sorted[:i]) {
				sweep[p.ID] = true
			}
		}
		for _, e := range es {
			if (e.Status == Frontier) != sweep[e.ID] {
				t.Fatalf("trial %d: %s status %s, sweep says frontier=%v", trial, e.ID, e.Status, sweep[e.ID])
			}
			switch e.Status {
			case Dominated:
				if len(e.DominatedBy) == 0 {
					t.Fatalf("trial %d: %s dominated by nobody", trial, e.ID)
				}
			case PossiblyDominated:
				if len(e.DominatedBy) != 0 || len(e.PossiblyDominatedBy) == 0 {
					t.Fatalf("trial %d: %s possibly dominated with lists %v %v", trial, e.ID, e.DominatedBy, e.PossiblyDominatedBy)
				}
			}
			for _, id := range e.DominatedBy {
				var b Point
				for _, p := range pts {
					if p.ID == id {
						b = p
					}
				}
				if !b.X.HasCI && !b.Y.HasCI {
					t.Fatalf("trial %d: %s dominated by the CIs of %s, which has none", trial, e.ID, id)
				}
			}
		}
	}
}

func bestY(ps []Point) float64 {
	m := ps[0].Y.Mean
	for _, p := range ps {
		m = min(m, p.Y.Mean)
	}
	return m
}

func metric(name, unit string, mean, lo, hi float64, n int) stats.MetricStats {
	m := stats.MetricStats{Name: name, Unit: unit}
	m.N, m.Mean = n, mean
	m.CI = &stats.CI{Lower: lo, Upper: hi, Level: 0.95, Method: stats.MethodBCa}
	return m
}

func run(id, precision string, bs int, ms ...stats.MetricStats) stats.RunStats {
	cfg, _ := json.Marshal(map[string]any{"model": "m", "backend": "native", "precision": precision, "native": map[string]any{"batch_size": bs}})
	return stats.RunStats{RunID: id, Model: "m", Backend: "native", Precision: precision, Config: cfg, Cycles: 5, ValidCount: 5, Metrics: ms}
}

func summary(runs ...stats.RunStats) *stats.StudySummary {
	return &stats.StudySummary{Methodology: stats.Methodology{ConfidenceLevel: 0.95}, Runs: runs}
}

// Synthetic summaries carrying the quality metrics the summariser adds
// for scored runs (metric names "quality" and "quality_per_joule"), over
// two studies, one run of which was never scored.
func TestBuildSeveralStudiesWithQuality(t *testing.T) {
	a := summary(
		run("a1", "fp16", 1, metric("quality", "score", 0.80, 0.78, 0.82, 5), metric("energy_per_output_token_j", "J/token", 2.0, 1.9, 2.1, 5)),
		run("a2", "fp16", 8, metric("energy_per_output_token_j", "J/token", 0.5, 0.45, 0.55, 5)),
	)
	b := summary(
		run("b1", "int8", 1, metric("quality", "score", 0.70, 0.68, 0.72, 5), metric("energy_per_output_token_j", "J/token", 2.5, 2.4, 2.6, 5)),
		run("b2", "int8", 8, metric("quality", "score", 0.79, 0.77, 0.81, 5), metric("energy_per_output_token_j", "J/token", 1.0, 0.9, 1.1, 5)),
	)
	r, err := Build([]Study{{Name: "fp16", Dir: "/r/fp16", Summary: a}, {Name: "int8", Dir: "/r/int8", Summary: b}}, quality, jPerToken)
	if err != nil {
		t.Fatal(err)
	}
	if r.XUnit != "score" || r.YUnit != "J/token" || r.Level != 0.95 {
		t.Errorf("units/level: %q %q %v", r.XUnit, r.YUnit, r.Level)
	}
	// C1 = a1, C2 = a2 (left out), C3 = b1, C4 = b2.
	if len(r.Excluded) != 1 || r.Excluded[0].ID != "C2" || r.Excluded[0].Study != "fp16" ||
		r.Excluded[0].Reason != "no quality (run not scored for quality)" {
		t.Fatalf("excluded: %+v", r.Excluded)
	}
	if !strings.Contains(r.Excluded[0].Label, "batch_size=8") || !strings.Contains(r.Excluded[0].Label, "native / m / fp16") {
		t.Errorf("label %q lacks the varied parameters", r.Excluded[0].Label)
	}
	got := verdicts(r.Entries)
	want := map[string]verdict{
		// b2: 0.79 vs 0.80 quality (overlapping, lower mean) but half the
		// energy: a trade-off with a1, both on the frontier.
		"C1": v(Frontier, nil, nil, nil),
		// b1 loses to a1 (0.72<0.78 and 2.5>2.1: both clear) and to b2.
		"C3": v(Dominated, []string{"C1", "C4"}, nil, nil),
		"C4": v(Frontier, nil, nil, nil),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	var front []string
	for _, e := range r.Frontier() {
		front = append(front, e.ID)
	}
	if strings.Join(front, ",") != "C4,C1" {
		t.Errorf("frontier by x = %v, want C4,C1", front)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{
		"x: quality (score, higher is better)",
		"y: energy_per_output_token_j (J/token, lower is better)",
		"STUDY",
		"frontier (by x): C4, C1",
		"left out: C2 (fp16: native / m / fp16 batch_size=8): no quality (run not scored for quality)",
		"dominated  C1,C4",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("text lacks %q:\n%s", s, out)
		}
	}
	if _, err := Build([]Study{{Name: "a", Summary: a}}, quality, quality); err == nil {
		t.Error("the same metric on both axes was accepted")
	}
}

// A run with one valid cycle has an interval of method none in stats:
// EstimateOf must drop it; two equal cycles keep a zero-width interval.
func TestEstimateOf(t *testing.T) {
	one := stats.MetricStats{Name: "x"}
	one.N, one.Mean = 1, 3
	one.CI = &stats.CI{Lower: 3, Upper: 3, Method: stats.MethodNone}
	if e, ok := EstimateOf(&one); !ok || e.HasCI {
		t.Errorf("one cycle: %+v %v", e, ok)
	}
	two := one
	two.N = 2
	if e, ok := EstimateOf(&two); !ok || !e.HasCI || e.Lo != 3 || e.Hi != 3 {
		t.Errorf("two equal cycles: %+v %v", e, ok)
	}
	if _, ok := EstimateOf(nil); ok {
		t.Error("nil metric accepted")
	}
	zero := stats.MetricStats{}
	if _, ok := EstimateOf(&zero); ok {
		t.Error("metric without values accepted")
	}
}

func TestParseAxis(t *testing.T) {
	for in, want := range map[string]Axis{
		"quality":                   {"quality", true},
		"Score":                     {"quality", true},
		"qpj":                       {"quality_per_joule", true},
		"quality_per_joule":         {"quality_per_joule", true},
		"throughput":                {"output_tokens_per_sec", true},
		"j/token":                   {"energy_per_output_token_j", false},
		"energy_per_output_token_j": {"energy_per_output_token_j", false},
		"latency":                   {"e2e_p95_ms", false},
		"ttft_p99_ms":               {"ttft_p99_ms", false},
		"prefill_tokens_per_sec":    {"prefill_tokens_per_sec", true},
		"requests_per_sec":          {"requests_per_sec", true},
		"window_s":                  {"window_s", false},
		"throughput:min":            {"output_tokens_per_sec", false},
		"arc_easy_acc:max":          {"arc_easy_acc", true},
	} {
		got, err := ParseAxis(in)
		if err != nil || got != want {
			t.Errorf("ParseAxis(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "joules", "quality:up", ":max"} {
		if _, err := ParseAxis(bad); err == nil {
			t.Errorf("ParseAxis(%q) accepted", bad)
		}
	}
	_, err := ParseAxis("joules")
	if err == nil || !strings.Contains(err.Error(), "quality_per_joule (qpj") || !strings.Contains(err.Error(), "ttft_p99_ms") {
		t.Errorf("error does not list the accepted names: %v", err)
	}
}

// FuzzParseAxis: any input either fails or gives a metric that parses
// back to itself with its direction stated.
func FuzzParseAxis(f *testing.F) {
	for _, s := range []string{"quality", "throughput:min", "j/token", "x:max", ":", "a:b:max", "ENERGY"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAxis(s)
		if err != nil {
			return
		}
		if a.Metric == "" {
			t.Fatalf("%q gave an empty metric", s)
		}
		dir := ":min"
		if a.Higher {
			dir = ":max"
		}
		b, err := ParseAxis(a.Metric + dir)
		if err != nil || b != a {
			t.Fatalf("%q → %+v does not round-trip: %+v %v", s, a, b, err)
		}
	})
}
