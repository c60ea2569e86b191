"""llem worker for the TensorRT-LLM backend (the `LLM` API).

Started by llem as `python3 harness_tensorrt.py` with llem_common.py next
to it; reads one RunSpec on stdin, writes protocol events on stdout (see
llem_common.py and docs/backends/tensorrt.md).

Engines: with TensorRT-LLM's TensorRT backend a model is compiled into an
engine first, which takes minutes. The harness keeps built engines in a
cache directory keyed by a hash of everything that changes the engine
(model, revision, dtype, the LLM/build arguments, TensorRT-LLM version and
GPU name): the first run builds and saves it (llm.save), later runs load the
saved engine. `engine_path` in the llm arguments (a prebuilt engine) skips
both. The PyTorch backend of TensorRT-LLM (the default since 1.0) builds no
engine, so nothing is cached.

Timing: every request is submitted with generate_async(streaming=True) and
each streamed chunk is stamped when it arrives, which gives TTFT and every
inter-token latency. The prefill/decode split is the protocol's
prefill-pass method, as for vLLM (a separate max_tokens=1 pass).

Library arguments come from RunSpec.backend_args, built by llem from the
schema's mapping attributes (schema/tensorrt.cue): {"llm": {...},
"sampling": {...}, "llem": {...}}. Nested dicts under llm (kv_cache_config,
quant_config, scheduler_config, speculative_config, cuda_graph_config, ...)
become TensorRT-LLM's config objects; extra: keys are already merged.
The llem target steers the harness: engine_cache, engine_path,
enable_cuda_graph.
"""

import asyncio
import hashlib
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
    "quant_config": "QuantConfig",
    "calib_config": "CalibConfig",
    "scheduler_config": "SchedulerConfig",
    "cuda_graph_config": "CudaGraphConfig",
    "torch_compile_config": "TorchCompileConfig",
    "build_config": "BuildConfig",
    "extended_runtime_perf_knob_config": "ExtendedRuntimePerfKnobConfig",
    "moe_config": "MoeConfig",
}
SPECULATIVE_CLASSES = {
    "DraftTarget": "DraftTargetDecodingConfig", "Eagle": "EagleDecodingConfig",
    "Eagle3": "EagleDecodingConfig", "MTP": "MTPDecodingConfig", "NGram": "NGramDecodingConfig",
    "Medusa": "MedusaDecodingConfig", "Lookahead": "LookaheadDecodingConfig",
}
# String values that TensorRT-LLM wants as enum members: (object, field) →
# enum class name in tensorrt_llm.llmapi.
ENUM_FIELDS = {
    ("quant_config", "quant_algo"): "QuantAlgo",
    ("quant_config", "kv_cache_quant_algo"): "QuantAlgo",
    ("scheduler_config", "capacity_scheduler_policy"): "CapacitySchedulerPolicy",
    ("scheduler_config", "context_chunking_policy"): "ContextChunkingPolicy",
}


def harness_settings(backend_args):
    """backend_args.llem: engine_cache (default on), engine_path,
    enable_cuda_graph (None = TensorRT-LLM's default)."""
    sec = (backend_args or {}).get("llem") or {}
    return {"engine_cache": sec.get("engine_cache", True), "engine_path": sec.get("engine_path"),
            "enable_cuda_graph": sec.get("enable_cuda_graph")}


