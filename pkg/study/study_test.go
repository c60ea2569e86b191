package study

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue"

	"github.com/llenergymeasure/llem/internal/errs"
)

func load(t *testing.T, src string) (*Plan, error) {
	t.Helper()
	return LoadSource(context.Background(), "/tmp/study.cue", []byte(src))
}

func mustLoad(t *testing.T, src string) *Plan {
	t.Helper()
	p, err := load(t, src)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

const nativeBase = `base: {model: "random:llama-15m", backend: "native", precision: "fp32"}
`

func TestValidStudies(t *testing.T) {
	cases := []struct {
		name    string
		src     string
		runs    int
		skipped map[string]int // kind → count
		dims    []string
	}{
		{"single experiment file", `model: "random:llama-15m"
backend: "native"
precision: "bf16"`, 1, nil, nil},
		{"single experiment with import", `import "github.com/llenergymeasure/llem/schema"
schema.#Experiment
model: "random:llama-15m"
backend: "native"
precision: "bf16"`, 1, nil, nil},
		{"study with import and base only", `import s "github.com/llenergymeasure/llem/schema"
s.#Study
` + nativeBase, 1, nil, nil},
		{"universal grid", nativeBase + `grid: {n: [1, 2, 3], decoder: temperature: [0, 0.5]}`, 6, nil, []string{"n", "decoder.temperature"}},
		{"scoped dims give independent grids", `base: {model: "random:llama-15m", precision: "fp16"}
grid: {
	backend: ["pytorch", "vllm"]
	max_output_tokens: [16, 32]
	pytorch: batch_size: [1, 2, 4]
	vllm: engine: max_num_seqs: [64, 128]
}`, 2*3 + 2*2, nil, []string{"backend", "max_output_tokens", "pytorch.batch_size", "vllm.engine.max_num_seqs"}},
		{"scoped dims alone pick the backends", `base: {model: "random:llama-15m", precision: "fp16"}
grid: {pytorch: batch_size: [1, 2], vllm: engine: max_num_seqs: [8]}`, 3, nil, nil},
		{"base sections are scoped to their backend", `base: {model: "random:llama-15m", precision: "fp16", pytorch: batch_size: 2, vllm: engine: max_num_seqs: 8}
grid: backend: ["pytorch", "vllm"]`, 2, nil, nil},
		{"exclude matches effective config, lists are any-of", nativeBase + `grid: {precision: ["fp32", "bf16"], n: [1, 2, 3]}
exclude: [{precision: "bf16", n: [1, 2]}]`, 4, map[string]int{"excluded": 2}, nil},
		{"exclude matches defaults", `base: {model: "random:llama-15m", backend: "native"}
grid: {n: [1, 2]}
exclude: [{precision: "bf16", n: 2}]`, 1, map[string]int{"excluded": 1}, nil},
		{"comprehension experiments", nativeBase + `experiments: [for x in [1, 2, 4] {n: x, decoder: preset: "deterministic"}]`, 3, nil, nil},
		{"grid and experiments both", nativeBase + `grid: n: [1, 2]
experiments: [{n: 10}]`, 3, nil, nil},
		{"duplicates are dropped", nativeBase + `grid: n: [100, 100]
experiments: [{}]`, 1, map[string]int{"duplicate": 2}, nil},
		{"fp32 on vllm is skipped, rest runs", `base: {model: "random:llama-15m"}
grid: {backend: ["pytorch", "vllm"], precision: ["fp32", "bf16"]}`, 3, map[string]int{"invalid": 1}, nil},
		{"random preset per backend", `base: {precision: "bf16"}
grid: {backend: ["native", "pytorch"], model: ["random:llama-15m", "random:llama-3.1-8b"]}`, 3, map[string]int{"invalid": 1}, nil},
		{"section for another backend in a grid point is skipped", `base: {model: "random:llama-15m", precision: "bf16", vllm: engine: max_num_seqs: 8}
grid: backend: ["native", "vllm"]`, 2, nil, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := mustLoad(t, c.src)
			if len(p.Runs) != c.runs {
				t.Fatalf("runs = %d, want %d; skipped: %+v", len(p.Runs), c.runs, p.Skipped)
			}
			got := map[string]int{}
			for _, s := range p.Skipped {
				got[s.Kind]++
				if len(s.Reasons) == 0 {
					t.Errorf("skipped %v without a reason", s.Coordinates)
				}
			}
			for k, n := range c.skipped {
				if got[k] != n {
					t.Errorf("skipped %s = %d, want %d (%+v)", k, got[k], n, p.Skipped)
				}
			}
			if c.dims != nil && strings.Join(p.Dims, ",") != strings.Join(c.dims, ",") {
				t.Errorf("dims = %v, want %v", p.Dims, c.dims)
			}
			for _, r := range p.Runs {
				if len(r.ID) != 12 || !strings.HasPrefix(r.Hash, r.ID) || r.Config.Model == "" || r.Backend != r.Config.Backend {
					t.Errorf("bad run %+v", r)
				}
				// ConfigHash (what the archive recomputes) agrees with the
				// plan's hash, also after the config is re-indented.
				var indented bytes.Buffer
				json.Indent(&indented, r.ConfigJSON, "", "  ")
				if h, err := ConfigHash(indented.Bytes()); err != nil || h != r.Hash {
					t.Errorf("ConfigHash %s %v, run hash %s", h, err, r.Hash)
				}
			}
		})
	}
}

