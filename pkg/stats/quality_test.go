package stats

import (
	"math"
	"testing"

	"github.com/llenergymeasure/llem/pkg/result"
)

func qualityRun(epr ...float64) []*result.Record {
	var recs []*result.Record
	for i, e := range epr {
		e := e
		r := &result.Record{RunID: "r1", Cycle: i + 1, Status: result.StatusOK, Backend: "native", Model: "m"}
		r.Efficiency.EnergyPerRequestJ = &e
		recs = append(recs, r)
	}
	return recs
}

func TestQualityMetrics(t *testing.T) {
	s, se, scoring := 0.6, 0.02, 150.0
	q := &result.QualityRecord{RunID: "r1", Status: result.StatusOK, Score: &s, ScoreStderr: &se}
	q.Energy.RawJ = &scoring
	recs := qualityRun(2.0, 2.2, 1.8, 2.0)
	sum := Summarise(recs, SummaryOptions{Quality: map[string][]*result.QualityRecord{"r1": {q}}, Bootstrap: Options{Resamples: 2000}})
	r := sum.Run("r1")
	qm, qpj, sj := r.Metric(MetricQuality), r.Metric(MetricQualityPerJoule), r.Metric(MetricQualityScoringJ)
	if qm == nil || qpj == nil || sj == nil {
		t.Fatalf("metrics %+v", r.Metrics)
	}
	z := 1.959963984540054
	if qm.Mean != 0.6 || qm.Unit != "score" || math.Abs(qm.CI.Lower-(0.6-z*0.02)) > 1e-9 || qm.CI.Method != MethodNormal {
		t.Fatalf("quality %+v %+v", qm.Description, qm.CI)
	}
	if math.Abs(qpj.Mean-0.6/2.0) > 1e-12 || qpj.Unit != "score/J" || qpj.N != 4 {
		t.Fatalf("quality_per_joule %+v", qpj.Description)
	}
	if !(qpj.CI.Lower < qpj.Mean && qpj.Mean < qpj.CI.Upper) || qpj.CI.Method != MethodParametricBoot {
		t.Fatalf("quality_per_joule CI %+v", qpj.CI)
	}
	// A wider score stderr widens the ratio's interval.
	wide := 0.1
	q.ScoreStderr = &wide
	r2 := Summarise(recs, SummaryOptions{Quality: map[string][]*result.QualityRecord{"r1": {q}}, Bootstrap: Options{Resamples: 2000}}).Run("r1")
	w1 := qpj.CI.Upper - qpj.CI.Lower
	w2 := r2.Metric(MetricQualityPerJoule).CI.Upper - r2.Metric(MetricQualityPerJoule).CI.Lower
	if w2 <= w1 {
		t.Fatalf("CI width %v with se 0.1 not wider than %v with se 0.02", w2, w1)
	}
	if sj.Mean != 150 {
		t.Fatalf("scoring energy %+v", sj.Description)
	}
	// A failed scoring or an unscored run adds nothing.
	q.Status = result.StatusFailed
	r3 := Summarise(recs, SummaryOptions{Quality: map[string][]*result.QualityRecord{"r1": {q}}}).Run("r1")
	if r3.Metric(MetricQuality) != nil {
		t.Fatal("a failed scoring must give no quality metric")
	}
}

// TestCycleQualityMetrics: scored after each cycle (quality.scope cycle),
// quality is the mean of the cycles' scores with a BCa interval over
// cycles, quality_per_joule pairs each cycle's score with its energy, and
// the scoring energy is described over cycles.
func TestCycleQualityMetrics(t *testing.T) {
	recs := qualityRun(2.0, 2.2, 1.8, 2.0, 2.1, 1.9)
	var qs []*result.QualityRecord
	for i, s := range []float64{0.60, 0.62, 0.58, 0.61, 0.59, 0.63} {
		s, j, se := s, 100.0+float64(i), 0.5
		q := &result.QualityRecord{RunID: "r1", Cycle: i + 1, Status: result.StatusOK, Score: &s, ScoreStderr: &se}
		q.Energy.RawJ = &j
		qs = append(qs, q)
	}
	fail := &result.QualityRecord{RunID: "r1", Cycle: 7, Status: result.StatusFailed}
	qs = append(qs, fail)
	r := Summarise(recs, SummaryOptions{Quality: map[string][]*result.QualityRecord{"r1": qs}, Bootstrap: Options{Resamples: 2000}}).Run("r1")
	qm, qpj, sj := r.Metric(MetricQuality), r.Metric(MetricQualityPerJoule), r.Metric(MetricQualityScoringJ)
	if qm == nil || qpj == nil || sj == nil {
		t.Fatalf("metrics %+v", r.Metrics)
	}
	mean := (0.60 + 0.62 + 0.58 + 0.61 + 0.59 + 0.63) / 6
	if qm.N != 6 || math.Abs(qm.Mean-mean) > 1e-12 || qm.CI == nil || qm.CI.Method != MethodBCa {
		t.Fatalf("quality %+v %+v", qm.Description, qm.CI)
	}
	// The interval is over cycles, not lm-eval's (huge) stderr of 0.5.
	if !(qm.CI.Lower < mean && mean < qm.CI.Upper) || qm.CI.Upper-qm.CI.Lower > 0.05 {
		t.Fatalf("quality CI %+v", qm.CI)
	}
	if want := mean / ((2.0 + 2.2 + 1.8 + 2.0 + 2.1 + 1.9) / 6); qpj.N != 6 || math.Abs(qpj.Mean-want) > 1e-12 {
		t.Fatalf("quality_per_joule %+v, want mean %v", qpj.Description, want)
	}
	if !(qpj.CI.Lower < qpj.Mean && qpj.Mean < qpj.CI.Upper) || qpj.CI.Method != MethodBCa {
		t.Fatalf("quality_per_joule CI %+v", qpj.CI)
	}
	if sj.N != 6 || math.Abs(sj.Mean-102.5) > 1e-12 {
		t.Fatalf("scoring energy %+v", sj.Description)
	}
	// A cycle without an efficiency record scores, but enters no ratio.
	r2 := Summarise(recs[:5], SummaryOptions{Quality: map[string][]*result.QualityRecord{"r1": qs}}).Run("r1")
	if r2.Metric(MetricQuality).N != 6 || r2.Metric(MetricQualityPerJoule).N != 5 {
		t.Fatalf("unpaired cycle: quality n %d, per joule n %d", r2.Metric(MetricQuality).N, r2.Metric(MetricQualityPerJoule).N)
	}
}
