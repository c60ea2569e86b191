package engine

import (
	"fmt"
	"math"
	"slices"

	"github.com/llenergymeasure/llem/internal/errs"
)

// Sampling selects the next token the way transformers' generate() does:
// repetition penalty, then (when sampling) temperature, top-k, top-p and
// min-p, in that order, then a multinomial draw.
type Sampling struct {
	// Greedy takes the argmax (after the repetition penalty). Temperature 0
	// also means greedy.
	Greedy      bool
	Temperature float32
	// TopP keeps the smallest set of tokens whose probability reaches TopP
	// (0 or 1 = off). MinP drops tokens below MinP × the top probability
	// (0 = off). TopK keeps the K highest logits, ties included (0 = off).
	TopP, MinP float32
	// RepetitionPenalty divides positive and multiplies negative logits of
	// every token already in the prompt or output (CTRL/HF semantics;
	// 0 or 1 = off).
	RepetitionPenalty float32
	TopK              int
	// Seed seeds each request's RNG together with Request.Seed.
	Seed int64
	// MinNewTokens suppresses EOS until that many tokens were generated
	// (HF min_new_tokens).
	MinNewTokens int
	// IgnoreEOS keeps generating after EOS until MaxNewTokens (vLLM's
	// ignore_eos): fixed output lengths for benchmarking random weights.
	IgnoreEOS bool
}

// Validate rejects values transformers would reject.
func (s Sampling) Validate() error {
	bad := func(msg string) error {
		return errs.BadInput(fmt.Errorf("check sampling: %s", msg), "see the decoder section of the study schema")
	}
	switch {
	case s.Temperature < 0 || math.IsNaN(float64(s.Temperature)):
		return bad(fmt.Sprintf("temperature %v must be >= 0", s.Temperature))
	case s.TopP < 0 || s.TopP > 1:
		return bad(fmt.Sprintf("top_p %v must be in [0, 1]", s.TopP))
	case s.MinP < 0 || s.MinP > 1:
		return bad(fmt.Sprintf("min_p %v must be in [0, 1]", s.MinP))
	case s.TopK < 0:
		return bad(fmt.Sprintf("top_k %d must be >= 0", s.TopK))
	case s.RepetitionPenalty < 0:
		return bad(fmt.Sprintf("repetition_penalty %v must be > 0", s.RepetitionPenalty))
	case s.MinNewTokens < 0:
		return bad(fmt.Sprintf("min_new_tokens %d must be >= 0", s.MinNewTokens))
	}
	return nil
}

func (s Sampling) greedy() bool { return s.Greedy || s.Temperature == 0 }

// sampler is one request's sampling state: its RNG and the set of tokens
// seen (for the repetition penalty).
type sampler struct {
	s     Sampling
	rng   splitmix64
	seen  []uint64 // bitset over the vocabulary
	list  []int    // tokens in seen, for a cheap penalty pass
	eos   []int
	cands []int
	probs []float64
	items []probIdx
}

// probIdx is a token and its probability, ordered by probability descending
// then token id ascending (a total order, so selection is deterministic).
type probIdx struct {
	p   float64
	idx int
}

func before(a, b probIdx) bool { return a.p > b.p || (a.p == b.p && a.idx < b.idx) }

// nucleus reorders items so that items[:n] is the smallest prefix, in
// probIdx order, whose probability mass reaches topP, and returns n (at least
// 1). It is a quickselect on mass: expected O(len) instead of sorting the
// vocabulary, which matters for flat distributions (random weights) where
// the nucleus is most of a 50k vocabulary.
func nucleus(items []probIdx, topP float64) int {
	lo, hi := 0, len(items)
	need := topP
	for hi-lo > 16 {
		// Median-of-three pivot, moved to hi-1.
		mid := lo + (hi-lo)/2
		a, b, c := lo, mid, hi-1
		if before(items[b], items[a]) {
			a, b = b, a
		}
		if before(items[c], items[b]) {
			b, c = c, b
			if before(items[b], items[a]) {
				a, b = b, a
			}
		}
		items[b], items[hi-1] = items[hi-1], items[b]
		piv := items[hi-1]
		m := lo
		mass := 0.0
		for i := lo; i < hi-1; i++ {
			if before(items[i], piv) {
				items[i], items[m] = items[m], items[i]
				mass += items[m].p
				m++
			}
		}
		items[m], items[hi-1] = items[hi-1], items[m]
		switch {
		case mass >= need:
			hi = m
		case mass+piv.p >= need:
			return m + 1
		default:
			need -= mass + piv.p
			lo = m + 1
		}
	}
	slices.SortFunc(items[lo:hi], func(a, b probIdx) int {
		if before(a, b) {
			return -1
		}
		if before(b, a) {
			return 1
		}
		return 0
	})
	cum := 0.0
	for i := lo; i < hi; i++ {
		cum += items[i].p
		if cum >= need {
			return i + 1
		}
	}
	return max(hi, 1)
}

func newSampler(s Sampling, reqSeed int64, vocab int, eos []int, prompt []int) *sampler {
	rng := splitmix64(uint64(s.Seed)*0x9e3779b97f4a7c15 ^ uint64(reqSeed))
	rng.next()
	sm := &sampler{s: s, rng: rng, seen: make([]uint64, (vocab+63)/64), eos: eos}
	for _, t := range prompt {
		sm.observe(t)
	}
	return sm
}