func TestSkipReasons(t *testing.T) {
	p := mustLoad(t, `base: {model: "random:llama-15m"}
grid: {backend: ["native", "vllm"], precision: ["fp32", "fp16"]}`)
	want := map[string]string{
		"backend=\"native\" precision=\"fp16\"": "precision: fp16 is not supported by backend native; use one of fp32 | bf16",
		"backend=\"vllm\" precision=\"fp32\"":   "precision: fp32 is not supported by backend vllm; use one of fp16 | bf16",
	}
	if len(p.Skipped) != 2 {
		t.Fatalf("skipped = %+v", p.Skipped)
	}
	for _, s := range p.Skipped {
		c := p.FormatCoords(s.Coordinates)
		if got := strings.Join(s.Reasons, "; "); got != want[c] {
			t.Errorf("%s: reason %q, want %q", c, got, want[c])
		}
	}
}

func TestStudyErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // substrings of the error, all must appear
	}{
		{"all errors at once, positions, did-you-mean, one-line enum", `base: {
	model: "random:llama-15m"
	backend: "nativ"
	precison: "fp32"
	decoder: {temprature: 0.5}
	n: 0
}
grid: {native: batch_sise: [1, 2], max_output_token: [1]}
execution: order: "random"`, []string{
			"/tmp/study.cue:3:2: base.backend: \"nativ\" is not allowed; use one of \"pytorch\" | \"vllm\" | \"tensorrt\" | \"native\" (did you mean \"native\"?)",
			"/tmp/study.cue:4:2: base.precison: unknown field (did you mean \"precision\"?)",
			"/tmp/study.cue:5:12: base.decoder.temprature: unknown field (did you mean \"temperature\"?)",
			"/tmp/study.cue:6:5: base.n: invalid value 0 (out of bound >=1)",
			"grid.native.batch_sise: unknown field (did you mean \"batch_size\"?)",
			"grid.max_output_token: unknown field (did you mean \"max_output_tokens\"?)",
			"execution.order: \"random\" is not allowed; use one of \"shuffled\" | \"sequential\" | \"interleaved\"",
			"7 errors",
		}},
		{"backend rules and bounds point into the user's file", `base: {model: "m", precision: "fp16"}
experiments: [
	{backend: "pytorch", pytorch: {load_in_4bit: true, load_in_8bit: true}},
	{decoder: temperature: 5},
]`, []string{
			"/tmp/study.cue:3:53: experiments[0].pytorch.load_in_8bit: pytorch.load_in_4bit and pytorch.load_in_8bit are mutually exclusive",
			"/tmp/study.cue:4:25: experiments[1].decoder.temperature: invalid value 5 (out of bound <=2)",
			"2 errors",
		}},
		{"exclude value outside an enum", nativeBase + `grid: n: [1, 2]
exclude: [{precision: ["fp64", "bf16"]}, {backend: "vlm"}]`, []string{
			"exclude[0].precision: \"fp64\" can never match; use one of \"bf16\" | \"fp16\" | \"fp32\"",
			"exclude[1].backend: \"vlm\" can never match; use one of \"pytorch\" | \"vllm\" | \"tensorrt\" | \"native\" (did you mean \"vllm\"?)",
		}},
		{"grid too large", "import \"list\"\n" + nativeBase + `grid: {n: [for i in list.Range(1, 101, 1) {i}], max_output_tokens: [for i in list.Range(1, 101, 1) {i}], random_seed: [for i in list.Range(0, 21, 1) {i}]}`,
			[]string{"expands to 210000 configs, more than the limit of 200000"}},
		{"syntax error", `base: {model: "x"`, []string{"/tmp/study.cue:1:"}},
		{"scoped dim for a backend not in the study", nativeBase + `grid: vllm: engine: max_num_seqs: [8]`,
			[]string{"grid.vllm.engine.max_num_seqs: scoped to backend vllm, but the study runs only native"}},
		{"nothing valid: the cross-field error at the grid value, no extra line", `base: {model: "random:llama-15m", backend: "vllm"}
grid: precision: ["fp32"]`, []string{"invalid study: /tmp/study.cue:2:19: grid.precision: fp32 is not supported by backend vllm; use one of fp16 | bf16"}},
		{"an experiments entry breaking a rule is an error, not a skip", nativeBase + `experiments: [{vllm: engine: max_num_seqs: 8}, {}]`,
			[]string{`invalid study: /tmp/study.cue:2:16: experiments[0].vllm: section given but backend is not vllm; remove the vllm: section or set backend: "vllm"`}},
		{"extra shadowing a first-class param in an experiment", `base: {model: "random:llama-15m", backend: "vllm", precision: "fp16"}
experiments: [{vllm: extra: engine: max_num_seqs: 8}, {vllm: extra: engine: some_new_arg: true}]`,
			[]string{"invalid study: /tmp/study.cue:2:37: experiments[0].vllm.extra.engine.max_num_seqs: shadows first-class vllm.engine.max_num_seqs; set that instead"}},
		{"no model", `grid: n: [1, 2, 3]`, []string{"/tmp/study.cue:1:1: base.model: required field missing: set it to a Hugging Face id, a local path or random:<preset> (presets: "}},
		{"grid value not a list", nativeBase + `grid: n: 3`, []string{"grid.n"}},
		{"too many cycles", nativeBase + `execution: cycles: 100000000`, []string{"/tmp/study.cue:2:20: execution.cycles: invalid value 100000000 (out of bound <=1000)"}},
		{"too many executions", "import \"list\"\n" + nativeBase + `grid: {n: [for i in list.Range(1, 61, 1) {i}], max_output_tokens: [for i in list.Range(1, 51, 1) {i}]}
execution: cycles: 1000`, []string{"/tmp/study.cue:4:12: execution.cycles: 3000 runs × 1000 cycles is more than the limit of 2000000 executions"}},
		{"experiment file errors", `model: "x"
backend: "pytorch"
precision: "fp8"
temperature: 1`, []string{"temperature: unknown field", "precision: \"fp8\" is not allowed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.src)
			if err == nil {
				t.Fatal("want an error")
			}
			if errs.ExitCode(err) != errs.ExitBadInput {
				t.Errorf("exit code %d, want 2", errs.ExitCode(err))
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not *study.Error: %v", err, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
				// A study-level error is reported once, not per grid point.
				if strings.Contains(w, "required field missing") && len(se.Diags) != 1 {
					t.Errorf("want the one required-field error, got %d:\n%v", len(se.Diags), err)
				}
			}
			if strings.Contains(err.Error(), "conflicting values") {
				t.Errorf("enum error not folded into one line:\n%v", err)
			}
		})
	}
}

