// Package pareto finds the configurations of one or more studies that no
// other beats on two metrics at once (the Pareto frontier), honest about
// cycle-to-cycle noise: a configuration is called dominated only when the
// confidence intervals say another is better.
//
// # The rule
//
// Orient both axes so that larger is better. Configuration B dominates A
// on means when B's mean is at least A's on both axes and greater on one.
// B dominates A by the CIs when, in addition, on at least one axis where
// B's mean is greater the two confidence intervals do not overlap (B's
// lower bound above A's upper bound; ends that touch overlap, as in
// stats.CI.Overlaps). On the other axis B's mean must still be at least
// A's, but its interval may overlap A's: there is no evidence A is better
// there, and clear evidence B is better on the first. Each configuration
// then gets one status:
//
//   - dominated: some configuration dominates it by the CIs;
//   - possibly_dominated: some configuration dominates it on means, none
//     by the CIs (the difference may be noise: more cycles would tell);
//   - frontier: no configuration dominates it even on means.
//
// A metric without an interval (one valid cycle) cannot support a "by the
// CIs" claim, so configurations measured once are at worst possibly
// dominated. Zero-width intervals (every cycle gave the same value) are
// intervals, and compare as such.
//
// Ties: two configurations with equal means on both axes (within 1e-12
// relative) do not dominate each other; both keep their status and name
// each other in TiedWith. Equal on one axis and better on the other is
// dominance, not a tie.
//
// The frontier is computed on means, as in the usual definition; the
// statuses say how much of it the intervals support.
package pareto

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/pkg/stats"
)

// Status is a configuration's place relative to the frontier.
type Status string

// Statuses, best first.
const (
	Frontier          Status = "frontier"
	PossiblyDominated Status = "possibly_dominated"
	Dominated         Status = "dominated"
)

// Rule is the dominance rule in one paragraph, printed under the table and
// stored in the JSON output.
const Rule = "B dominates A when B's mean is at least as good as A's on both axes and better on one; " +
	"\"dominated\" means some B does so with non-overlapping confidence intervals on at least one axis where it is better, " +
	"\"possibly dominated\" that some B does so on means only (the gap may be noise), \"frontier\" that none does even on means. " +
	"Equal means on both axes are a tie (neither dominates). A metric with one valid cycle has no interval and never makes a config dominated."

// Estimate is a mean with its confidence interval.
type Estimate struct {
	Mean float64 `json:"mean"`
	// Lo and Hi are the interval; meaningful only when HasCI.
	Lo    float64 `json:"ci_lower"`
	Hi    float64 `json:"ci_upper"`
	HasCI bool    `json:"has_ci"`
	// N is the number of valid cycles the mean is over.
	N int `json:"n"`
}

// EstimateOf turns a summariser metric into an Estimate; ok is false when
// the metric is absent or has no valid value.
func EstimateOf(m *stats.MetricStats) (Estimate, bool) {
	if m == nil || m.N == 0 || math.IsNaN(m.Mean) || math.IsInf(m.Mean, 0) {
		return Estimate{}, false
	}
	e := Estimate{Mean: m.Mean, N: m.N}
	// One value: stats reports a zero-width "interval" with method none;
	// it is no evidence of anything, so it is no interval here. n ≥ 2
	// equal values give a genuine zero-width interval.
	if m.CI != nil && m.N >= 2 && !math.IsNaN(m.CI.Lower) && !math.IsNaN(m.CI.Upper) {
		e.Lo, e.Hi, e.HasCI = m.CI.Lower, m.CI.Upper, true
	}
	return e, true
}

// Point is one configuration placed on the two axes.
type Point struct {
	// ID is the short key in tables and figures ("C1"), unique in a
	// Result.
	ID    string `json:"id"`
	Study string `json:"study,omitempty"`
	Dir   string `json:"dir,omitempty"`
	RunID string `json:"run_id,omitempty"`
	// Label is "backend / model / precision" plus the parameters that vary
	// between the configurations.
	Label string   `json:"label"`
	X     Estimate `json:"x"`
	Y     Estimate `json:"y"`
}

