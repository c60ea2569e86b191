"""llem worker for the TensorRT-LLM backend (the `LLM` API).

Started by llem as `python3 harness_tensorrt.py` with llem_common.py next
to it; reads one RunSpec on stdin, writes protocol events on stdout (see
llem_common.py and docs/backends/tensorrt.md).

Runtime: tensorrt_llm.LLM is TensorRT-LLM's PyTorch runtime (its
arguments are TorchLlmArgs, a pydantic model with extra="forbid"); it
builds no TensorRT engine. The TensorRT-engine class
(tensorrt_llm._tensorrt_engine.LLM, TrtLlmArgs/BuildConfig) is not driven:
llem's schema refuses runtime "tensorrt" and its engine keys.

Timing: every request is submitted with generate_async(streaming=True) and
each streamed chunk is stamped when it arrives, which gives TTFT and every
inter-token latency. The prefill/decode split is the protocol's
prefill-pass method, as for vLLM (a separate max_tokens=1 pass).

Library arguments come from RunSpec.backend_args, built by llem from the
schema's mapping attributes (schema/tensorrt.cue): {"llm": {...},
"sampling": {...}, "llem": {...}}. Nested dicts under llm (kv_cache_config,
scheduler_config, speculative_config, cuda_graph_config, ...) become
TensorRT-LLM's config objects; extra: keys are already merged and every
one of them is passed on, null included (None is how the LLM API turns
some features off, e.g. cuda_graph_config=None). The llem target steers
the harness: enable_cuda_graph (runtime is validated by the schema).
"""

import asyncio
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import llem_common as lc  # noqa: E402

BACKEND = "tensorrt"

# Keys of LLM() whose dict value becomes a config object: key → class
# name in tensorrt_llm.llmapi. speculative_config picks its class by
# decoding_type (SPECULATIVE_CLASSES). A class this TensorRT-LLM version
# lacks leaves the dict as is (LlmArgs is pydantic and coerces dicts).
CONFIG_OBJECTS = {
    "kv_cache_config": "KvCacheConfig",
    "scheduler_config": "SchedulerConfig",
    "cuda_graph_config": "CudaGraphConfig",
    "torch_compile_config": "TorchCompileConfig",
    "moe_config": "MoeConfig",
    "attention_dp_config": "AttentionDpConfig",
}
# decoding_type → class: the keys of DecodingBaseConfig.from_dict that the
# PyTorch runtime runs (Medusa and Lookahead are TensorRT-engine only:
# their supports_backend("pytorch") is False).
SPECULATIVE_CLASSES = {
    "DraftTarget": "DraftTargetDecodingConfig", "Eagle": "EagleDecodingConfig",
    "MTP": "MTPDecodingConfig", "NGram": "NGramDecodingConfig", "AUTO": "AutoDecodingConfig",
}
# String values that TensorRT-LLM wants as enum members: (object, field) →
# enum class name in tensorrt_llm.llmapi.
ENUM_FIELDS = {
    ("scheduler_config", "capacity_scheduler_policy"): "CapacitySchedulerPolicy",
    ("scheduler_config", "context_chunking_policy"): "ContextChunkingPolicy",
}


def harness_settings(backend_args):
    """backend_args.llem: enable_cuda_graph (None = TensorRT-LLM's
    default) and runtime (always "pytorch": the schema refuses others)."""
    sec = (backend_args or {}).get("llem") or {}
    return {"enable_cuda_graph": sec.get("enable_cuda_graph"), "runtime": sec.get("runtime", "pytorch")}


