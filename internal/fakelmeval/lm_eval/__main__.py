"""FAKE `python -m lm_eval` for llem's tests — NOT lm-evaluation-harness.

See ../README.md: the parser is lm-eval 0.4.x's setup_parser()
(lm_eval/__main__.py @0058d1ab0a32543604bf790e0e790c4fb359c0e3), the
results file has the layout EvaluationTracker writes. No model is run.
"""

import argparse
import datetime
import json
import math
import os
import re
import sys
import time
import urllib.request

# Names registered with @register_model in lm_eval/models/*.py.
MODELS = [
    "hf", "hf-auto", "huggingface", "hf-multimodal", "vllm", "vllm-vlm", "sglang",
    "local-completions", "local-chat-completions", "openai-completions",
    "openai-chat-completions", "anthropic-completions", "anthropic-chat",
    "anthropic-chat-completions", "textsynth", "gguf", "ggml", "dummy", "mamba_ssm",
    "openvino", "neuronx", "ipex", "nemo_lm", "sparseml", "deepsparse", "watsonx_llm",
    "steered",
]
REQUIRED = {"hf": ["pretrained"], "vllm": ["pretrained"], "local-completions": ["model", "base_url"]}

# task: (version, n original, {metric,filter: value}, higher_is_better)
# Values of arc_easy, lambada_openai and wikitext are lm-eval's
# tests/testdata/cpu_regression_expected.json; mmlu_abstract_algebra's its
# tests/models/results_deleteme/.../results_2025-01-21T00-40-03.356274.json;
# the others are placeholders.
TASKS = {
    "arc_easy": (1.0, 2376, {"acc,none": 0.3, "acc_norm,none": 0.1}, {"acc": True, "acc_norm": True}),
    "arc_challenge": (1.0, 1172, {"acc,none": 0.22, "acc_norm,none": 0.25}, {"acc": True, "acc_norm": True}),
    "hellaswag": (1.0, 10042, {"acc,none": 0.25, "acc_norm,none": 0.26}, {"acc": True, "acc_norm": True}),
    "mmlu_abstract_algebra": (1.0, 100, {"acc,none": 0.34}, {"acc": True}),
    "lambada_openai": (1.0, 5153, {"acc,none": 0.1, "perplexity,none": 605.5452047779999}, {"acc": True, "perplexity": False}),
    "wikitext": (2.0, 62, {"word_perplexity,none": 130.4813590639406, "byte_perplexity,none": 2.530401076099876,
                           "bits_per_byte,none": 1.3393660745008342},
                 {"word_perplexity": False, "byte_perplexity": False, "bits_per_byte": False}),
    "gsm8k": (3.0, 1319, {"exact_match,strict-match": 0.02, "exact_match,flexible-extract": 0.03},
              {"exact_match": True}),
}


def try_parse_json(value):
    if value is None:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if "{" in value:
            raise argparse.ArgumentTypeError(f"Invalid JSON: {value}. Hint: Use double quotes for JSON strings.")
        return value


def _int_or_none_list_arg_type(min_len, max_len, defaults, value, split_char=","):
    def parse_value(item):
        item = item.strip().lower()
        if item == "none":
            return None
        try:
            return int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item} is not an integer or None")

    items = [parse_value(v) for v in value.split(split_char)]
    if len(items) == 1:
        items = items * max_len
    elif len(items) < min_len or len(items) > max_len:
        raise argparse.ArgumentTypeError(f"Argument requires {max_len} integers or None, separated by '{split_char}'")
    return items


