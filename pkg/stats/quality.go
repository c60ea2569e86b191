package stats

import (
	"maps"
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
// exports (they come from the run's quality records, not from each cycle's
// efficiency record, so they have no Value).
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
	if q != nil && q.Cycle > 0 {
		return // one cycle's scoring: addCycleQuality
	}
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

// addRunQuality appends the quality metrics of a scored run from its
// quality records: the one scoring of quality.scope "run" (addQuality), or
// the scoring after each cycle of "cycle" (addCycleQuality). eprOf is the
// valid cycles' energy per request by cycle.
func addRunQuality(rs *RunStats, qs []*result.QualityRecord, eprOf map[int]float64, o Options) {
	perCycle := false
	for _, q := range qs {
		perCycle = perCycle || q.Cycle > 0
	}
	if !perCycle {
		if len(qs) > 0 {
			addQuality(rs, qs[len(qs)-1], eprValues(eprOf), o)
		}
		return
	}
	addCycleQuality(rs, qs, eprOf, o)
}

// addCycleQuality appends the quality metrics of a run scored after each
// cycle (quality.scope "cycle"), over its ok scorings:
//
// quality = the mean of the cycles' scores, with the BCa interval of that
// mean over cycles, like every cycle metric (Describe); lm-eval's own
// stderr is not folded in: the spread between cycles is what this scope
// measures.
//
// quality_per_joule = mean score / mean energy per request (J) over the
// cycles that have both a score and a valid efficiency record, its BCa
// interval from resampling those cycles in pairs (score and energy of the
// same cycle stay together).
//
// quality_scoring_energy_j = the scorings' energy, described over cycles.
func addCycleQuality(rs *RunStats, qs []*result.QualityRecord, eprOf map[int]float64, o Options) {
	var scores, scoringJ, pairS, pairE []float64
	for _, q := range qs {
		if q.Cycle <= 0 || q.Status != result.StatusOK || q.Score == nil {
			continue
		}
		scores = append(scores, *q.Score)
		if q.Energy.RawJ != nil {
			scoringJ = append(scoringJ, *q.Energy.RawJ)
		}
		if e, ok := eprOf[q.Cycle]; ok && e > 0 && !math.IsInf(e, 0) && !math.IsNaN(e) {
			pairS, pairE = append(pairS, *q.Score), append(pairE, e)
		}
	}
	if len(scores) == 0 {
		return
	}
	rs.Metrics = append(rs.Metrics, MetricStats{Name: MetricQuality, Unit: "score", Description: Describe(scores, o)})
	if len(scoringJ) > 0 {
		rs.Metrics = append(rs.Metrics, MetricStats{Name: MetricQualityScoringJ, Unit: "J", Description: Describe(scoringJ, o)})
	}
	if len(pairS) == 0 {
		return
	}
	ratio := func(idx []int) float64 {
		var s, e float64
		for _, i := range idx {
			s += pairS[i]
			e += pairE[i]
		}
		return s / e // the n's cancel: mean score / mean J per request
	}
	all := make([]int, len(pairS))
	per := make([]float64, len(pairS))
	for i := range all {
		all[i] = i
		per[i] = pairS[i] / pairE[i]
	}
	qpj := ratio(all)
	d := Description{N: len(pairS), Mean: qpj, Min: slices.Min(per), Max: slices.Max(per)}
	if len(per) > 1 {
		sorted := slices.Sorted(slices.Values(per))
		d.P5, d.P95 = quantileSorted(sorted, 0.05), quantileSorted(sorted, 0.95)
	} else {
		d.P5, d.P95 = per[0], per[0]
	}
	ci := BootstrapIndexed(len(pairS), ratio, o)
	d.CI = &ci
	rs.Metrics = append(rs.Metrics, MetricStats{Name: MetricQualityPerJoule, Unit: "score/J", Description: d})
}

// eprValues are eprOf's values in cycle order.
func eprValues(eprOf map[int]float64) []float64 {
	cycles := slices.Sorted(maps.Keys(eprOf))
	out := make([]float64, len(cycles))
	for i, c := range cycles {
		out[i] = eprOf[c]
	}
	return out
}
