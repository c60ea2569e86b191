package exporters

import (
	"encoding/json"
	"strings"

	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// Set is what one export writes: one or more study directories as one
// dataset. Rows keep their study column, so runs of different studies
// never merge even when they share a run ID.
type Set struct {
	Studies []*result.Study
}

// NewSet is a Set of studies, in the order given.
func NewSet(studies ...*result.Study) *Set { return &Set{Studies: studies} }

// Name is the dataset's name: the study names joined with " + ".
func (s *Set) Name() string {
	names := make([]string, len(s.Studies))
	for i, st := range s.Studies {
		names[i] = st.Name()
	}
	return strings.Join(names, " + ")
}

// Records are every study's records, study after study, each in executed
// order.
func (s *Set) Records() []*result.Record {
	if len(s.Studies) == 1 {
		return s.Studies[0].Records
	}
	var n int
	for _, st := range s.Studies {
		n += len(st.Records)
	}
	out := make([]*result.Record, 0, n)
	for _, st := range s.Studies {
		out = append(out, st.Records...)
	}
	return out
}

// RunRow is one row of the per-run statistics table: a run of a study
// summarised over its cycles by stats.Summarise (means, CIs, n).
type RunRow struct {
	Study string `json:"study"`
	// Coordinates are the run's grid coordinates (from its first record).
	Coordinates json.RawMessage `json:"coordinates,omitempty"`
	// Method is the study's methodology (resamples, seed, CI method asked).
	Method *stats.Methodology `json:"-"`
	// Quality is the run's lm-eval quality record (per task: metric,
	// value, stderr, n-shot, version, samples; lm-eval's version and the
	// exact command), when the run was scored once (quality.scope "run").
	Quality *result.QualityRecord `json:"quality,omitempty"`
	// QualityCycles are the run's quality records in cycle order when it
	// was scored after each cycle (quality.scope "cycle"); the quality
	// metrics then carry their mean and CI over cycles.
	QualityCycles []*result.QualityRecord `json:"quality_cycles,omitempty"`
	stats.RunStats
}

// QualityRef is the quality record that speaks for the run's scoring as a
// whole (source, lm-eval version, command): its one record, else its
// first cycle's; nil when it was not scored.
func (r *RunRow) QualityRef() *result.QualityRecord {
	if r.Quality != nil {
		return r.Quality
	}
	if len(r.QualityCycles) > 0 {
		return r.QualityCycles[0]
	}
	return nil
}

// Runs summarises every study of the set (stats.Summarise with the mode
// each study ran in) into per-run rows, study after study. The summaries
// are returned too, one per study, for the cards and warnings.
func (s *Set) Runs() ([]RunRow, []*stats.StudySummary) {
	var rows []RunRow
	sums := make([]*stats.StudySummary, len(s.Studies))
	for i, st := range s.Studies {
		sum := stats.Summarise(st.Records, stats.SummaryOptions{Mode: stats.StudyMode(st.Summary), Quality: st.Quality})
		sums[i] = sum
		coords := map[string]json.RawMessage{}
		for _, r := range st.Records {
			if _, ok := coords[r.RunID]; !ok {
				coords[r.RunID] = r.Coordinates
			}
		}
		for k := range sum.Runs {
			row := RunRow{Study: st.Name(), Coordinates: coords[sum.Runs[k].RunID], Method: &sum.Methodology, RunStats: sum.Runs[k]}
			for _, q := range st.Quality[sum.Runs[k].RunID] {
				if q.Cycle > 0 {
					row.QualityCycles = append(row.QualityCycles, q)
				} else {
					row.Quality = q
				}
			}
			rows = append(rows, row)
		}
	}
	return rows, sums
}
