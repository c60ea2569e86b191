package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/clock"
)

// Request is one prompt of a batch.
type Request struct {
	Prompt       []int
	MaxNewTokens int
	// Seed is mixed with Sampling.Seed into this request's RNG, so a
	// request samples the same tokens whatever batch it lands in (set it to
	// the prompt's index in the dataset).
	Seed int64
}

// Hooks observe a Generate call. All are optional and run on the Generate
// goroutine; tNs is pkg/clock.Now() (CLOCK_MONOTONIC ns), the time base of the
// worker protocol.
type Hooks struct {
	// PrefillStart/PrefillEnd bracket the forward pass that produces every
	// request's first token (PrefillEnd comes after the first tokens are
	// sampled and reported).
	PrefillStart func(tNs int64)
	PrefillEnd   func(tNs int64)
	// DecodeStart/DecodeEnd bracket the decode steps; they are not called
	// when every request finished at its first token.
	DecodeStart func(tNs int64)
	DecodeEnd   func(tNs int64)
	// Token reports every generated token of request req (the index in the
	// batch); its first call per request is the time to first token.
	Token func(req int, token int, tNs int64)
}

// Result is one request's output.
type Result struct {
	Tokens       []int  // generated tokens (an EOS that stopped generation included)
	FinishReason string // "eos" or "length"
	PromptTokens int
}

// ErrNoRequests is returned by Generate for an empty batch.
var ErrNoRequests = errors.New("generate: empty batch")

// Generate runs one batch: a single batched prefill over every prompt token
// of every request, then batched decode steps (one token per live request
// per step, all rows against each weight matrix together) with the KV
// cache. A request stops at an EOS token (unless Sampling.IgnoreEOS) or at
// MaxNewTokens. ctx is checked between layers, so cancellation takes effect
// within one layer's work.
func (m *Model) Generate(ctx context.Context, batch []Request, s Sampling, hooks Hooks) ([]Result, error) {
	if len(batch) == 0 {
		return nil, ErrNoRequests
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cfg := m.cfg
	for i, r := range batch {
		if len(r.Prompt) == 0 {
			return nil, errs.BadInput(fmt.Errorf("generate: request %d has an empty prompt", i), "give every request at least one token (e.g. BOS)")
		}
		if r.MaxNewTokens < 1 {
			return nil, errs.BadInput(fmt.Errorf("generate: request %d asks for %d new tokens", i, r.MaxNewTokens), "set max_output_tokens >= 1")
		}
		if n := len(r.Prompt) + r.MaxNewTokens; n > cfg.MaxPositionEmbeddings {
			return nil, errs.BadInput(fmt.Errorf("generate: request %d needs %d positions (prompt %d + output %d), the model has %d",
				i, n, len(r.Prompt), r.MaxNewTokens, cfg.MaxPositionEmbeddings),
				"lower max_input_tokens or max_output_tokens")
		}
		for _, t := range r.Prompt {
			if t < 0 || t >= cfg.VocabSize {
				return nil, errs.BadInput(fmt.Errorf("generate: request %d has token id %d outside the vocabulary of %d", i, t, cfg.VocabSize),
					"use token ids from the model's own tokenizer")
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f := m.newFwd()
	defer f.close()

	n := len(batch)
	seqs := make([]*Sequence, n)
	samplers := make([]*sampler, n)
	results := make([]Result, n)
	var rows []row
	var last []int
	for i, r := range batch {
		// The last output token is never fed back, hence -1.
		seqs[i] = m.NewSequence(len(r.Prompt) + r.MaxNewTokens - 1)
		samplers[i] = newSampler(s, r.Seed, cfg.VocabSize, cfg.EOSTokenIDs, r.Prompt)
		results[i] = Result{PromptTokens: len(r.Prompt), Tokens: make([]int, 0, r.MaxNewTokens)}
		for p, t := range r.Prompt {
			rows = append(rows, row{seq: seqs[i], pos: p, tok: t})
		}
		last = append(last, len(rows)-1)
	}
	call := func(h func(int64)) {
		if h != nil {
			h(clock.Now())
		}
	}
	live := make([]int, 0, n) // requests still generating
	toks := make([]int, n)
	// emit samples the next token of every request in reqs (in parallel:
	// each request has its own sampler), then records and reports them.
	emit := func(logits []float32, reqs []int) {
		V := cfg.VocabSize
		f.p.run(len(reqs), func(_, lo, hi int) {
			for k := lo; k < hi; k++ {
				i := reqs[k]
				toks[k] = samplers[i].next(logits[k*V:(k+1)*V], len(results[i].Tokens))
			}
		})
		t := clock.Now()
		for k, i := range reqs {
			res := &results[i]
			tok := toks[k]
			samplers[i].observe(tok)
			res.Tokens = append(res.Tokens, tok)
			if hooks.Token != nil {
				hooks.Token(i, tok, t)
			}
			switch {
			case !s.IgnoreEOS && slices.Contains(cfg.EOSTokenIDs, tok):
				res.FinishReason = "eos"
			case len(res.Tokens) >= batch[i].MaxNewTokens:
				res.FinishReason = "length"
			default:
				live = append(live, i)
			}
		}
	}

	call(hooks.PrefillStart)
	logits, err := f.forward(ctx, rows, last)
	if err != nil {
		return nil, fmt.Errorf("generate: prefill: %w", err)
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	emit(logits, all)
	call(hooks.PrefillEnd)

	if len(live) == 0 {
		return results, nil
	}
	call(hooks.DecodeStart)
	idx := make([]int, 0, n)
	for len(live) > 0 {
		cur := append([]int(nil), live...)
		live = live[:0]
		rows = rows[:0]
		idx = idx[:0]
		for k, i := range cur {
			res := &results[i]
			rows = append(rows, row{seq: seqs[i], pos: seqs[i].n, tok: res.Tokens[len(res.Tokens)-1]})
			idx = append(idx, k)
		}
		logits, err := f.forward(ctx, rows, idx)
		if err != nil {
			return nil, fmt.Errorf("generate: decode: %w", err)
		}
		emit(logits, cur)
	}
	call(hooks.DecodeEnd)
	return results, nil
}