// TestRequiredFieldMissing: a required field (`name!:` in the schema) the
// file never sets is one study-level error at the struct to add it to, not
// one "incomplete value" per grid point.
func TestRequiredFieldMissing(t *testing.T) {
	const modelMsg = "required field missing: set it to a Hugging Face id, a local path or random:<preset> (presets: "
	cases := []struct {
		name, src string
		want      []string // the diagnostics, exactly
	}{
		{"no model, grid", `name: "x"
base: {backend: "native"}
grid: n: [1, 2]`, []string{"/tmp/study.cue:2:1: base.model: " + modelMsg + "random:llama-15m, random:smollm-135m for backend native)"}},
		{"no model, no base", `grid: n: [1, 2, 3]`, []string{"/tmp/study.cue:1:1: base.model: " + modelMsg +
			"random:llama-15m, random:smollm-135m, random:qwen2.5-0.5b, random:llama-3.2-1b, random:llama-3.1-8b for backend pytorch)"}},
		{"no model, two backends", `base: {precision: "fp16"}
grid: {backend: ["native", "vllm"], precision: ["bf16"]}`, []string{"/tmp/study.cue:1:1: base.model: " + modelMsg +
			"vllm: random:llama-15m, random:smollm-135m, random:qwen2.5-0.5b, random:llama-3.2-1b, random:llama-3.1-8b; native: random:llama-15m, random:smollm-135m)"}},
		{"single-experiment file", `backend: "native"
n: 3`, []string{"/tmp/study.cue:1:1: model: " + modelMsg + "random:llama-15m, random:smollm-135m for backend native)"}},
		{"one experiment without model", `base: {backend: "native", precision: "fp32"}
experiments: [
	{n: 1},
	{model: "random:llama-15m"},
]`, []string{"/tmp/study.cue:3:2: experiments[0].model: " + modelMsg + "random:llama-15m, random:smollm-135m for backend native)"}},
		{"no experiment has a model: once, at base", `base: {backend: "native", precision: "fp32"}
experiments: [{n: 1}, {n: 2}, {n: 3}]`, []string{"/tmp/study.cue:1:1: base.model: " + modelMsg + "random:llama-15m, random:smollm-135m for backend native)"}},
		{"jsonl without path", nativeBase[:len(nativeBase)-2] + `, dataset: {source: "jsonl"}}
grid: n: [1, 2]`, []string{"/tmp/study.cue:1:73: base.dataset.path: required field missing: set it to the JSONL file of prompts, relative to the study file's directory (or use another dataset.source)"}},
		{"jsonl without path, single file", `model: "m"
dataset: source: "jsonl"`, []string{"/tmp/study.cue:2:1: dataset.path: required field missing: set it to the JSONL file of prompts, relative to the study file's directory (or use another dataset.source)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.src)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("want a *study.Error, got %v", err)
			}
			if errs.ExitCode(err) != errs.ExitBadInput {
				t.Errorf("exit code %d, want 2", errs.ExitCode(err))
			}
			var got []string
			for _, d := range se.Diags {
				got = append(got, d.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
	// A missing field in an excluded config is not an error.
	p := mustLoad(t, `base: {backend: "native", precision: "fp32"}
experiments: [{n: 1}, {model: "random:llama-15m"}]
exclude: [{n: 1}]`)
	if len(p.Runs) != 1 || len(p.Skipped) != 1 || p.Skipped[0].Kind != "excluded" {
		t.Errorf("runs %d, skipped %+v", len(p.Runs), p.Skipped)
	}
}

// TestRequiredFieldsKnown: every `name!:` in the schema is placed in an
// experiment config by requiredIn, so it gets the study-level message.
func TestRequiredFieldsKnown(t *testing.T) {
	rs := schemaRequired()
	if len(rs) < 2 {
		t.Fatalf("found %d required fields in the schema, want model and dataset.path at least", len(rs))
	}
	for _, r := range rs {
		if _, ok := requiredIn[r.def]; !ok {
			t.Errorf("schema %s.%s is required but requiredIn (required.go) does not say where %s sits in a config", r.def, r.field, r.def)
		}
	}
	l, err := newLoader("x.cue")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, f := range l.requiredFields() {
		keys = append(keys, f.key)
	}
	if strings.Join(keys, " ") != "dataset.path model" {
		t.Errorf("required fields %v", keys)
	}
}

// TestSectionSplitMatchesWhole: a backend section checked as remainder +
// independent leaves (split.go) gives the same effective config and the
// same reasons as the section checked whole.
func TestSectionSplitMatchesWhole(t *testing.T) {
	split, err := newLoader("x.cue")
	if err != nil {
		t.Fatal(err)
	}
	whole, err := newLoader("x.cue")
	if err != nil {
		t.Fatal(err)
	}
	whole.free, whole.leafDefs = map[string]bool{}, map[string]cue.Value{} // no leaf is split off
	for _, n := range []string{"low_memory", "num_beams", "presence_penalty", "cpu_offload_gb", "threads"} {
		if !freeFieldNames()[n] {
			t.Errorf("%s should be an independent param (no rule mentions it)", n)
		}
	}
	for _, n := range []string{"load_in_4bit", "torch_compile", "max_num_seqs", "gpu_memory_utilization", "batch_size"} {
		if freeFieldNames()[n] {
			t.Errorf("%s takes part in a rule but was taken as independent", n)
		}
	}
	m := func(kv ...any) map[string]any {
		out := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i].(string)] = kv[i+1]
		}
		return out
	}
	cfgs := []map[string]any{
		m("model", "m", "pytorch", m("batch_size", 8, "num_beams", 2)),
		m("model", "m", "pytorch", m("batch_size", 8, "num_beams", 2, "torch_compile", true, "torch_compile_mode", "default")),
		m("model", "m", "pytorch", m("batch_size", 0)),
		m("model", "m", "pytorch", m("batch_size", 4, "torch_compile_mode", "default")),
		m("model", "m", "pytorch", m("batch_size", 4, "extra", m("generate", m("num_beams", 3)))),
		m("model", "m", "pytorch", m("batch_size", 4, "extra", m("generate", m("foo", 1)))),
		m("model", "m", "pytorch", m("typical_p", 0.5, "no_repeat_ngram_size", 3, "length_penalty", 1.0)),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 8, "cpu_offload_gb", 2), "sampling", m("presence_penalty", 0.5, "stop", []any{"x"}))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("cpu_offload_gb", -1))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 8, "max_num_batched_tokens", 4, "cpu_offload_gb", 2))),
		m("model", "m", "backend", "tensorrt", "precision", "bf16", "tensorrt", m("tensor_parallel_size", 2, "enable_attention_dp", true)),
		m("model", "random:llama-15m", "backend", "native", "precision", "fp32", "native", m("batch_size", 4, "threads", 2)),
		m("model", "random:llama-15m", "backend", "native", "precision", "fp32", "native", m("batch_size", 4000)),
		// Rule-connected groups of a remainder checked apart (rules.go).
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 64, "gpu_memory_utilization", 0.8))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 64, "max_num_batched_tokens", 32, "gpu_memory_utilization", 0.8))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 8, "gpu_memory_utilization", 0.8, "kv_cache_memory_bytes", 1000))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 0, "gpu_memory_utilization", 2))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 8, "gpu_memory_utilization", 0.7), "sampling", m("min_tokens", 5, "max_tokens", 2))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 8), "sampling", m("min_tokens", 1), "beam_search", m("beam_width", 2))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 8, "enforce_eager", true, "max_cudagraph_capture_size", 4), "beam_search", m("beam_width", 2, "max_tokens", 5))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 8, "enforce_eager", false, "max_cudagraph_capture_size", 4), "beam_search", m("beam_width", 2, "max_tokens", 5))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("speculative_method", "ngram", "num_speculative_tokens", 3, "prompt_lookup_max", 4, "max_num_seqs", 16, "gpu_memory_utilization", 0.9), "extra", m("engine", m("foo", 1)))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 4, "gpu_memory_utilization", 0.5), "extra", m("engine", m("max_num_seqs", 3)))),
		m("model", "m", "backend", "vllm", "precision", "fp16", "vllm", m("engine", m("max_num_seqs", 4, "gpu_memory_utilization", 0.5, "no_such_param", 1))),
		m("model", "m", "pytorch", m("batch_size", 4, "load_in_4bit", true, "bnb_4bit_quant_type", "nf4", "torch_compile", true, "torch_compile_mode", "default")),
		m("model", "m", "pytorch", m("load_in_4bit", true, "bnb_4bit_quant_type", "nf4", "torch_compile_mode", "default")),
		m("model", "m", "backend", "tensorrt", "precision", "bf16", "tensorrt", m("runtime", "pytorch", "enable_cuda_graph", true, "max_input_len", 64, "max_seq_len", 128)),
		m("model", "m", "backend", "tensorrt", "precision", "bf16", "tensorrt", m("runtime", "tensorrt", "enable_cuda_graph", true, "max_input_len", 256, "max_seq_len", 128)),
		m("model", "m", "backend", "tensorrt", "precision", "bf16", "tensorrt", m("attention_dp_balance", true, "enable_cuda_graph", false, "cuda_graph_padding", true)),
	}
	comp := ruleComponents()
	if comp == nil {
		t.Fatal("ruleComponents gave up on the schema")
	}
	for _, pair := range [][2]string{{"max_num_seqs", "max_num_batched_tokens"}, {"gpu_memory_utilization", "kv_cache_memory_bytes"}, {"sampling", "beam_search"}, {"min_tokens", "max_tokens"}, {"prompt_lookup_max", "speculative_method"}, {"load_in_4bit", "bnb_4bit_quant_type"}, {"enable_attention_dp", "attention_dp_balance"}, {"enable_cuda_graph", "cuda_graph_batch_sizes"}} {
		if comp[pair[0]] == "" || comp[pair[0]] != comp[pair[1]] {
			t.Errorf("%s and %s share a rule but are in components %q and %q", pair[0], pair[1], comp[pair[0]], comp[pair[1]])
		}
	}
	if comp["max_num_seqs"] == comp["gpu_memory_utilization"] {
		t.Error("max_num_seqs and gpu_memory_utilization share no rule but are in one component")
	}
	for i, c := range cfgs {
		for round := range 2 { // second round: from the cache
			a, _, ra := split.validateRun(c)
			b, _, rb := whole.validateRun(c)
			if strings.Join(reasonStrings(ra), "\n") != strings.Join(reasonStrings(rb), "\n") {
				t.Errorf("cfg %d round %d: reasons differ:\nsplit: %v\nwhole: %v", i, round, reasonStrings(ra), reasonStrings(rb))
			}
			if string(a) != string(b) {
				t.Errorf("cfg %d round %d: effective configs differ:\nsplit: %s\nwhole: %s", i, round, a, b)
			}
			if ra == nil {
				full, rf := split.validateRunFull(c)
				if rf != nil || string(full) != string(a) {
					t.Errorf("cfg %d: split route differs from one whole unification: %v\n%s\n%s", i, rf, a, full)
				}
			}
		}
	}
	leaves := 0
	for k := range split.cache {
		if strings.HasPrefix(k, "leaf\x00") {
			leaves++
		}
	}
	if leaves < 10 {
		t.Errorf("only %d leaves were checked on their own: the split route was not taken", leaves)
	}
	if _, ok := split.cache["vllm\x00rest\x00\x00{\"engine\":{}}"]; !ok {
		t.Error("no vllm remainder was checked by rule-connected groups")
	}
}

