package serving

import (
	"os"
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

// The vllm/tensorrt server's port is the last --port of its argv
// (server.args may override the default; argparse and click keep the last).
func TestServerPort(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want int
	}{
		{[]string{"vllm", "serve", "m", "--port", "8000"}, 8000},
		{[]string{"vllm", "serve", "m", "--port", "8000", "--x", "--port", "9123"}, 9123},
		{[]string{"trtllm-serve", "m", "--port", "8000", "--port=9001"}, 9001},
		{[]string{"vllm", "serve", "m"}, DefaultPort},
		{[]string{"vllm", "serve", "m", "--port"}, DefaultPort},
	} {
		if got := serverPort(c.argv); got != c.want {
			t.Errorf("%q: port %d, want %d", c.argv, got, c.want)
		}
	}
}

// TensorRT-LLM's --extra_llm_api_options YAML is a temporary file the
// command names: serverCommand returns it (a container gets it mounted at
// that path), with the YAML in it.
func TestTRTLLMServeFiles(t *testing.T) {
	cfg := study.Config{Model: "m", Backend: "tensorrt", Serving: &study.Serving{}}
	argv, files, err := serverCommand(cfg, map[string]any{"llm": map[string]any{"kv_cache_config": map[string]any{"max_tokens": 4096.0}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, f := range files {
			os.Remove(f)
		}
	}()
	if len(files) != 1 || argv[len(argv)-2] != "--extra_llm_api_options" || argv[len(argv)-1] != files[0] {
		t.Fatalf("argv %q, files %q: want the YAML named last", argv, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil || string(b) != "kv_cache_config:\n  max_tokens: 4096\n" {
		t.Fatalf("YAML %q (%v)", b, err)
	}
	if _, files, _ := serverCommand(study.Config{Model: "m", Backend: "vllm", Serving: &study.Serving{}}, nil, ""); len(files) != 0 {
		t.Errorf("vllm: files %q", files)
	}
}
