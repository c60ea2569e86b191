package vllm

import (
	"testing"

	"github.com/llenergymeasure/llem/pkg/backend/pyharness/pyharnesstest"
)

// TestSchemaToHarness: a vllm section written in a study goes through
// pkg/study and params.BackendArgs and arrives in the right arguments of
// LLM(), SamplingParams() and the environment, via the real harness
// functions.
func TestSchemaToHarness(t *testing.T) {
	src := `
model: "org/model"
backend: "vllm"
precision: "fp16"
random_seed: 7
dataset: {source: "synthetic", input_len: 16, output_len: 8}
decoder: {temperature: 0.7, top_k: 0, top_p: 0.9}
vllm: {
	engine: {
		max_num_seqs: 64
		enforce_eager: true
		speculative_model: "org/draft"
		num_speculative_tokens: 4
		attention_backend: "FLASHINFER"
	}
	sampling: {presence_penalty: 0.5, min_tokens: 2}
	extra: engine: {some_new_flag: true}
}
`
	got := pyharnesstest.HarnessKwargs(t, ".", "../pyharness", src, `
import harness_vllm as hv
cfg, args = spec["config"], spec["backend_args"]
env = {}
hv.apply_env(args, env)
print(json.dumps({
  "engine": hv.engine_kwargs(cfg, args, cfg["model"], False),
  "sampling": hv.sampling_kwargs(cfg, args, 32),
  "env": env,
  "targets": sorted(args),
}))`).(map[string]any)
	e := got["engine"].(map[string]any)
	sc, _ := e["speculative_config"].(map[string]any)
	if e["model"] != "org/model" || e["dtype"] != "float16" || e["seed"] != 7.0 || e["max_num_seqs"] != 64.0 ||
		e["enforce_eager"] != true || e["some_new_flag"] != true || sc["model"] != "org/draft" || sc["num_speculative_tokens"] != 4.0 {
		t.Errorf("engine = %v", e)
	}
	s := got["sampling"].(map[string]any)
	if s["temperature"] != 0.7 || s["top_k"] != -1.0 || s["presence_penalty"] != 0.5 || s["min_tokens"] != 2.0 || s["max_tokens"] != 32.0 {
		t.Errorf("sampling = %v", s)
	}
	// attention_backend reaches LLM(attention_config={"backend": ...}), the
	// route current vLLM reads; no VLLM_ATTENTION_BACKEND is set.
	if ac, _ := e["attention_config"].(map[string]any); ac["backend"] != "FLASHINFER" {
		t.Errorf("engine.attention_config = %v", e["attention_config"])
	}
	if env := got["env"].(map[string]any); len(env) != 0 {
		t.Errorf("env = %v", env)
	}
	handled := map[string]bool{"engine": true, "sampling": true, "beam_search": true, "env": true}
	for _, tg := range got["targets"].([]any) {
		if !handled[tg.(string)] {
			t.Errorf("backend_args target %q is not applied by harness_vllm.py", tg)
		}
	}
}
