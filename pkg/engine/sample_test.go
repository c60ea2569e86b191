package engine

import (
	"math"
	"slices"
	"testing"
)

// draws samples n tokens from fresh copies of logits with seeds 0..n-1 and
// returns how often each token came up.
func draws(s Sampling, logits []float32, prompt []int, n int) map[int]int {
	got := map[int]int{}
	for i := 0; i < n; i++ {
		sm := newSampler(s, int64(i), len(logits), []int{0}, prompt)
		got[sm.next(slices.Clone(logits), 10)]++
	}
	return got
}

func keys(m map[int]int) []int {
	var k []int
	for t := range m {
		k = append(k, t)
	}
	slices.Sort(k)
	return k
}

// Logits whose softmax is 0.4, 0.3, 0.15, 0.1, 0.05 for tokens 0..4.
var fiveProbs = func() []float32 {
	p := []float64{0.4, 0.3, 0.15, 0.1, 0.05}
	l := make([]float32, len(p))
	for i, v := range p {
		l[i] = float32(math.Log(v))
	}
	return l
}()

func TestSamplingFilters(t *testing.T) {
	cases := []struct {
		name string
		s    Sampling
		want []int
	}{
		{"plain", Sampling{Temperature: 1}, []int{0, 1, 2, 3, 4}},
		{"top_k=2", Sampling{Temperature: 1, TopK: 2}, []int{0, 1}},
		{"top_k=1", Sampling{Temperature: 1, TopK: 1}, []int{0}},
		// cumulative 0.4, 0.7, 0.85: top_p=0.7 keeps 0,1; 0.71 keeps 0,1,2.
		{"top_p=0.69", Sampling{Temperature: 1, TopP: 0.69}, []int{0, 1}},
		{"top_p=0.71", Sampling{Temperature: 1, TopP: 0.71}, []int{0, 1, 2}},
		{"top_p=0.3", Sampling{Temperature: 1, TopP: 0.3}, []int{0}},
		// min_p 0.3 × 0.4 = 0.12: keeps 0.4, 0.3, 0.15.
		{"min_p=0.3", Sampling{Temperature: 1, MinP: 0.3}, []int{0, 1, 2}},
		{"min_p=0.7", Sampling{Temperature: 1, MinP: 0.7}, []int{0, 1}},
		{"top_k+min_p", Sampling{Temperature: 1, TopK: 4, MinP: 0.3}, []int{0, 1, 2}},
		{"greedy", Sampling{Greedy: true, Temperature: 1}, []int{0}},
		{"temperature 0", Sampling{}, []int{0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := keys(draws(c.s, fiveProbs, nil, 3000)); !slices.Equal(got, c.want) {
				t.Errorf("drew tokens %v, want exactly %v", got, c.want)
			}
		})
	}
}

// TestSamplingDistribution: plain sampling follows the softmax, and a low
// temperature sharpens it.
func TestSamplingDistribution(t *testing.T) {
	const n = 20000
	got := draws(Sampling{Temperature: 1}, fiveProbs, nil, n)
	for tok, p := range []float64{0.4, 0.3, 0.15, 0.1, 0.05} {
		f := float64(got[tok]) / n
		if math.Abs(f-p) > 4*math.Sqrt(p*(1-p)/n) {
			t.Errorf("token %d drawn %.4f of the time, want %.2f", tok, f, p)
		}
	}
	cold := draws(Sampling{Temperature: 0.25}, fiveProbs, nil, n)
	// p^4 normalised: 0.4^4/(0.4^4+0.3^4+...) = 0.7425.
	if f := float64(cold[0]) / n; math.Abs(f-0.7425) > 0.02 {
		t.Errorf("temperature 0.25: token 0 drawn %.3f of the time, want 0.74", f)
	}
}

