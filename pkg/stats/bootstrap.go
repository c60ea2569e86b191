// Package stats turns repeated measurements (one value per cycle of a run)
// into the numbers a researcher reports: mean, spread, percentiles and a
// bootstrap confidence interval, and records how they were obtained.
//
// The confidence interval is the bias-corrected and accelerated (BCa)
// bootstrap of Efron (1987), as described in Efron & Tibshirani, "An
// Introduction to the Bootstrap" (1993), chapter 14, and as computed by
// scipy.stats.bootstrap(method="BCa"): the bias correction z0 comes from the
// share of bootstrap replicates below the estimate (ties count half), the
// acceleration a from the jackknife, and the interval ends are linearly
// interpolated quantiles of the replicates. Where BCa is undefined (all
// values equal, fewer than 3 values, every replicate on one side of the
// estimate, a degenerate jackknife) the interval falls back to the percentile
// method and the reason is recorded, never silently.
package stats

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// bootstrapStream is the PCG stream of every bootstrap ("llem").
const bootstrapStream = 0x6c6c656d

// Defaults used when Options leaves a field zero.
//
// DefaultResamples is 10000 because of the Monte Carlo error of the
// interval's endpoints: repeating the bootstrap with 300 seeds on
// lognormal samples (σ 0.5 and 1; n 5, 10 and 30), the standard deviation
// of an endpoint was up to 7.5% of the interval's width at 1000
// resamples, 6.3% at 2000, 4.8% at 5000 and 3.0% at 10000 (the worst case,
// n = 5 with σ = 1; at n ≥ 10 at most 1.3%). docs/results.md has the table
// (TestMeasureMC reproduces it); each CI reports its own MCError.
const (
	DefaultResamples = 10000
	DefaultSeed      = 42
	DefaultLevel     = 0.95
)

// CI methods recorded in CI.Method.
const (
	MethodBCa        = "bca"
	MethodPercentile = "percentile"
	MethodNone       = "none"
)

// Options configures a bootstrap. The zero value means DefaultResamples
// resamples, seed 42 and a 95% interval.
type Options struct {
	Resamples int     `json:"resamples"`
	Seed      uint64  `json:"seed"`
	Level     float64 `json:"confidence_level"`
}

