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

// TestQualityScope: quality.scope is optional (absent: "run", and the run
// ID is what it was before scope existed), "cycle" is another run, a grid
// varies it, and anything else is refused at its position.
func TestQualityScope(t *testing.T) {
	const base = `base: {model: "random:llama-15m", backend: "native", precision: "fp32"}
base: quality: {tasks: ["hellaswag"]}
`
	plain := mustLoad(t, base)
	q := plain.Runs[0].Config.Quality
	if q.Scope != "" || q.PerCycle() || strings.Contains(string(plain.Runs[0].ConfigJSON), "scope") {
		t.Fatalf("absent scope must stay absent from the config: %+v %s", q, plain.Runs[0].ConfigJSON)
	}
	// The ID of a scored run without scope, pinned: adding the field must
	// not move the IDs of studies written before it.
	if id := plain.Runs[0].ID; id != pinnedScoredID {
		t.Fatalf("scored run ID %s, was %s before quality.scope", id, pinnedScoredID)
	}
	cyc := mustLoad(t, base+`base: quality: scope: "cycle"
`)
	if !cyc.Runs[0].Config.Quality.PerCycle() || cyc.Runs[0].ID == plain.Runs[0].ID {
		t.Fatalf("scope cycle: %+v, ID %s (plain %s)", cyc.Runs[0].Config.Quality, cyc.Runs[0].ID, plain.Runs[0].ID)
	}
	// An explicit "run" is the same effective config as no scope.
	explicit := mustLoad(t, base+`base: quality: scope: "run"
`)
	if explicit.Runs[0].ID != plain.Runs[0].ID || explicit.Runs[0].Config.Quality.PerCycle() {
		t.Fatalf("scope run: ID %s, want %s (the same run as no scope)", explicit.Runs[0].ID, plain.Runs[0].ID)
	}
	grid := mustLoad(t, base+`grid: quality: scope: ["run", "cycle"]
`)
	if len(grid.Runs) != 2 || grid.Runs[0].Config.Quality.PerCycle() || !grid.Runs[1].Config.Quality.PerCycle() {
		t.Fatalf("grid over quality.scope: %d runs", len(grid.Runs))
	}
	_, err := load(t, `base: {model: "random:llama-15m", backend: "native", precision: "fp32", quality: {tasks: ["x"], scope: "batch"}}`)
	if err == nil || !strings.Contains(err.Error(), "/tmp/study.cue:1:") || !strings.Contains(err.Error(), "base.quality.scope") {
		t.Fatalf("scope batch: %v", err)
	}
	_, err = load(t, base+`grid: quality: scope: ["run", "batch"]
`)
	if err == nil || !strings.Contains(err.Error(), "scope") {
		t.Fatalf("grid scope batch: %v", err)
	}
}

// pinnedScoredID is the run ID of TestQualityScope's base study, computed
// before quality.scope existed.
const pinnedScoredID = "43f9e132292c"
