package serving

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/llenergymeasure/llem/pkg/study"
)

// DefaultPort is where llem starts vllm serve and trtllm-serve (the native
// server takes any free port and prints it).
const DefaultPort = 8000

// ServerCommand is the command that serves the run's model with its
// backend's first-class parameters as server arguments:
//
//   - native: `llem serve MODEL --port 0 --dtype D --threads T --max-batch B
//     --seed S` (cmd/llem/serve.go); batch_size is the continuous batch's cap.
//   - vllm: `vllm serve MODEL --port P --dtype D --seed S` and every
//     engine.* argument as vLLM's CLI spells it (VLLMServeArgs).
//   - tensorrt: `trtllm-serve MODEL --port P` with the click options
//     trtllm-serve has, the rest in an --extra_llm_api_options YAML
//     (TRTLLMServeArgs).
//
// backendArgs are the run's arguments from the schema's mapping
// attributes (params.BackendArgs: {"engine": {...}} for vLLM, {"llm":
// {...}} for TensorRT-LLM); server.args are appended as given.
func ServerCommand(cfg study.Config, backendArgs map[string]any, exe string) ([]string, error) {
	argv, _, err := serverCommand(cfg, backendArgs, exe)
	return argv, err
}

// ServerProgram is the server llem starts for backend ("" for none):
// what --dry-run names.
func ServerProgram(backend string) string {
	switch backend {
	case "native":
		return "llem serve"
	case "vllm":
		return "vllm serve"
	case "tensorrt":
		return "trtllm-serve"
	}
	return ""
}

// serverCommand is ServerCommand and the temporary files its argv names
// (the --extra_llm_api_options YAML): a container must see them at the
// same path, and they are removed once the server stops.
func serverCommand(cfg study.Config, backendArgs map[string]any, exe string) ([]string, []string, error) {
	extra := cfg.Serving.Server.Args
	switch cfg.Backend {
	case "native":
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return nil, nil, fmt.Errorf("find the llem executable for llem serve: %w", err)
			}
		}
		n := cfg.Native
		dtype := cfg.Precision
		if s, ok := n["storage"].(string); ok && s != "" {
			dtype = s
		}
		if dtype != "bf16" {
			dtype = "fp32"
		}
		argv := []string{exe, "serve", cfg.Model, "--host", "127.0.0.1", "--port", "0", "--dtype", dtype,
			"--seed", strconv.FormatInt(cfg.RandomSeed, 10)}
		if b := intOf(n["batch_size"]); b > 0 {
			argv = append(argv, "--max-batch", strconv.Itoa(b))
		}
		if t := intOf(n["threads"]); t > 0 {
			argv = append(argv, "--threads", strconv.Itoa(t))
		}
		return append(argv, extra...), nil, nil
	case "vllm":
		argv := append([]string{"vllm", "serve", cfg.Model, "--host", "127.0.0.1", "--port", strconv.Itoa(DefaultPort),
			"--dtype", vllmDType(cfg.Precision), "--seed", strconv.FormatInt(cfg.RandomSeed, 10)}, VLLMServeArgs(mapOf(backendArgs["engine"]))...)
		return append(argv, extra...), nil, nil
	case "tensorrt":
		args, yaml := TRTLLMServeArgs(mapOf(backendArgs["llm"]))
		argv := append([]string{"trtllm-serve", cfg.Model, "--host", "127.0.0.1", "--port", strconv.Itoa(DefaultPort)}, args...)
		var files []string
		if yaml != "" {
			f, err := os.CreateTemp("", "llem-trtllm-*.yaml")
			if err != nil {
				return nil, nil, err
			}
			if _, err := f.WriteString(yaml); err != nil {
				f.Close()
				os.Remove(f.Name())
				return nil, nil, err
			}
			f.Close()
			// Readable by a server that runs as another user in its image.
			_ = os.Chmod(f.Name(), 0o644)
			argv = append(argv, "--extra_llm_api_options", f.Name())
			files = append(files, f.Name())
		}
		return append(argv, extra...), files, nil
	}
	return nil, nil, fmt.Errorf("serving mode cannot start a %s server; give serving.server.url", cfg.Backend)
}

// serverPort is the port a vllm or tensorrt server listens on: the last
// --port of its argv (server.args may override DefaultPort; argparse and
// click take the last), else DefaultPort.
func serverPort(argv []string) int {
	port := DefaultPort
	for i, a := range argv {
		v, ok := strings.CutPrefix(a, "--port=")
		if !ok && a == "--port" && i+1 < len(argv) {
			v, ok = argv[i+1], true
		}
		if ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				port = n
			}
		}
	}
	return port
}

func vllmDType(p string) string {
	switch p {
	case "fp16":
		return "float16"
	case "fp32":
		return "float32"
	}
	return "bfloat16"
}

