package tensorrt

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
	ngram_max_matching_size: 2
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
  "targets": sorted(args),
}))`).(map[string]any)
	l := got["llm"].(map[string]any)
	kv, _ := l["kv_cache_config"].(map[string]any)
	if _, sent := l["backend"]; sent {
		t.Errorf("llm.backend (deprecated upstream) must not be sent: %v", l)
	}
	if l["dtype"] != "bfloat16" || l["max_batch_size"] != 32.0 || kv["free_gpu_memory_fraction"] != 0.7 ||
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
	if st := got["settings"].(map[string]any); st["runtime"] != "pytorch" {
		t.Errorf("settings = %v", st)
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

// TestEveryParamReachesTheFake: studies that set every first-class
// tensorrt param (three, since the speculative modes exclude each other)
// go through pkg/study, params.BackendArgs and the harness's argument
// building into the FAKE tensorrt_llm built from the pinned snapshot, whose
// LLM() and SamplingParams() accept exactly what upstream accepts. A param
// mapped to a key upstream lacks, a value outside upstream's Literal set or
// a config object of the wrong class fails here.
func TestEveryParamReachesTheFake(t *testing.T) {
	common := `
model: "org/model"
backend: "tensorrt"
precision: "bf16"
dataset: {source: "synthetic", input_len: 16, output_len: 8}
tensorrt: {
	runtime: "pytorch"
	tensor_parallel_size: 1
	pipeline_parallel_size: 1
	context_parallel_size: 1
	moe_tensor_parallel_size: 1
	moe_cluster_parallel_size: 1
	moe_expert_parallel_size: 1
	moe_backend: "CUTLASS"
	moe_load_balancer: "/tmp/lb.yaml"
	moe_max_num_tokens: 4096
	moe_disable_finalize_fusion: true
	moe_low_precision_combine: false
	allreduce_strategy: "MINLATENCY"
	enable_attention_dp: true
	enable_lm_head_tp_in_adp: false
	attention_dp_balance: true
	attention_dp_timeout_iters: 50
	attention_dp_batching_wait_iters: 10
	max_batch_size: 64
	max_num_tokens: 4096
	batch_wait_timeout_ms: 1.5
	batch_wait_timeout_iters: 2
	batch_wait_max_tokens_ratio: 0.5
	max_seq_len: 2048
	max_input_len: 1024
	max_beam_width: 1
	enable_chunked_prefill: true
	free_gpu_memory_fraction: 0.8
	kv_cache_max_tokens: 100000
	kv_cache_max_gpu_total_bytes: 1000000000
	kv_cache_tokens_per_block: 64
	kv_cache_sink_token_length: 4
	enable_block_reuse: false
	kv_cache_enable_partial_reuse: false
	kv_cache_copy_on_partial_reuse: false
	kv_cache_onboard_blocks: true
	kv_cache_use_uvm: false
	mamba_ssm_cache_dtype: "bfloat16"
	kv_cache_dtype: "fp8"
	kv_cache_max_attention_window: [1024]
	host_cache_size: 1000000
	force_dynamic_quantization: false
	capacity_scheduler_policy: "MAX_UTILIZATION"
	context_chunking_policy: "EQUAL_PROGRESS"
	enable_cuda_graph: true
	cuda_graph_batch_sizes: [1, 2, 4]
	cuda_graph_padding: true
	disable_overlap_scheduler: true
	garbage_collection_gen0_threshold: 10000
	enable_min_latency: false
	attn_backend: "FLASHINFER"
	sampler_type: "TorchSampler"
	enable_autotuner: false
	torch_compile_inductor: true
	torch_compile_piecewise_cuda_graph: true
	torch_compile_fullgraph: true
	torch_compile_capture_num_tokens: [8, 16]
	torch_compile_userbuffers: false
	torch_compile_max_num_streams: 2
	num_postprocess_workers: 1
	stream_interval: 4
	revision: "main"
	trust_remote_code: false
	sampling: {max_tokens: 8, min_tokens: 1, ignore_eos: true, n: 1, best_of: 1, length_penalty: 1.0,
		beam_search_diversity_rate: 0.0, top_p_min: 0.5, top_p_reset_ids: 1, top_p_decay: 0.9, beam_width_array: [1], early_stopping: 1, no_repeat_ngram_size: 3, presence_penalty: 0.1,
		frequency_penalty: 0.1, stop: ["x"], stop_token_ids: [2], detokenize: false, logprobs: 1}
	extra: llm: {enable_iter_perf_stats: false}
	extra: sampling: {skip_special_tokens: true}
`
	specs := []string{`
	speculative_decoding_mode: "Eagle"
	speculative_model: "org/eagle3"
	max_draft_len: 3
	eagle3_one_model: true
	speculative_max_concurrency: 32
	speculative_acceptance_window: 10
	speculative_acceptance_length_threshold: 1.5
}`, `
	speculative_decoding_mode: "NGram"
	max_draft_len: 4
	ngram_max_matching_size: 3
	ngram_keep_all: false
	ngram_use_oldest: false
	ngram_public_pool: false
}`, `
	speculative_decoding_mode: "MTP"
	mtp_num_nextn_predict_layers: 2
	mtp_use_vanilla: false
	mtp_eagle_one_model: true
	mtp_relaxed_acceptance_for_thinking: true
	mtp_relaxed_topk: 3
	mtp_relaxed_delta: 0.5
}`, `
	speculative_decoding_mode: "DraftTarget"
	speculative_model: "org/draft"
	max_draft_len: 4
}`, `
	speculative_decoding_mode: "AUTO"
}`}
	fake, _ := filepath.Abs("testdata/faketrt")
	t.Setenv("FAKE_TRT_SNAPSHOT", snapshotPath(t))
	for i, sp := range specs {
		src := common + sp
		got := pyharnesstest.HarnessKwargs(t, ".", "../pyharness", src, `
sys.path.insert(0, `+strconv.Quote(fake)+`)
import harness_tensorrt as ht
import tensorrt_llm
cfg, args = spec["config"], spec["backend_args"]
kw = ht.llm_kwargs(cfg, args, cfg["model"], False)
ht.guard_block_reuse(kw)
tensorrt_llm.LLM(**ht.to_objects(kw))
sp = tensorrt_llm.SamplingParams(**ht.sampling_kwargs(cfg, args, 8, True))
print(json.dumps({"llm": sorted(kw), "sampling": sorted(sp.kw)}))`).(map[string]any)
		if len(got["llm"].([]any)) < 30 || len(got["sampling"].([]any)) < 15 {
			t.Errorf("study %d: fewer arguments reached the fake than set: %v", i, got)
		}
	}
}