// Entry is a Point with its verdict.
type Entry struct {
	Point
	Status Status `json:"status"`
	// DominatedBy are the IDs of the configurations that dominate it by
	// the CIs; PossiblyDominatedBy those that dominate it on means only.
	DominatedBy         []string `json:"dominated_by"`
	PossiblyDominatedBy []string `json:"possibly_dominated_by"`
	// TiedWith are configurations with the same means on both axes.
	TiedWith []string `json:"tied_with"`
}

// oriented is an estimate flipped so that larger is better.
type oriented struct {
	mean, lo, hi float64
	ci           bool
}

func orient(e Estimate, higher bool) oriented {
	if higher {
		return oriented{e.Mean, e.Lo, e.Hi, e.HasCI}
	}
	return oriented{-e.Mean, -e.Hi, -e.Lo, e.HasCI}
}

// tol is the relative tolerance under which two means are equal (the
// mean of equal values summed in another order may differ in the last
// bits), matching stats.CI.Overlaps.
func equal(a, b float64) bool {
	return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}

// cmp compares b with a on one oriented axis: atLeast (b's mean ≥ a's),
// better (b's mean > a's), clearly (better and the intervals do not
// overlap).
func cmp(b, a oriented) (atLeast, better, clearly bool) {
	if equal(b.mean, a.mean) {
		return true, false, false
	}
	if b.mean < a.mean {
		return false, false, false
	}
	clearly = b.ci && a.ci && !(stats.CI{Lower: b.lo, Upper: b.hi}).Overlaps(stats.CI{Lower: a.lo, Upper: a.hi})
	return true, true, clearly
}

// Dominance says how b stands against a: on means and by the CIs (see
// the package doc). byCI implies onMeans.
func Dominance(b, a Point, x, y Axis) (onMeans, byCI bool) {
	ax, bx := orient(a.X, x.Higher), orient(b.X, x.Higher)
	ay, by := orient(a.Y, y.Higher), orient(b.Y, y.Higher)
	xAtLeast, xBetter, xClear := cmp(bx, ax)
	yAtLeast, yBetter, yClear := cmp(by, ay)
	if !xAtLeast || !yAtLeast || (!xBetter && !yBetter) {
		return false, false
	}
	return true, xClear || yClear
}

// Classify gives every point its status, dominators and ties, in the
// order of pts. It is O(n²) in the points: a study has hundreds of
// configurations, not millions.
func Classify(pts []Point, x, y Axis) []Entry {
	out := make([]Entry, len(pts))
	for i, a := range pts {
		e := Entry{Point: a, Status: Frontier, DominatedBy: []string{}, PossiblyDominatedBy: []string{}, TiedWith: []string{}}
		for j, b := range pts {
			if i == j {
				continue
			}
			if equal(a.X.Mean, b.X.Mean) && equal(a.Y.Mean, b.Y.Mean) {
				e.TiedWith = append(e.TiedWith, b.ID)
				continue
			}
			switch onMeans, byCI := Dominance(b, a, x, y); {
			case byCI:
				e.DominatedBy = append(e.DominatedBy, b.ID)
			case onMeans:
				e.PossiblyDominatedBy = append(e.PossiblyDominatedBy, b.ID)
			}
		}
		switch {
		case len(e.DominatedBy) > 0:
			e.Status = Dominated
		case len(e.PossiblyDominatedBy) > 0:
			e.Status = PossiblyDominated
		}
		out[i] = e
	}
	return out
}

// Excluded is a configuration left out of the frontier, and why.
type Excluded struct {
	ID     string `json:"id"`
	Study  string `json:"study,omitempty"`
	RunID  string `json:"run_id"`
	Label  string `json:"label"`
	Reason string `json:"reason"`
}

// Study is one summarised study directory.
type Study struct {
	Name    string
	Dir     string
	Summary *stats.StudySummary
}

