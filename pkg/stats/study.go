package stats

import "github.com/llenergymeasure/llem/pkg/result"

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
	return Summarise(s.Records, SummaryOptions{Mode: StudyMode(s.Summary), Bootstrap: b}), nil
}