// TestRepetitionPenalty: HF divides positive logits and multiplies negative
// ones of every seen token (once, however often it was seen).
func TestRepetitionPenalty(t *testing.T) {
	logits := []float32{2, -1, 1.9, -0.5, 0.5}
	sm := newSampler(Sampling{Greedy: true, RepetitionPenalty: 2}, 0, 5, nil, []int{0, 1, 0, 0})
	l := slices.Clone(logits)
	if tok := sm.next(l, 0); tok != 2 {
		t.Errorf("greedy with penalty chose %d, want 2", tok)
	}
	if want := []float32{1, -2, 1.9, -0.5, 0.5}; !slices.Equal(l, want) {
		t.Errorf("penalised logits %v, want %v", l, want)
	}
	sm.observe(2)
	l = slices.Clone(logits)
	if tok := sm.next(l, 1); tok != 0 || l[2] != 0.95 {
		t.Errorf("after observing 2: chose %d with logits %v, want 0 (1 > 0.95)", tok, l)
	}
}

func TestSamplingSeeds(t *testing.T) {
	l := make([]float32, 1000)
	for i := range l {
		l[i] = float32(i%7) * 0.1
	}
	seq := func(seed, req int64) []int {
		sm := newSampler(Sampling{Temperature: 1, Seed: seed}, req, len(l), nil, nil)
		var out []int
		for range 20 {
			out = append(out, sm.next(slices.Clone(l), 0))
		}
		return out
	}
	if !slices.Equal(seq(1, 0), seq(1, 0)) {
		t.Error("same seed, different tokens")
	}
	if slices.Equal(seq(1, 0), seq(2, 0)) || slices.Equal(seq(1, 0), seq(1, 1)) {
		t.Error("different seeds give the same tokens")
	}
}

func TestSamplingValidate(t *testing.T) {
	for _, s := range []Sampling{{Temperature: -1}, {TopP: 1.5}, {MinP: -0.1}, {TopK: -1}, {RepetitionPenalty: -1}, {MinNewTokens: -2}} {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if err := (Sampling{Temperature: 0.7, TopP: 0.9, TopK: 50, MinP: 0.05, RepetitionPenalty: 1.1}).Validate(); err != nil {
		t.Error(err)
	}
}

// TestTopPTopKMatchFullSort compares the thresholded top-p and heap top-k
// with the textbook definitions (HF: sort ascending, drop tokens whose
// cumulative probability is <= 1-top_p; keep logits >= the k-th largest) on a
// large random vocabulary.
func TestTopPTopKMatchFullSort(t *testing.T) {
	rng := splitmix64(9)
	const V = 5000
	logits := make([]float32, V)
	for i := range logits {
		logits[i] = float32(rng.float64()*8 - 4)
	}
	logits[17] = logits[18] // a tie
	for _, k := range []int{1, 5, 50, 4999} {
		vals := slices.Clone(logits)
		slices.Sort(vals)
		if got, want := kthLargest(logits, seqInts(V), k), vals[V-k]; got != want {
			t.Errorf("kthLargest(k=%d) = %v, want %v", k, got, want)
		}
	}
	for _, topP := range []float32{0.05, 0.3, 0.9, 0.999} {
		sm := newSampler(Sampling{Temperature: 0.7, TopP: topP}, 0, V, nil, nil)
		got, _ := sm.filter(slices.Clone(logits))
		got = slices.Clone(got)
		slices.Sort(got)

		idx := seqInts(V)
		slices.SortFunc(idx, func(a, b int) int { return cmpF(logits[a], logits[b]) })
		mx := float64(logits[idx[V-1]]) / 0.7
		p := make([]float64, V)
		sum := 0.0
		for i, j := range idx {
			p[i] = math.Exp(float64(logits[j])/0.7 - mx)
			sum += p[i]
		}
		var want []int
		cum := 0.0
		for i, j := range idx {
			cum += p[i] / sum
			if cum > 1-float64(topP) || i == V-1 {
				want = append(want, j)
			}
		}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("top_p=%v keeps %d tokens, full sort keeps %d", topP, len(got), len(want))
		}
	}
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func cmpF(a, b float32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func BenchmarkSampleTopP(b *testing.B) {
	rng := splitmix64(1)
	logits := make([]float32, 49152)
	for i := range logits {
		logits[i] = float32(rng.float64()*10 - 5)
	}
	sm := newSampler(Sampling{Temperature: 0.8, TopP: 0.9, TopK: 0}, 0, len(logits), nil, nil)
	work := make([]float32, len(logits))
	for b.Loop() {
		copy(work, logits)
		sm.next(work, 0)
	}
}