func TestStableIDs(t *testing.T) {
	a := mustLoad(t, `model: "random:llama-15m"
backend: "native"
precision: "fp32"
decoder: {temperature: 1.0, top_p: 1}`)
	// Same config written differently: field order, 1 vs 1.0, defaults
	// spelled out, via a study instead of a single file.
	b := mustLoad(t, `name: "other"
base: {decoder: {top_p: 1.0, temperature: 1}, precision: "fp32", backend: "native", n: 100}
experiments: [{model: "random:llama-15m"}]`)
	if a.Runs[0].ID != b.Runs[0].ID || string(a.Runs[0].ConfigJSON) != string(b.Runs[0].ConfigJSON) {
		t.Errorf("same config, different IDs:\n%s %s\n%s %s", a.Runs[0].ID, a.Runs[0].ConfigJSON, b.Runs[0].ID, b.Runs[0].ConfigJSON)
	}
	c := mustLoad(t, `model: "random:llama-15m"
backend: "native"
precision: "fp32"
decoder: temperature: 0.5`)
	if c.Runs[0].ID == a.Runs[0].ID {
		t.Error("different configs share an ID")
	}
}

func TestDecoderPresets(t *testing.T) {
	p := mustLoad(t, nativeBase+`grid: decoder: preset: ["deterministic", "creative"]
experiments: [{decoder: {preset: "creative", top_p: 0.5}}]`)
	d := p.Runs[0].Config.Decoder
	if d.Temperature != 0 || d.DoSample || !d.Greedy() {
		t.Errorf("deterministic = %+v", d)
	}
	d = p.Runs[1].Config.Decoder
	if d.Temperature != 0.8 || d.TopP != 0.9 || d.RepetitionPenalty != 1.1 {
		t.Errorf("creative = %+v", d)
	}
	if d = p.Runs[2].Config.Decoder; d.TopP != 0.5 || d.Temperature != 0.8 {
		t.Errorf("explicit field must win over the preset: %+v", d)
	}
}

