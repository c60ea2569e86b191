package stats_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

func TestSummariseStudy(t *testing.T) {
	dir, _, err := exportertest.WriteStudy(t.TempDir(), exportertest.Spec{Study: "s", Runs: 2, Cycles: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	s, err := result.LoadStudy(dir)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := stats.SummariseStudy(s, stats.Options{Resamples: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Runs) != 2 || sum.Methodology.Mode != stats.ModeFixedCycles || sum.Methodology.Resamples != 100 {
		t.Errorf("summary: %d runs, methodology %+v", len(sum.Runs), sum.Methodology)
	}

	s.Summary = &result.Summary{Runs: []result.RunSummary{{SteadyState: result.SteadyState{StoppedBy: "steady_state"}}}}
	if sum, _ := stats.SummariseStudy(s, stats.Options{}); sum.Methodology.Mode != stats.ModeSteadyState {
		t.Errorf("a run stopped on steady state: mode %q", sum.Methodology.Mode)
	}

	s.Records = nil
	_, err = stats.SummariseStudy(s, stats.Options{})
	var none *result.NoRecordsError
	if !errors.As(err, &none) || none.Dir != dir || errs.ExitCode(err) != errs.ExitBadInput {
		t.Errorf("no records: err %v (exit %d)", err, errs.ExitCode(err))
	}
}

// TestInPlanOrder: the summary lists runs as the plan does, whatever order
// they ran in; runs the plan does not name come last, in their order.
func TestInPlanOrder(t *testing.T) {
	t.Parallel()
	sum := &stats.StudySummary{Runs: []stats.RunStats{{RunID: "c"}, {RunID: "x"}, {RunID: "a"}, {RunID: "b"}}}
	stats.InPlanOrder(sum, []string{"a", "b", "c"})
	var got []string
	for _, r := range sum.Runs {
		got = append(got, r.RunID)
	}
	if strings.Join(got, ",") != "a,b,c,x" {
		t.Fatalf("order = %v", got)
	}
}
