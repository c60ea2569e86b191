package engine

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/llenergymeasure/llem/internal/errs"
)

// Stepper runs continuous batching: sequences join and leave between
// forward passes, and each Step is one pass over the prefill rows of every
// sequence added since the last step plus one decode row per running
// sequence. It is what an inference server needs (requests arrive while
// others decode); Generate is the fixed-batch special case. A Stepper is
// used from one goroutine; each Step holds the model's lock.
type Stepper struct {
	m    *Model
	f    *fwd
	live []*Seq
	rows []row
}

// NewStepper returns a Stepper over m. Close releases its workers.
func (m *Model) NewStepper() *Stepper { return &Stepper{m: m, f: m.newFwd()} }

// Close releases the Stepper's kernel workers.
func (st *Stepper) Close() { st.f.close() }

// SeqRequest is one sequence to run.
type SeqRequest struct {
	Prompt []int
	// MaxNewTokens may be 0 only with PromptLogprobs (score the prompt,
	// generate nothing).
	MaxNewTokens int
	Sampling     Sampling
	Seed         int64
	// Logprobs asks for each generated token's log-probability and the
	// TopLogprobs most likely alternatives; PromptLogprobs for the same over
	// the prompt (echo), position 0 having none.
	Logprobs       bool
	TopLogprobs    int
	PromptLogprobs bool
}

// TokenLogprob is a token and its log-probability under the model's raw
// distribution (log-softmax of the logits, before sampling settings).
type TokenLogprob struct {
	Token   int
	Logprob float64
}

// Emitted is one token a Step produced for a sequence.
type Emitted struct {
	Seq     *Seq
	Token   int
	Logprob float64        // when Logprobs
	Top     []TokenLogprob // when TopLogprobs > 0, most likely first
	// Finish is "eos" or "length" on a sequence's last token, else "".
	Finish string
}

// Seq is a running sequence.
type Seq struct {
	req    SeqRequest
	cache  *Sequence
	smp    *sampler
	tokens []int
	next   int // the token to feed at the next decode step (-1: prefill pending)
	done   bool
	// Prompt logprobs, filled by the prefill step when asked: entry i is
	// prompt token i's log-probability given tokens < i (entry 0 empty).
	promptLP  []TokenLogprob
	promptTop [][]TokenLogprob
}

// Tokens are the tokens generated so far.
func (s *Seq) Tokens() []int { return s.tokens }

// Done reports whether the sequence finished (or was removed).
func (s *Seq) Done() bool { return s.done }

// PromptLogprobs returns the prompt's log-probabilities after the prefill
// step (see SeqRequest.PromptLogprobs).
func (s *Seq) PromptLogprobs() ([]TokenLogprob, [][]TokenLogprob) { return s.promptLP, s.promptTop }

// Add validates req and queues it; its prefill runs in the next Step.
func (st *Stepper) Add(req SeqRequest) (*Seq, error) {
	cfg := st.m.cfg
	if err := req.Sampling.Validate(); err != nil {
		return nil, err
	}
	if len(req.Prompt) == 0 {
		return nil, errs.BadInput(fmt.Errorf("empty prompt"), "give at least one token")
	}
	if req.MaxNewTokens < 0 || (req.MaxNewTokens == 0 && !req.PromptLogprobs) {
		return nil, errs.BadInput(fmt.Errorf("%d new tokens asked", req.MaxNewTokens), "ask for at least 1 token (0 only to score the prompt with echo and logprobs)")
	}
	if n := len(req.Prompt) + req.MaxNewTokens; n > cfg.MaxPositionEmbeddings {
		return nil, errs.BadInput(fmt.Errorf("prompt (%d tokens) plus max tokens (%d) exceed the model's %d positions", len(req.Prompt), req.MaxNewTokens, cfg.MaxPositionEmbeddings),
			"shorten the prompt or lower max_tokens")
	}
	for _, t := range req.Prompt {
		if t < 0 || t >= cfg.VocabSize {
			return nil, errs.BadInput(fmt.Errorf("token id %d outside the vocabulary of %d", t, cfg.VocabSize), "use token ids from the model's own tokenizer")
		}
	}
	if req.TopLogprobs < 0 || req.TopLogprobs > cfg.VocabSize {
		return nil, errs.BadInput(fmt.Errorf("%d top logprobs asked", req.TopLogprobs), fmt.Sprintf("ask for 0 to %d", cfg.VocabSize))
	}
	s := &Seq{req: req, next: -1,
		cache:  st.m.NewSequence(max(len(req.Prompt), len(req.Prompt)+req.MaxNewTokens-1)),
		smp:    newSampler(req.Sampling, req.Seed, cfg.VocabSize, cfg.EOSTokenIDs, req.Prompt),
		tokens: make([]int, 0, req.MaxNewTokens)}
	st.live = append(st.live, s)
	return s, nil
}