// Result is the frontier of one or more studies over two axes.
type Result struct {
	X       Axis     `json:"x"`
	Y       Axis     `json:"y"`
	XUnit   string   `json:"x_unit"`
	YUnit   string   `json:"y_unit"`
	Studies []string `json:"studies"`
	Level   float64  `json:"confidence_level"`
	Rule    string   `json:"rule"`
	Entries []Entry  `json:"configs"`
	// Excluded are runs without a value for one of the axes (e.g. runs
	// never scored for quality).
	Excluded []Excluded `json:"excluded"`
}

// Build places every run of the studies on the axes and classifies them.
// IDs run C1, C2, … over all runs in study order (excluded runs keep
// their ID, so IDs do not shift when a metric is missing).
func Build(studies []Study, x, y Axis) (*Result, error) {
	if x.Metric == y.Metric {
		return nil, fmt.Errorf("both axes are %s: pick two different metrics", x.Metric)
	}
	r := &Result{X: x, Y: y, Rule: Rule, Entries: []Entry{}, Excluded: []Excluded{}, Studies: []string{}}
	var all []stats.RunStats
	for _, s := range studies {
		r.Studies = append(r.Studies, s.Name)
		all = append(all, s.Summary.Runs...)
		if r.Level == 0 {
			r.Level = s.Summary.Methodology.ConfidenceLevel
		}
	}
	varied := stats.VariedParams(all)
	multi := len(studies) > 1
	var pts []Point
	n := 0
	for _, s := range studies {
		for i := range s.Summary.Runs {
			run := &s.Summary.Runs[i]
			n++
			p := Point{ID: fmt.Sprintf("C%d", n), RunID: run.RunID, Label: label(run, varied)}
			if multi {
				p.Study, p.Dir = s.Name, s.Dir
			}
			mx, my := run.Metric(x.Metric), run.Metric(y.Metric)
			if mx != nil && r.XUnit == "" {
				r.XUnit = mx.Unit
			}
			if my != nil && r.YUnit == "" {
				r.YUnit = my.Unit
			}
			ex, okx := EstimateOf(mx)
			ey, oky := EstimateOf(my)
			if !okx || !oky {
				var missing []string
				if !okx {
					missing = append(missing, why(x.Metric, run))
				}
				if w := why(y.Metric, run); !oky && (len(missing) == 0 || missing[0] != w) {
					missing = append(missing, w)
				}
				r.Excluded = append(r.Excluded, Excluded{ID: p.ID, Study: p.Study, RunID: run.RunID, Label: p.Label, Reason: strings.Join(missing, "; ")})
				continue
			}
			p.X, p.Y = ex, ey
			pts = append(pts, p)
		}
	}
	r.Entries = Classify(pts, x, y)
	return r, nil
}

func why(metric string, run *stats.RunStats) string {
	switch {
	case run.ValidCount == 0:
		return "no valid cycle"
	case QualityMetrics[metric]:
		return "no " + metric + " (run not scored for quality)"
	}
	return "no " + metric + " (not measured)"
}

func label(run *stats.RunStats, varied []string) string {
	l := run.Label()
	if len(varied) == 0 || run.Name != "" { // a name already tells runs apart
		return l
	}
	flat := stats.Flatten(run.Config)
	for _, p := range varied {
		v, ok := flat[p]
		if !ok {
			v = "-"
		}
		l += " " + p[strings.LastIndex(p, ".")+1:] + "=" + strings.Trim(v, `"`)
	}
	return l
}

// Frontier returns the frontier entries sorted by x, worst to best along
// ascending — the order a line through them is drawn in.
func (r *Result) Frontier() []Entry {
	var out []Entry
	for _, e := range r.Entries {
		if e.Status == Frontier {
			out = append(out, e)
		}
	}
	sortByX(out)
	return out
}

func sortByX(es []Entry) {
	sort.SliceStable(es, func(i, j int) bool { return es[i].X.Mean < es[j].X.Mean })
}