def llm_kwargs(cfg, backend_args, model_path, random_arch):
    """Keyword arguments of tensorrt_llm.LLM() as plain data (config
    objects still dicts): model and dtype from the experiment, then
    backend_args.llm untouched. enable_cuda_graph false sends
    cuda_graph_config=None (TensorRT-LLM's way to turn CUDA graphs off)."""
    kw = {"model": model_path, "dtype": lc.TORCH_DTYPE_NAMES[lc.precision_name(cfg)]}
    if random_arch:
        kw["skip_tokenizer_init"] = True
        kw["load_format"] = "dummy"
    for k, v in ((backend_args or {}).get("llm") or {}).items():
        if v is not None:
            kw[k] = v
    cg = harness_settings(backend_args)["enable_cuda_graph"]
    if cg is False:
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
    it is unit-tested."""
    plan = []
    for key, cls in CONFIG_OBJECTS.items():
        if isinstance(kw.get(key), dict):
            plan.append((key, cls))
    sc = kw.get("speculative_config")
    if isinstance(sc, dict):
        plan.append(("speculative_config", SPECULATIVE_CLASSES.get(sc.get("decoding_type"), "")))
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
        if v is not None:
            kw[k] = v
    kw["seed"] = kw.get("seed", int(cfg.get("random_seed", 42)))
    return kw


def builds_engine(kw, trtllm_version):
    """Whether this LLM() call compiles a TensorRT engine: runtime
    "tensorrt" (llm.backend), or no runtime named on a TensorRT-LLM before
    1.0 (where the TensorRT engine was the default)."""
    backend = kw.get("backend")
    if backend:
        return backend == "tensorrt"
    try:
        major = int(str(trtllm_version).split(".")[0])
    except ValueError:
        return False
    return major < 1


def engine_cache_key(kw, trtllm_version, gpu_name):
    """sha256 (first 16 hex digits) of the canonical JSON of everything that
    changes a built engine. Keys are sorted, so argument order does not
    matter; any changed build or runtime argument gives a new engine."""
    material = {"llm": {k: v for k, v in kw.items() if k != "engine_path"},
                "tensorrt_llm": str(trtllm_version), "gpu": gpu_name}
    raw = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def engine_cache_root(environ):
    """LLEM_TRT_ENGINE_CACHE, else $LLEM_CACHE_DIR/trt-engines, else
    $XDG_CACHE_HOME/llem/trt-engines, else ~/.cache/llem/trt-engines."""
    if environ.get("LLEM_TRT_ENGINE_CACHE"):
        return environ["LLEM_TRT_ENGINE_CACHE"]
    if environ.get("LLEM_CACHE_DIR"):
        return os.path.join(environ["LLEM_CACHE_DIR"], "trt-engines")
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "llem", "trt-engines")


def cached_engine(root, key):
    """The cached engine directory for key, or None when absent or
    incomplete (a build interrupted before cache_metadata.json was written
    is not an engine)."""
    d = os.path.join(root, key)
    if os.path.isfile(os.path.join(d, "cache_metadata.json")):
        return d
    return None


def write_cache_metadata(d, key, kw, trtllm_version, gpu_name, build_ns):
    meta = {"key": key, "llm": kw, "tensorrt_llm": str(trtllm_version), "gpu": gpu_name,
            "build_time_ns": int(build_ns), "created_unix": int(time.time())}
    tmp = os.path.join(d, ".cache_metadata.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True, default=str)
    os.replace(tmp, os.path.join(d, "cache_metadata.json"))


def to_objects(kw):
    """Turn the nested dicts of kw into TensorRT-LLM config objects
    (see object_plan); enum-valued strings become enum members."""
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
        if key == "build_config" and isinstance(d.get("plugin_config"), dict):
            plugin = d.pop("plugin_config")
            klass = getattr(api, cls_name, None)
            if klass is not None:
                obj = klass(**d)
                for pk, pv in plugin.items():
                    setattr(obj.plugin_config, pk, pv)
                out[key] = obj
                continue
            d["plugin_config"] = plugin
        klass = getattr(api, cls_name, None) if cls_name else None
        out[key] = klass(**d) if klass is not None else d
    return out


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

    hs = harness_settings(backend_args)
    t_load = time.monotonic_ns()
    if hs["engine_path"]:
        llm = LLM(**to_objects(dict(kw, model=hs["engine_path"])))
    elif hs["engine_cache"] and builds_engine(kw, tensorrt_llm.__version__):
        key = engine_cache_key(dict(kw, model=model_id), tensorrt_llm.__version__, gpu)
        root = engine_cache_root(os.environ)
        hit = cached_engine(root, key)
        if hit:
            em.log("tensorrt engine cache hit: %s" % hit)
            llm = LLM(**to_objects(dict(kw, model=hit)))
        else:
            em.log("building a tensorrt engine (cached afterwards under %s)" % os.path.join(root, key))
            llm = LLM(**to_objects(kw))
            d = os.path.join(root, key)
            os.makedirs(d, exist_ok=True)
            llm.save(d)
            write_cache_metadata(d, key, kw, tensorrt_llm.__version__, gpu, time.monotonic_ns() - t_load)
    else:
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
