package stats

import (
	"sort"

	"github.com/llenergymeasure/llem/pkg/result"
)

// Summarise is the one study summariser: per-run statistics of recs in
// their order of first appearance. eval's report (pkg/execute, which
// writes summary.json), llem results show/compare and the exporters all
// call it, so a study has one set of numbers wherever it is read.
func Summarise(recs []*result.Record, o SummaryOptions) *StudySummary {
	acc := NewSummary(o)
	for _, r := range recs {
		acc.Add(r)
	}
	return acc.Close()
}

// StudyMode is the methodology mode a study directory records: steady_state
// when its summary.json says some run stopped early on steady state, else
// fixed_cycles (also when there is no summary yet).
func StudyMode(sum *result.Summary) string {
	if sum != nil {
		for _, r := range sum.Runs {
			if r.SteadyState.StoppedBy == "steady_state" {
				return ModeSteadyState
			}
		}
	}
	return ModeFixedCycles
}

// SummariseStudy summarises a study read back from its directory, in the
// mode it records (StudyMode), with bootstrap settings b. A study with no
// record yet is a *result.NoRecordsError.
func SummariseStudy(s *result.Study, b Options) (*StudySummary, error) {
	if err := s.RequireRecords(); err != nil {
		return nil, err
	}
	sum := Summarise(s.Records, SummaryOptions{Mode: StudyMode(s.Summary), Bootstrap: b, Quality: s.Quality})
	InPlanOrder(sum, s.PlanOrder)
	for i := range sum.Runs {
		sum.Runs[i].Name = s.RunNames[sum.Runs[i].RunID]
	}
	return sum, nil
}

// InPlanOrder sorts the summary's runs as the plan lists them (runs the
// plan does not name keep their order, after the others).
func InPlanOrder(sum *StudySummary, order []string) {
	if len(order) == 0 {
		return
	}
	idx := make(map[string]int, len(order))
	for i, id := range order {
		idx[id] = i
	}
	at := func(id string) int {
		if i, ok := idx[id]; ok {
			return i
		}
		return len(order)
	}
	sort.SliceStable(sum.Runs, func(i, j int) bool { return at(sum.Runs[i].RunID) < at(sum.Runs[j].RunID) })
}
