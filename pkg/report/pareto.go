package report

import (
	"fmt"
	"strings"

	"github.com/llenergymeasure/llem/pkg/pareto"
	"github.com/llenergymeasure/llem/pkg/report/figure"
)

// axisNames are the words on an axis for the metrics people plot most.
var axisNames = map[string]string{
	"energy_per_output_token_j": "energy per output token",
	"output_tokens_per_sec":     "output throughput",
	"quality":                   "quality",
	"quality_per_joule":         "quality per joule",
	"e2e_p95_ms":                "end-to-end latency p95",
}

// axisLabel is "metric (unit)" in words: output_tokens_per_sec →
// "output throughput (tokens/s)"; ttft_p50_ms → "ttft p50 (ms)".
func axisLabel(metric, unit string) string {
	l, ok := axisNames[metric]
	if !ok {
		for _, suffix := range []string{"_j", "_ms", "_s", "_w"} {
			if m, cut := strings.CutSuffix(metric, suffix); cut {
				metric = m
				break
			}
		}
		l = strings.ReplaceAll(metric, "_", " ")
	}
	if unit != "" {
		l += " (" + unit + ")"
	}
	return l
}

func figureEstimate(e pareto.Estimate) figure.Estimate {
	return figure.Estimate{Mean: e.Mean, Lo: e.Lo, Hi: e.Hi, HasCI: e.HasCI, OK: true}
}

// frontierCaption explains a Pareto figure and its statuses.
func frontierCaption(level float64) string {
	return fmt.Sprintf("Each point is a configuration (mean; whiskers the %.0f%% confidence intervals). "+
		"Rings and the dashed line: the Pareto frontier (no other configuration is at least as good on both axes and better on one, even on means). "+
		"Grey hollow squares: possibly dominated (beaten on means, but within the intervals). Plain points are dominated: "+
		"another configuration is at least as good on both means and better beyond the intervals on one axis.", level*100)
}

// ParetoFigure draws a frontier computed by pkg/pareto (llem results
// pareto --figure). Points are coloured by study when there are several.
func ParetoFigure(r *pareto.Result) *figure.Figure {
	var pts []figure.FrontierPoint
	for _, e := range r.Entries {
		series := ""
		if len(r.Studies) > 1 {
			series = e.Study
		}
		pts = append(pts, figure.FrontierPoint{ID: e.ID, Series: series, X: figureEstimate(e.X), Y: figureEstimate(e.Y), Status: string(e.Status)})
	}
	g := figure.Grouping{}
	if len(r.Studies) > 1 {
		g.Series = "study"
	}
	return figure.Frontier(pts, figure.FrontierAxes{
		Name:   "pareto-" + r.X.Metric + "-vs-" + r.Y.Metric,
		Title:  "Pareto frontier: " + strings.ReplaceAll(r.X.Metric, "_", " ") + " vs " + strings.ReplaceAll(r.Y.Metric, "_", " "),
		XLabel: axisLabel(r.X.Metric, r.XUnit), YLabel: axisLabel(r.Y.Metric, r.YUnit),
		Grouping: g, Caption: frontierCaption(r.Level),
	})
}

// frontier draws the configurations' x against energy per output token
// with pkg/pareto's CI-aware statuses, grouped like the other figures;
// nil when no configuration has both metrics.
func (r *Report) frontier(name, title, xlabel string, x pareto.Axis) *figure.Figure {
	y := pareto.Axis{Metric: "energy_per_output_token_j"}
	var pts []pareto.Point
	var series []string
	for _, c := range r.Configs {
		ex, okx := pareto.EstimateOf(c.Run.Metric(x.Metric))
		ey, oky := pareto.EstimateOf(c.Run.Metric(y.Metric))
		if !okx || !oky {
			continue
		}
		pts = append(pts, pareto.Point{ID: c.ID, X: ex, Y: ey})
		series = append(series, c.Series)
	}
	var fps []figure.FrontierPoint
	for i, e := range pareto.Classify(pts, x, y) {
		fps = append(fps, figure.FrontierPoint{ID: e.ID, Series: series[i], X: figureEstimate(e.X), Y: figureEstimate(e.Y), Status: string(e.Status)})
	}
	return figure.Frontier(fps, figure.FrontierAxes{Name: name, Title: title, XLabel: xlabel, YLabel: "energy per output token (J)",
		Grouping: r.Grouping, Caption: frontierCaption(r.Level)})
}
