package stats

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/llenergymeasure/llem/pkg/result"
)

// Quality metric names in RunStats.Metrics (docs/quality.md): the run's
// weighted lm-eval score, the score per joule of one request of the
// efficiency run, and what the scoring itself cost.
const (
	MetricQuality          = "quality"
	MetricQualityPerJoule  = "quality_per_joule"
	MetricQualityScoringJ  = "quality_scoring_energy_j"
	MethodNormal           = "normal"               // score ± z·stderr (lm-eval's stderr)
	MethodParametricBoot   = "parametric-bootstrap" // percentile over (score ~ N(s, se)) / resampled energy
	qualityBootstrapStream = 0x9e3779b97f4a7c15 ^ 7 // independent of the cycle bootstrap's stream
)

// QualityMetrics are the per-run metrics of scored runs, after Metrics in
// exports (they come from the run's quality record, not from each cycle's,
// so they have no Value).
var QualityMetrics = []Metric{
	{Name: MetricQuality, Unit: "score"},
	{Name: MetricQualityPerJoule, Unit: "score/J"},
	{Name: MetricQualityScoringJ, Unit: "J"},
}

// addQuality appends the quality metrics of a scored run (q's status ok)
// to rs, from its summarised energy per request and the valid cycles'
// values of it.
//
// quality = the weighted task score; its CI is score ± z·stderr when
// lm-eval gave every scored task a stderr (normal approximation, tasks
// independent), else none.
//
// quality_per_joule = quality / mean energy per request (J) of the run's
// valid cycles. Per request, not per token, so runs at different batch
// sizes compare on the same unit of work. Its CI is a percentile interval
// of B replicates of score* / mean(resampled cycles' J/request), with
// score* drawn from N(score, stderr) (held at score without a stderr):
// both inputs' uncertainty, seeded like every bootstrap here.
func addQuality(rs *RunStats, q *result.QualityRecord, epr []float64, o Options) {
	if q == nil || q.Status != result.StatusOK || q.Score == nil {
		return
	}
	o = o.withDefaults()
	s := *q.Score
	z := distuv.UnitNormal.Quantile(1 - (1-o.Level)/2)
	qd := Description{N: 1, Mean: s, Min: s, Max: s, P5: s, P95: s}
	if q.ScoreStderr != nil && *q.ScoreStderr > 0 {
		se := *q.ScoreStderr
		qd.Std = se
		qd.CI = &CI{Lower: s - z*se, Upper: s + z*se, Level: o.Level, Method: MethodNormal,
			FallbackReason: "one score per run: interval from lm-eval's stderr, normal approximation"}
	} else {
		qd.CI = &CI{Lower: s, Upper: s, Level: o.Level, Method: MethodNone, FallbackReason: "lm-eval gave no stderr for some scored task"}
	}
	rs.Metrics = append(rs.Metrics, MetricStats{Name: MetricQuality, Unit: "score", Description: qd})
	if q.Energy.RawJ != nil {
		e := *q.Energy.RawJ
		rs.Metrics = append(rs.Metrics, MetricStats{Name: MetricQualityScoringJ, Unit: "J",
			Description: Description{N: 1, Mean: e, Min: e, Max: e, P5: e, P95: e}})
	}
	var x []float64
	for _, v := range epr {
		if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			x = append(x, v)
		}
	}
	if len(x) == 0 {
		return
	}
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	qpj := s / mean
	d := Description{N: len(x), Mean: qpj}
	per := make([]float64, len(x))
	for i, v := range x {
		per[i] = s / v
	}
	d.Min, d.Max = slices.Min(per), slices.Max(per)
	se := 0.0
	if q.ScoreStderr != nil {
		se = *q.ScoreStderr
	}
	if len(x) == 1 && se == 0 {
		d.CI = &CI{Lower: qpj, Upper: qpj, Level: o.Level, Method: MethodNone, FallbackReason: "one cycle and no score stderr: nothing to resample"}
	} else {
		rng := rand.New(rand.NewPCG(o.Seed, qualityBootstrapStream))
		reps := make([]float64, o.Resamples)
		for b := range reps {
			var m float64
			for range x {
				m += x[rng.IntN(len(x))]
			}
			m /= float64(len(x))
			reps[b] = (s + se*rng.NormFloat64()) / m
		}
		slices.Sort(reps)
		lo, hi := quantileSorted(reps, (1-o.Level)/2), quantileSorted(reps, 1-(1-o.Level)/2)
		d.CI = &CI{Lower: lo, Upper: hi, Level: o.Level, Method: MethodParametricBoot, Resamples: o.Resamples}
	}
	rs.Metrics = append(rs.Metrics, MetricStats{Name: MetricQualityPerJoule, Unit: "score/J", Description: d})
}
