package params

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// section decodes JSON the way pkg/study hands sections over.
func section(t *testing.T, js string) map[string]any {
	t.Helper()
	if js == "" {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBackendArgs(t *testing.T) {
	tests := []struct {
		name, backend, section string
		want                   string // JSON
	}{
		{
			name: "pytorch defaults only", backend: "pytorch", section: "",
			want: `{"llem": {"batch_size": 1, "batching": "fixed", "torch_compile": false},
				"from_pretrained": {"device_map": "auto", "trust_remote_code": false,
					"quantization_config": {"load_in_4bit": false, "load_in_8bit": false}},
				"tokenizer": {"padding_side": "left"},
				"generate": {"return_dict_in_generate": false}}`,
		},
		{
			name: "pytorch mixed targets and extra", backend: "pytorch",
			section: `{"batch_size": 8, "attn_implementation": "sdpa", "load_in_4bit": true, "bnb_4bit_quant_type": "nf4",
				"torch_compile": true, "torch_compile_mode": "max-autotune", "num_beams": 4, "float32_matmul_precision": "high",
				"extra": {"generate": {"max_length": 4096}, "from_pretrained": {"quantization_config": {"llm_int8_skip_modules": ["lm_head"]}, "offload_state_dict": true}}}`,
			want: `{"llem": {"batch_size": 8, "batching": "fixed", "torch_compile": true},
				"from_pretrained": {"attn_implementation": "sdpa", "device_map": "auto", "trust_remote_code": false, "offload_state_dict": true,
					"quantization_config": {"load_in_4bit": true, "load_in_8bit": false, "bnb_4bit_quant_type": "nf4", "llm_int8_skip_modules": ["lm_head"]}},
				"compile": {"mode": "max-autotune"},
				"torch": {"set_float32_matmul_precision": "high"},
				"tokenizer": {"padding_side": "left"},
				"generate": {"num_beams": 4, "return_dict_in_generate": false, "max_length": 4096}}`,
		},
		{
			name: "vllm engine sampling env speculative", backend: "vllm",
			section: `{"engine": {"max_num_seqs": 64, "gpu_memory_utilization": 0.85, "speculative_model": "x/draft", "num_speculative_tokens": 4,
					"attention_backend": "FLASHINFER", "compilation_config": {"mode": 3}},
				"sampling": {"ignore_eos": true, "max_tokens": 128},
				"extra": {"engine": {"disable_log_stats": true, "speculative_config": {"acceptance_method": "typical_acceptance_sampler"}}, "env": {"VLLM_USE_V1": "1"}}}`,
			want: `{"engine": {"max_num_seqs": 64, "gpu_memory_utilization": 0.85, "trust_remote_code": false, "compilation_config": {"mode": 3}, "disable_log_stats": true,
					"attention_config": {"backend": "FLASHINFER"},
					"speculative_config": {"model": "x/draft", "num_speculative_tokens": 4, "acceptance_method": "typical_acceptance_sampler"}},
				"env": {"VLLM_USE_V1": "1"},
				"sampling": {"ignore_eos": true, "max_tokens": 128}}`,
		},
		{
			name: "vllm beam search", backend: "vllm",
			section: `{"beam_search": {"beam_width": 4}}`,
			want:    `{"engine": {"trust_remote_code": false}, "beam_search": {"beam_width": 4}}`,
		},
		{
			name: "tensorrt nested config objects", backend: "tensorrt",
			section: `{"runtime": "pytorch", "max_batch_size": 64, "free_gpu_memory_fraction": 0.8, "enable_block_reuse": false,
				"kv_cache_dtype": "fp8", "enable_attention_dp": true, "attention_dp_balance": true, "moe_backend": "TRTLLM",
				"speculative_decoding_mode": "MTP", "mtp_num_nextn_predict_layers": 2,
				"sampling": {"max_tokens": 64}, "extra": {"llm": {"kv_cache_config": {"event_buffer_max_size": 16}}}}`,
			want: `{"llm": {"max_batch_size": 64, "trust_remote_code": false, "enable_attention_dp": true,
					"kv_cache_config": {"free_gpu_memory_fraction": 0.8, "enable_block_reuse": false, "dtype": "fp8", "event_buffer_max_size": 16},
					"attention_dp_config": {"enable_balance": true},
					"moe_config": {"backend": "TRTLLM"},
					"speculative_config": {"decoding_type": "MTP", "num_nextn_predict_layers": 2}},
				"llem": {"runtime": "pytorch"},
				"sampling": {"max_tokens": 64}}`,
		},
		{
			name: "native", backend: "native",
			section: `{"batch_size": 4, "storage": "bf16", "extra": {"engine": {"prefetch": true}}}`,
			want:    `{"worker": {"batch_size": 4}, "engine": {"threads": 0, "storage": "bf16", "prefetch": true}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BackendArgs(tt.backend, section(t, tt.section))
			if err != nil {
				t.Fatal(err)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			// Compare through JSON so int64 defaults and float64 inputs agree.
			gb, _ := json.Marshal(got)
			var gotJ map[string]any
			_ = json.Unmarshal(gb, &gotJ)
			if !reflect.DeepEqual(gotJ, want) {
				wb, _ := json.Marshal(want)
				t.Errorf("got  %s\nwant %s", gb, wb)
			}
		})
	}
}

// BackendArgs must be driven by the attributes alone: every param, set to
// some value, lands exactly at its mapping path.
func TestBackendArgsPlacesEveryParamAtItsMapping(t *testing.T) {
	for _, b := range BackendNames() {
		ps, _ := List(b)
		for _, p := range ps {
			sec := map[string]any{}
			cur := sec
			for _, k := range p.Key[:len(p.Key)-1] {
				n := map[string]any{}
				cur[k] = n
				cur = n
			}
			marker := "marker:" + p.Path
			cur[p.Key[len(p.Key)-1]] = marker
			args, err := BackendArgs(b, sec)
			if err != nil {
				t.Fatalf("%s: %v", p.Path, err)
			}
			got, ok := lookup(args, append([]string{p.Mapping.Target}, strings.Split(p.Mapping.Arg, ".")...))
			if !ok || got != marker {
				t.Errorf("%s: value not at %s (got %v)", p.Path, p.Mapping, got)
			}
		}
	}
}

func TestCheckExtra(t *testing.T) {
	tests := []struct {
		name, backend, section string
		want                   []string // error substrings, in order
	}{
		{"none", "vllm", `{"engine": {"max_num_seqs": 8}}`, nil},
		{"null extra", "vllm", `{"extra": null}`, nil},
		{"forwarded", "vllm", `{"extra": {"engine": {"disable_log_stats": true}, "sampling": {"extra_args": {"note": "x"}}}}`, nil},
		{"shadow engine", "vllm", `{"extra": {"engine": {"max_num_seqs": 8}}}`,
			[]string{"vllm.extra.engine.max_num_seqs: shadows first-class vllm.engine.max_num_seqs; set that instead"}},
		{"shadow nested speculative", "vllm", `{"extra": {"engine": {"speculative_config": {"model": "x"}}}}`,
			[]string{"vllm.extra.engine.speculative_config.model: shadows first-class vllm.engine.speculative_model; set that instead"}},
		{"replace config object", "vllm", `{"extra": {"engine": {"speculative_config": "x"}}}`,
			[]string{"vllm.extra.engine.speculative_config: would replace the speculative_config object that first-class vllm.engine.num_speculative_tokens, vllm.engine.prompt_lookup_max"}},
		{"shadow env", "vllm", `{"extra": {"env": {"VLLM_ATTENTION_BACKEND": "FLASH_ATTN"}}}`,
			[]string{"vllm.extra.env.VLLM_ATTENTION_BACKEND: shadows first-class vllm.engine.attention_backend"}},
		{"shadow alias cuda_graph_sizes", "vllm", `{"extra": {"engine": {"cuda_graph_sizes": [1, 2]}}}`,
			[]string{"vllm.extra.engine.cuda_graph_sizes: shadows first-class vllm.engine.cudagraph_capture_sizes (upstream reads cuda_graph_sizes as an alias of engine.cudagraph_capture_sizes)"}},
		{"shadow alias attention_backend", "vllm", `{"extra": {"engine": {"attention_backend": "FLASH_ATTN"}}}`,
			[]string{"vllm.extra.engine.attention_backend: shadows first-class vllm.engine.attention_backend"}},
		{"shadow attention_config.backend", "vllm", `{"extra": {"engine": {"attention_config": {"backend": "FLASH_ATTN"}}}}`,
			[]string{"vllm.extra.engine.attention_config.backend: shadows first-class vllm.engine.attention_backend; set that instead"}},
		{"shadow trt speculative_model alias", "tensorrt", `{"extra": {"llm": {"speculative_config": {"speculative_model": "x"}}}}`,
			[]string{"tensorrt.extra.llm.speculative_config.speculative_model: shadows first-class tensorrt.speculative_model"}},
		{"shadow pytorch generate", "pytorch", `{"extra": {"generate": {"num_beams": 2, "max_length": 4096}}}`,
			[]string{"pytorch.extra.generate.num_beams: shadows first-class pytorch.num_beams; set that instead"}},
		{"shadow bnb", "pytorch", `{"extra": {"from_pretrained": {"quantization_config": {"load_in_4bit": true}}}}`,
			[]string{"pytorch.extra.from_pretrained.quantization_config.load_in_4bit: shadows first-class pytorch.load_in_4bit"}},
		{"shadow trt kv", "tensorrt", `{"extra": {"llm": {"kv_cache_config": {"enable_block_reuse": false, "event_buffer_max_size": 64}, "max_batch_size": 8}}}`,
			[]string{"tensorrt.extra.llm.kv_cache_config.enable_block_reuse: shadows first-class tensorrt.enable_block_reuse",
				"tensorrt.extra.llm.max_batch_size: shadows first-class tensorrt.max_batch_size"}},
		{"shadow native", "native", `{"extra": {"worker": {"batch_size": 2}}}`,
			[]string{"native.extra.worker.batch_size: shadows first-class native.batch_size"}},
		{"shadow shared precision", "vllm", `{"extra": {"engine": {"dtype": "float32", "seed": 1}}}`,
			[]string{"vllm.extra.engine.dtype: shadows first-class precision; set that instead",
				"vllm.extra.engine.seed: shadows first-class random_seed; set that instead"}},
		{"shadow shared decoder", "pytorch", `{"extra": {"generate": {"temperature": 0.5}}}`,
			[]string{"pytorch.extra.generate.temperature: shadows first-class decoder.temperature; set that instead"}},
		{"shadow shared trt seed", "tensorrt", `{"extra": {"sampling": {"seed": 3}, "llm": {"dtype": "float16"}}}`,
			[]string{"tensorrt.extra.llm.dtype: shadows first-class precision",
				"tensorrt.extra.sampling.seed: shadows first-class random_seed"}},
		{"unknown target", "pytorch", `{"extra": {"model": {"x": 1}, "llem": {"batch_size": 2}}}`,
			[]string{`pytorch.extra.llem: unknown target "llem"; extra keys go under one of from_pretrained, generate, compile, tokenizer`,
				`pytorch.extra.model: unknown target "model"`}},
		{"target not object", "vllm", `{"extra": {"engine": [1, 2]}}`,
			[]string{"vllm.extra.engine: must be an object of engine arguments, got a list"}},
		{"extra not object", "native", `{"extra": "x"}`,
			[]string{"native.extra: must be an object keyed by target (engine, worker), got a string"}},
	}
	for _, tt := range tests {
		t.Run(tt.backend+"/"+tt.name, func(t *testing.T) {
			errs := CheckExtra(tt.backend, section(t, tt.section))
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d %v", len(errs), errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i], w)
				}
			}
			if len(tt.want) > 0 {
				if _, err := BackendArgs(tt.backend, section(t, tt.section)); err == nil {
					t.Error("BackendArgs accepted a section CheckExtra rejects")
				}
			}
		})
	}
}

// Sections built in Go (not decoded from JSON) may carry values that are not
// plain data; CheckExtra rejects them.
func TestCheckExtraNotPlain(t *testing.T) {
	type opaque struct{ X int }
	sec := map[string]any{"extra": map[string]any{"generate": map[string]any{
		"ok":  []any{1.0, "a", map[string]any{"b": nil}},
		"bad": []any{1.0, opaque{1}},
		"fn":  func() {},
	}}}
	errs := CheckExtra("pytorch", sec)
	if len(errs) != 2 {
		t.Fatalf("got %v, want 2 errors", errs)
	}
	if !strings.Contains(errs[0].Error(), "pytorch.extra.generate.bad: element 1: value of Go type params.opaque is not plain data") {
		t.Errorf("errs[0] = %v", errs[0])
	}
	if !strings.Contains(errs[1].Error(), "pytorch.extra.generate.fn: value of Go type func()") {
		t.Errorf("errs[1] = %v", errs[1])
	}
}

func TestBackendArgsRejectsUnknownKeys(t *testing.T) {
	_, err := BackendArgs("vllm", section(t, `{"engine": {"max_num_seq": 8}, "sampling": {"n": 2}, "foo": 1}`))
	if err == nil {
		t.Fatal("accepted unknown keys")
	}
	for _, w := range []string{"vllm.engine.max_num_seq: not a vllm param", "vllm.foo: not a vllm param; see `llem params vllm`"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	if _, err := BackendArgs("nope", nil); err == nil {
		t.Error("unknown backend accepted")
	}
}

// pkg/study and the runners call these from several goroutines.
func TestConcurrentUse(t *testing.T) {
	sec := section(t, `{"engine": {"max_num_seqs": 8}, "extra": {"engine": {"disable_log_stats": true, "max_num_seqs": 2}}}`)
	done := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				if errs := CheckExtra("vllm", sec); len(errs) != 1 {
					done <- fmt.Errorf("CheckExtra = %v, want 1 shadowing error", errs)
					return
				}
				if _, err := BackendArgs("pytorch", nil); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