func TestOrder(t *testing.T) {
	src := nativeBase + `grid: n: [1, 2, 3, 4, 5, 6]
execution: {cycles: 3, order: "shuffled", seed: 7}`
	a, b := mustLoad(t, src), mustLoad(t, src)
	if len(a.Order) != 3 || len(a.Schedule) != 18 {
		t.Fatalf("order %v schedule %d", a.Order, len(a.Schedule))
	}
	same := true
	for c := range a.Order {
		if len(a.Order[c]) != 6 {
			t.Fatalf("cycle %d: %v", c, a.Order[c])
		}
		for i := range a.Order[c] {
			if a.Order[c][i] != b.Order[c][i] {
				t.Fatalf("shuffle not reproducible: %v vs %v", a.Order, b.Order)
			}
			if a.Order[c][i] != i {
				same = false
			}
		}
	}
	if same {
		t.Error("shuffled order is the identity in every cycle")
	}
	c := mustLoad(t, strings.Replace(src, "seed: 7", "seed: 8", 1))
	if a.DesignHash != c.DesignHash {
		t.Error("design hash must not depend on execution")
	}
	if equalOrders(a.Order, c.Order) {
		t.Error("different seeds, same order")
	}
	seq := mustLoad(t, nativeBase+`grid: n: [1, 2]
execution: {cycles: 2, order: "sequential"}`)
	want := []Slot{{0, 1}, {0, 2}, {1, 1}, {1, 2}}
	for i, s := range seq.Schedule {
		if s != want[i] {
			t.Fatalf("sequential schedule %v, want %v", seq.Schedule, want)
		}
	}
	inter := mustLoad(t, nativeBase+`grid: n: [1, 2]
execution: {cycles: 2, order: "interleaved"}`)
	want = []Slot{{0, 1}, {1, 1}, {0, 2}, {1, 2}}
	for i, s := range inter.Schedule {
		if s != want[i] {
			t.Fatalf("interleaved schedule %v, want %v", inter.Schedule, want)
		}
	}
	if err := inter.SetCycles(5); err != nil || len(inter.Schedule) != 10 {
		t.Errorf("SetCycles: %v, %d slots", err, len(inter.Schedule))
	}
	// --cycles is bounded like execution.cycles: an absurd number is
	// refused, not allocated.
	for _, n := range []int{0, MaxCycles + 1, 1 << 40} {
		if err := inter.SetCycles(n); err == nil {
			t.Errorf("SetCycles(%d) accepted", n)
		}
	}
	if len(inter.Schedule) != 10 {
		t.Errorf("a refused SetCycles changed the schedule: %d slots", len(inter.Schedule))
	}
}

