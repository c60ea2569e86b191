package study

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/errs"
)

// diags loads src and returns its diagnostics, one line each; it fails
// the test unless the error is a *study.Error with exit code 2.
func diags(t *testing.T, src string) []string {
	t.Helper()
	_, err := load(t, src)
	var se *Error
	if !errors.As(err, &se) {
		t.Fatalf("want a *study.Error, got %v", err)
	}
	if errs.ExitCode(err) != errs.ExitBadInput {
		t.Errorf("exit code %d, want 2", errs.ExitCode(err))
	}
	var out []string
	for _, d := range se.Diags {
		out = append(out, d.String())
	}
	return out
}

// TestEveryMistakeAtOnce: a file with mistakes of every stage (types,
// bounds, grid values, experiments, extra:, a missing required field,
// cross-field rules, a missing JSONL file) reports all of them in one
// pass, each at its position, and nothing else.
func TestEveryMistakeAtOnce(t *testing.T) {
	got := diags(t, `base: {
	backend: "native"
	n: "eight"
	precision: "fp16"
}
grid: {
	native: batch_size: [-1, 4]
	native: threads: [1, "4"]
	max_output_tokens: [8, 2.5]
}
experiments: [
	{model: "random:llama-15m", native: extra: worker: batch_size: 8},
	{model: "m", backend: "pytorch", precision: "bf16", dataset: {source: "jsonl", path: "no-such.jsonl"}},
	{name: "a", model: "random:llama-15m", precision: "fp32"},
	{name: "a", model: "random:llama-15m", precision: "fp32", n: 2},
]`)
	want := []string{
		`/tmp/study.cue:1:1: base.model: required field missing: set it to a Hugging Face id, a local path or random:<preset> (presets: random:llama-15m, random:smollm-135m for backend native)`,
		`/tmp/study.cue:3:5: base.n: must be an integer, got "eight"`,
		`/tmp/study.cue:4:2: base.precision: fp16 is not supported by backend native; use one of fp32 | bf16`,
		`/tmp/study.cue:7:23: grid.native.batch_size[0]: invalid value -1 (out of bound >=1)`,
		`/tmp/study.cue:8:23: grid.native.threads[1]: must be an integer, got "4"`,
		`/tmp/study.cue:9:25: grid.max_output_tokens[1]: must be an integer, got 2.5`,
		`/tmp/study.cue:12:53: experiments[0].native.extra.worker.batch_size: shadows first-class native.batch_size; set that instead`,
		`/tmp/study.cue:13:81: experiments[1].dataset.path: no such file: /tmp/no-such.jsonl (a JSONL path is relative to the study file's directory)`,
		`/tmp/study.cue:15:3: experiments[3].name: name "a" is already used by experiments[2]; names label runs and must be unique`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, g := range got {
		for _, junk := range []string{"empty disjunction", "conflicting values", "nothing to run", "skipped"} {
			if strings.Contains(g, junk) {
				t.Errorf("diagnostic with %q: %s", junk, g)
			}
		}
	}
}

// TestMissingFieldWithOtherMistakes: a required field missing is reported
// in the same pass as type errors and cross-field rules.
func TestMissingFieldWithOtherMistakes(t *testing.T) {
	got := diags(t, `base: {backend: "vllm", n: "eight", precision: "fp32"}
grid: max_output_tokens: [8, 16]`)
	want := []string{
		`/tmp/study.cue:1:1: base.model: required field missing: set it to a Hugging Face id, a local path or random:<preset> (presets: random:llama-15m, random:smollm-135m, random:qwen2.5-0.5b, random:llama-3.2-1b, random:llama-3.1-8b for backend vllm)`,
		`/tmp/study.cue:1:28: base.n: must be an integer, got "eight"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// With the model given, the cross-field rule shows with the type error.
	got = diags(t, `base: {model: "m", backend: "vllm", n: "eight", precision: "fp32"}`)
	want = []string{
		`/tmp/study.cue:1:40: base.n: must be an integer, got "eight"`,
		`/tmp/study.cue:1:49: base.precision: fp32 is not supported by backend vllm; use one of fp16 | bf16`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDefaultsThatWorkAnywhere: the docs' minimal study runs as written:
// a random-weight preset gets synthetic prompts (no tokenizer, no
// download) and native no thermal floor; a named dataset is kept; a text
// dataset on a preset without tokenizer is an error at the dataset.
func TestDefaultsThatWorkAnywhere(t *testing.T) {
	p := mustLoad(t, `base: {model: "random:llama-15m", backend: "native", precision: "fp32"}`)
	c := p.Runs[0].Config
	if c.Dataset.Source != "synthetic" || c.Warmup.ThermalFloorSeconds != 0 {
		t.Errorf("native random preset: dataset %+v, warmup %+v", c.Dataset, c.Warmup)
	}
	p = mustLoad(t, `base: {model: "Qwen/Qwen2.5-0.5B", backend: "vllm", precision: "fp16"}
grid: model: ["Qwen/Qwen2.5-0.5B", "random:qwen2.5-0.5b"]`)
	if a, b := p.Runs[0].Config, p.Runs[1].Config; a.Dataset.Source != "aienergyscore" || b.Dataset.Source != "synthetic" ||
		a.Warmup.ThermalFloorSeconds != 60 || b.Warmup.ThermalFloorSeconds != 60 {
		t.Errorf("vllm: %+v %+v / %+v %+v", a.Dataset, a.Warmup, b.Dataset, b.Warmup)
	}
	// A random preset with a text dataset: fine where the harness maps
	// words to token IDs, an error on native.
	mustLoad(t, `base: {model: "random:llama-15m", backend: "pytorch", dataset: source: "aienergyscore"}`)
	got := diags(t, `base: {model: "random:llama-15m", backend: "native", precision: "fp32", dataset: source: "aienergyscore"}`)
	want := `/tmp/study.cue:1:82: base.dataset.source: "aienergyscore" is a text dataset, but random:llama-15m has no tokenizer and backend native takes token IDs only; use dataset: {source: "synthetic"} (the default for random: models) or a model with a tokenizer`
	if strings.Join(got, "\n") != want {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
	// An explicit thermal floor wins on every backend.
	p = mustLoad(t, `base: {model: "random:llama-15m", backend: "native", warmup: thermal_floor_seconds: 5}`)
	if p.Runs[0].Config.Warmup.ThermalFloorSeconds != 5 {
		t.Errorf("explicit floor: %+v", p.Runs[0].Config.Warmup)
	}
	// A JSONL file beside the study is found.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.jsonl"), []byte(`{"prompt": "hi"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	study := filepath.Join(dir, "s.cue")
	if err := os.WriteFile(study, []byte(`model: "m"
dataset: {source: "jsonl", path: "p.jsonl"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(t.Context(), study); err != nil {
		t.Errorf("jsonl beside the study: %v", err)
	}
}

// TestCanonicalIDs: defaults are applied before hashing, so equivalent
// files give the same run ID.
func TestCanonicalIDs(t *testing.T) {
	same := []string{
		`model: "random:llama-15m"
backend: "native"`,
		`model: "random:llama-15m"
backend: "native"
native: batch_size: 1`,
		`model: "random:llama-15m"
backend: "native"
native: {}
precision: "bf16"
dataset: source: "synthetic"
warmup: thermal_floor_seconds: 0`,
		`base: {model: "random:llama-15m", backend: "native"}
experiments: [{name: "x", native: threads: 0}]`,
	}
	var ids []string
	for _, src := range same {
		ids = append(ids, mustLoad(t, src).Runs[0].ID)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[0] {
			t.Errorf("file %d: ID %s, file 0: %s", i, ids[i], ids[0])
		}
	}
	if id := mustLoad(t, `model: "random:llama-15m"
backend: "native"
native: batch_size: 2`).Runs[0].ID; id == ids[0] {
		t.Error("different batch size, same ID")
	}
}

// TestNamedExperiments: names label runs and skipped entries; they do not
// change the config or the ID.
func TestNamedExperiments(t *testing.T) {
	p := mustLoad(t, nativeBase+`grid: n: [1, 2]
experiments: [{name: "short run", n: 3}, {n: 4}, {name: "dup", n: 1}]`)
	if len(p.Runs) != 4 {
		t.Fatalf("runs %+v", p.Runs)
	}
	labels := []string{p.Label(0), p.Label(1), p.Label(2), p.Label(3)}
	if strings.Join(labels, "|") != "n=1|n=2|short run|experiments[1]" {
		t.Errorf("labels %q", labels)
	}
	if p.Runs[2].Name != "short run" || strings.Contains(string(p.Runs[2].ConfigJSON), "short run") {
		t.Errorf("run %+v", p.Runs[2])
	}
	if len(p.Skipped) != 1 || p.Skipped[0].Name != "dup" || p.Skipped[0].Kind != "duplicate" {
		t.Errorf("skipped %+v", p.Skipped)
	}
	if got := diags(t, nativeBase+`experiments: [{name: " x"}]`); len(got) != 1 || !strings.Contains(got[0], "experiments[0].name") {
		t.Errorf("name with a leading space: %q", got)
	}
}

// TestEstimate: the plan's duration estimate adds up the waits exactly.
func TestEstimate(t *testing.T) {
	p := mustLoad(t, `base: {model: "random:llama-15m", backend: "pytorch", n: 10, max_output_tokens: 20,
	warmup: {n_warmup: 2, thermal_floor_seconds: 30}, baseline: {duration_seconds: 10, cache_ttl_seconds: 0}}
grid: n: [10, 20]
execution: {cycles: 3, gap_seconds: 5, cooldown_seconds: 60}`)
	e := p.Estimate
	if e.ThermalFloorSeconds != 6*30 || e.GapSeconds != 5*5 || e.CooldownSeconds != 2*60 || e.BaselineSeconds != 6*10 {
		t.Errorf("estimate %+v", e)
	}
	run := func(n float64) float64 { return runRate["pytorch"].startup + (n+2)*20/runRate["pytorch"].tokensPerSec }
	if want := 3 * (run(10) + run(20)); math.Abs(e.RunSeconds-want) > 1e-9 {
		t.Errorf("run seconds %v, want %v", e.RunSeconds, want)
	}
	if sum := e.ThermalFloorSeconds + e.GapSeconds + e.CooldownSeconds + e.BaselineSeconds + e.RunSeconds; math.Abs(e.TotalSeconds-sum) > 1e-9 {
		t.Errorf("total %v, parts sum to %v", e.TotalSeconds, sum)
	}
	if err := p.SetCycles(1); err != nil || p.Estimate.CooldownSeconds != 0 || p.Estimate.ThermalFloorSeconds != 2*30 {
		t.Errorf("after SetCycles(1): %v %+v", err, p.Estimate)
	}
	// Native: no thermal floor by default; one baseline for the study.
	q := mustLoad(t, nativeBase+`grid: native: batch_size: [1, 4]
execution: cycles: 2`)
	if q.Estimate.ThermalFloorSeconds != 0 || q.Estimate.BaselineSeconds != 30 {
		t.Errorf("native estimate %+v", q.Estimate)
	}
}

// TestCueVetRejectsUnknownFields runs the official CUE CLI on study files
// with an unknown field: the schema's definitions are closed, so cue vet
// fails as llem does.
func TestCueVetRejectsUnknownFields(t *testing.T) {
	root, _ := filepath.Abs("../..")
	cue, err := exec.LookPath("cue")
	if err != nil {
		cue = filepath.Join(root, ".tools/bin/cue")
		if _, err := os.Stat(cue); err != nil {
			t.Skip("cue CLI not found in PATH or ./.tools/bin; install it with `make deps`")
		}
	}
	dir, err := os.MkdirTemp(root, "_vettest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The form the docs recommend: schema.#Study & {...}. (Fields beside
	// an embedded definition would extend it, so cue vet could not reject
	// an unknown one.)
	const head = "package s\n\nimport \"github.com/llenergymeasure/llem/schema\"\n\nschema.#Study & {\n"
	cases := map[string]string{
		"ok":                `base: {model: "random:llama-15m", backend: "native"}` + "\ngrid: {n: [1, 2], warmup: enabled: [true, false]}\nexperiments: [{name: \"x\", n: 3}]\n",
		"ok-scoped":         `base: {model: "random:llama-15m", backend: "vllm", precision: "bf16"}` + "\ngrid: {vllm: engine: max_num_seqs: [32, 64], vllm: sampling: stop: [[\"a\"], [\"b\", \"c\"]], vllm: engine: compilation_config: [{level: 3}], vllm: extra: engine: foo: [1, 2], native: batch_size: [1, 2]}\n",
		"grid-scoped":       `base: {model: "m"}` + "\ngrid: vllm: engine: max_num_seq: [64]\n",
		"grid-scoped-top":   `base: {model: "m"}` + "\ngrid: native: batch_sise: [1]\n",
		"grid-scoped-value": `base: {model: "m"}` + "\ngrid: vllm: engine: max_num_seqs: [0]\n",
		"grid-scoped-type":  `base: {model: "m"}` + "\ngrid: pytorch: batch_size: [\"4\"]\n",
		"top":               `base: {model: "m"}` + "\ngird: n: [1]\n",
		"base":              `base: {model: "m", precison: "fp32"}` + "\n",
		"experiment":        `base: {model: "m"}` + "\nexperiments: [{n: 1, temprature: 0}]\n",
		"grid":              `base: {model: "m"}` + "\ngrid: max_output_token: [1]\n",
		"grid-warmup":       `base: {model: "m"}` + "\ngrid: warmup: thermal_floor: [0]\n",
		"grid-value":        `base: {model: "m"}` + "\ngrid: n: [0, 1]\n",
	}
	for name, body := range cases {
		f := filepath.Join(dir, name+".cue")
		if err := os.WriteFile(f, []byte(head+body+"}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		cmd := exec.Command(cue, "vet", "./"+rel)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if strings.HasPrefix(name, "ok") {
			if err != nil {
				t.Errorf("cue vet %s: %v\n%s", name, err, out)
			}
			continue
		}
		if err == nil {
			t.Errorf("cue vet accepted the study with a mistake (%s):\n%s", name, body)
		}
		if _, lerr := Load(t.Context(), f); lerr == nil {
			t.Errorf("llem accepted the study with a mistake (%s)", name)
		}
	}
}

// TestScalarForStructSaysWhichField: a scalar given where a struct is
// expected names the field it selects, when one of the struct's
// alternatives fixes a field to that value (dataset: "synthetic").
func TestScalarForStructSaysWhichField(t *testing.T) {
	got := diags(t, `base: {model: "random:llama-15m", backend: "native", precision: "fp32", dataset: "synthetic"}
grid: dataset: ["jsonl", "nope"]`)
	want := []string{
		`/tmp/study.cue:1:73: base.dataset: must be a struct, got "synthetic" (write {source: "synthetic"})`,
		`/tmp/study.cue:2:17: grid.dataset[0]: must be a struct, got "jsonl" (write {source: "jsonl"})`,
		`/tmp/study.cue:2:26: grid.dataset[1]: must be a struct, got "nope"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestExperimentsScopeBaseSections: an experiments entry of another
// backend does not inherit base's backend sections (as grid runs do not),
// while a section written in the entry itself is still checked.
func TestExperimentsScopeBaseSections(t *testing.T) {
	got := diags(t, `base: {model: "random:llama-15m", backend: "pytorch", precision: "bf16", pytorch: batch_size: 4}
experiments: [
	{backend: "vllm"},
	{name: "p"},
	{backend: "native", precision: "fp32", dataset: source: "synthetic", pytorch: batch_size: 2},
]`)
	want := []string{
		`/tmp/study.cue:5:71: experiments[2].pytorch: section given but backend is not pytorch; remove the pytorch: section or set backend: "pytorch"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	plan, err := LoadSource(t.Context(), "/tmp/study.cue", []byte(`base: {model: "random:llama-15m", backend: "pytorch", precision: "bf16", pytorch: batch_size: 4}
experiments: [{backend: "vllm"}, {name: "p"}]`))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(plan.Runs); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
	for _, r := range plan.Runs {
		if r.Backend == "vllm" && r.Config.PyTorch != nil {
			t.Errorf("the vllm run kept base's pytorch section: %v", r.Config.PyTorch)
		}
		if r.Backend == "pytorch" && fmt.Sprint(r.Config.PyTorch["batch_size"]) != "4" {
			t.Errorf("the pytorch run lost base's batch_size: %v", r.Config.PyTorch)
		}
	}
}

// TestListForScalarAndNoDefault: a list where one value belongs says
// where sweeps go (the run's check would otherwise say the field is
// missing), and a field with no default for one backend says what to
// choose instead of CUE's "incomplete value".
func TestListForScalarAndNoDefault(t *testing.T) {
	got := diags(t, `base: {model: "random:llama-15m", backend: "native", precision: "fp32", dataset: source: "synthetic"
	serving: load: rate: [1, 2]
	quality: tasks: ["hellaswag"]
}
experiments: [{name: "t", backend: "tensorrt", precision: "bf16", model: "m", dataset: source: "synthetic"}]`)
	want := []string{
		`/tmp/study.cue:2:23: base.serving.load.rate: must be a number, got [1,2] (to sweep several values, put the list under grid:)`,
		`/tmp/study.cue:3:2: base.quality.source: has no default here; set it to one of "hf" | "none" (for backend tensorrt)`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
