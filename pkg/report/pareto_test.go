package report

import (
	"testing"

	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

func metric(name string, mean, lo, hi float64) stats.MetricStats {
	m := stats.MetricStats{Name: name}
	m.N, m.Mean = 5, mean
	m.CI = &stats.CI{Lower: lo, Upper: hi, Method: stats.MethodBCa}
	return m
}

// A study whose summary carries the summariser's quality metric gets a
// quality-vs-energy frontier figure; the throughput one marks a run that
// is beaten only within the intervals as possibly dominated.
func TestReportFrontierFigures(t *testing.T) {
	run := func(id string, ms ...stats.MetricStats) stats.RunStats {
		return stats.RunStats{RunID: id, Model: "m", Backend: "native", Metrics: ms}
	}
	s := &Study{Dir: "x", Manifest: result.Manifest{Study: "q"}, Stats: &stats.StudySummary{Runs: []stats.RunStats{
		run("a", metric("quality", 0.8, 0.78, 0.82), metric("energy_per_output_token_j", 2, 1.9, 2.1), metric("output_tokens_per_sec", 100, 95, 105)),
		run("b", metric("quality", 0.6, 0.58, 0.62), metric("energy_per_output_token_j", 0.5, 0.45, 0.55), metric("output_tokens_per_sec", 99, 90, 108)),
		run("c", metric("energy_per_output_token_j", 0.6, 0.4, 0.8), metric("output_tokens_per_sec", 98, 90, 106)),
	}}}
	r, err := Build([]*Study{s}, Options{MaxTimelines: -1})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]int{}
	for _, f := range r.Figures {
		byName[f.Name] = f.Points
	}
	// quality: runs a and b (c was not scored); tradeoff: all three.
	if byName["quality-energy"] != 2 || byName["tradeoff"] != 3 {
		t.Fatalf("figures %v (missing %v)", byName, r.Missing)
	}
}