def llm_kwargs(cfg, backend_args, model_path, random_arch):
    """Keyword arguments of tensorrt_llm.LLM() as plain data (config
    objects still dicts): model and dtype from the experiment, then
    backend_args.llm untouched (null values too). enable_cuda_graph false
    sends cuda_graph_config=None (TensorRT-LLM's way to turn CUDA graphs
    off)."""
    kw = {"model": model_path, "dtype": lc.TORCH_DTYPE_NAMES[lc.precision_name(cfg)]}
    if random_arch:
        kw["skip_tokenizer_init"] = True
        kw["load_format"] = "dummy"
    for k, v in ((backend_args or {}).get("llm") or {}).items():
        kw[k] = v
    cg = harness_settings(backend_args)["enable_cuda_graph"]
    if cg is False:
        if kw.get("cuda_graph_config") is not None:
            raise lc.HarnessError("config", "enable_cuda_graph: false sends cuda_graph_config=None, which would "
                                  "drop the extra: llm: cuda_graph_config keys",
                                  "remove enable_cuda_graph: false or the cuda_graph_config keys")
        kw["cuda_graph_config"] = None
    elif cg is True:
        kw.setdefault("cuda_graph_config", {})
    return kw


def guard_block_reuse(kw):
    """Turn KV block reuse off unless the study set it: the prefill-only
    pass runs every prompt just before the workload, and reused blocks
    would make the workload's prefill nearly free (the LLM API has no
    public cache reset, unlike vLLM). Returns True when it changed kw."""
    kv = kw.get("kv_cache_config")
    if kv is None:
        kv = kw["kv_cache_config"] = {}
    if not isinstance(kv, dict) or "enable_block_reuse" in kv:
        return False
    kv["enable_block_reuse"] = False
    return True


def object_plan(kw):
    """Which LLM() keys become which classes: [(key, class name)], pure so
    it is unit-tested. A speculative_config whose decoding_type the
    PyTorch runtime does not run is an error, not a dict passed on."""
    plan = []
    for key, cls in CONFIG_OBJECTS.items():
        if isinstance(kw.get(key), dict):
            plan.append((key, cls))
    sc = kw.get("speculative_config")
    if isinstance(sc, dict):
        dt = sc.get("decoding_type")
        if dt not in SPECULATIVE_CLASSES:
            raise lc.HarnessError("config", "speculative_config.decoding_type %r is not one the PyTorch runtime "
                                  "runs (%s)" % (dt, ", ".join(sorted(SPECULATIVE_CLASSES))),
                                  "Medusa and Lookahead need TensorRT engines, which llem does not build")
        plan.append(("speculative_config", SPECULATIVE_CLASSES[dt]))
    return plan


def sampling_kwargs(cfg, backend_args, max_tokens, forced=False):
    """Keyword arguments of tensorrt_llm.SamplingParams for one request:
    the decoder's knobs (greedy = temperature 0 / top_k 1), the prompt's
    output length, ignore_eos for forced (synthetic) lengths, then
    backend_args.sampling, which wins."""
    dec = lc.decoder_settings(cfg)
    kw = {"max_tokens": int(max_tokens)}
    if lc.is_greedy(dec):
        kw["temperature"] = 0.0
        kw["top_k"] = 1
    else:
        kw["temperature"] = float(dec["temperature"])
        kw["top_p"] = float(dec["top_p"])
        if int(dec["top_k"]) > 0:
            kw["top_k"] = int(dec["top_k"])
        if dec.get("min_p") is not None:
            kw["min_p"] = float(dec["min_p"])
    if float(dec.get("repetition_penalty", 1.0)) != 1.0:
        kw["repetition_penalty"] = float(dec["repetition_penalty"])
    if dec.get("min_new_tokens") is not None:
        kw["min_tokens"] = int(dec["min_new_tokens"])
    if forced:
        kw["ignore_eos"] = True
    for k, v in ((backend_args or {}).get("sampling") or {}).items():
        kw[k] = v
    kw["seed"] = kw.get("seed", int(cfg.get("random_seed", 42)))
    return kw


