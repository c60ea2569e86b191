package tensorrt

import (
	"os"
	"regexp"
	"testing"

	"github.com/llenergymeasure/llem/pkg/backend/pyharness/pyharnesstest"
)

// TestSchemaToHarness: a tensorrt section written in a study goes through
// pkg/study and params.BackendArgs and arrives in the right arguments of
// LLM() (with the config-object plan), SamplingParams() and the harness
// settings, via the real harness functions.
func TestSchemaToHarness(t *testing.T) {
	src := `
model: "org/model"
backend: "tensorrt"
precision: "bf16"
dataset: {source: "synthetic", input_len: 16, output_len: 8}
decoder: preset: "deterministic"
tensorrt: {
	runtime: "pytorch"
	max_batch_size: 32
	free_gpu_memory_fraction: 0.7
	speculative_decoding_mode: "NGram"
	max_draft_len: 4
	enable_cuda_graph: false
	sampling: {min_tokens: 3}
}
`
	got := pyharnesstest.HarnessKwargs(t, ".", "../pyharness", src, `
import harness_tensorrt as ht
cfg, args = spec["config"], spec["backend_args"]
kw = ht.llm_kwargs(cfg, args, cfg["model"], False)
print(json.dumps({
  "llm": kw,
  "plan": sorted(ht.object_plan(kw)),
  "sampling": ht.sampling_kwargs(cfg, args, 16, True),
  "settings": ht.harness_settings(args),
  "builds": ht.builds_engine(kw, "1.0.0"),
  "targets": sorted(args),
}))`).(map[string]any)
	l := got["llm"].(map[string]any)
	kv, _ := l["kv_cache_config"].(map[string]any)
	if l["backend"] != "pytorch" || l["dtype"] != "bfloat16" || l["max_batch_size"] != 32.0 || kv["free_gpu_memory_fraction"] != 0.7 ||
		l["cuda_graph_config"] != nil {
		t.Errorf("llm = %v", l)
	}
	if _, present := l["cuda_graph_config"]; !present {
		t.Error("enable_cuda_graph: false must send cuda_graph_config=None")
	}
	plan := got["plan"].([]any)
	if len(plan) != 2 {
		t.Errorf("object plan = %v", plan)
	}
	s := got["sampling"].(map[string]any)
	if s["temperature"] != 0.0 || s["top_k"] != 1.0 || s["min_tokens"] != 3.0 || s["ignore_eos"] != true {
		t.Errorf("sampling = %v", s)
	}
	if got["builds"] != false {
		t.Error("runtime pytorch builds no engine")
	}
	handled := map[string]bool{"llm": true, "sampling": true, "llem": true}
	for _, tg := range got["targets"].([]any) {
		if !handled[tg.(string)] {
			t.Errorf("backend_args target %q is not applied by harness_tensorrt.py", tg)
		}
	}
}

// TestNestedConfigsBecomeObjects: every schema param that lands inside a
// nested LLM() config (@tensorrt(llm.<x>_config.<field>)) must have its
// class in harness_tensorrt.py's CONFIG_OBJECTS, or the LLM API gets a
// plain dict where it wants e.g. a MoeConfig.
func TestNestedConfigsBecomeObjects(t *testing.T) {
	schema, err := os.ReadFile("../../../schema/tensorrt.cue")
	if err != nil {
		t.Fatal(err)
	}
	harness, err := os.ReadFile("harness_tensorrt.py")
	if err != nil {
		t.Fatal(err)
	}
	nested := regexp.MustCompile(`@tensorrt\(llm\.([a-z_]+_config)\.`)
	seen := map[string]bool{}
	for _, m := range nested.FindAllStringSubmatch(string(schema), -1) {
		if seen[m[1]] || m[1] == "speculative_config" { // by decoding_type: SPECULATIVE_CLASSES
			continue
		}
		seen[m[1]] = true
		if !regexp.MustCompile(`"` + m[1] + `":\s*"[A-Za-z]+"`).Match(harness) {
			t.Errorf("schema maps params into llm.%s, but CONFIG_OBJECTS in harness_tensorrt.py has no class for it", m[1])
		}
	}
	if len(seen) < 3 {
		t.Fatalf("found only %d nested configs in schema/tensorrt.cue: %v (pattern out of date?)", len(seen), seen)
	}
}