// Remove drops a sequence (a client went away); it frees its slot before
// the next Step.
func (st *Stepper) Remove(s *Seq) {
	s.done = true
	st.live = slices.DeleteFunc(st.live, func(x *Seq) bool { return x == s })
}

// Len is the number of sequences running or waiting for their prefill.
func (st *Stepper) Len() int { return len(st.live) }

// Step runs one forward pass over every live sequence and returns the token
// each produced. Finished sequences leave the batch.
func (st *Stepper) Step(ctx context.Context) ([]Emitted, error) {
	if len(st.live) == 0 {
		return nil, nil
	}
	m := st.m
	m.mu.Lock()
	defer m.mu.Unlock()
	st.rows = st.rows[:0]
	var logitRows []int
	type span struct{ first, last int } // logit rows of a sequence
	spans := make([]span, len(st.live))
	for k, s := range st.live {
		first := len(logitRows)
		if s.next < 0 {
			for p, t := range s.req.Prompt {
				st.rows = append(st.rows, row{seq: s.cache, pos: p, tok: t})
				if s.req.PromptLogprobs || p == len(s.req.Prompt)-1 {
					logitRows = append(logitRows, len(st.rows)-1)
				}
			}
		} else {
			st.rows = append(st.rows, row{seq: s.cache, pos: s.cache.n, tok: s.next})
			logitRows = append(logitRows, len(st.rows)-1)
		}
		spans[k] = span{first, len(logitRows) - 1}
	}
	logits, err := st.f.forward(ctx, st.rows, logitRows)
	if err != nil {
		return nil, err
	}
	V := m.cfg.VocabSize
	var out []Emitted
	kept := st.live[:0]
	for k, s := range st.live {
		sp := spans[k]
		if s.next < 0 && s.req.PromptLogprobs {
			// Row j's logits predict prompt token j+1.
			s.promptLP = make([]TokenLogprob, len(s.req.Prompt))
			s.promptTop = make([][]TokenLogprob, len(s.req.Prompt))
			s.promptLP[0] = TokenLogprob{Token: s.req.Prompt[0], Logprob: math.NaN()}
			for j := 0; j+1 < len(s.req.Prompt); j++ {
				l := logits[(sp.first+j)*V : (sp.first+j+1)*V]
				tok := s.req.Prompt[j+1]
				lse := logSumExp(l)
				s.promptLP[j+1] = TokenLogprob{Token: tok, Logprob: float64(l[tok]) - lse}
				s.promptTop[j+1] = topLogprobs(l, lse, max(1, s.req.TopLogprobs))
			}
		}
		if s.req.MaxNewTokens == 0 {
			s.done = true
			out = append(out, Emitted{Seq: s, Token: -1, Finish: "length"})
			continue
		}
		l := logits[sp.last*V : (sp.last+1)*V]
		e := Emitted{Seq: s}
		var lse float64
		if s.req.Logprobs {
			lse = logSumExp(l)
			if s.req.TopLogprobs > 0 {
				e.Top = topLogprobs(l, lse, s.req.TopLogprobs)
			}
			l = append([]float32(nil), l...) // the sampler edits its row in place
		}
		tok := s.smp.next(l, len(s.tokens))
		if s.req.Logprobs {
			e.Logprob = float64(logits[sp.last*V+tok]) - lse
		}
		s.smp.observe(tok)
		s.tokens = append(s.tokens, tok)
		e.Token = tok
		switch {
		case !s.req.Sampling.IgnoreEOS && slices.Contains(m.cfg.EOSTokenIDs, tok):
			e.Finish = "eos"
		case len(s.tokens) >= s.req.MaxNewTokens:
			e.Finish = "length"
		}
		out = append(out, e)
		if e.Finish != "" {
			s.done = true
			continue
		}
		s.next = tok
		kept = append(kept, s)
	}
	clear(st.live[len(kept):])
	st.live = kept
	return out, nil
}

func logSumExp(l []float32) float64 {
	mx := math.Inf(-1)
	for _, v := range l {
		mx = max(mx, float64(v))
	}
	var sum float64
	for _, v := range l {
		sum += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(sum)
}

// topLogprobs returns the k most likely tokens of l, most likely first
// (ties by lower id).
func topLogprobs(l []float32, lse float64, k int) []TokenLogprob {
	k = min(k, len(l))
	top := make([]TokenLogprob, 0, k+1)
	for id, v := range l {
		lp := float64(v) - lse
		if len(top) == k && lp <= top[k-1].Logprob {
			continue
		}
		i, _ := slices.BinarySearchFunc(top, lp, func(a TokenLogprob, t float64) int {
			if a.Logprob >= t {
				return -1
			}
			return 1
		})
		top = slices.Insert(top, i, TokenLogprob{Token: id, Logprob: lp})
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}