def to_objects(kw):
    """Turn the nested dicts of kw into TensorRT-LLM config objects
    (see object_plan); enum-valued strings become enum members. A class
    missing from tensorrt_llm.llmapi is an error (the dict would reach
    TorchLlmArgs unchecked by llem)."""
    import importlib

    api = importlib.import_module("tensorrt_llm.llmapi")
    out = dict(kw)
    for key, cls_name in object_plan(kw):
        d = dict(out[key])
        if key == "speculative_config":
            d.pop("decoding_type", None)
        for (obj, field), enum_name in ENUM_FIELDS.items():
            if obj == key and isinstance(d.get(field), str) and hasattr(api, enum_name):
                d[field] = getattr(getattr(api, enum_name), d[field])
        klass = getattr(api, cls_name, None)
        if klass is None:
            raise lc.HarnessError("config", "this TensorRT-LLM has no tensorrt_llm.llmapi.%s for %s" % (cls_name, key),
                                  "install the pinned TensorRT-LLM (docs/backends/tensorrt.md)")
        out[key] = klass(**d)
    return out


def version_note(installed, target):
    """The log line naming the TensorRT-LLM in use against llem's pinned
    target (tools/upstream/targets.json, passed as LLEM_TENSORRT_LLM_TARGET)."""
    if not target or str(installed) == target:
        return "tensorrt_llm %s, PyTorch runtime" % installed
    return ("tensorrt_llm %s, PyTorch runtime; llem's schema follows %s: an argument this version "
            "lacks is rejected by TensorRT-LLM (extra=\"forbid\")" % (installed, target))


def versions():
    return lc.package_versions(["tensorrt_llm", "tensorrt", "torch", "transformers"])


def write_random_model_dir(arch_name, root):
    arch = lc.architecture(arch_name)
    path = os.path.join(root, "random-" + arch_name)
    os.makedirs(path, exist_ok=True)
    arch.setdefault("torch_dtype", "bfloat16")
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(arch, f, indent=1)
    return path, arch


def prompt_ids(prompt, tokenizer, vocab_size, max_input):
    """Token IDs of a prompt (llem_common.prompt_token_ids)."""
    return lc.prompt_token_ids(prompt, tokenizer, vocab_size, max_input, "TensorRT-LLM")


async def stream_all(llm, inputs, params, tracker):
    """Submit every request at once (the engine batches them in flight) and
    stamp each streamed chunk as it arrives."""

    async def one(i):
        seen = 0
        tracker.inputs[i] = len(inputs[i])
        async for out in llm.generate_async(inputs[i], params[i], streaming=True):
            t = time.monotonic_ns()
            comp = out.outputs[0]
            n = len(comp.token_ids)  # cumulative in streaming mode
            tracker.observe(i, n - seen, t, None, bool(out.finished), str(comp.finish_reason or ""))
            seen = n

    await asyncio.gather(*(one(i) for i in range(len(inputs))))