def setup_parser():
    from functools import partial
    p = argparse.ArgumentParser(formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", "-m", type=str, default="hf")
    p.add_argument("--tasks", "-t", default=None, type=str)
    p.add_argument("--model_args", "-a", default="", type=try_parse_json)
    p.add_argument("--num_fewshot", "-f", type=int, default=None)
    p.add_argument("--batch_size", "-b", type=str, default=1)
    p.add_argument("--max_batch_size", type=int, default=None)
    p.add_argument("--device", type=str, default=None)
    p.add_argument("--output_path", "-o", default=None, type=str)
    p.add_argument("--limit", "-L", type=float, default=None)
    p.add_argument("--use_cache", "-c", type=str, default=None)
    p.add_argument("--cache_requests", type=str, default=None, choices=["true", "refresh", "delete"])
    p.add_argument("--check_integrity", action="store_true")
    p.add_argument("--write_out", "-w", action="store_true", default=False)
    p.add_argument("--log_samples", "-s", action="store_true", default=False)
    p.add_argument("--system_instruction", type=str, default=None)
    p.add_argument("--apply_chat_template", type=str, nargs="?", const=True, default=False)
    p.add_argument("--fewshot_as_multiturn", action="store_true", default=False)
    p.add_argument("--show_config", action="store_true", default=False)
    p.add_argument("--include_path", type=str, default=None)
    p.add_argument("--gen_kwargs", type=try_parse_json, default=None)
    p.add_argument("--verbosity", "-v", type=str.upper, default=None)
    p.add_argument("--wandb_args", type=str, default="")
    p.add_argument("--wandb_config_args", type=str, default="")
    p.add_argument("--hf_hub_log_args", type=str, default="")
    p.add_argument("--predict_only", "-x", action="store_true", default=False)
    default_seed_string = "0,1234,1234,1234"
    p.add_argument("--seed", type=partial(_int_or_none_list_arg_type, 3, 4, default_seed_string), default=default_seed_string)
    p.add_argument("--trust_remote_code", action="store_true")
    p.add_argument("--confirm_run_unsafe_code", action="store_true")
    p.add_argument("--metadata", type=json.loads, default=None)
    return p


def handle_arg_string(arg):
    if arg.lower() == "true":
        return True
    if arg.lower() == "false":
        return False
    if arg.isnumeric():
        return int(arg)
    try:
        return float(arg)
    except ValueError:
        return arg


def simple_parse_args_string(args_string):
    """lm_eval/utils.py: 'k=v,k2=v2' -> dict (a malformed entry raises)."""
    if not args_string:
        return {}
    out = {}
    for arg in [a for a in args_string.strip().split(",") if a]:
        k, v = arg.split("=")  # ValueError on a missing or second '=', as lm-eval's unpacking
        if not k:
            raise ValueError(f"empty key in model_args entry {arg!r}")
        out[k] = handle_arg_string(v)
    return out


def sanitize_model_name(name):
    return re.sub(r"[\"<>:/\|\\?\*\[\]]+", "__", name)


def progress(label, n):
    for i in range(1, n + 1):
        sys.stderr.write("\r%s: %3d%%|%s| %d/%d" % (label, 100 * i // n, "#" * i, i, n))
        sys.stderr.flush()
        time.sleep(0.01)
    sys.stderr.write("\n")


def call_server(args):
    """One loglikelihood request as LocalCompletionsAPI sends it."""
    payload = {"model": args["model"], "prompt": [[1, 2, 3, 4]], "temperature": 0, "max_tokens": 1,
               "logprobs": 1, "seed": 1234, "echo": True}
    req = urllib.request.Request(args["base_url"], data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        body = json.load(r)
    lp = body["choices"][0]["logprobs"]["token_logprobs"]
    if len(lp) < 4:
        raise RuntimeError("server returned %d token logprobs for 4 echoed tokens" % len(lp))
    print("local-completions: %s answered with %d token logprobs" % (args["base_url"], len(lp)), file=sys.stderr)


def main():
    args = setup_parser().parse_args()
    if os.environ.get("FAKE_LMEVAL_LOG"):
        with open(os.environ["FAKE_LMEVAL_LOG"], "a") as f:
            f.write(json.dumps(sys.argv[1:]) + "\n")
    if args.model not in MODELS:
        raise ValueError(f"Attempted to load model '{args.model}', but no model for this name found! Supported model names: {', '.join(MODELS)}")
    margs = simple_parse_args_string(args.model_args) if isinstance(args.model_args, str) else (args.model_args or {})
    for k in REQUIRED.get(args.model, []):
        if k not in margs:
            raise TypeError(f"{args.model}: missing model_args {k}")
    if args.tasks is None:
        print("Need to specify task to evaluate.", file=sys.stderr)
        sys.exit()
    names = args.tasks.split(",")
    missing = [t for t in names if t not in TASKS]
    if missing:
        raise ValueError(f"Tasks not found: {', '.join(missing)}. Try `lm-eval --tasks {{list_groups,list_subtasks,list_tags,list}}` to list out all available names for task groupings; only (sub)tasks; tags; or all of the above, or pass '--verbosity DEBUG' to troubleshoot task registration issues.")
    if os.environ.get("FAKE_LMEVAL_PARSE_ONLY") == "1":
        print(json.dumps({"model": args.model, "model_args": margs, "tasks": names}))
        return
    if args.limit:
        print(" --limit SHOULD ONLY BE USED FOR TESTING.REAL METRICS SHOULD NOT BE COMPUTED USING LIMIT.", file=sys.stderr)
    if args.model == "local-completions":
        call_server(margs)
    progress("Running loglikelihood requests", 10)
    if os.environ.get("FAKE_LMEVAL_CRASH") == "1":
        print("Traceback (most recent call last):\n  File \"lm_eval/evaluator.py\", line 1, in simple_evaluate\ntorch.OutOfMemoryError: CUDA out of memory (FAKE_LMEVAL_CRASH)", file=sys.stderr)
        sys.exit(1)

    # FAKE_LMEVAL_VARY=1 (tests of per-cycle scoring): the Nth call's
    # values are shifted by 0.01*N (N from the FAKE_LMEVAL_LOG lines), so
    # repeated scorings differ as nondeterministic kernels would make them.
    shift = 0.0
    if os.environ.get("FAKE_LMEVAL_VARY") == "1" and os.environ.get("FAKE_LMEVAL_LOG"):
        with open(os.environ["FAKE_LMEVAL_LOG"]) as f:
            shift = 0.01 * sum(1 for _ in f)
    results, versions, nshot, hib, nsamples, configs = {}, {}, {}, {}, {}, {}
    for t in names:
        version, original, metrics, higher = TASKS[t]
        metrics = {k: (min(1.0, v + shift) if 0 <= v <= 1 else v) for k, v in metrics.items()}
        eff = original
        if args.limit:
            eff = int(args.limit) if args.limit >= 1 else int(math.ceil(original * args.limit))
            eff = min(eff, original)
        entry = {"alias": t}
        for k, v in metrics.items():
            name, filt = k.split(",")
            entry[k] = v
            if higher.get(name, True) and 0 <= v <= 1 and eff > 1:
                entry[f"{name}_stderr,{filt}"] = math.sqrt(v * (1 - v) / (eff - 1))
            else:
                entry[f"{name}_stderr,{filt}"] = "N/A"
        results[t] = entry
        versions[t] = version
        nshot[t] = args.num_fewshot if args.num_fewshot is not None else 0
        hib[t] = higher
        nsamples[t] = {"original": original, "effective": eff}
        configs[t] = {"task": t, "num_fewshot": nshot[t], "metadata": {"version": version}}
    seeds = args.seed
    model_name = ""
    for prefix in ["peft", "delta", "pretrained", "model", "path", "engine"]:
        if prefix in margs:
            model_name = str(margs[prefix])
            break
    out = {
        "results": results,
        "group_subtasks": {t: [] for t in names},
        "configs": configs,
        "versions": versions,
        "n-shot": nshot,
        "higher_is_better": hib,
        "n-samples": nsamples,
        "config": {
            "model": args.model, "model_args": args.model_args, "batch_size": args.batch_size,
            "batch_sizes": [], "device": args.device, "use_cache": None, "limit": args.limit,
            "bootstrap_iters": 100000, "gen_kwargs": None, "random_seed": seeds[0],
            "numpy_seed": seeds[1], "torch_seed": seeds[2], "fewshot_seed": seeds[3],
        },
        "git_hash": "fake0000",
        "date": time.time(),
        "pretty_env_info": "FAKE lm_eval (llem tests)",
        "transformers_version": "N/A",
        "lm_eval_version": "0.4.9-fake",
        "upper_git_hash": None,
        "task_hashes": {},
        "model_source": args.model,
        "model_name": model_name,
        "model_name_sanitized": sanitize_model_name(model_name),
        "system_instruction": None,
        "system_instruction_sha": None,
        "fewshot_as_multiturn": False,
        "chat_template": None,
        "chat_template_sha": None,
        "start_time": 0.0,
        "end_time": 1.0,
        "total_evaluation_time_seconds": "1.0",
    }
    if args.output_path:
        path = os.path.join(args.output_path, sanitize_model_name(model_name))
        os.makedirs(path, exist_ok=True)
        date_id = datetime.datetime.now().isoformat().replace(":", "-")
        with open(os.path.join(path, f"results_{date_id}.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(out, indent=2, ensure_ascii=False))
    print("|Tasks|Version|Filter|n-shot|Metric|Value|Stderr|")
    for t in names:
        for k, v in results[t].items():
            if k != "alias" and "_stderr" not in k:
                print("|%s|%s|%s|%s|%s|%s|" % (t, versions[t], k.split(",")[1], nshot[t], k.split(",")[0], v))


if __name__ == "__main__":
    main()
