package engine

import (
	"context"
	"math"
	"slices"
	"testing"
)

// TestStepperJoinsMidBatch: sequences that join a running batch between
// steps (continuous batching) give the same tokens as Generate running each
// alone, greedy and sampled.
func TestStepperJoinsMidBatch(t *testing.T) {
	ctx := context.Background()
	m := tinyModel(t, "qwen2-bias-untied", WithThreads(2))
	reqs := []Request{
		{Prompt: []int{1, 5, 9, 33, 12, 7, 7, 60}, MaxNewTokens: 9, Seed: 0},
		{Prompt: []int{1, 40}, MaxNewTokens: 5, Seed: 1},
		{Prompt: []int{1, 22, 13, 4}, MaxNewTokens: 12, Seed: 2},
	}
	for _, s := range []Sampling{{Greedy: true, IgnoreEOS: true}, {Temperature: 0.8, TopK: 20, Seed: 11, IgnoreEOS: true}} {
		st := m.NewStepper()
		seqs := make([]*Seq, len(reqs))
		join := []int{0, 2, 3} // step at which request i joins
		for step := 0; step < 40; step++ {
			for i, r := range reqs {
				if join[i] == step {
					var err error
					if seqs[i], err = st.Add(SeqRequest{Prompt: r.Prompt, MaxNewTokens: r.MaxNewTokens, Sampling: s, Seed: r.Seed}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if _, err := st.Step(ctx); err != nil {
				t.Fatal(err)
			}
		}
		st.Close()
		for i, r := range reqs {
			alone, err := m.Generate(ctx, []Request{r}, s, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if !seqs[i].Done() || !slices.Equal(seqs[i].Tokens(), alone[0].Tokens) {
				t.Errorf("sampling %+v request %d: stepped %v, Generate %v", s, i, seqs[i].Tokens(), alone[0].Tokens)
			}
		}
	}
}

// TestStepperLogprobs: the prompt log-probabilities of prompt+x (echo) agree
// with the log-probability the model gave x when it generated it, and the
// top alternatives are sorted and contain the greedy token.
func TestStepperLogprobs(t *testing.T) {
	ctx := context.Background()
	m := tinyModel(t, "qwen2-bias-untied", WithThreads(2))
	st := m.NewStepper()
	defer st.Close()
	prompt := []int{1, 5, 9, 33}
	gen, err := st.Add(SeqRequest{Prompt: prompt, MaxNewTokens: 1, Sampling: Sampling{Greedy: true}, Logprobs: true, TopLogprobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	out, err := st.Step(ctx)
	if err != nil || len(out) != 1 || out[0].Finish == "" || st.Len() != 0 {
		t.Fatalf("%v %+v", err, out)
	}
	e := out[0]
	if len(e.Top) != 3 || e.Top[0].Token != e.Token || e.Top[0].Logprob != e.Logprob || e.Top[1].Logprob > e.Top[0].Logprob || e.Logprob > 0 {
		t.Errorf("greedy token %d logprob %v, top %+v", e.Token, e.Logprob, e.Top)
	}
	echo, err := st.Add(SeqRequest{Prompt: append(slices.Clone(prompt), gen.Tokens()[0]), PromptLogprobs: true, TopLogprobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Step(ctx); err != nil {
		t.Fatal(err)
	}
	lp, top := echo.PromptLogprobs()
	if len(lp) != 5 || !math.IsNaN(lp[0].Logprob) || math.Abs(lp[4].Logprob-e.Logprob) > 1e-4 || top[4][0].Token != e.Token {
		t.Errorf("echo logprobs %+v top %+v; generated %v", lp, top, e.Logprob)
	}
	var sum float64
	for _, x := range top[2] {
		sum += math.Exp(x.Logprob)
	}
	if sum <= 0 || sum > 1 {
		t.Errorf("top probabilities sum to %v", sum)
	}
	if _, err := st.Add(SeqRequest{Prompt: prompt}); err == nil {
		t.Error("0 new tokens without prompt logprobs was accepted")
	}
	if _, err := st.Add(SeqRequest{Prompt: []int{1, 1 << 20}, MaxNewTokens: 1}); err == nil {
		t.Error("a token outside the vocabulary was accepted")
	}
}