// VLLMServeArgs renders vLLM engine arguments as `vllm serve` flags.
// vLLM builds its serve CLI from EngineArgs' dataclass fields
// (EngineArgs.add_cli_args with FlexibleArgumentParser,
// vllm/engine/arg_utils.py, _compute_kwargs): each field is
// --kebab-case-name (FlexibleArgumentParser also accepts snake_case); a
// bool field is an argparse.BooleanOptionalAction ("Creates --no-<name> and
// --<name> flags"); dict and dataclass-typed fields parse JSON; list fields
// take their values as separate words (nargs="+"). Keys are sorted so the
// command is reproducible.
func VLLMServeArgs(engine map[string]any) []string {
	var out []string
	for _, k := range sortedKeys(engine) {
		flag := "--" + strings.ReplaceAll(k, "_", "-")
		switch v := engine[k].(type) {
		case nil:
		case bool:
			if v {
				out = append(out, flag)
			} else {
				out = append(out, "--no-"+strings.TrimPrefix(flag, "--"))
			}
		case map[string]any:
			b, _ := json.Marshal(v)
			out = append(out, flag, string(b))
		case []any:
			if len(v) == 0 {
				continue
			}
			out = append(out, flag)
			for _, e := range v {
				out = append(out, scalar(e))
			}
		default:
			out = append(out, flag, scalar(v))
		}
	}
	return out
}

// trtllmServeOptions are trtllm-serve's click options that set an LLM-API
// argument directly, keyed by that argument (NVIDIA/TensorRT-LLM
// tensorrt_llm/commands/serve.py @ 4c05a74891e4df8066f08ed4ce14b0972abe4e25:
// serve()'s options and get_llm_args()); everything else goes to the
// --extra_llm_api_options YAML, which trtllm-serve merges over them
// (update_llm_args_with_extra_dict).
var trtllmServeOptions = map[string]string{
	"backend":                                  "--backend",
	"max_beam_width":                           "--max_beam_width",
	"max_batch_size":                           "--max_batch_size",
	"max_num_tokens":                           "--max_num_tokens",
	"max_seq_len":                              "--max_seq_len",
	"tensor_parallel_size":                     "--tp_size",
	"pipeline_parallel_size":                   "--pp_size",
	"moe_expert_parallel_size":                 "--ep_size",
	"moe_cluster_parallel_size":                "--cluster_size",
	"gpus_per_node":                            "--gpus_per_node",
	"num_postprocess_workers":                  "--num_postprocess_workers",
	"reasoning_parser":                         "--reasoning_parser",
	"kv_cache_config.free_gpu_memory_fraction": "--kv_cache_free_gpu_memory_fraction",
}

// trtllmServeFlags are its is_flag options (default false): given when true.
var trtllmServeFlags = map[string]string{
	"trust_remote_code":                       "--trust_remote_code",
	"enable_chunked_prefill":                  "--enable_chunked_prefill",
	"fail_fast_on_attention_window_too_large": "--fail_fast_on_attention_window_too_large",
}

// TRTLLMServeArgs splits TensorRT-LLM LLM-API arguments into trtllm-serve
// options and the YAML of the rest (empty when there is none).
func TRTLLMServeArgs(llm map[string]any) ([]string, string) {
	flat := map[string]any{}
	flatten("", llm, flat)
	var args []string
	rest := map[string]any{}
	for _, k := range sortedKeys(flat) {
		v := flat[k]
		if opt, ok := trtllmServeFlags[k]; ok {
			if b, isBool := v.(bool); isBool {
				if b {
					args = append(args, opt)
				}
				continue
			}
		}
		if opt, ok := trtllmServeOptions[k]; ok {
			if _, isBool := v.(bool); !isBool {
				args = append(args, opt, scalar(v))
				continue
			}
		}
		rest[k] = v
	}
	if len(rest) == 0 {
		return args, ""
	}
	return args, yamlOf(unflatten(rest), 0)
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[key] = v
	}
}

func unflatten(flat map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range flat {
		parts := strings.Split(k, ".")
		m := out
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = v
	}
	return out
}

// yamlOf writes a map as block YAML; scalars and lists as JSON (a YAML
// subset), so strings are always quoted.
func yamlOf(m map[string]any, indent int) string {
	var b strings.Builder
	pad := strings.Repeat("  ", indent)
	for _, k := range sortedKeys(m) {
		if sub, ok := m[k].(map[string]any); ok {
			fmt.Fprintf(&b, "%s%s:\n%s", pad, k, yamlOf(sub, indent+1))
			continue
		}
		j, _ := json.Marshal(m[k])
		fmt.Fprintf(&b, "%s%s: %s\n", pad, k, j)
	}
	return b.String()
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func intOf(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case int:
		return x
	case int64:
		return int(x)
	}
	return 0
}
