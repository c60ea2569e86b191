package params

import (
	"strings"
	"testing"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
)

// validate unifies a CUE snippet (the body of a backend section) with the
// backend's definition and validates it as llem does: concrete, all errors.
func validate(t *testing.T, backend, snippet string) string {
	t.Helper()
	s := mustSchema(t)
	def, err := s.Value(backend)
	if err != nil {
		t.Fatal(err)
	}
	x := def.Context().CompileString(snippet, cue.Filename("run.cue"))
	if err := x.Err(); err != nil {
		t.Fatalf("compile snippet: %v", err)
	}
	err = def.Unify(x).Validate(cue.Concrete(true))
	if err == nil {
		return ""
	}
	return cueerrors.Details(err, nil)
}

// TestCrossFieldRules covers every backend rule (inventory §2.8 plus the
// ones the backends only warn about) with a valid and an invalid case.
func TestCrossFieldRules(t *testing.T) {
	tests := []struct {
		name, backend, snippet string
		want                   string // "" = valid; else a substring of the error
	}{
		// pytorch
		{"defaults", "pytorch", `{}`, ""},
		{"removed low_cpu_mem_usage", "pytorch", `low_cpu_mem_usage: true`, "pytorch.low_cpu_mem_usage was removed: transformers 5 from_pretrained discards it"},
		{"removed swap_space", "vllm", `engine: swap_space: 4`, "vllm.engine.swap_space was removed: the V1 engine preempts by recomputation"},
		{"removed truncate_prompt_tokens", "vllm", `sampling: truncate_prompt_tokens: 8`, "vllm.sampling.truncate_prompt_tokens was removed"},
		{"4bit and 8bit", "pytorch", `load_in_4bit: true, load_in_8bit: true`, "pytorch.load_in_4bit and pytorch.load_in_8bit are mutually exclusive"},
		{"4bit alone", "pytorch", `load_in_4bit: true, bnb_4bit_quant_type: "nf4", bnb_4bit_compute_dtype: "bfloat16", bnb_4bit_use_double_quant: true, bnb_4bit_quant_storage: "uint8"`, ""},
		{"compile mode without compile", "pytorch", `torch_compile_mode: "max-autotune"`, "pytorch.torch_compile_mode has no effect without pytorch.torch_compile: true"},
		{"compile backend without compile", "pytorch", `torch_compile_backend: "inductor"`, "pytorch.torch_compile_backend has no effect without pytorch.torch_compile: true"},
		{"compile fullgraph without compile", "pytorch", `torch_compile_fullgraph: true`, "pytorch.torch_compile_fullgraph has no effect"},
		{"compile dynamic with compile", "pytorch", `torch_compile: true, torch_compile_dynamic: false, torch_compile_mode: "reduce-overhead"`, ""},
		{"bnb_4bit without 4bit", "pytorch", `bnb_4bit_quant_type: "nf4"`, "pytorch.bnb_4bit_quant_type needs pytorch.load_in_4bit: true"},
		{"bnb_4bit storage with 8bit", "pytorch", `load_in_8bit: true, bnb_4bit_quant_storage: "uint8"`, "pytorch.bnb_4bit_quant_storage needs pytorch.load_in_4bit: true"},
		{"int8 threshold without 8bit", "pytorch", `llm_int8_threshold: 5`, "pytorch.llm_int8_threshold needs pytorch.load_in_8bit: true"},
		{"int8 threshold with 8bit", "pytorch", `llm_int8_threshold: 5, load_in_8bit: true`, ""},
		{"cache_implementation with use_cache false", "pytorch", `use_cache: false, cache_implementation: "static"`, "pytorch.cache_implementation needs the KV cache"},
		{"cache_implementation with use_cache", "pytorch", `use_cache: true, cache_implementation: "static"`, ""},
		{"cache_implementation alone", "pytorch", `cache_implementation: "offloaded_static"`, ""},
		{"cache_config without implementation", "pytorch", `cache_config: {nbits: 4}`, "pytorch.cache_config needs pytorch.cache_implementation"},
		{"quantized cache", "pytorch", `cache_implementation: "quantized", cache_config: {backend: "quanto", nbits: 4}`, ""},
		{"compile_config with compile disabled", "pytorch", `compile_config: {fullgraph: true}, disable_compile: true`, "pytorch.compile_config has no effect with pytorch.disable_compile: true"},
		{"compile_config with static cache", "pytorch", `cache_implementation: "static", compile_config: {fullgraph: true}, disable_compile: false`, ""},
		{"custom generate", "pytorch", `custom_generate: "transformers-community/dola", num_return_sequences: 2`, ""},
		{"custom generate not a repo", "pytorch", `custom_generate: "dola"`, "custom_generate"},
		{"prompt lookup and assistant", "pytorch", `prompt_lookup_num_tokens: 10, assistant_model: "x/y"`, "two kinds of speculative decoding"},
		{"ngram size without prompt lookup", "pytorch", `max_matching_ngram_size: 3`, "pytorch.max_matching_ngram_size needs pytorch.prompt_lookup_num_tokens"},
		{"prompt lookup", "pytorch", `prompt_lookup_num_tokens: 10, max_matching_ngram_size: 3`, ""},
		{"assisted generation batched", "pytorch", `batch_size: 4, assistant_early_exit: 2`, "runs one prompt at a time: set pytorch.batch_size: 1"},
		{"assistant batched", "pytorch", `batch_size: 2, assistant_model: "x/y"`, "pytorch.assistant_model is assisted generation"},
		{"assisted generation one prompt", "pytorch", `batch_size: 1, prompt_lookup_num_tokens: 3`, ""},
		{"paged cache", "pytorch", `cache_implementation: "paged"`, "llem does not drive generate_batch"},
		{"prompt lookup batched", "pytorch", `batch_size: 3, prompt_lookup_num_tokens: 3`, "pytorch.prompt_lookup_num_tokens is assisted generation, which transformers runs one prompt at a time"},
		{"assisted generation static cache", "pytorch", `prompt_lookup_num_tokens: 3, cache_implementation: "static"`, "refuses with the static cache classes"},
		{"assistant hybrid cache", "pytorch", `assistant_model: "x/y", cache_implementation: "hybrid"`, "pytorch.assistant_model is assisted generation, which transformers refuses with the static cache classes"},
		{"early exit sliding cache", "pytorch", `assistant_early_exit: 2, cache_implementation: "sliding_window"`, "pytorch.assistant_early_exit is assisted generation, which transformers refuses"},
		{"assisted generation offloaded cache", "pytorch", `assistant_early_exit: 2, cache_implementation: "offloaded"`, ""},
		{"assistant tokens without assistant", "pytorch", `num_assistant_tokens: 5`, "pytorch.num_assistant_tokens needs pytorch.assistant_model"},
		{"assistant threshold without assistant", "pytorch", `assistant_confidence_threshold: 0.5`, "pytorch.assistant_confidence_threshold needs pytorch.assistant_model"},
		{"assistant", "pytorch", `assistant_model: "x/y", num_assistant_tokens: 5, num_assistant_tokens_schedule: "heuristic"`, ""},
		{"output_scores without dict", "pytorch", `output_scores: true`, "pytorch.output_scores is only returned with pytorch.return_dict_in_generate: true"},
		{"output_scores false", "pytorch", `output_scores: false`, ""},
		{"output_hidden_states with dict", "pytorch", `output_hidden_states: true, return_dict_in_generate: true`, ""},
		{"batch_size bound", "pytorch", `batch_size: 0`, "batch_size"},
		{"attn hub kernel", "pytorch", `attn_implementation: "kernels-community/flash-attn"`, ""},
		{"attn typo", "pytorch", `attn_implementation: "flash_attention2"`, "attn_implementation"},
		{"unknown field", "pytorch", `num_beam: 4`, "num_beam: field not allowed"},

		// vllm
		{"vllm defaults", "vllm", `{}`, ""},
		{"kv bytes and utilization", "vllm", `engine: {kv_cache_memory_bytes: 1000, gpu_memory_utilization: 0.8}`, "vllm.engine.kv_cache_memory_bytes and vllm.engine.gpu_memory_utilization are mutually exclusive"},
		{"kv bytes alone", "vllm", `engine: kv_cache_memory_bytes: 1000`, ""},
		{"speculative model without tokens", "vllm", `engine: speculative_model: "x/draft"`, "vllm.engine.speculative_model needs vllm.engine.num_speculative_tokens"},
		{"speculative model", "vllm", `engine: {speculative_model: "x/draft", num_speculative_tokens: 4}`, ""},
		{"speculative method without tokens", "vllm", `engine: speculative_method: "mtp"`, "vllm.engine.speculative_method needs vllm.engine.num_speculative_tokens"},
		{"prompt lookup without method", "vllm", `engine: prompt_lookup_max: 4`, "vllm.engine.prompt_lookup_max needs vllm.engine.speculative_method: \"ngram\""},
		{"prompt lookup with eagle", "vllm", `engine: {speculative_method: "eagle", speculative_model: "x", num_speculative_tokens: 2, prompt_lookup_min: 1}`, "applies only to vllm.engine.speculative_method: \"ngram\""},
		{"ngram", "vllm", `engine: {speculative_method: "ngram", num_speculative_tokens: 3, prompt_lookup_max: 4, prompt_lookup_min: 2}`, ""},
		{"prompt lookup min > max", "vllm", `engine: {speculative_method: "ngram", num_speculative_tokens: 3, prompt_lookup_max: 2, prompt_lookup_min: 4}`, "prompt_lookup_min must be <="},
		{"batched tokens < seqs", "vllm", `engine: {max_num_seqs: 256, max_num_batched_tokens: 128}`, "max_num_batched_tokens must be >= vllm.engine.max_num_seqs"},
		{"long partial > partial", "vllm", `engine: {max_num_partial_prefills: 1, max_long_partial_prefills: 2}`, "max_long_partial_prefills must be <="},
		{"cudagraph sizes with eager", "vllm", `engine: {enforce_eager: true, cudagraph_capture_sizes: [1, 2]}`, "has no effect with vllm.engine.enforce_eager: true"},
		{"max cudagraph with eager", "vllm", `engine: {enforce_eager: true, max_cudagraph_capture_size: 64}`, "has no effect with vllm.engine.enforce_eager: true"},
		{"eplb without expert parallel", "vllm", `engine: enable_eplb: true`, "vllm.engine.enable_eplb needs vllm.engine.enable_expert_parallel: true"},
		{"eplb with expert parallel off", "vllm", `engine: {enable_eplb: true, enable_expert_parallel: false}`, "vllm.engine.enable_eplb needs vllm.engine.enable_expert_parallel: true"},
		{"eplb off", "vllm", `engine: {enable_eplb: false}`, ""},
		{"eplb", "vllm", `engine: {enable_eplb: true, enable_expert_parallel: true}`, ""},
		{"lora knob without lora", "vllm", `engine: max_loras: 4`, "vllm.engine.max_loras needs vllm.engine.enable_lora: true"},
		{"lora knob with lora off", "vllm", `engine: {enable_lora: false, max_lora_rank: 64}`, "vllm.engine.max_lora_rank needs vllm.engine.enable_lora: true"},
		{"lora sharding without lora", "vllm", `engine: fully_sharded_loras: true`, "vllm.engine.fully_sharded_loras needs vllm.engine.enable_lora: true"},
		{"lora cpu cache without lora", "vllm", `engine: max_cpu_loras: 4`, "vllm.engine.max_cpu_loras needs vllm.engine.enable_lora: true"},
		{"lora dtype without lora", "vllm", `engine: lora_dtype: "float16"`, "vllm.engine.lora_dtype needs vllm.engine.enable_lora: true"},
		{"lora", "vllm", `engine: {enable_lora: true, max_loras: 4, max_lora_rank: 64, fully_sharded_loras: true, max_cpu_loras: 8, lora_dtype: "bfloat16"}`, ""},
		{"dbo threshold without dbo", "vllm", `engine: dbo_decode_token_threshold: 64`, "vllm.engine.dbo_decode_token_threshold needs vllm.engine.enable_dbo: true"},
		{"dbo threshold with dbo off", "vllm", `engine: {enable_dbo: false, dbo_prefill_token_threshold: 256}`, "vllm.engine.dbo_prefill_token_threshold needs vllm.engine.enable_dbo: true"},
		{"dbo thresholds", "vllm", `engine: {enable_dbo: true, dbo_decode_token_threshold: 64, dbo_prefill_token_threshold: 256}`, ""},
		{"eplb knob without eplb", "vllm", `engine: eplb_window_size: 500`, "vllm.engine.eplb_window_size needs vllm.engine.enable_eplb: true"},
		{"eplb knobs with eplb off", "vllm", `engine: {enable_eplb: false, eplb_step_interval: 100}`, "vllm.engine.eplb_step_interval needs vllm.engine.enable_eplb: true"},
		{"eplb redundant without eplb", "vllm", `engine: eplb_num_redundant_experts: 2`, "vllm.engine.eplb_num_redundant_experts needs vllm.engine.enable_eplb: true"},
		{"eplb knobs", "vllm", `engine: {enable_eplb: true, enable_expert_parallel: true, eplb_num_redundant_experts: 2, eplb_window_size: 500, eplb_step_interval: 100}`, ""},
		{"mamba dtype enum", "vllm", `engine: mamba_cache_dtype: "int8"`, "mamba_cache_dtype"},
		{"logit bias keys are token ids", "vllm", `sampling: logit_bias: {"abc": 1.0}`, "logit_bias"},
		{"logit bias", "vllm", `sampling: logit_bias: {"42": -100}`, ""},
		{"kernel options without kernels", "pytorch", `allow_all_kernels: true`, "pytorch.allow_all_kernels needs pytorch.use_kernels: true"},
		{"kernel config with kernels off", "pytorch", `use_kernels: false, kernel_config: {use_local_kernel: false}`, "pytorch.kernel_config needs pytorch.use_kernels: true"},
		{"kernels", "pytorch", `use_kernels: true, allow_all_kernels: true, kernel_config: {use_local_kernel: false}`, ""},
		{"ensemble without assistant", "pytorch", `assistant_ensemble_weight: 0.5`, "pytorch.assistant_ensemble_weight needs pytorch.assistant_model"},
		{"lookbehind without assistant", "pytorch", `assistant_lookbehind: 4`, "pytorch.assistant_lookbehind needs pytorch.assistant_model"},
		{"target lookbehind without assistant", "pytorch", `target_lookbehind: 4`, "pytorch.target_lookbehind needs pytorch.assistant_model"},
		{"diversity without groups", "pytorch", `diversity_penalty: 0.5`, "pytorch.diversity_penalty needs pytorch.num_beam_groups"},
		{"dola without custom_generate", "pytorch", `dola_layers: "high"`, "set pytorch.custom_generate: \"transformers-community/dola\""},
		{"group beams without custom_generate", "pytorch", `num_beam_groups: 2, diversity_penalty: 0.5`, "transformers-community/group-beam-search"},
		{"contrastive without custom_generate", "pytorch", `penalty_alpha: 0.6`, "transformers-community/contrastive-search"},
		{"constraints without custom_generate", "pytorch", `force_words_ids: [[3, 4]]`, "transformers-community/constrained-beam-search"},
		{"dola", "pytorch", `dola_layers: "high", custom_generate: "transformers-community/dola", trust_remote_code: true`, ""},
		{"max cache len without a cache class", "pytorch", `max_cache_len: 4096`, "pytorch.max_cache_len sizes a preallocated cache"},
		{"static cache length", "pytorch", `cache_implementation: "static", max_cache_len: 4096`, ""},
		{"sequence bias shape", "pytorch", `sequence_bias: [[[5, 6], -1.5]]`, ""},
		{"decay penalty shape", "pytorch", `exponential_decay_length_penalty: [10, 0.5]`, "exponential_decay_length_penalty"},
		{"beam search and sampling", "vllm", `beam_search: beam_width: 4, sampling: n: 2`, "vllm.beam_search and vllm.sampling are mutually exclusive"},
		{"beam search", "vllm", `beam_search: {beam_width: 4, length_penalty: 0.8}`, ""},
		{"beam search needs width", "vllm", `beam_search: {length_penalty: 0.8}`, "beam_width"},
		{"min > max tokens", "vllm", `sampling: {min_tokens: 10, max_tokens: 5}`, "vllm.sampling.min_tokens must be <= vllm.sampling.max_tokens"},
		{"presence bound", "vllm", `sampling: presence_penalty: 3.0`, "presence_penalty"},
		{"gpu util bound", "vllm", `engine: gpu_memory_utilization: 1.5`, "gpu_memory_utilization"},
		{"block size enum", "vllm", `engine: block_size: 24`, "block_size"},
		{"attention backend", "vllm", `engine: attention_backend: "FLASHINFER"`, ""},

		// tensorrt
		{"trt defaults", "tensorrt", `{}`, ""},
		{"runtime tensorrt removed", "tensorrt", `runtime: "tensorrt"`, "tensorrt.runtime \"tensorrt\" was removed: tensorrt_llm.LLM is the PyTorch-runtime class"},
		{"runtime pytorch", "tensorrt", `runtime: "pytorch"`, ""},
		{"engine param removed", "tensorrt", `strongly_typed: true`, "tensorrt.strongly_typed was removed with runtime \"tensorrt\""},
		{"quantization removed", "tensorrt", `quantization: "FP8"`, "tensorrt.quantization was removed: the PyTorch runtime keeps quant_config private"},
		{"kv quant removed", "tensorrt", `kv_cache_quant_algo: "FP8"`, "set tensorrt.kv_cache_dtype: \"fp8\" instead"},
		{"fp8 kv cache", "tensorrt", `kv_cache_dtype: "fp8", force_dynamic_quantization: true`, ""},
		{"medusa refused", "tensorrt", `speculative_decoding_mode: "Medusa", max_draft_len: 3`, "tensorrt.speculative_decoding_mode \"Medusa\" and \"Lookahead\" work only with TensorRT engines"},
		{"lookahead refused", "tensorrt", `speculative_decoding_mode: "Lookahead", max_draft_len: 3`, "work only with TensorRT engines"},
		{"eagle3 old name", "tensorrt", `speculative_decoding_mode: "Eagle3", max_draft_len: 3`, "speculative_decoding_mode"},
		{"allreduce old example value", "tensorrt", `allreduce_strategy: "MIN_LATENCY"`, "allreduce_strategy"},
		{"allreduce", "tensorrt", `allreduce_strategy: "MINLATENCY", moe_backend: "TRTLLM"`, ""},
		{"ngram needs matching size", "tensorrt", `speculative_decoding_mode: "NGram", max_draft_len: 3`, "\"NGram\" needs tensorrt.max_draft_len and tensorrt.ngram_max_matching_size"},
		{"ngram", "tensorrt", `speculative_decoding_mode: "NGram", max_draft_len: 3, ngram_max_matching_size: 2`, ""},
		{"ngram size with eagle", "tensorrt", `speculative_decoding_mode: "Eagle", speculative_model: "x/e", max_draft_len: 3, ngram_max_matching_size: 2`, "tensorrt.ngram_max_matching_size needs tensorrt.speculative_decoding_mode: \"NGram\""},
		{"eagle3 one model with mtp", "tensorrt", `speculative_decoding_mode: "MTP", eagle3_one_model: true`, "tensorrt.eagle3_one_model needs tensorrt.speculative_decoding_mode: \"Eagle\""},
		{"mtp", "tensorrt", `speculative_decoding_mode: "MTP", mtp_num_nextn_predict_layers: 2, mtp_use_vanilla: false, mtp_eagle_one_model: true`, ""},
		{"auto", "tensorrt", `speculative_decoding_mode: "AUTO", speculative_max_concurrency: 8`, ""},
		{"adp balance", "tensorrt", `enable_attention_dp: true, attention_dp_balance: true, attention_dp_timeout_iters: 5`, ""},
		{"cuda graph sizes with graphs off", "tensorrt", `enable_cuda_graph: false, cuda_graph_batch_sizes: [1, 2]`, "has no effect with tensorrt.enable_cuda_graph: false"},
		{"cuda graph sizes", "tensorrt", `cuda_graph_batch_sizes: [1, 2, 4], cuda_graph_padding: true`, ""},
		{"draft len without mode", "tensorrt", `max_draft_len: 3`, "tensorrt.max_draft_len needs tensorrt.speculative_decoding_mode"},
		{"mode without draft len", "tensorrt", `speculative_decoding_mode: "Eagle", speculative_model: "x/eagle"`, "\"DraftTarget\" and \"Eagle\" need tensorrt.max_draft_len"},
		{"eagle", "tensorrt", `speculative_decoding_mode: "Eagle", speculative_model: "x/eagle", max_draft_len: 3, eagle3_one_model: false`, ""},
		{"input > seq len", "tensorrt", `max_input_len: 4096, max_seq_len: 2048`, "tensorrt.max_input_len must be <= tensorrt.max_seq_len"},
		{"beam search without width", "tensorrt", `sampling: use_beam_search: true`, "tensorrt.sampling.use_beam_search needs tensorrt.max_beam_width > 1"},
		{"beam search width 1", "tensorrt", `max_beam_width: 1, sampling: use_beam_search: true`, "needs tensorrt.max_beam_width > 1"},
		{"beam search", "tensorrt", `max_beam_width: 4, sampling: {use_beam_search: true, best_of: 4}`, ""},
		{"best_of < n", "tensorrt", `sampling: {n: 4, best_of: 2}`, "tensorrt.sampling.best_of must be >= tensorrt.sampling.n"},
		{"trt min > max tokens", "tensorrt", `sampling: {min_tokens: 9, max_tokens: 3}`, "tensorrt.sampling.min_tokens must be <="},

		// every field of the loop-generated rules at once
		{"all compile options without compile", "pytorch", `torch_compile_mode: "default", torch_compile_backend: "inductor", torch_compile_fullgraph: true, torch_compile_dynamic: true`, "torch_compile_dynamic has no effect"},
		{"all bnb options without 4bit", "pytorch", `bnb_4bit_compute_dtype: "bfloat16", bnb_4bit_quant_type: "nf4", bnb_4bit_use_double_quant: true, bnb_4bit_quant_storage: "uint8"`, "bnb_4bit_use_double_quant needs"},
		{"all assistant options without assistant", "pytorch", `num_assistant_tokens: 3, num_assistant_tokens_schedule: "constant", assistant_confidence_threshold: 0.3`, "num_assistant_tokens_schedule needs"},
		{"all outputs without dict", "pytorch", `output_scores: true, output_logits: true, output_attentions: true, output_hidden_states: true`, "output_attentions is only returned"},
		{"both lookups without method", "vllm", `engine: {prompt_lookup_min: 1, prompt_lookup_max: 2}`, "prompt_lookup_min needs"},
		{"both lookups with mtp", "vllm", `engine: {speculative_method: "mtp", num_speculative_tokens: 1, prompt_lookup_min: 1, prompt_lookup_max: 2}`, "prompt_lookup_max applies only"},
		{"all removed engine options", "tensorrt", `engine_cache: true, engine_path: "/e", strongly_typed: true, kv_cache_type: "paged", use_paged_context_fmha: true, multi_block_mode: true, enable_context_fmha_fp32_acc: true`, "enable_context_fmha_fp32_acc was removed"},
		{"all removed calib options", "tensorrt", `calib_dataset: "d", calib_batches: 2, calib_max_seq_length: 64`, "calib_max_seq_length was removed"},
		{"all speculative options without mode", "tensorrt", `speculative_max_concurrency: 1, speculative_acceptance_window: 1, speculative_acceptance_length_threshold: 1, eagle3_one_model: true, ngram_max_matching_size: 1, ngram_keep_all: true, ngram_use_oldest: true, ngram_public_pool: true, mtp_num_nextn_predict_layers: 1, mtp_use_vanilla: true, mtp_eagle_one_model: true, mtp_relaxed_acceptance_for_thinking: true, mtp_relaxed_topk: 1, mtp_relaxed_delta: 0`, "mtp_use_vanilla needs tensorrt.speculative_decoding_mode"},
		{"all mtp options with eagle", "tensorrt", `speculative_decoding_mode: "Eagle", max_draft_len: 2, mtp_num_nextn_predict_layers: 1, mtp_use_vanilla: true, mtp_eagle_one_model: true, mtp_relaxed_acceptance_for_thinking: true, mtp_relaxed_topk: 2, mtp_relaxed_delta: 0.5`, "mtp_eagle_one_model needs tensorrt.speculative_decoding_mode: \"MTP\""},
		{"all ngram options with mtp", "tensorrt", `speculative_decoding_mode: "MTP", ngram_max_matching_size: 2, ngram_keep_all: false, ngram_use_oldest: false, ngram_public_pool: false`, "ngram_public_pool needs tensorrt.speculative_decoding_mode: \"NGram\""},
		{"all adp options without adp", "tensorrt", `attention_dp_balance: true, attention_dp_timeout_iters: 1, attention_dp_batching_wait_iters: 1, enable_lm_head_tp_in_adp: true`, "enable_lm_head_tp_in_adp needs tensorrt.enable_attention_dp: true"},
		{"all cuda graph options with graphs off", "tensorrt", `enable_cuda_graph: false, cuda_graph_batch_sizes: [1], cuda_graph_max_batch_size: 8, cuda_graph_padding: true`, "cuda_graph_max_batch_size has no effect"},
		{"speculative model without mode", "tensorrt", `speculative_model: "x/eagle"`, "tensorrt.speculative_model needs tensorrt.speculative_decoding_mode"},

		// native
		{"native defaults", "native", `{}`, ""},
		{"native full", "native", `batch_size: 8, threads: 2, storage: "bf16"`, ""},
		{"native storage", "native", `storage: "fp16"`, "storage"},
		{"native threads", "native", `threads: -1`, "threads"},

		// extra: targets and plain data are checked by CUE too
		{"extra plain", "vllm", `extra: engine: {disable_log_stats: true, max_logprobs: 2, lora_extra: [1, "a", {b: null}]}`, ""},
		{"extra env", "vllm", `extra: env: VLLM_USE_V1: "1"`, ""},
		{"extra env not string", "vllm", `extra: env: VLLM_USE_V1: 1`, "VLLM_USE_V1"},
		{"extra unknown target", "pytorch", `extra: model: {x: 1}`, "extra.model: field not allowed"},
		{"extra bytes", "pytorch", `extra: generate: {x: 'raw'}`, "extra.generate.x"},
		{"extra not concrete", "tensorrt", `extra: llm: {x: int}`, "extra.llm.x"},
		{"extra llem target", "tensorrt", `extra: llem: {x: 1}`, "extra.llem: field not allowed"},
	}
	var outputs []string
	for _, tt := range tests {
		t.Run(tt.backend+"/"+tt.name, func(t *testing.T) {
			got := validate(t, tt.backend, tt.snippet)
			outputs = append(outputs, got)
			switch {
			case tt.want == "" && got != "":
				t.Fatalf("want valid, got:\n%s", got)
			case tt.want != "" && got == "":
				t.Fatalf("want error containing %q, got valid", tt.want)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Fatalf("want error containing %q, got:\n%s", tt.want, got)
			}
		})
	}
	// Every rule in the schema must fire in some case above: CUE silently
	// drops some self-referencing rules, so a rule without a failing case
	// may be dead.
	all := strings.Join(outputs, "\n")
	for _, b := range BackendNames() {
		r, _ := mustSchema(t).Report(b)
		for _, msg := range r.Rules {
			if !strings.Contains(all, msg) {
				t.Errorf("%s rule never fired in TestCrossFieldRules: %s", b, msg)
			}
		}
	}
}
