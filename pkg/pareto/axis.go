package pareto

import (
	"fmt"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/pkg/stats"
)

// Axis is one of the two metrics a frontier is computed over.
type Axis struct {
	// Metric is the summariser's metric name (stats.Metrics, or quality
	// and quality_per_joule for scored runs).
	Metric string `json:"metric"`
	// Higher is true when a larger value is better (throughput, quality).
	Higher bool `json:"higher_is_better"`
}

// String is "metric (↑)" or "metric (↓)".
func (a Axis) String() string {
	if a.Higher {
		return a.Metric + " (higher is better)"
	}
	return a.Metric + " (lower is better)"
}

// Known is a metric the frontier knows the direction of, with the short
// names a user may type for it.
type Known struct {
	Metric  string
	Higher  bool
	Aliases []string
}

// KnownMetrics are the metrics with aliases, in the order `llem results
// pareto --help` lists them. Every other metric the summariser produces
// (stats.Metrics) is accepted by its own name, with its direction from
// DirectionOf.
var KnownMetrics = []Known{
	{"quality", true, []string{"score", "accuracy"}},
	{"quality_per_joule", true, []string{"qpj", "quality/j"}},
	{"output_tokens_per_sec", true, []string{"throughput", "tps", "tokens/s"}},
	{"energy_per_output_token_j", false, []string{"energy", "j/token", "j_per_token", "jpt"}},
	{"energy_per_request_j", false, []string{"j/request", "j_per_request"}},
	{"e2e_p95_ms", false, []string{"latency"}},
	{"ttft_p50_ms", false, []string{"ttft"}},
	{"itl_p50_ms", false, []string{"itl"}},
	{"mean_power_w", false, []string{"power"}},
}

// QualityMetrics are metrics only scored runs have: a run without them is
// reported as "not scored" rather than "not measured".
var QualityMetrics = map[string]bool{"quality": true, "quality_per_joule": true}

// DirectionOf says whether larger is better for a summariser metric:
// rates (…_per_sec), quality and quality per joule are; energy, power,
// times and latencies (…_j, …_w, …_s, …_ms) are not. ok is false for a
// name it does not know.
func DirectionOf(metric string) (higher, ok bool) {
	for _, k := range KnownMetrics {
		if k.Metric == metric {
			return k.Higher, true
		}
	}
	for _, m := range stats.Metrics {
		if m.Name != metric {
			continue
		}
		return strings.HasSuffix(metric, "_per_sec"), true
	}
	return false, false
}

// ParseAxis resolves a metric name or alias (case-insensitive), optionally
// followed by ":max" or ":min" to set the direction (needed for a metric
// llem does not know, e.g. a per-task score).
func ParseAxis(s string) (Axis, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	dir := ""
	if i := strings.LastIndex(name, ":"); i >= 0 {
		name, dir = name[:i], name[i+1:]
		if dir != "max" && dir != "min" {
			return Axis{}, fmt.Errorf("metric %q: direction %q is not max or min", s, dir)
		}
	}
	if name == "" {
		return Axis{}, fmt.Errorf("empty metric name; accepted: %s", strings.Join(AcceptedNames(), ", "))
	}
	for _, k := range KnownMetrics {
		for _, a := range k.Aliases {
			if name == a {
				name = k.Metric
			}
		}
	}
	higher, ok := DirectionOf(name)
	switch {
	case dir != "":
		higher = dir == "max"
	case !ok:
		return Axis{}, fmt.Errorf("unknown metric %q; accepted: %s (or any metric name with :max or :min)", s, strings.Join(AcceptedNames(), ", "))
	}
	return Axis{Metric: name, Higher: higher}, nil
}

// AcceptedNames lists every name ParseAxis resolves without a direction:
// the known metrics with their aliases in parentheses, then the other
// summariser metrics, sorted.
func AcceptedNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range KnownMetrics {
		out = append(out, k.Metric+" ("+strings.Join(k.Aliases, ", ")+")")
		seen[k.Metric] = true
	}
	var rest []string
	for _, m := range stats.Metrics {
		if !seen[m.Name] {
			rest = append(rest, m.Name)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