def main(spec, em):
    cfg = spec["config"]
    backend_args = spec.get("backend_args") or {}
    for k, v in (backend_args.get("env") or {}).items():
        os.environ[str(k)] = str(v)
    import tensorrt_llm
    from tensorrt_llm import LLM, SamplingParams

    model_id = cfg.get("model") or ""
    arch_name = lc.random_model_name(model_id)
    arch, vocab, model_path = None, None, model_id
    if arch_name:
        model_path, arch = write_random_model_dir(arch_name, tempfile.mkdtemp(prefix="llem-trt-"))
        vocab = arch["vocab_size"]
    kw = llm_kwargs(cfg, backend_args, model_path, bool(arch_name))
    if guard_block_reuse(kw):
        em.log("kv_cache_config.enable_block_reuse=false (not set by the study): the prefill-pass "
               "split needs the workload to prefill again")
    gpu = ""
    try:
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    except Exception:  # noqa: BLE001
        pass

    em.log(version_note(tensorrt_llm.__version__, os.environ.get("LLEM_TENSORRT_LLM_TARGET", "")) +
           ((" on " + gpu) if gpu else ""))
    t_load = time.monotonic_ns()
    llm = LLM(**to_objects(kw))
    load_ns = time.monotonic_ns() - t_load
    params_count, layers, arch_cls = 0, 0, ""
    if arch:
        params_count, layers, arch_cls = lc.count_params(arch), arch["num_hidden_layers"], arch["architectures"][0]
    em.loaded(model_id, params_count, layers, lc.precision_name(cfg), 0, load_ns, architecture=arch_cls)

    tokenizer = getattr(llm, "tokenizer", None) if not arch_name else None
    prompts = lc.build_prompts(spec, vocab_size=vocab, tokenizer=tokenizer)
    max_output = int(cfg.get("max_output_tokens") or 128)
    max_input = int(cfg.get("max_input_tokens") or 512)
    inputs = [prompt_ids(p, tokenizer, vocab, max_input) for p in prompts]
    forced = lc.forced_output(cfg)
    params = [SamplingParams(**sampling_kwargs(cfg, backend_args, p.max_tokens or max_output, forced))
              for p in prompts]

    warm = lc.warmup_indices(cfg, len(prompts))
    if warm:
        llm.generate([inputs[i] for i in warm], [params[i] for i in warm], use_tqdm=False)
    em.warmup_done(len(warm))
    lc.thermal_floor(cfg)

    one = [SamplingParams(**dict(sampling_kwargs(cfg, backend_args, 1, False), max_tokens=1))
           for _ in prompts]
    em.log(lc.PREFILL_PASS_LOG)
    t_p0 = time.monotonic_ns()
    llm.generate(inputs, one, use_tqdm=False)
    t_p1 = time.monotonic_ns()

    t0 = time.monotonic_ns()
    tracker = lc.StreamTracker(t0)
    asyncio.run(stream_all(llm, inputs, params, tracker))
    t_end = time.monotonic_ns()
    results = tracker.results(len(prompts), t_end)
    lc.emit_prefill_pass_window(em, results, t_p0, t_p1, t0, t_end)
    em.done(len(results), sum(r.input_tokens for r in results), sum(r.output_tokens for r in results),
            phase_split_method=lc.PHASE_SPLIT_METHOD, memory=trt_memory(llm, kw, arch, model_path, cfg))
    if hasattr(llm, "shutdown"):
        llm.shutdown()


def trt_memory(llm, kw, arch, model_path, cfg):
    """The done event's memory: the KV cache capacity from LLM.get_stats()
    (kvCacheStats.maxNumBlocks × tokensPerBlock; iteration stats exist only
    when the study sets llm.enable_iter_perf_stats) × bytes per token from
    the model's config.json (layers, KV heads, head dim) and the cache's
    dtype (kv_cache_config.dtype, or 1 byte under an FP8/INT8 KV cache
    quantization, else the run's precision). None when either is unknown."""
    hf = arch
    if hf is None and model_path and os.path.isfile(os.path.join(model_path, "config.json")):
        try:
            with open(os.path.join(model_path, "config.json")) as f:
                hf = json.load(f)
        except (OSError, ValueError):
            hf = None
    if not hf:
        return None
    elem = lc._dtype_bytes((kw.get("kv_cache_config") or {}).get("dtype") or "")
    algo = str((kw.get("quant_config") or {}).get("kv_cache_quant_algo") or "").upper()
    if not elem and algo in ("FP8", "INT8"):
        elem = 1
    if not elem:
        elem = lc._dtype_bytes(lc.precision_name(cfg))
    try:
        stats = llm.get_stats(2)
    except Exception:  # noqa: BLE001 - stats are optional
        stats = []
    kv = lc.trtllm_kv_cache_bytes(stats, lc.kv_bytes_per_token(hf, elem))
    return lc.memory_report("tensorrt_llm kvCacheStats", kv_cache=kv)


if __name__ == "__main__":
    lc.run_main(BACKEND, versions, main)