func (sm *sampler) observe(tok int) {
	if sm.seen[tok/64]&(1<<(tok%64)) == 0 {
		sm.seen[tok/64] |= 1 << (tok % 64)
		sm.list = append(sm.list, tok)
	}
}

// next picks a token from logits (modified in place); generated is how many
// tokens this request already produced.
func (sm *sampler) next(logits []float32, generated int) int {
	s := sm.s
	if p := s.RepetitionPenalty; p != 0 && p != 1 {
		for _, t := range sm.list {
			if logits[t] < 0 {
				logits[t] *= p
			} else {
				logits[t] /= p
			}
		}
	}
	if generated < s.MinNewTokens {
		for _, e := range sm.eos {
			logits[e] = float32(math.Inf(-1))
		}
	}
	if s.greedy() {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	return sm.sample(logits)
}

// sample applies temperature, top-k, top-p, min-p and draws a token. It
// never sorts the whole vocabulary: top-k selects with a k-sized heap and
// top-p with a quickselect on probability mass (see nucleus); both give the
// sets a full sort would.
func (sm *sampler) sample(logits []float32) int {
	cands, probs := sm.filter(logits)
	if len(cands) == 0 { // everything masked
		return 0
	}
	u := sm.rng.float64()
	cum := 0.0
	for i, p := range probs {
		cum += p
		if u < cum {
			return cands[i]
		}
	}
	return cands[len(cands)-1]
}

// filter returns the tokens sampling may pick and their probabilities.
func (sm *sampler) filter(logits []float32) ([]int, []float64) {
	s := sm.s
	cands := sm.cands[:0]
	for i, v := range logits {
		if !math.IsInf(float64(v), -1) && !math.IsNaN(float64(v)) {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	invTemp := 1 / float64(s.Temperature)
	if s.TopK > 0 && s.TopK < len(cands) {
		// HF keeps every token whose logit is >= the k-th largest (ties kept).
		kth := kthLargest(logits, cands, s.TopK)
		kept := cands[:0]
		for _, c := range cands {
			if logits[c] >= kth {
				kept = append(kept, c)
			}
		}
		cands = kept
	}
	probs := softmaxOver(sm.probs[:0], cands, logits, invTemp)
	if s.TopP > 0 && s.TopP < 1 {
		// HF sorts ascending and removes tokens whose cumulative probability
		// is <= 1-top_p; in descending order that keeps the prefix up to and
		// including the token where the cumulative mass first reaches top_p,
		// and always at least one token.
		items := sm.items[:0]
		for i, c := range cands {
			items = append(items, probIdx{probs[i], c})
		}
		sm.items = items
		n := nucleus(items, float64(s.TopP))
		// Renormalising the kept probabilities equals a softmax over the
		// kept logits, without recomputing the exponentials.
		cands, probs = cands[:0], probs[:0]
		for _, it := range items[:n] {
			cands = append(cands, it.idx)
			probs = append(probs, it.p)
		}
		renormalise(probs)
	}
	if s.MinP > 0 {
		top := 0.0
		for _, p := range probs {
			top = max(top, p)
		}
		thr := float64(s.MinP) * top
		kept, kp := cands[:0], probs[:0]
		for i, c := range cands {
			if probs[i] >= thr {
				kept = append(kept, c)
				kp = append(kp, probs[i])
			}
		}
		cands, probs = kept, kp
		renormalise(probs)
	}
	sm.cands, sm.probs = cands, probs
	return cands, probs
}

// kthLargest returns the k-th largest logit among cands (1 <= k <
// len(cands)) with a k-element min-heap: O(V log k) instead of a full sort.
func kthLargest(logits []float32, cands []int, k int) float32 {
	h := make([]float32, 0, k)
	for _, c := range cands {
		v := logits[c]
		if len(h) < k {
			h = append(h, v)
			for i := len(h) - 1; i > 0; { // sift up
				p := (i - 1) / 2
				if h[p] <= h[i] {
					break
				}
				h[p], h[i] = h[i], h[p]
				i = p
			}
			continue
		}
		if v <= h[0] {
			continue
		}
		h[0] = v
		for i := 0; ; { // sift down
			l, r, m := 2*i+1, 2*i+2, i
			if l < k && h[l] < h[m] {
				m = l
			}
			if r < k && h[r] < h[m] {
				m = r
			}
			if m == i {
				break
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	return h[0]
}

// softmaxOver returns the softmax of logits[c]*invTemp over cands, in float64.
func softmaxOver(dst []float64, cands []int, logits []float32, invTemp float64) []float64 {
	mx := math.Inf(-1)
	for _, c := range cands {
		mx = max(mx, float64(logits[c]))
	}
	sum := 0.0
	for _, c := range cands {
		e := math.Exp((float64(logits[c]) - mx) * invTemp)
		dst = append(dst, e)
		sum += e
	}
	for i := range dst {
		dst[i] /= sum
	}
	return dst
}

func renormalise(p []float64) {
	sum := 0.0
	for _, v := range p {
		sum += v
	}
	for i := range p {
		p[i] /= sum
	}
}
