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
	sum := Summarise(recs, SummaryOptions{Quality: map[string]*result.QualityRecord{"r1": q}, Bootstrap: Options{Resamples: 2000}})
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
	r2 := Summarise(recs, SummaryOptions{Quality: map[string]*result.QualityRecord{"r1": q}, Bootstrap: Options{Resamples: 2000}}).Run("r1")
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
	r3 := Summarise(recs, SummaryOptions{Quality: map[string]*result.QualityRecord{"r1": q}}).Run("r1")
	if r3.Metric(MetricQuality) != nil {
		t.Fatal("a failed scoring must give no quality metric")
	}
}
