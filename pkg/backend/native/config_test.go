package native

import (
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/engine"
)

func TestSamplingMapping(t *testing.T) {
	for _, tc := range []struct {
		name    string
		decoder string
		want    engine.Sampling
	}{
		{"defaults", `{}`, engine.Sampling{Temperature: 1, TopK: 50, TopP: 1, RepetitionPenalty: 1, Seed: 42}},
		{"temperature 0 is greedy", `{"temperature": 0, "do_sample": true}`, engine.Sampling{Greedy: true, TopK: 50, TopP: 1, RepetitionPenalty: 1, Seed: 42}},
		{"do_sample false is greedy", `{"temperature": 0.7, "do_sample": false}`, engine.Sampling{Greedy: true, Temperature: 0.7, TopK: 50, TopP: 1, RepetitionPenalty: 1, Seed: 42}},
		{"preset", `{"preset": "creative"}`, engine.Sampling{Temperature: 0.8, TopK: 50, TopP: 0.9, RepetitionPenalty: 1.1, Seed: 42}},
		{"explicit beats preset", `{"preset": "creative", "top_p": 0.5, "top_k": 0}`, engine.Sampling{Temperature: 0.8, TopP: 0.5, RepetitionPenalty: 1.1, Seed: 42}},
		{"deterministic preset", `{"preset": "deterministic"}`, engine.Sampling{Greedy: true, TopK: 50, TopP: 1, RepetitionPenalty: 1, Seed: 42}},
		{"min_p and min_new_tokens", `{"min_p": 0.05, "min_new_tokens": 3}`, engine.Sampling{Temperature: 1, TopK: 50, TopP: 1, MinP: 0.05, RepetitionPenalty: 1, Seed: 42, MinNewTokens: 3}},
	} {
		c, err := parseConfig([]byte(`{"model": "random:llama-15m", "decoder": ` + tc.decoder + `}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := c.sampling(false); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestParseConfigDefaultsAndErrors(t *testing.T) {
	c, err := parseConfig([]byte(`{"model": "m"}`))
	if err != nil {
		t.Fatal(err)
	}
	if enabled, n := c.warmup(); !enabled || n != 5 || c.Native.BatchSize != 1 || c.N != 100 || c.thermalFloor() != 0 {
		t.Errorf("defaults: warmup %v/%d batch %d n %d", enabled, n, c.Native.BatchSize, c.N)
	}
	if s, _ := c.storage(); s != "fp32" {
		t.Errorf("default storage %q", s)
	}
	c, _ = parseConfig([]byte(`{"model": "m", "precision": "bf16", "native": {"storage": "fp32"}}`))
	if s, _ := c.storage(); s != "fp32" {
		t.Errorf("native.storage must override precision, got %q", s)
	}
	for _, bad := range []string{
		``, `null`, `{"model": ""}`, `{"model": "m", "n": 0}`, `{"model": "m", "backend": "pytorch"}`,
		`{"model": "m", "decoder": {"preset": "wild"}}`, `{"model": "m", "native": {"batch_size": -1}}`,
		`{"model": "m", "warmup": {"thermal_floor_seconds": -1}}`, `{"model": "m", "native": {"extra": {"worker": {"x": 1}}}}`,
		`{"model": "m", "max_output_tokens": 0}`, `{"model": 3}`,
	} {
		if _, err := parseConfig([]byte(bad)); err == nil {
			t.Errorf("parseConfig(%s) accepted it", bad)
		} else if strings.TrimSpace(err.Error()) == "" {
			t.Errorf("parseConfig(%s): empty error", bad)
		}
	}
}
