package engine

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func tinyModel(t testing.TB, name string, opts ...Option) *Model {
	t.Helper()
	m, err := NewRandom(tinyConfigs()[name], 3, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBatchedEqualsSingle: a request gives the same tokens whether it runs
// alone or in a batch with others of different lengths (no cross-talk
// between rows), greedy and sampled.
func TestBatchedEqualsSingle(t *testing.T) {
	ctx := context.Background()
	m := tinyModel(t, "qwen2-bias-untied", WithThreads(2))
	batch := []Request{
		{Prompt: []int{1, 5, 9, 33, 12, 7, 7, 60}, MaxNewTokens: 9, Seed: 0},
		{Prompt: []int{1, 40}, MaxNewTokens: 5, Seed: 1},
		{Prompt: []int{1, 22, 13, 4}, MaxNewTokens: 12, Seed: 2},
	}
	for _, s := range []Sampling{
		{Greedy: true},
		{Temperature: 0.8, TopK: 20, TopP: 0.9, RepetitionPenalty: 1.3, Seed: 11},
		{Temperature: 1.5, MinP: 0.05, Seed: 5},
	} {
		s.IgnoreEOS = true
		got, err := m.Generate(ctx, batch, s, Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range batch {
			alone, err := m.Generate(ctx, []Request{r}, s, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got[i].Tokens, alone[0].Tokens) {
				t.Errorf("sampling %+v request %d: batched %v, alone %v", s, i, got[i].Tokens, alone[0].Tokens)
			}
			if len(got[i].Tokens) != r.MaxNewTokens || got[i].FinishReason != "length" || got[i].PromptTokens != len(r.Prompt) {
				t.Errorf("request %d: %d tokens, reason %q, prompt %d", i, len(got[i].Tokens), got[i].FinishReason, got[i].PromptTokens)
			}
		}
		again, _ := m.Generate(ctx, batch, s, Hooks{})
		for i := range batch {
			if !slices.Equal(again[i].Tokens, got[i].Tokens) {
				t.Errorf("sampling %+v request %d: not deterministic: %v then %v", s, i, got[i].Tokens, again[i].Tokens)
			}
		}
	}
}

// TestGenerateMatchesForward: greedy Generate picks the argmax of the
// logits a plain Forward over the growing sequence gives.
func TestGenerateMatchesForward(t *testing.T) {
	ctx := context.Background()
	m := tinyModel(t, "llama-gqa-tied")
	prompt := []int{1, 9, 8, 7}
	res, err := m.Generate(ctx, []Request{{Prompt: prompt, MaxNewTokens: 6}}, Sampling{Greedy: true, IgnoreEOS: true}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	seq := append([]int(nil), prompt...)
	for i, tok := range res[0].Tokens {
		logits, err := m.Forward(ctx, nil, seq)
		if err != nil {
			t.Fatal(err)
		}
		last := logits[len(logits)-1]
		best := 0
		for j, v := range last {
			if v > last[best] {
				best = j
			}
		}
		if best != tok {
			t.Fatalf("token %d: Generate chose %d, argmax of Forward is %d", i, tok, best)
		}
		seq = append(seq, tok)
	}
}

func TestGenerateStopsAtEOS(t *testing.T) {
	ctx := context.Background()
	m := tinyModel(t, "llama-gqa-tied")
	s := Sampling{Temperature: 1, Seed: 4}
	req := Request{Prompt: []int{1, 3}, MaxNewTokens: 12}
	free := s
	free.IgnoreEOS = true
	r, err := m.Generate(ctx, []Request{req}, free, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	// Declare as EOS the first token (from the third on) not seen before:
	// generation must stop right there. The EOS id does not change the
	// logits or the RNG stream, so the tokens before it are the same.
	toks := r[0].Tokens
	k := 2
	for k < len(toks) && slices.Contains(toks[:k], toks[k]) {
		k++
	}
	if k == len(toks) {
		t.Fatalf("sampled tokens %v have no new token to use as EOS", toks)
	}
	m.cfg.EOSTokenIDs = []int{toks[k]}
	short := req
	short.MaxNewTokens = 2
	got, err := m.Generate(ctx, []Request{req, short}, s, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if want := toks[:k+1]; !slices.Equal(got[0].Tokens, want) || got[0].FinishReason != "eos" {
		t.Errorf("stopped with %v (%s), want %v (eos)", got[0].Tokens, got[0].FinishReason, want)
	}
	if got[1].FinishReason != "length" || !slices.Equal(got[1].Tokens, toks[:2]) {
		t.Errorf("short request: %v (%s), want %v (length)", got[1].Tokens, got[1].FinishReason, toks[:2])
	}
	// min_new_tokens suppresses the EOS until reached.
	s.MinNewTokens = k + 2
	got, err = m.Generate(ctx, []Request{req}, s, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Tokens) < k+2 || slices.Contains(got[0].Tokens[:k+2], toks[k]) {
		t.Errorf("min_new_tokens=%d: %v contains EOS %d early", k+2, got[0].Tokens, toks[k])
	}
}

func TestGenerateHooks(t *testing.T) {
	m := tinyModel(t, "mistral-window")
	var events []string
	var last int64
	tokens := map[int]int{}
	mono := func(tag string) func(int64) {
		return func(ts int64) {
			if ts < last {
				t.Errorf("%s at %d before previous event %d", tag, ts, last)
			}
			last = ts
			events = append(events, tag)
		}
	}
	hooks := Hooks{
		PrefillStart: mono("prefill_start"), PrefillEnd: mono("prefill_end"),
		DecodeStart: mono("decode_start"), DecodeEnd: mono("decode_end"),
		Token: func(req, tok int, ts int64) { tokens[req]++; mono("token")(ts) },
	}
	res, err := m.Generate(context.Background(), []Request{{Prompt: []int{1}, MaxNewTokens: 4}, {Prompt: []int{1, 2, 3}, MaxNewTokens: 1}},
		Sampling{Greedy: true, IgnoreEOS: true}, hooks)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"prefill_start", "token", "token", "prefill_end", "decode_start", "token", "token", "token", "decode_end"}
	if !slices.Equal(events, want) {
		t.Errorf("events %v, want %v", events, want)
	}
	if tokens[0] != len(res[0].Tokens) || tokens[1] != 1 {
		t.Errorf("token hooks %v, results %d and %d", tokens, len(res[0].Tokens), len(res[1].Tokens))
	}
}

func TestGenerateRejects(t *testing.T) {
	m := tinyModel(t, "llama-gqa-tied")
	ctx := context.Background()
	cases := map[string][]Request{
		"empty prompt": {{Prompt: nil, MaxNewTokens: 1}},
		"zero output":  {{Prompt: []int{1}, MaxNewTokens: 0}},
		"too long":     {{Prompt: make([]int, 60), MaxNewTokens: 10}},
		"bad token":    {{Prompt: []int{64}, MaxNewTokens: 1}},
		"negative tok": {{Prompt: []int{-1}, MaxNewTokens: 1}},
	}
	for name, b := range cases {
		if _, err := m.Generate(ctx, b, Sampling{Greedy: true}, Hooks{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := m.Generate(ctx, nil, Sampling{}, Hooks{}); !errors.Is(err, ErrNoRequests) {
		t.Errorf("empty batch: %v", err)
	}
	if _, err := m.Generate(ctx, []Request{{Prompt: []int{1}, MaxNewTokens: 1}}, Sampling{Temperature: -1}, Hooks{}); err == nil {
		t.Error("negative temperature accepted")
	}
}

func TestGenerateCancel(t *testing.T) {
	m := tinyModel(t, "llama-gqa-tied")
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := m.Generate(ctx, []Request{{Prompt: []int{1}, MaxNewTokens: 50}}, Sampling{Greedy: true, IgnoreEOS: true}, Hooks{
		Token: func(int, int, int64) {
			if n++; n == 3 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if n != 3 {
		t.Errorf("%d tokens after cancel at 3", n)
	}
}

// TestThreadsDoNotChangeResults: the split of rows over goroutines only
// changes who computes a dot product, never its value.
func TestThreadsDoNotChangeResults(t *testing.T) {
	ctx := context.Background()
	a, _ := m1(t, 1)
	b, _ := m1(t, 3)
	la, _ := a.Forward(ctx, nil, []int{1, 2, 3, 4, 5})
	lb, _ := b.Forward(ctx, nil, []int{1, 2, 3, 4, 5})
	for p := range la {
		if !slices.Equal(la[p], lb[p]) {
			t.Fatalf("position %d differs between 1 and 3 threads", p)
		}
	}
}

func m1(t *testing.T, threads int) (*Model, error) {
	m, err := NewRandom(tinyConfigs()["llama-mha-bias"], 9, WithThreads(threads))
	if err != nil {
		t.Fatal(err)
	}
	return m, nil
}

// TestBF16Storage: bf16 weights halve the memory and stay close to fp32.
func TestBF16Storage(t *testing.T) {
	ctx := context.Background()
	f := tinyModel(t, "qwen2-bias-untied")
	b := tinyModel(t, "qwen2-bias-untied", WithStorage("bf16"))
	if b.DType() != "bf16" || b.MemoryBytes() >= f.MemoryBytes()*6/10 {
		t.Errorf("bf16 model %s holds %d bytes, fp32 %d", b.DType(), b.MemoryBytes(), f.MemoryBytes())
	}
	lf, _ := f.Forward(ctx, nil, []int{1, 2, 3})
	lb, err := b.Forward(ctx, nil, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for p := range lf {
		for i := range lf[p] {
			if d := lf[p][i] - lb[p][i]; d > 5e-3 || d < -5e-3 {
				t.Fatalf("position %d logit %d: fp32 %v, bf16 %v", p, i, lf[p][i], lb[p][i])
			}
		}
	}
	if _, err := NewRandom(tinyConfigs()["llama-gqa-tied"], 1, WithStorage("int4")); err == nil {
		t.Error("unknown storage accepted")
	}
}

// TestPresetGenerates runs the 15M preset end to end: two models built from
// the same seed generate the same tokens, and a different seed different ones.
func TestPresetGenerates(t *testing.T) {
	ctx := context.Background()
	reqs := []Request{{Prompt: []int{1, 450, 4996, 17354}, MaxNewTokens: 4}, {Prompt: []int{1, 9038}, MaxNewTokens: 3, Seed: 1}}
	s := Sampling{Temperature: 0.9, TopP: 0.95, Seed: 42, IgnoreEOS: true}
	gen := func(seed int64) []Result {
		m, err := Open("random:llama-15m", seed)
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Generate(ctx, reqs, s, Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b, c := gen(42), gen(42), gen(43)
	for i := range reqs {
		if len(a[i].Tokens) != reqs[i].MaxNewTokens || !slices.Equal(a[i].Tokens, b[i].Tokens) {
			t.Errorf("request %d: %v then %v", i, a[i].Tokens, b[i].Tokens)
		}
	}
	if slices.Equal(a[0].Tokens, c[0].Tokens) && slices.Equal(a[1].Tokens, c[1].Tokens) {
		t.Errorf("seeds 42 and 43 generate the same tokens %v", a)
	}
}
