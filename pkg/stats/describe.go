package stats

import (
	"math"
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
	ci := bootstrapMean(x, o)
	d.CI = &ci
	return d
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
