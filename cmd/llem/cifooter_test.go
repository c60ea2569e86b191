package main

import (
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/stats"
)

// TestCIFooter: the footer under llem eval's table names the interval
// method actually used by the intervals shown, not the one requested (with
// 2 cycles every BCa interval falls back to percentile).
func TestCIFooter(t *testing.T) {
	s := &stats.StudySummary{Methodology: stats.Methodology{CIMethod: stats.MethodBCa, ConfidenceLevel: 0.95}}
	metric := func(method string) *stats.MetricStats {
		m := &stats.MetricStats{}
		m.N = 3
		m.CI = &stats.CI{Method: method}
		return m
	}
	for _, tc := range []struct {
		name  string
		shown []*stats.MetricStats
		want  string
	}{
		{"all bca", []*stats.MetricStats{metric("bca"), metric("bca")}, "[95% bca CI]"},
		{"all fell back", []*stats.MetricStats{metric("percentile"), metric("percentile")}, "[95% percentile CI]"},
		{"mixed", []*stats.MetricStats{metric("bca"), metric("percentile"), nil}, "1 of 2 shown fell back to percentile"},
		{"none", []*stats.MetricStats{metric("none"), nil}, "no confidence intervals"},
	} {
		if got := ciFooter(s, tc.shown); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q in it", tc.name, got, tc.want)
		}
	}
}