func equalOrders(a, b [][]int) bool {
	for c := range a {
		for i := range a[c] {
			if a[c][i] != b[c][i] {
				return false
			}
		}
	}
	return true
}

// TestDecomposedMatchesFull checks the memoised per-part validation against
// one whole unification with #Experiment: same effective config when valid,
// both invalid otherwise. It guards the rule in validate.go.
func TestDecomposedMatchesFull(t *testing.T) {
	l, err := newLoader("x.cue")
	if err != nil {
		t.Fatal(err)
	}
	cfgs := []map[string]any{
		{"model": "random:llama-15m", "backend": "native"},
		{"model": "random:llama-15m", "backend": "native", "precision": "fp32", "native": map[string]any{"batch_size": 4}},
		{"model": "m", "backend": "vllm", "precision": "fp16", "vllm": map[string]any{"engine": map[string]any{"max_num_seqs": 8}}},
		{"model": "m", "backend": "pytorch", "pytorch": map[string]any{"batch_size": 2}, "decoder": map[string]any{"preset": "factual"}},
		{"model": "m", "backend": "tensorrt", "precision": "bf16", "dataset": map[string]any{"source": "synthetic", "input_len": 64}},
		{"model": "m", "dataset": map[string]any{"source": "jsonl", "path": "p.jsonl"}, "n": 3, "max_output_tokens": 7},
		{"model": "m", "backend": "vllm", "precision": "fp32"},
		{"model": "m", "backend": "native", "vllm": map[string]any{}},
		{"model": "random:nope", "backend": "native"},
		{"model": "m", "n": 0},
		{"model": "m", "decoder": map[string]any{"temperature": 3}},
		{"backend": "native"},
	}
	for i, c := range cfgs {
		a, _, ra := l.validateRun(c)
		b, rb := l.validateRunFull(c)
		if (ra == nil) != (rb == nil) {
			t.Errorf("cfg %d: decomposed reasons %v, full reasons %v", i, reasonStrings(ra), reasonStrings(rb))
			continue
		}
		if string(a) != string(b) {
			t.Errorf("cfg %d: effective configs differ:\n%s\n%s", i, a, b)
		}
	}
}

