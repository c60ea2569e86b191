package pytorch

import (
	"reflect"
	"testing"

	"github.com/llenergymeasure/llem/pkg/backend/pyharness/pyharnesstest"
)

// TestSchemaToHarness: a pytorch section written in a study goes through
// pkg/study, params.BackendArgs (the schema's mapping attributes) and
// arrives in the right keyword arguments of the real harness functions.
func TestSchemaToHarness(t *testing.T) {
	src := `
model: "random:llama-15m"
backend: "pytorch"
precision: "fp16"
dataset: {source: "synthetic", input_len: 16, output_len: 8}
decoder: {temperature: 0.7, top_k: 20, top_p: 0.9}
pytorch: {
	batch_size: 8
	batching: "sorted"
	attn_implementation: "eager"
	load_in_4bit: true
	bnb_4bit_quant_type: "nf4"
	torch_compile: true
	torch_compile_mode: "reduce-overhead"
	num_beams: 2
	cache_implementation: "static"
	extra: generate: {forced_eos_token_id: 2}
}
`
	got := pyharnesstest.HarnessKwargs(t, ".", "../pyharness", src, `
import harness_pytorch as hp
cfg, args = spec["config"], spec["backend_args"]
print(json.dumps({
  "knobs": hp.knobs(cfg, args),
  "fp": hp.from_pretrained_kwargs(cfg, args, "dtype"),
  "gen": hp.generate_kwargs(cfg, args),
  "compile": args.get("compile"),
  "targets": sorted(args),
}))`).(map[string]any)
	want := map[string]any{"batch_size": 8.0, "batching": "sorted", "torch_compile": true}
	if !reflect.DeepEqual(got["knobs"], want) {
		t.Errorf("knobs = %v, want %v", got["knobs"], want)
	}
	fp := got["fp"].(map[string]any)
	q, _ := fp["quantization_config"].(map[string]any)
	if fp["dtype"] != "float16" || fp["attn_implementation"] != "eager" || q["load_in_4bit"] != true || q["bnb_4bit_quant_type"] != "nf4" {
		t.Errorf("from_pretrained = %v", fp)
	}
	gen := got["gen"].(map[string]any)
	if gen["num_beams"] != 2.0 || gen["cache_implementation"] != "static" || gen["temperature"] != 0.7 ||
		gen["top_k"] != 20.0 || gen["do_sample"] != true || gen["forced_eos_token_id"] != 2.0 {
		t.Errorf("generate = %v", gen)
	}
	if c := got["compile"].(map[string]any); c["mode"] != "reduce-overhead" {
		t.Errorf("compile = %v", c)
	}
	handled := map[string]bool{"from_pretrained": true, "generate": true, "compile": true, "tokenizer": true, "torch": true, "llem": true}
	for _, tg := range got["targets"].([]any) {
		if !handled[tg.(string)] {
			t.Errorf("backend_args target %q is not applied by harness_pytorch.py", tg)
		}
	}
}
