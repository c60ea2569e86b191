package stats

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat"
)

// MinCyclesForConfidence is the number of cycles below which a summary warns
// that its interval rests on too few repetitions.
const MinCyclesForConfidence = 5

// Description summarises one metric of one run across its valid cycles.
type Description struct {
	N    int     `json:"n_valid_cycles"`
	Mean float64 `json:"mean"`
	// Std is the sample standard deviation (n-1 denominator); 0 for n = 1.
	Std float64 `json:"std"`
	P5  float64 `json:"p5"`
	P95 float64 `json:"p95"`
	// CV is Std / |Mean| (0 when the mean is 0).
	CV  float64 `json:"cv"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// CI is the bootstrap interval of the mean; nil when there are no values.
	CI *CI `json:"ci,omitempty"`
}

// Describe summarises values (NaNs are dropped as invalid cycles) and
// bootstraps a confidence interval for their mean.
func Describe(values []float64, o Options) Description {
	return describe(values, o, nil)
}

// resampleCache holds the bootstrap's resample indices per sample size.
// Every bootstrap starts its generator from the same seed, so two metrics
// with the same number of values draw the same indices: drawing them once
// per run (not once per metric) gives identical intervals at a fraction of
// the cost (the generator dominated a summary's time).
type resampleCache map[int][]int32

// indices returns the B×n resample indices BootstrapIndexed would draw.
func (c resampleCache) indices(n int, o Options) []int32 {
	if idx, ok := c[n]; ok {
		return idx
	}
	rng := rand.New(rand.NewPCG(o.Seed, bootstrapStream))
	idx := make([]int32, o.Resamples*n)
	for k := range idx {
		idx[k] = int32(rng.IntN(n))
	}
	c[n] = idx
	return idx
}

// describe is Describe; with a cache, the bootstrap of the mean reuses the
// resample indices of earlier metrics of the same size.
func describe(values []float64, o Options, cache resampleCache) Description {
	x := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			x = append(x, v)
		}
	}
	d := Description{N: len(x)}
	if len(x) == 0 {
		return d
	}
	sorted := slices.Clone(x)
	slices.Sort(sorted)
	if sorted[0] == sorted[len(sorted)-1] {
		// Every value equal: the mean is that value exactly (a sum would
		// round it differently for different n), the interval one point.
		v := sorted[0]
		d.Mean, d.Min, d.Max, d.P5, d.P95 = v, v, v, v, v
		ci := CI{Lower: v, Upper: v, Level: o.withDefaults().Level, Method: MethodNone, FallbackReason: "all values equal: zero-width interval"}
		if len(x) == 1 {
			ci.FallbackReason = "one value: no spread to resample"
		}
		d.CI = &ci
		return d
	}
	d.Mean = stat.Mean(x, nil)
	if len(x) > 1 {
		d.Std = stat.StdDev(x, nil)
	}
	if d.Mean != 0 {
		d.CV = d.Std / math.Abs(d.Mean)
	}
	d.Min, d.Max = sorted[0], sorted[len(sorted)-1]
	d.P5 = quantileSorted(sorted, 0.05)
	d.P95 = quantileSorted(sorted, 0.95)
	var ci CI
	if cache != nil && len(x) > 1 {
		ci = bootstrapMeanIndexed(x, o.withDefaults(), cache)
	} else {
		ci = bootstrapMean(x, o)
	}
	d.CI = &ci
	return d
}

// bootstrapMeanIndexed is bootstrapMean over cached resample indices:
// the same replicates, summed in the same order, so the same interval.
func bootstrapMeanIndexed(x []float64, o Options, cache resampleCache) CI {
	n := len(x)
	var theta float64
	for _, v := range x {
		theta += v
	}
	theta /= float64(n)
	idx := cache.indices(n, o)
	reps := make([]float64, o.Resamples)
	for b := range reps {
		var s float64
		for _, i := range idx[b*n : (b+1)*n] {
			s += x[i]
		}
		reps[b] = s / float64(n)
	}
	return fromReplicates(theta, reps, func() []float64 {
		return jackknife(n, func(ix []int) float64 {
			var s float64
			for _, i := range ix {
				s += x[i]
			}
			return s / float64(len(ix))
		})
	}, o.Level, n)
}

// bootstrapMean is Bootstrap(x, Mean, o) without the per-resample copy: the
// mean of a resample is a sum over drawn indices. Same random stream, same
// result as the generic path.
func bootstrapMean(x []float64, o Options) CI {
	return BootstrapIndexed(len(x), func(idx []int) float64 {
		var s float64
		for _, i := range idx {
			s += x[i]
		}
		return s / float64(len(idx))
	}, o)
}

// Percentiles returns the linearly interpolated quantiles qs (0..1) of
// values, ignoring NaNs; nil when no value is left.
func Percentiles(values []float64, qs ...float64) []float64 {
	x := make([]float64, 0, len(values))
	for _, v := range values {
		if !math.IsNaN(v) {
			x = append(x, v)
		}
	}
	if len(x) == 0 {
		return nil
	}
	slices.Sort(x)
	out := make([]float64, len(qs))
	for i, q := range qs {
		out[i] = quantileSorted(x, q)
	}
	return out
}

// SteadyState returns the 1-based cycle at which the rolling coefficient of
// variation over window consecutive cycles first drops below maxCV, or 0 if
// it never does. llem reports it; it does not drop earlier cycles.
func SteadyState(values []float64, window int, maxCV float64) int {
	if window < 2 {
		window = 2
	}
	for end := window; end <= len(values); end++ {
		w := values[end-window : end]
		m := stat.Mean(w, nil)
		if m == 0 {
			continue
		}
		if stat.StdDev(w, nil)/math.Abs(m) < maxCV {
			return end
		}
	}
	return 0
}