// TestCueVet runs the official CUE CLI on examples/ and studies/, one file
// at a time (files are separate studies, not one package).
func TestCueVet(t *testing.T) {
	root, _ := filepath.Abs("../..")
	cue, err := exec.LookPath("cue")
	if err != nil {
		cue = filepath.Join(root, ".tools/bin/cue")
		if _, err := os.Stat(cue); err != nil {
			t.Skip("cue CLI not found in PATH or ./.tools/bin; install it with `make deps`")
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "examples/*.cue"))
	more, _ := filepath.Glob(filepath.Join(root, "studies/*.cue"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no example or study files")
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		cmd := exec.Command(cue, "vet", "./"+rel)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("cue vet %s: %v\n%s", rel, err, out)
		}
		if _, err := Load(context.Background(), f); err != nil {
			t.Errorf("llem load %s: %v", rel, err)
		}
	}
}

func TestWarnsWhenMostlyInvalid(t *testing.T) {
	p := mustLoad(t, `base: {backend: "native", precision: "fp32"}
grid: {model: ["random:llama-15m", "random:llama-3.1-8b", "random:qwen2.5-0.5b"], n: [1, 2]}`)
	if len(p.Runs) != 2 || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "4 of 6 generated configs are invalid") {
		t.Errorf("runs %d warnings %q", len(p.Runs), p.Warnings)
	}
	q := mustLoad(t, nativeBase+`grid: n: [1, 2]`)
	if len(q.Warnings) != 0 {
		t.Errorf("unexpected warnings %q", q.Warnings)
	}
}

