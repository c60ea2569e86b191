// Package quality scores a run's model with lm-evaluation-harness (lm-eval)
// beside its energy: the lm-eval command line for a run, the job that runs
// it where the run's backend runs, and the parser of lm-eval's own results
// file. lm-eval is a subprocess, never imported: its dependencies conflict
// with the backends'.
//
// The command line follows lm-eval's CLI as of
// EleutherAI/lm-evaluation-harness lm_eval/__main__.py @0058d1ab0a32543604bf790e0e790c4fb359c0e3
// (the 0.4.x argparse CLI) and lm_eval/_cli/run.py @22e295038e5c48b842b5c7379ad80fc9d2731b65
// with lm_eval/_cli/harness.py @2bed444112ba1ab63aa5229fdf71c086c9f875f4 (the
// newer `lm-eval run` CLI, which inserts "run" when the first argument is
// not a subcommand): only flags both accept are used, in forms both parse
// (--tasks a,b; --model_args k=v,k2=v2).
package quality

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/llenergymeasure/llem/pkg/study"
)

// lm-eval model names (its model registry, lm_eval/models/*.py
// @register_model) llem drives.
const (
	ModelHF               = "hf"
	ModelVLLM             = "vllm"
	ModelLocalCompletions = "local-completions"
)

// BaseURLPlaceholder stands for the completions URL of the server the
// scoring job starts (`llem serve` for native): the job's wrapper replaces
// it in the arguments once the server listens on its port.
const BaseURLPlaceholder = "{llem_base_url}"

// Model returns lm-eval's --model for a run of backend with quality source
// src ("auto" resolves by backend); "" with a nil error means no scoring
// (source none).
func Model(backend, src string) (string, error) {
	switch src {
	case "none":
		return "", nil
	case ModelHF, ModelVLLM, ModelLocalCompletions:
		return src, nil
	case "auto", "":
		switch backend {
		case "pytorch":
			return ModelHF, nil
		case "vllm":
			return ModelVLLM, nil
		case "native":
			return ModelLocalCompletions, nil
		}
		return "", fmt.Errorf("quality: no lm-eval model scores backend %s automatically; set quality.source", backend)
	}
	return "", fmt.Errorf("quality: unknown source %q", src)
}

// dtypes maps llem precisions to the torch dtype names lm-eval's hf and
// vllm models take (model_args dtype=).
var dtypes = map[string]string{"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}

// KV is one model_args entry; order is kept so the command reads the same
// every time.
type KV struct{ Key, Value string }

// ModelArgs builds lm-eval's --model_args for a run: the model, its
// revision and precision, and the backend settings that change what is
// computed (parallelism, quantization, attention kernel, context length).
// lm-eval splits model_args on "," and "=" (utils.simple_parse_args_string),
// so a value holding either is refused.
func ModelArgs(model string, c *study.Config) ([]KV, error) {
	var kv []KV
	add := func(k string, v any) {
		switch x := v.(type) {
		case nil:
			return
		case string:
			if x == "" {
				return
			}
			kv = append(kv, KV{k, x})
		case bool:
			kv = append(kv, KV{k, strconv.FormatBool(x)})
		case float64:
			kv = append(kv, KV{k, strconv.FormatFloat(x, 'g', -1, 64)})
		case int:
			kv = append(kv, KV{k, strconv.Itoa(x)})
		case int64:
			kv = append(kv, KV{k, strconv.FormatInt(x, 10)})
		case json.Number:
			kv = append(kv, KV{k, x.String()})
		default:
			kv = append(kv, KV{k, fmt.Sprint(x)})
		}
	}
	sec := c.Section()
	switch model {
	case ModelHF:
		add("pretrained", c.Model)
		add("revision", sec["revision"])
		add("dtype", dtypes[c.Precision])
		if t, _ := sec["trust_remote_code"].(bool); t {
			add("trust_remote_code", true)
		}
		add("attn_implementation", sec["attn_implementation"])
	case ModelVLLM:
		eng, _ := sec["engine"].(map[string]any)
		add("pretrained", c.Model)
		add("revision", eng["revision"])
		add("dtype", dtypes[c.Precision])
		for _, k := range []string{"tensor_parallel_size", "gpu_memory_utilization", "max_model_len", "quantization", "kv_cache_dtype", "enforce_eager", "enable_prefix_caching"} {
			add(k, eng[k])
		}
		if t, _ := eng["trust_remote_code"].(bool); t {
			add("trust_remote_code", true)
		}
		add("seed", c.RandomSeed)
	case ModelLocalCompletions:
		// The served name is the model; the tokenizer is the model's own
		// (the Hub id or checkpoint directory), tokenized by lm-eval so its
		// loglikelihood requests carry token IDs the server scores as sent.
		add("model", c.Model)
		add("base_url", BaseURLPlaceholder)
		add("tokenizer_backend", "huggingface")
		add("tokenizer", c.Model)
		add("tokenized_requests", true)
		add("num_concurrent", 1)
		add("max_retries", 3)
	default:
		return nil, fmt.Errorf("quality: unknown lm-eval model %q", model)
	}
	for _, e := range kv {
		if strings.ContainsAny(e.Value, ",=") && e.Value != BaseURLPlaceholder {
			return nil, fmt.Errorf("quality: model_args %s=%q holds ',' or '=', which lm-eval's key=value,... parsing splits on", e.Key, e.Value)
		}
	}
	return kv, nil
}

// JoinModelArgs is model_args as lm-eval reads it: key=value,key=value.
func JoinModelArgs(kv []KV) string {
	parts := make([]string, len(kv))
	for i, e := range kv {
		parts[i] = e.Key + "=" + e.Value
	}
	return strings.Join(parts, ",")
}

// BatchSize is quality.batch_size as lm-eval's --batch_size takes it (a
// count, "auto" or "auto:N"); "1" when unset.
func BatchSize(q *study.Quality) string {
	if len(q.BatchSize) == 0 {
		return "1"
	}
	var s string
	if json.Unmarshal(q.BatchSize, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(q.BatchSize))
}

// Args is lm-eval's argument list (after `python -m lm_eval`) for a run
// scored by model into outDir.
func Args(model string, c *study.Config, outDir string) ([]string, error) {
	q := c.Quality
	if q == nil || len(q.Tasks) == 0 {
		return nil, fmt.Errorf("quality: the run has no quality tasks")
	}
	for _, t := range q.Tasks {
		if t == "" || strings.ContainsAny(t, ", ") {
			return nil, fmt.Errorf("quality: task name %q (lm-eval splits --tasks on commas)", t)
		}
	}
	kv, err := ModelArgs(model, c)
	if err != nil {
		return nil, err
	}
	args := []string{
		"--model", model,
		"--model_args", JoinModelArgs(kv),
		"--tasks", strings.Join(q.Tasks, ","),
		"--batch_size", BatchSize(q),
	}
	if q.NumFewshot != nil {
		args = append(args, "--num_fewshot", strconv.Itoa(*q.NumFewshot))
	}
	if q.Limit != nil {
		args = append(args, "--limit", strconv.FormatFloat(*q.Limit, 'g', -1, 64))
	}
	args = append(args, "--seed", strconv.FormatInt(q.Seed, 10), "--output_path", outDir)
	return args, nil
}

// Weight is task t's weight in the run's score (1 unless set).
func Weight(q *study.Quality, t string) float64 {
	if w, ok := q.Weights[t]; ok && w > 0 {
		return w
	}
	return 1
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
