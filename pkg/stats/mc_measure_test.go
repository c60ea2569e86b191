package stats

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"gonum.org/v1/gonum/stat"
)

// TestMeasureMC prints the Monte Carlo error table (LLEM_MC_MEASURE=1).
func TestMeasureMC(t *testing.T) {
	if os.Getenv("LLEM_MC_MEASURE") == "" {
		t.Skip("set LLEM_MC_MEASURE=1")
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for _, n := range []int{5, 10, 30} {
		for _, sigma := range []float64{0.5, 1.0} {
			x := make([]float64, n)
			for i := range x {
				x[i] = math.Exp(sigma * rng.NormFloat64())
			}
			for _, B := range []int{1000, 2000, 5000, 10000, 20000} {
				var los, his, widths []float64
				for seed := range 300 {
					ci := bootstrapMean(x, Options{Resamples: B, Seed: uint64(seed + 1), Level: 0.95})
					los = append(los, ci.Lower)
					his = append(his, ci.Upper)
					widths = append(widths, ci.Upper-ci.Lower)
				}
				w := stat.Mean(widths, nil)
				t.Logf("n=%2d sigma=%.1f B=%5d  sd(lo)/w=%.4f sd(hi)/w=%.4f", n, sigma, B, stat.StdDev(los, nil)/w, stat.StdDev(his, nil)/w)
			}
		}
	}
}

// TestMCErrorMatchesSeedSpread: the MCError a CI reports agrees (within a
// factor of 2) with the spread of its endpoints over 200 seeds, on skewed
// data, and shrinks as resamples grow; at the default it is under 3% of
// the width.
func TestMCErrorMatchesSeedSpread(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 3))
	x := make([]float64, 12)
	for i := range x {
		x[i] = math.Exp(rng.NormFloat64())
	}
	prev := math.Inf(1)
	for _, B := range []int{1000, DefaultResamples} {
		var los, his, reported, widths []float64
		for seed := range 200 {
			ci := bootstrapMean(x, Options{Resamples: B, Seed: uint64(seed + 1)})
			if ci.Method != MethodBCa {
				t.Fatalf("method %s (%s)", ci.Method, ci.FallbackReason)
			}
			los, his = append(los, ci.Lower), append(his, ci.Upper)
			reported = append(reported, ci.MCError)
			widths = append(widths, ci.Upper-ci.Lower)
		}
		measured := math.Max(stat.StdDev(los, nil), stat.StdDev(his, nil))
		rep := stat.Mean(reported, nil)
		w := stat.Mean(widths, nil)
		t.Logf("B=%d: measured endpoint SD %.4g (%.2f%% of width), reported MCError %.4g", B, measured, 100*measured/w, rep)
		if rep < measured/2 || rep > measured*2 {
			t.Errorf("B=%d: reported MC error %.4g, measured %.4g", B, rep, measured)
		}
		if rep >= prev {
			t.Errorf("B=%d: MC error %.4g did not shrink from %.4g", B, rep, prev)
		}
		prev = rep
		if B == DefaultResamples && measured/w > 0.03 {
			t.Errorf("default resamples: endpoint SD %.2f%% of the width", 100*measured/w)
		}
	}
}

// TestCachedResamplesSameInterval: the summariser's shared resample
// indices give the interval Describe computes alone, bit for bit.
func TestCachedResamplesSameInterval(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 9))
	cache := resampleCache{}
	for _, n := range []int{2, 3, 5, 5, 8, 3} {
		x := make([]float64, n)
		for i := range x {
			x[i] = math.Exp(rng.NormFloat64())
		}
		o := Options{Resamples: 3000}
		a, b := Describe(x, o), describe(x, o, cache)
		if *a.CI != *b.CI || a.Mean != b.Mean {
			t.Errorf("n=%d: alone %+v, cached %+v", n, *a.CI, *b.CI)
		}
	}
}

// TestEndpointMatchesSortedQuantiles: endpoint's partial ordering gives
// the quantiles of the fully sorted replicates.
func TestEndpointMatchesSortedQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, n := range []int{2, 7, 100, 1000, 10000} {
		x := make([]float64, n)
		for i := range x {
			x[i] = math.Round(rng.NormFloat64()*50) / 10 // ties too
		}
		sorted := slices.Clone(x)
		slices.Sort(sorted)
		for _, p := range []float64{0, 0.001, 0.025, 0.3, 0.5, 0.975, 0.999, 1} {
			y := slices.Clone(x)
			q, e := endpoint(y, p)
			s := math.Sqrt(p * (1 - p) / float64(n))
			wantE := (quantileSorted(sorted, math.Min(1, p+s)) - quantileSorted(sorted, math.Max(0, p-s))) / 2
			if q != quantileSorted(sorted, p) || e != wantE {
				t.Errorf("n=%d p=%v: endpoint %v ± %v, sorted %v ± %v", n, p, q, e, quantileSorted(sorted, p), wantE)
			}
		}
	}
}