func (o Options) withDefaults() Options {
	if o.Resamples <= 0 {
		o.Resamples = DefaultResamples
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Level <= 0 || o.Level >= 1 {
		o.Level = DefaultLevel
	}
	return o
}

// CI is a confidence interval and how it was computed.
type CI struct {
	Lower     float64 `json:"lower"`
	Upper     float64 `json:"upper"`
	Level     float64 `json:"level"`
	Method    string  `json:"method"`
	Resamples int     `json:"resamples"`
	// FallbackReason says why Method is not "bca" (empty when it is).
	FallbackReason string `json:"fallback_reason,omitempty"`
	// Z0 and Acceleration are the BCa constants (zero unless Method is bca).
	Z0           float64 `json:"z0,omitempty"`
	Acceleration float64 `json:"acceleration,omitempty"`
	// MCError is the Monte Carlo standard error of the endpoints (the larger
	// of the two): how much Lower or Upper would move with another seed.
	// An endpoint is the replicates' quantile at level p; its rank among B
	// replicates has binomial spread √(B·p(1−p)), so its standard error is
	// half the distance between the quantiles at p ± √(p(1−p)/B). 0 for a
	// zero-width interval.
	MCError float64 `json:"mc_error"`
}

// Contains reports whether x lies in [Lower, Upper].
func (c CI) Contains(x float64) bool { return x >= c.Lower && x <= c.Upper }

// Overlaps reports whether two intervals share at least one point. Ends
// within rounding (1e-12 relative) of each other touch: the mean of equal
// values summed in a different order may differ in the last bits.
func (c CI) Overlaps(d CI) bool {
	tol := 1e-12 * math.Max(math.Max(math.Abs(c.Lower), math.Abs(c.Upper)), math.Max(math.Abs(d.Lower), math.Abs(d.Upper)))
	return c.Lower <= d.Upper+tol && d.Lower <= c.Upper+tol
}

// endpoint is the quantile of reps at level p (quantileSorted's value)
// and its Monte Carlo standard error (see CI.MCError): half the distance
// between the quantiles at p ± √(p(1−p)/B). The three quantiles need only
// the order statistics of a narrow band of ranks, so reps is partitioned
// twice (quickselect) and the band sorted, rather than selected three
// times over. reps is reordered in place.
func endpoint(reps []float64, p float64) (q, mcErr float64) {
	n := len(reps)
	s := math.Sqrt(p * (1 - p) / float64(n))
	lo, hi := math.Max(0, p-s), math.Min(1, p+s)
	rank := func(q float64) int { return int(math.Floor(q * float64(n-1))) }
	kmin, kmax := rank(lo), min(n-1, rank(hi)+1)
	selectKth(reps, kmax)
	if kmin < kmax {
		selectKth(reps[:kmax], kmin)
		slices.Sort(reps[kmin:kmax])
	}
	band := reps[:kmax+1] // ranks kmin..kmax in order; below kmin unused
	at := func(q float64) float64 {
		h := q * float64(n-1)
		i := int(math.Floor(h))
		if i+1 > kmax || h == float64(i) {
			return band[i]
		}
		return band[i] + (h-float64(i))*(band[i+1]-band[i])
	}
	return at(p), (at(hi) - at(lo)) / 2
}

// Mean is the statistic most summaries bootstrap.
func Mean(x []float64) float64 { return stat.Mean(x, nil) }

// Bootstrap computes a BCa confidence interval for statistic(data).
// statistic must not keep or modify its argument.
func Bootstrap(data []float64, statistic func([]float64) float64, o Options) CI {
	buf := make([]float64, len(data))
	return BootstrapIndexed(len(data), func(idx []int) float64 {
		buf = buf[:len(idx)]
		for i, j := range idx {
			buf[i] = data[j]
		}
		return statistic(buf)
	}, o)
}

// BootstrapIndexed is Bootstrap for statistics of several columns (such as a
// correlation): statistic receives the indices of one resample (or of the
// jackknife sample) into n observations and evaluates itself on those rows.
func BootstrapIndexed(n int, statistic func(idx []int) float64, o Options) CI {
	o = o.withDefaults()
	ci := CI{Level: o.Level, Resamples: o.Resamples, Method: MethodNone}
	if n == 0 {
		ci.Lower, ci.Upper = math.NaN(), math.NaN()
		ci.FallbackReason = "no values"
		ci.Resamples = 0
		return ci
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	theta := statistic(all)
	if n == 1 {
		ci.Lower, ci.Upper = theta, theta
		ci.FallbackReason = "one value: no spread to resample"
		ci.Resamples = 0
		return ci
	}

	rng := rand.New(rand.NewPCG(o.Seed, bootstrapStream))
	reps := make([]float64, o.Resamples)
	idx := make([]int, n)
	for b := range reps {
		for i := range idx {
			idx[i] = rng.IntN(n)
		}
		reps[b] = statistic(idx)
	}
	return fromReplicates(theta, reps, func() []float64 { return jackknife(n, statistic) }, o.Level, n)
}

// jackknife returns the n leave-one-out values of statistic.
func jackknife(n int, statistic func(idx []int) float64) []float64 {
	out := make([]float64, n)
	idx := make([]int, 0, n-1)
	for skip := range n {
		idx = idx[:0]
		for i := range n {
			if i != skip {
				idx = append(idx, i)
			}
		}
		out[skip] = statistic(idx)
	}
	return out
}

// BCaFromReplicates computes the interval from an estimate, its bootstrap
// replicates and its jackknife values. It is exported so that callers with
// their own resampling (and the tests, with exhaustive resampling) can reuse
// the exact interval arithmetic. reps is reordered in place.
func BCaFromReplicates(theta float64, reps, jack []float64, level float64) CI {
	return fromReplicates(theta, reps, func() []float64 { return jack }, level, len(jack))
}

func fromReplicates(theta float64, reps []float64, jackFn func() []float64, level float64, n int) CI {
	ci := CI{Level: level, Resamples: len(reps)}
	alpha := (1 - level) / 2
	// Quantiles by selection (O(B) each) rather than a full sort: a study
	// summary computes tens of thousands of intervals.
	percentile := func(reason string) CI {
		ci.Method = MethodPercentile
		ci.FallbackReason = reason
		var e1, e2 float64
		ci.Lower, e1 = endpoint(reps, alpha)
		ci.Upper, e2 = endpoint(reps, 1-alpha)
		ci.MCError = math.Max(e1, e2)
		return ci
	}
	lo, hi := reps[0], reps[0]
	for _, v := range reps {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if lo == hi {
		ci.Method = MethodNone
		ci.Lower, ci.Upper = lo, lo
		ci.FallbackReason = "all resampled values equal: zero-width interval"
		return ci
	}
	if n < 3 {
		return percentile("fewer than 3 values: BCa acceleration is unreliable")
	}

	// Bias correction: share of replicates below theta, ties counted half
	// (scipy's _percentile_of_score). Resamples that are permutations of
	// the sample give theta exactly in real arithmetic but differ from it by
	// rounding (summation order), so values within a few ulps of theta count
	// as ties; small cycle counts make such ties common.
	tol := 1e-12 * math.Max(math.Abs(theta), hi-lo)
	var below, ties int
	for _, v := range reps {
		switch {
		case v < theta-tol:
			below++
		case v <= theta+tol:
			ties++
		}
	}
	p := (2*float64(below) + float64(ties)) / (2 * float64(len(reps)))
	z0 := distuv.UnitNormal.Quantile(p)
	if math.IsInf(z0, 0) || math.IsNaN(z0) {
		return percentile("every resample lies on one side of the estimate: BCa bias correction is infinite")
	}

	jack := jackFn()
	var mean float64
	for _, v := range jack {
		mean += v
	}
	mean /= float64(len(jack))
	var num, den float64
	for _, v := range jack {
		d := mean - v
		num += d * d * d
		den += d * d
	}
	if den == 0 || math.IsNaN(den) || math.IsInf(den, 0) {
		return percentile("jackknife values all equal: BCa acceleration undefined")
	}
	a := num / (6 * math.Pow(den, 1.5))

	adj := func(q float64) float64 {
		z := distuv.UnitNormal.Quantile(q)
		return distuv.UnitNormal.CDF(z0 + (z0+z)/(1-a*(z0+z)))
	}
	a1, a2 := adj(alpha), adj(1-alpha)
	if math.IsNaN(a1) || math.IsNaN(a2) || a1 >= a2 {
		return percentile("BCa-adjusted quantiles are not ordered: acceleration too large for this sample")
	}
	ci.Method = MethodBCa
	ci.Z0, ci.Acceleration = z0, a
	var e1, e2 float64
	ci.Lower, e1 = endpoint(reps, a1)
	ci.Upper, e2 = endpoint(reps, a2)
	ci.MCError = math.Max(e1, e2)
	return ci
}

// quantileSelect is quantileSorted without sorting: it partially orders x
// in place (quickselect) to find the two order statistics it interpolates.
func quantileSelect(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	h := q * float64(len(x)-1)
	if q <= 0 {
		h = 0
	}
	if q >= 1 {
		h = float64(len(x) - 1)
	}
	i := int(math.Floor(h))
	lo := selectKth(x, i)
	if i+1 >= len(x) || h == float64(i) {
		return lo
	}
	// After selectKth, x[i+1:] holds the values ≥ x[i]: the next order
	// statistic is their minimum.
	next := x[i+1]
	for _, v := range x[i+2:] {
		if v < next {
			next = v
		}
	}
	return lo + (h-float64(i))*(next-lo)
}

// selectKth rearranges x so that x[k] is the k-th smallest value, with
// smaller-or-equal values before it and greater-or-equal after (Hoare
// partition quickselect, median-of-three pivot).
func selectKth(x []float64, k int) float64 {
	lo, hi := 0, len(x)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if x[mid] < x[lo] {
			x[mid], x[lo] = x[lo], x[mid]
		}
		if x[hi] < x[lo] {
			x[hi], x[lo] = x[lo], x[hi]
		}
		if x[hi] < x[mid] {
			x[hi], x[mid] = x[mid], x[hi]
		}
		pivot := x[mid]
		i, j := lo, hi
		for i <= j {
			for x[i] < pivot {
				i++
			}
			for x[j] > pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return x[k]
		}
	}
	return x[k]
}

// quantileSorted is the linearly interpolated quantile of sorted x (type 7
// of Hyndman & Fan, numpy's default), which scipy.stats.bootstrap also uses.
func quantileSorted(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	if q <= 0 {
		return x[0]
	}
	if q >= 1 {
		return x[len(x)-1]
	}
	h := q * float64(len(x)-1)
	i := int(math.Floor(h))
	if i+1 >= len(x) {
		return x[len(x)-1]
	}
	return x[i] + (h-float64(i))*(x[i+1]-x[i])
}
