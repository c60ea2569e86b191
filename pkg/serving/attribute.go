package serving

import "slices"

// Attribute shares a window's energy among requests by the tokens each
// processed: the window [w0, w1) is cut into bins (the sampling interval),
// each bin's energy (binEnergy(b0, b1), joules) is split among the
// requests in proportion to the tokens they processed in it — a request's
// prompt tokens count at its first token (prefill ends there), each
// generated token at its arrival. Bins in which no token was processed
// (the server idle between requests) are shared by the same rule over the
// whole window, so the attributed energies sum to the window's energy.
// It returns each trace's energy (0 for a request that processed nothing
// inside the window).
func Attribute(traces []Trace, w0, w1, binNs int64, binEnergy func(b0, b1 int64) float64) []float64 {
	out := make([]float64, len(traces))
	if w1 <= w0 || binNs <= 0 {
		return out
	}
	nb := int((w1 - w0 + binNs - 1) / binNs)
	tokens := make([]map[int]float64, nb) // bin → request → tokens
	total := map[int]float64{}            // request → tokens in the window
	add := func(t int64, i int, n float64) {
		if t < w0 || t >= w1 || n <= 0 {
			return
		}
		b := int((t - w0) / binNs)
		if tokens[b] == nil {
			tokens[b] = map[int]float64{}
		}
		tokens[b][i] += n
		total[i] += n
	}
	for i, tr := range traces {
		for j, tk := range tr.TokenNs {
			n := 1.0
			if j == 0 {
				n += float64(tr.PromptTokens)
			}
			add(tk, i, n)
		}
	}
	var idle float64
	for b := range nb {
		b0 := w0 + int64(b)*binNs
		b1 := min(b0+binNs, w1)
		e := binEnergy(b0, b1)
		var sum float64
		for _, n := range tokens[b] {
			sum += n
		}
		if sum == 0 {
			idle += e
			continue
		}
		for i, n := range tokens[b] {
			out[i] += e * n / sum
		}
	}
	var all float64
	for _, n := range total {
		all += n
	}
	if idle > 0 && all > 0 {
		for i, n := range total {
			out[i] += idle * n / all
		}
	}
	return out
}

// Percentiles of xs: n, mean, p50, p90, p99, max.
func Percentiles(xs []float64) (n int, mean, p50, p90, p99, mx float64) {
	if len(xs) == 0 {
		return
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	for _, x := range s {
		mean += x
	}
	return len(s), mean / float64(len(s)), quantile(s, .5), quantile(s, .9), quantile(s, .99), s[len(s)-1]
}
