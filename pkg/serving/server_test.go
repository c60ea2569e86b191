package serving

import (
	"reflect"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/params"
	"github.com/llenergymeasure/llem/pkg/study"
)

// vLLM's serve flags as EngineArgs.add_cli_args spells them (vllm/engine/
// arg_utils.py): kebab-case, BooleanOptionalAction for bools, JSON for
// dicts, nargs="+" for lists. The sections go through params.BackendArgs,
// the schema's own mapping, as the serving route does.
func TestVLLMServeArgs(t *testing.T) {
	args, err := params.BackendArgs("vllm", map[string]any{"engine": map[string]any{
		"max_num_seqs": 64, "enforce_eager": true, "enable_prefix_caching": false, "gpu_memory_utilization": 0.85},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := study.Config{Model: "Qwen/Qwen2.5-0.5B", Backend: "vllm", Precision: "bf16", RandomSeed: 42,
		Serving: &study.Serving{Server: study.ServingServer{Args: []string{"--max-model-len", "2048"}}}}
	argv, err := ServerCommand(cfg, args, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"vllm", "serve", "Qwen/Qwen2.5-0.5B", "--host", "127.0.0.1", "--port", "8000", "--dtype", "bfloat16", "--seed", "42",
		"--no-enable-prefix-caching", "--enforce-eager", "--gpu-memory-utilization", "0.85", "--max-num-seqs", "64",
		"--no-trust-remote-code", // params.BackendArgs sets the schema's trust_remote_code: false
		"--max-model-len", "2048"}
	if !reflect.DeepEqual(argv, want) {
		t.Fatalf("argv\n got %q\nwant %q", argv, want)
	}
	got := VLLMServeArgs(map[string]any{"hf_overrides": map[string]any{"a": 1.0}, "cuda_graph_sizes": []any{1.0, 2.0}, "x": nil})
	if w := []string{"--cuda-graph-sizes", "1", "2", "--hf-overrides", `{"a":1}`}; !reflect.DeepEqual(got, w) {
		t.Fatalf("got %q want %q", got, w)
	}
}

// trtllm-serve takes only its click options on the command line
// (tensorrt_llm/commands/serve.py); the rest goes to the YAML it merges.
func TestTRTLLMServeArgs(t *testing.T) {
	args, yaml := TRTLLMServeArgs(map[string]any{
		"max_batch_size": 8.0, "tensor_parallel_size": 1.0, "backend": "pytorch", "enable_chunked_prefill": true,
		"trust_remote_code": false,
		"kv_cache_config":   map[string]any{"free_gpu_memory_fraction": 0.5, "max_tokens": 4096.0},
		"cuda_graph_config": map[string]any{"batch_sizes": []any{1.0, 2.0}},
	})
	want := []string{"--backend", "pytorch", "--enable_chunked_prefill", "--kv_cache_free_gpu_memory_fraction", "0.5", "--max_batch_size", "8", "--tp_size", "1"}
	if !reflect.DeepEqual(args, want) {
		t.Fatalf("args\n got %q\nwant %q", args, want)
	}
	wantYAML := "cuda_graph_config:\n  batch_sizes: [1,2]\nkv_cache_config:\n  max_tokens: 4096\n"
	if yaml != wantYAML {
		t.Fatalf("yaml\n got %q\nwant %q", yaml, wantYAML)
	}
}

func TestNativeServeArgs(t *testing.T) {
	cfg := study.Config{Model: "random:llama-15m", Backend: "native", Precision: "bf16", RandomSeed: 7,
		Native: map[string]any{"batch_size": 4.0, "threads": 2.0}, Serving: &study.Serving{}}
	argv, err := ServerCommand(cfg, nil, "/bin/llem")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(argv, " "); got != "/bin/llem serve random:llama-15m --host 127.0.0.1 --port 0 --dtype bf16 --seed 7 --max-batch 4 --threads 2" {
		t.Fatal(got)
	}
}
