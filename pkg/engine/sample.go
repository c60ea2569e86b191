package engine

import (
	"fmt"
	"math"
	"sort"

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

// sample applies temperature, top-k, top-p, min-p and draws a token.
func (sm *sampler) sample(logits []float32) int {
	s := sm.s
	cands := sm.cands[:0]
	for i, v := range logits {
		if !math.IsInf(float64(v), -1) {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 { // everything masked: fall back to the argmax
		return 0
	}
	temp := float64(s.Temperature)
	lg := func(i int) float64 { return float64(logits[i]) / temp }
	// Sort candidates by descending logit (stable on index for determinism).
	needSort := (s.TopK > 0 && s.TopK < len(cands)) || (s.TopP > 0 && s.TopP < 1)
	if needSort {
		sort.SliceStable(cands, func(a, b int) bool { return logits[cands[a]] > logits[cands[b]] })
	}
	if s.TopK > 0 && s.TopK < len(cands) {
		// HF keeps every token whose logit is >= the k-th largest (ties kept).
		kth := logits[cands[s.TopK-1]]
		n := s.TopK
		for n < len(cands) && logits[cands[n]] >= kth {
			n++
		}
		cands = cands[:n]
	}
	probs := softmaxOver(sm.probs[:0], cands, lg)
	if s.TopP > 0 && s.TopP < 1 {
		// HF sorts ascending and removes tokens whose cumulative probability
		// is <= 1-top_p; descending, that keeps the prefix up to and
		// including the token where the cumulative mass first exceeds top_p,
		// and always at least one token.
		cum := 0.0
		n := len(cands)
		for i, p := range probs {
			cum += p
			if cum >= float64(s.TopP) {
				n = i + 1
				break
			}
		}
		cands = cands[:n]
		probs = softmaxOver(probs[:0], cands, lg)
	}
	if s.MinP > 0 {
		top := 0.0
		for _, p := range probs {
			top = max(top, p)
		}
		thr := float64(s.MinP) * top
		kept := cands[:0]
		var kp []float64
		for i, c := range cands {
			if probs[i] >= thr {
				kept = append(kept, c)
				kp = append(kp, probs[i])
			}
		}
		cands = kept
		probs = softmaxOver(kp[:0], cands, lg)
	}
	sm.cands, sm.probs = cands, probs
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

// softmaxOver returns the softmax of lg over cands, in float64.
func softmaxOver(dst []float64, cands []int, lg func(int) float64) []float64 {
	mx := math.Inf(-1)
	for _, c := range cands {
		mx = max(mx, lg(c))
	}
	sum := 0.0
	for _, c := range cands {
		e := math.Exp(lg(c) - mx)
		dst = append(dst, e)
		sum += e
	}
	for i := range dst {
		dst[i] /= sum
	}
	return dst
}