func TestResolvePath(t *testing.T) {
	p := &Plan{Source: "/data/studies/s.cue"}
	for in, want := range map[string]string{"p.jsonl": "/data/studies/p.jsonl", "../x/p.jsonl": "/data/x/p.jsonl", "/abs/p.jsonl": "/abs/p.jsonl", "": ""} {
		if got := p.ResolvePath(in); got != want {
			t.Errorf("ResolvePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCarbonBlock(t *testing.T) {
	p := mustLoad(t, nativeBase+`carbon: {region: "FR", pue: 1.2}`)
	if p.Kind != "study" || p.Carbon == nil || p.Carbon.Region != "FR" || p.Carbon.PUE == nil || *p.Carbon.PUE != 1.2 || p.Carbon.IntensityGPerKWh != nil {
		t.Fatalf("carbon = %+v (kind %s)", p.Carbon, p.Kind)
	}
	// Study-level: the block changes no run's ID or the design hash.
	q := mustLoad(t, nativeBase)
	if q.Carbon != nil {
		t.Errorf("no block: carbon = %+v", q.Carbon)
	}
	if p.DesignHash != q.DesignHash || p.Runs[0].ID != q.Runs[0].ID {
		t.Errorf("carbon changed the hashes: %s/%s vs %s/%s", p.DesignHash, p.Runs[0].ID, q.DesignHash, q.Runs[0].ID)
	}
	// plan.json carries it under "carbon"; absent when the study has none.
	b, _ := jsonMarshal(mustLoad(t, nativeBase+`carbon: {intensity_g_per_kwh: 56, source: "RTE eco2mix 2023"}`))
	if !strings.Contains(string(b), `"carbon":{"intensity_g_per_kwh":56,"source":"RTE eco2mix 2023"}`) {
		t.Errorf("plan JSON lacks the carbon block: %s", b)
	}
	if b, _ := jsonMarshal(q); strings.Contains(string(b), `"carbon"`) {
		t.Errorf("plan JSON has a carbon key without a block")
	}
	// A file with only a carbon block beside experiment fields is a study.
	if _, err := load(t, `model: "random:llama-15m"
carbon: region: "FR"`); err == nil || !strings.Contains(err.Error(), "model") {
		t.Errorf("carbon beside experiment fields: %v", err)
	}
}

func TestCarbonBlockErrors(t *testing.T) {
	_, err := load(t, nativeBase+`carbon: {
	intensity_g_per_kwh: 5000
	pue: 0.5
	regoin: "FR"
}`)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{
		"/tmp/study.cue:3:23: carbon.intensity_g_per_kwh: invalid value 5000 (out of bound <=2000)",
		"/tmp/study.cue:4:7: carbon.pue: invalid value 0.5 (out of bound >=1)",
		"/tmp/study.cue:5:2: carbon.regoin: unknown field (did you mean \"region\"?)",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if errs.ExitCode(err) != errs.ExitBadInput {
		t.Errorf("exit code %d, want 2", errs.ExitCode(err))
	}
	_, err = load(t, nativeBase+`carbon: region: "Frnace"`)
	if err == nil || !strings.Contains(err.Error(), `/tmp/study.cue:2:9: carbon.region: unknown region "Frnace" (did you mean "France"?)`) {
		t.Errorf("unknown region: %v", err)
	}
	_, err = load(t, nativeBase+`carbon: region: ""`)
	if err == nil || !strings.Contains(err.Error(), "carbon.region") {
		t.Errorf("empty region: %v", err)
	}
}
