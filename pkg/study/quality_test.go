package study

import (
	"strings"
	"testing"
)

// TestQualitySection: quality: is optional (absent, the run ID is what it
// was), typed when present, gridable, and checked per backend.
func TestQualitySection(t *testing.T) {
	plain := mustLoad(t, nativeBase)
	withNone := mustLoad(t, `base: {model: "random:llama-15m", backend: "native", precision: "fp32"}
grid: quality: num_fewshot: [0, 5]
base: quality: {tasks: ["hellaswag", "arc_easy"], weights: {hellaswag: 2}, limit: 0.5, batch_size: "auto:2"}
`)
	if plain.Runs[0].Config.Quality != nil || strings.Contains(string(plain.Runs[0].ConfigJSON), "quality") {
		t.Fatalf("no quality: the config must not mention it: %s", plain.Runs[0].ConfigJSON)
	}
	if len(withNone.Runs) != 2 {
		t.Fatalf("grid over quality.num_fewshot: %d runs", len(withNone.Runs))
	}
	q := withNone.Runs[1].Config.Quality
	if q == nil || q.Tasks[1] != "arc_easy" || q.Weights["hellaswag"] != 2 || *q.Limit != 0.5 || string(q.BatchSize) != `"auto:2"` ||
		q.Source != "auto" || q.Seed != 1234 || q.TimeoutSeconds != 7200 || q.NumFewshot == nil || !withNone.Runs[1].Config.Scored() {
		t.Fatalf("quality %+v", q)
	}
	if withNone.Runs[0].ID == plain.Runs[0].ID {
		t.Fatal("a quality block must change the run ID")
	}
	for _, c := range []struct{ src, want string }{
		{`base: {model: "random:llama-15m", backend: "native", precision: "fp32", quality: {tasks: ["hellaswag"], weights: {gsm8k: 2}}}`,
			"base.quality.weights: quality.weights: gsm8k not in quality.tasks"},
		{`base: {model: "random:llama-15m", backend: "native", precision: "fp32", quality: {tasks: ["a,b"]}}`,
			"/tmp/study.cue:1:91: base.quality.tasks[0]"},
		{`base: {model: "random:llama-15m", backend: "native", precision: "fp32", quality: {tasks: ["x"], batch_size: "big"}}`,
			"base.quality.batch_size"},
		{`base: {model: "m", backend: "pytorch", quality: {tasks: ["x"], source: "vllm"}}`,
			"quality.source \"vllm\" cannot score a pytorch run; use one of auto | hf | none"},
		{`base: {model: "m", backend: "tensorrt", quality: {tasks: ["x"]}}`,
			"base.quality.source"},
	} {
		_, err := load(t, c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.src, err, c.want)
		}
	}
}
