"""Shared code of llem's Python harnesses (pytorch, vllm, tensorrt).

A harness is a worker: the llem parent process owns every sensor and clock
and writes one RunSpec (JSON) to the harness's stdin; the harness runs
inference and reports what happened as JSON lines on stdout, each stamped
with time.monotonic_ns() (CLOCK_MONOTONIC, the clock the parent samples
power with). The format is specified in docs/worker-protocol.md and mirrored
by pkg/worker/protocol.go; field names here must match that file exactly,
because the parent's decoder rejects unknown fields.

This module imports only the standard library so that its pure parts
(encoding, spec reading, datasets, batching, token counting, error hints)
are unit-tested with a bare system python3 (see test_llem_common.py).
"""

import json
import os
import random
import re
import sys
import time
import zlib

PROTOCOL_VERSION = 1

# Install commands named in missing-package hints. Keys are the top-level
# module that failed to import.
INSTALL_HINTS = {
    "torch": "pip install torch  (CUDA wheels: https://pytorch.org/get-started/locally/)",
    "transformers": "pip install 'transformers>=4.49' accelerate",
    "accelerate": "pip install accelerate",
    "bitsandbytes": "pip install bitsandbytes  (needed by load_in_4bit / load_in_8bit)",
    "vllm": "pip install vllm  (Linux + NVIDIA GPU; or run the backend with the Docker runner)",
    "tensorrt_llm": "pip install tensorrt-llm==1.2.0 --extra-index-url https://pypi.nvidia.com  (the pinned version; or use the Docker runner)",
    "flash_attn": "pip install flash-attn --no-build-isolation  (or set attn_implementation: \"sdpa\")",
}


# ---------------------------------------------------------------------------
# Protocol encoding
# ---------------------------------------------------------------------------


class Emitter:
    """Writes protocol events as JSON lines.

    The stream is a private duplicate of the original stdout. take_stdout()
    then points file descriptor 1 at stderr, so that anything a library
    prints (progress bars, warnings written with print) lands on stderr and
    can never corrupt the protocol stream.
    """

    def __init__(self, stream, clock=time.monotonic_ns):
        self._out = stream
        self._clock = clock

    @classmethod
    def take_stdout(cls):
        sys.stdout.flush()
        proto_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        return cls(os.fdopen(proto_fd, "w", buffering=1, encoding="utf-8"))

    def now(self):
        return self._clock()

    def emit(self, event, payload, t_ns=None):
        """Write one event; t_ns defaults to now (pass a timestamp taken
        earlier, e.g. right after a device synchronize)."""
        if t_ns is None:
            t_ns = self._clock()
        line = {"event": event, "t_ns": int(t_ns)}
        line.update(payload)
        self._out.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._out.flush()

    def hello(self, backend, versions):
        self.emit("hello", {
            "backend": backend,
            "protocol_version": PROTOCOL_VERSION,
            "versions": {k: str(v) for k, v in versions.items() if v is not None},
            "pid": os.getpid(),
        })

    def loaded(self, model, parameters=0, layers=0, dtype="", memory_bytes=0, load_time_ns=0,
               architecture=""):
        payload = {"model": model, "parameters": int(parameters), "dtype": dtype}
        if architecture:
            payload["architecture"] = architecture
        if layers:
            payload["layers"] = int(layers)
        if memory_bytes:
            payload["memory_bytes"] = int(memory_bytes)
        if load_time_ns:
            payload["load_time_ns"] = int(load_time_ns)
        self.emit("loaded", payload)

    def warmup_done(self, prompts, t_ns=None):
        self.emit("warmup_done", {"prompts": int(prompts)}, t_ns)

    def phase(self, name, state, batch, batch_size, input_tokens=0, output_tokens=0, t_ns=None):
        payload = {"name": name, "state": state, "batch": int(batch), "batch_size": int(batch_size)}
        # omitempty on the Go side: zero counts are left out, as Go would.
        if input_tokens:
            payload["input_tokens"] = int(input_tokens)
        if output_tokens:
            payload["output_tokens"] = int(output_tokens)
        self.emit("phase", payload, t_ns)

    def request(self, r, t_ns=None):
        """r is a RequestTiming (or anything with its attributes)."""
        payload = {
            "index": int(r.index),
            "batch": int(r.batch),
            "input_tokens": int(r.input_tokens),
            "output_tokens": int(r.output_tokens),
            "start_ns": int(r.start_ns),
            "ttft_ns": int(r.ttft_ns),
            "end_ns": int(r.end_ns),
        }
        if r.itl_ns:
            payload["itl_ns"] = [int(x) for x in r.itl_ns]
        if r.finish_reason:
            payload["finish_reason"] = r.finish_reason
        self.emit("request", payload, t_ns)

    def log(self, message, level="info"):
        self.emit("log", {"level": level, "message": message})

    def done(self, requests, input_tokens, output_tokens, phase_split_method=None, memory=None):
        payload = {
            "requests": int(requests),
            "input_tokens": int(input_tokens),
            "output_tokens": int(output_tokens),
        }
        if phase_split_method:
            payload["phase_split_method"] = phase_split_method
        if memory:
            payload["memory"] = memory
        self.emit("done", payload)

    def error(self, kind, message, hint=""):
        payload = {"kind": kind, "message": message}
        if hint:
            payload["hint"] = hint
        self.emit("error", payload)


def memory_report(reporter, peak_allocated=0, peak_reserved=0, kv_cache=0, weights=0):
    """The done event's optional memory object (docs/worker-protocol.md):
    the byte counts the backend knows (0 = unknown, left out) and what they
    were read from; None when it knows none."""
    m = {}
    for key, v in (("peak_allocated_bytes", peak_allocated), ("peak_reserved_bytes", peak_reserved),
                   ("kv_cache_bytes", kv_cache), ("weights_bytes", weights)):
        if v and int(v) > 0:
            m[key] = int(v)
    if not m:
        return None
    m["reporter"] = reporter
    return m


def reset_cuda_peaks(torch):
    """Start torch's allocator peaks at the measured requests (called at
    warmup_done), on every visible device."""
    try:
        if torch.cuda.is_available():
            for d in range(torch.cuda.device_count()):
                torch.cuda.reset_peak_memory_stats(d)
    except Exception:  # noqa: BLE001 - memory stats are optional
        pass


def cuda_peaks(torch):
    """(peak allocated, peak reserved) bytes since reset_cuda_peaks, summed
    over devices: torch.cuda.max_memory_allocated / max_memory_reserved.
    (0, 0) without CUDA."""
    try:
        if not torch.cuda.is_available():
            return 0, 0
        n = torch.cuda.device_count()
        return (sum(torch.cuda.max_memory_allocated(d) for d in range(n)),
                sum(torch.cuda.max_memory_reserved(d) for d in range(n)))
    except Exception:  # noqa: BLE001
        return 0, 0


def _dtype_bytes(name):
    """Bytes per element of a dtype name (torch or vLLM cache_dtype
    spelling); 0 when unknown."""
    n = str(name).lower().replace("torch.", "")
    if n.startswith("fp8") or n in ("int8", "uint8", "float8_e4m3fn", "float8_e5m2"):
        return 1
    return {"float16": 2, "half": 2, "fp16": 2, "bfloat16": 2, "bf16": 2,
            "float32": 4, "float": 4, "fp32": 4}.get(n, 0)


def vllm_kv_cache_bytes(llm):
    """vLLM's preallocated KV cache in bytes: num_gpu_blocks × block_size
    tokens × bytes per token, where a token holds K and V (one latent for
    MLA) of every layer's KV heads. The names are vLLM's: the front end's
    vllm_config.cache_config.num_gpu_blocks is filled from the engine core's
    READY handshake (vllm/v1/engine/utils.py, wait_for_engine_startup, at
    vllm-project/vllm 0018dd01c9a9); ModelConfig.get_num_layers /
    get_num_kv_heads (per rank) / get_head_size (vllm/config/model.py);
    CacheConfig.cache_dtype ("auto" = the model's dtype). 0 when any of it
    is missing."""
    try:
        eng = llm.llm_engine
        vc = getattr(eng, "vllm_config", None)
        cache = getattr(vc, "cache_config", None) or getattr(eng, "cache_config", None)
        model = getattr(vc, "model_config", None) or getattr(eng, "model_config", None)
        par = getattr(vc, "parallel_config", None) or getattr(eng, "parallel_config", None)
        blocks, block_size = int(cache.num_gpu_blocks or 0), int(cache.block_size or 0)
        if blocks <= 0 or block_size <= 0:
            return 0
        tp, pp = int(par.tensor_parallel_size or 1), int(par.pipeline_parallel_size or 1)
        layers = model.get_num_layers(par) * pp
        heads = model.get_num_kv_heads(par) * tp
        elem = _dtype_bytes(cache.cache_dtype)
        if not elem:
            elem = getattr(model.dtype, "itemsize", 0) or _dtype_bytes(model.dtype)
        kv = 1 if getattr(model, "use_mla", False) else 2
        return blocks * block_size * kv * layers * heads * model.get_head_size() * elem
    except Exception:  # noqa: BLE001 - internal layout differs across versions
        return 0


def kv_bytes_per_token(hf_config, elem_bytes):
    """K and V of every layer for one token, from a HF config dict:
    2 × num_hidden_layers × num_key_value_heads × head_dim × bytes."""
    heads = int(hf_config.get("num_attention_heads") or 0)
    kv = int(hf_config.get("num_key_value_heads") or heads)
    hd = int(hf_config.get("head_dim") or (int(hf_config.get("hidden_size") or 0) // heads if heads else 0))
    return 2 * int(hf_config.get("num_hidden_layers") or 0) * kv * hd * int(elem_bytes)


def trtllm_kv_cache_bytes(stats, per_token):
    """TensorRT-LLM's KV cache capacity in bytes from LLM.get_stats()
    iteration stats: kvCacheStats.maxNumBlocks × tokensPerBlock tokens
    (the names of executor::KvCacheStats as its JSON serialises them) ×
    per_token bytes. 0 without stats (the PyTorch backend keeps them only
    with enable_iter_perf_stats) or without per_token."""
    if not per_token:
        return 0
    best = 0
    for st in stats or []:
        if isinstance(st, str):
            try:
                st = json.loads(st)
            except ValueError:
                continue
        kv = (st or {}).get("kvCacheStats") or {}
        blocks, tpb = int(kv.get("maxNumBlocks") or 0), int(kv.get("tokensPerBlock") or 0)
        best = max(best, blocks * tpb * per_token)
    return best


def package_versions(names):
    """Installed versions of distributions, read from package metadata so
    that nothing is imported (hello goes out before any heavy import, and
    vLLM must not be imported before its env settings are applied).
    Missing packages are left out."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for name in names:
        for cand in (name, name.replace("_", "-"), name.replace("-", "_")):
            try:
                out[name] = metadata.version(cand)
                break
            except Exception:  # noqa: BLE001 - PackageNotFoundError and broken metadata
                continue
    return out


class RequestTiming:
    """One finished request, as reported in a `request` event."""

    __slots__ = ("index", "batch", "input_tokens", "output_tokens", "start_ns",
                 "ttft_ns", "end_ns", "itl_ns", "finish_reason")

    def __init__(self, index, batch, input_tokens, output_tokens, start_ns, ttft_ns,
                 end_ns, itl_ns=None, finish_reason=""):
        self.index = index
        self.batch = batch
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.start_ns = start_ns
        self.ttft_ns = ttft_ns
        self.end_ns = end_ns
        self.itl_ns = list(itl_ns or [])
        self.finish_reason = finish_reason

    def __repr__(self):
        return "RequestTiming(%s)" % ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__)


def timings_from_token_times(index, batch, input_tokens, start_ns, token_times, end_ns, finish_reason):
    """Build a RequestTiming from the moments each output token existed.

    token_times[k] is when output token k was produced (after a device
    synchronize). TTFT is the first of them minus start_ns; ITLs are the
    gaps between consecutive ones (len = tokens - 1), the definition vLLM's
    benchmark uses, so numbers are comparable across backends.
    """
    n = len(token_times)
    ttft = token_times[0] - start_ns if n else 0
    itl = [token_times[k] - token_times[k - 1] for k in range(1, n)]
    return RequestTiming(index, batch, input_tokens, n, start_ns, ttft, end_ns, itl, finish_reason)


# Continuous-batching engines (vLLM, TensorRT-LLM) have no per-batch
# prefill/decode boundary; docs/worker-protocol.md prescribes this split.
PHASE_SPLIT_METHOD = "prefill-pass"
PREFILL_PASS_LOG = ("phase_split_method=prefill-pass: the prefill phase is a separate max_tokens=1 pass "
                    "over all prompts; the decode phase is the full generation (which prefills again); "
                    "llem measures the full generation and attributes the pass's energy to prefill, "
                    "the rest to decode")


class StreamTracker:
    """Per-request token arrival times from a step loop.

    observe(request_id, n_new, t_ns, input_tokens, finished, reason) is
    called for every request output of every engine step (n_new tokens
    arrived at t_ns); results() turns the record into
    RequestTimings with TTFT and ITLs. Pure, so it is unit-tested.
    """

    def __init__(self, start_ns):
        self.start_ns = start_ns
        self.times = {}
        self.finish = {}
        self.inputs = {}
        self.end = {}

    def observe(self, rid, n_new, t_ns, input_tokens=None, finished=False, reason=""):
        ts = self.times.setdefault(rid, [])
        ts.extend([t_ns] * max(0, n_new))
        if input_tokens is not None:
            self.inputs[rid] = input_tokens
        if finished:
            self.finish[rid] = reason
            self.end[rid] = t_ns

    def first_token_boundary(self):
        """When the last request received its first token."""
        firsts = [ts[0] for ts in self.times.values() if ts]
        return max(firsts) if firsts else self.start_ns

    def results(self, n, end_ns):
        out = []
        for i in range(n):
            ts = self.times.get(i, [])
            reason = normalize_reason(self.finish.get(i, ""))
            out.append(timings_from_token_times(i, 0, self.inputs.get(i, 0), self.start_ns, ts,
                                                   self.end.get(i, end_ns), reason))
        return out


def normalize_reason(reason):
    """Engine finish reasons in the protocol's words (eos, length, stop).
    vLLM and TensorRT-LLM say "stop" both for EOS and for a stop string;
    that stays "stop"."""
    return {"length": "length", "stop": "stop", "eos": "eos"}.get(reason or "", "")


def emit_prefill_pass_window(em, results, p0, p1, t0, t_end):
    """One batch: prefill = the prefill-only pass [p0, p1], decode = the
    full generation [t0, t_end]. Token counts follow protocol §5 rule 6:
    first tokens on prefill end, the rest on decode end."""
    n = len(results)
    em.phase("prefill", "start", 0, n, t_ns=p0)
    em.phase("prefill", "end", 0, n, input_tokens=sum(r.input_tokens for r in results),
             output_tokens=sum(1 for r in results if r.output_tokens), t_ns=p1)
    em.phase("decode", "start", 0, n, t_ns=t0)
    em.phase("decode", "end", 0, n, output_tokens=sum(max(0, r.output_tokens - 1) for r in results),
             t_ns=t_end)
    for r in results:
        em.request(r)


# ---------------------------------------------------------------------------
# Run spec and config
# ---------------------------------------------------------------------------


class SpecError(ValueError):
    """The run spec is unusable (reported as an error event of kind config)."""


class ProtocolError(SpecError):
    """The run spec is unreadable or speaks another protocol version."""


class DatasetError(SpecError):
    """The dataset could not be built or read (error kind dataset)."""


class HarnessError(Exception):
    """A failure the harness recognised itself, with its protocol error
    kind (one of pkg/worker's ErrKind* values) and a fix hint."""

    def __init__(self, kind, message, hint=""):
        super().__init__(message)
        self.kind = kind
        self.hint = hint


def read_spec(stream):
    raw = stream.read()
    if not raw.strip():
        raise ProtocolError("read run spec: stdin is empty (the harness expects one JSON RunSpec)")
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ProtocolError("read run spec: %s" % e)
    if not isinstance(spec, dict):
        raise ProtocolError("read run spec: not a JSON object")
    v = spec.get("protocol_version")
    if v != PROTOCOL_VERSION:
        raise ProtocolError("read run spec: protocol_version %r, this harness speaks %d" % (v, PROTOCOL_VERSION))
    if not isinstance(spec.get("config"), dict):
        raise SpecError("read run spec: missing \"config\" object")
    spec.setdefault("backend_args", {})
    spec.setdefault("prompts", [])
    return spec


def cfg_get(cfg, path, default=None):
    """cfg_get(cfg, "decoder.top_k", 50): a dotted lookup where a missing key
    or an explicit null gives the default."""
    cur = cfg
    for part in path.split("."):
        if not isinstance(cur, dict) or cur.get(part) is None:
            return default
        cur = cur[part]
    return cur


DECODER_PRESETS = {
    "deterministic": {"temperature": 0.0, "do_sample": False},
    "standard": {"temperature": 1.0, "do_sample": True, "top_p": 0.95},
    "creative": {"temperature": 0.8, "do_sample": True, "top_p": 0.9, "repetition_penalty": 1.1},
    "factual": {"temperature": 0.3, "do_sample": True},
}

DECODER_DEFAULTS = {"temperature": 1.0, "do_sample": True, "top_k": 50, "top_p": 1.0,
                    "repetition_penalty": 1.0, "min_p": None, "min_new_tokens": None}


def decoder_settings(cfg):
    """The effective decoder: defaults, then the preset, then explicit keys.

    The study loader normally expands presets already; doing it again here
    is idempotent and keeps a hand-written spec honest.
    """
    dec = dict(cfg.get("decoder") or {})
    out = dict(DECODER_DEFAULTS)
    preset = dec.pop("preset", None)
    if preset:
        if preset not in DECODER_PRESETS:
            raise SpecError("decoder.preset %r: want one of %s" % (preset, ", ".join(sorted(DECODER_PRESETS))))
        out.update(DECODER_PRESETS[preset])
    out.update({k: v for k, v in dec.items() if v is not None})
    return out


def is_greedy(dec):
    """The original's rule: temperature 0 or do_sample false means greedy."""
    return (not dec.get("do_sample", True)) or float(dec.get("temperature", 1.0)) == 0.0


def precision_name(cfg):
    p = cfg.get("precision") or "bf16"
    if p not in ("fp32", "fp16", "bf16"):
        raise SpecError("precision %r: want fp32, fp16 or bf16" % p)
    return p


# Names each backend uses for a precision.
TORCH_DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def random_model_name(model):
    """'random:llama-3.1-8b' → 'llama-3.1-8b'; anything else → None."""
    if isinstance(model, str) and model.startswith("random:"):
        return model[len("random:"):]
    return None


# Architectures for random-weight models ("random:<name>"): a Hugging Face
# config dict, enough for transformers' from_config, vLLM's dummy load
# format and the synthetic dataset's vocabulary. Shapes follow the public
# configs of the named checkpoints, so a random-weight run costs what the
# real model costs per token (weights' values do not change FLOPs).
ARCHITECTURES = {
    "llama-3.1-8b": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "hidden_act": "silu", "tie_word_embeddings": False,
        "bos_token_id": 128000, "eos_token_id": 128001,
    },
    "llama-3.2-1b": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "hidden_act": "silu", "tie_word_embeddings": True, "head_dim": 64,
        "bos_token_id": 128000, "eos_token_id": 128001,
    },
    "qwen2.5-0.5b": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
        "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
        "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "hidden_act": "silu", "tie_word_embeddings": True,
        "bos_token_id": 151643, "eos_token_id": 151643,
    },
    "smollm-135m": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "vocab_size": 49152,
        "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "tie_word_embeddings": True,
        "bos_token_id": 0, "eos_token_id": 0,
    },
    "llama-15m": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 288, "intermediate_size": 768, "num_hidden_layers": 6,
        "num_attention_heads": 6, "num_key_value_heads": 6, "vocab_size": 32000,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "tie_word_embeddings": True,
        "bos_token_id": 1, "eos_token_id": 2,
    },
}


def architecture(name):
    if name not in ARCHITECTURES:
        raise SpecError("model \"random:%s\": unknown architecture; built in: %s"
                        % (name, ", ".join("random:" + k for k in sorted(ARCHITECTURES))))
    return dict(ARCHITECTURES[name])


def version_tuple(v):
    """'5.17.0.dev0' → (5, 17); missing parts are 0."""
    parts = []
    for p in str(v).split(".")[:2]:
        digits = ""
        for ch in p:
            if not ch.isdigit():
                break
            digits += ch
        parts.append(int(digits or 0))
    while len(parts) < 2:
        parts.append(0)
    return tuple(parts)


def hf_config_kwargs(arch, transformers_version):
    """(model_type, kwargs) for transformers' AutoConfig.for_model from an
    ARCHITECTURES entry. transformers 5 moved rope_theta and rope_scaling
    into one rope_parameters dict; older versions take them flat."""
    kw = dict(arch)
    model_type = kw.pop("model_type")
    if version_tuple(transformers_version) >= (5, 0):
        rope = dict(kw.pop("rope_scaling", None) or {"rope_type": "default"})
        rope["rope_theta"] = kw.pop("rope_theta", 10000.0)
        kw["rope_parameters"] = rope
    return model_type, kw


def count_params(arch):
    """Parameter count of a Llama/Qwen2-shaped decoder from its config, for
    the `loaded` event of backends that do not expose the module tree."""
    h, i, L = arch["hidden_size"], arch["intermediate_size"], arch["num_hidden_layers"]
    heads, kv = arch["num_attention_heads"], arch["num_key_value_heads"]
    hd = arch.get("head_dim") or h // heads
    v = arch["vocab_size"]
    attn = h * heads * hd + 2 * h * kv * hd + heads * hd * h
    if arch["model_type"] == "qwen2":
        attn += heads * hd + 2 * kv * hd  # q/k/v biases
    per_layer = attn + 3 * h * i + 2 * h
    emb = v * h * (1 if arch.get("tie_word_embeddings") else 2)
    return L * per_layer + emb + h


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------

PROMPT_FIELDS = ("prompt", "text", "instruction", "input", "question")
_SYNTH_WORDS = ("Hello", "world", "the", "a", "is", "it", "this", "that", "with", "for")


class Prompt:
    """One input. Exactly one of text / token_ids is set; max_tokens 0 means
    the config's max_output_tokens. source is only used by grouped order."""

    __slots__ = ("text", "token_ids", "max_tokens", "source")

    def __init__(self, text=None, token_ids=None, max_tokens=0, source=""):
        self.text = text
        self.token_ids = token_ids
        self.max_tokens = max_tokens or 0
        self.source = source

    def __eq__(self, other):
        return isinstance(other, Prompt) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        return "Prompt(text=%r, token_ids=%r, max_tokens=%r)" % (self.text, self.token_ids, self.max_tokens)


def prompts_from_spec(spec):
    """RunSpec.prompts → [Prompt], or [] when the parent sent none.
    token_ids win over text when both are present (protocol §3)."""
    out = []
    for i, p in enumerate(spec.get("prompts") or []):
        text, ids = p.get("text"), p.get("token_ids")
        if not text and not ids:
            raise SpecError("prompts[%d]: want text or token_ids" % i)
        if ids:
            text = None
        out.append(Prompt(text=text or None, token_ids=list(ids) if ids else None,
                          max_tokens=int(p.get("max_tokens") or 0)))
    return out


def _lengths(n, mean, dist, rng, spread):
    """n lengths around mean: fixed; uniform within ±spread×mean; normal
    with standard deviation spread×mean. Always ≥ 1."""
    if dist in (None, "fixed"):
        return [mean] * n
    width = spread * mean
    if dist == "uniform":
        lo, hi = max(1, int(round(mean - width))), max(1, int(round(mean + width)))
        return [rng.randint(lo, hi) for _ in range(n)]
    if dist == "normal":
        return [max(1, int(round(rng.gauss(mean, width)))) for _ in range(n)]
    raise SpecError("dataset.distribution %r: want fixed, uniform or normal" % dist)


def synthetic_prompts(cfg, vocab_size=None, tokenizer=None):
    """The built-in synthetic dataset (schema #Synthetic) with exact token
    lengths.

    With vocab_size (random-weight models, or any model when the harness
    works in token IDs) each prompt is input_len token IDs drawn from
    random.Random(random_seed), avoiding the first 4 IDs (usually special
    tokens). With a tokenizer (text models) each prompt is text that the
    tokenizer encodes to exactly input_len tokens. Each prompt's output
    length (output_len, capped by max_output_tokens) goes into max_tokens
    and force is set: generation runs to that length (the original ignored
    output_len). In production the parent builds these prompts and sends
    them; this copy serves direct runs of a harness.
    """
    ds = cfg.get("dataset") or {}
    n = int(cfg.get("n") or 100)
    rng = random.Random(int(cfg.get("random_seed", 42)))
    in_len = int(ds.get("input_len") or 512)
    max_out = int(cfg.get("max_output_tokens") or 128)
    out_len = min(int(ds.get("output_len") or max_out), max_out)
    dist = ds.get("distribution") or "fixed"
    spread = float(ds.get("spread", 0.25))
    in_lens = _lengths(n, in_len, dist, rng, spread)
    out_lens = [min(x, max_out) for x in _lengths(n, out_len, dist, rng, spread)]
    prompts = []
    for k in range(n):
        if tokenizer is not None:
            text = exact_length_text(tokenizer, in_lens[k], rng)
            prompts.append(Prompt(text=text, max_tokens=out_lens[k], source="synthetic"))
        else:
            if not vocab_size:
                raise DatasetError("synthetic dataset: need a tokenizer or a vocabulary size")
            lo = 4 if vocab_size > 8 else 0
            ids = [rng.randrange(lo, vocab_size) for _ in range(in_lens[k])]
            prompts.append(Prompt(token_ids=ids, max_tokens=out_lens[k], source="synthetic"))
    return prompts


def forced_output(cfg):
    """Whether output lengths are forced (generation ignores EOS): true for
    the synthetic dataset, whose output_len is a length to generate."""
    ds = cfg.get("dataset")
    return isinstance(ds, dict) and ds.get("source") == "synthetic"


def exact_length_text(tokenizer, length, rng):
    """Text that `tokenizer` encodes (without special tokens) to exactly
    `length` tokens: grow a word sequence past the target, then cut the
    token IDs and decode; re-encoding may merge across the cut, so trim or
    pad with single words until it is exact."""
    words = []
    while True:
        words.extend(rng.choice(_SYNTH_WORDS) for _ in range(max(8, length)))
        ids = tokenizer.encode(" ".join(words), add_special_tokens=False)
        if len(ids) >= length:
            break
    text = tokenizer.decode(ids[:length])
    for _ in range(64):
        got = len(tokenizer.encode(text, add_special_tokens=False))
        if got == length:
            return text
        if got > length:
            text = text.rsplit(" ", 1)[0] if " " in text else text[:-1]
        else:
            text = text + " " + rng.choice(_SYNTH_WORDS)
    raise DatasetError("synthetic dataset: could not build a prompt of exactly %d tokens with this tokenizer" % length)


def jsonl_records(path, field=None):
    """Prompts of a JSONL file: blank lines and records with a key starting
    with "_" (provenance headers) are skipped; the prompt is `field`, or the
    first non-empty string among prompt, text, instruction, input, question.
    Unlike the original, a malformed line is an error naming the line,
    not silently skipped. A record's max_tokens / max_new_tokens sets its
    output length; its source is kept for grouped order."""
    out = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DatasetError("open dataset %s: %s" % (path, e.strerror or e))
    with f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError("dataset %s:%d: invalid JSON: %s" % (path, lineno, e))
            if not isinstance(rec, dict) or any(str(k).startswith("_") for k in rec):
                continue
            text = None
            for key in ([field] if field else PROMPT_FIELDS):
                v = rec.get(key)
                if isinstance(v, str) and v.strip():
                    text = v.strip()
                    break
            if text is None:
                continue
            mt = rec.get("max_tokens") or rec.get("max_new_tokens") or 0
            out.append(Prompt(text=text, max_tokens=int(mt), source=str(rec.get("source") or "")))
    return out


def order_prompts(prompts, order, seed, n):
    """Select n prompts in the original's ordering modes:
    interleaved = file order; grouped = stable sort by source;
    shuffled = random.Random(seed).shuffle over all records (byte-for-byte
    the original's order, since this is the same CPython RNG)."""
    if order in (None, "interleaved"):
        chosen = list(prompts)
    elif order == "grouped":
        chosen = sorted(prompts, key=lambda p: p.source)
    elif order == "shuffled":
        chosen = list(prompts)
        random.Random(seed).shuffle(chosen)
    else:
        raise SpecError("dataset_order %r: want interleaved, grouped or shuffled" % order)
    if len(chosen) < n:
        raise DatasetError("dataset has only %d prompts but n=%d were requested" % (len(chosen), n))
    return chosen[:n]


def build_prompts(spec, vocab_size=None, tokenizer=None):
    """The dataset actually used by this run.

    RunSpec.prompts (resolved by the parent) win. Otherwise the dataset is
    built from config.dataset: synthetic, or a JSONL path. The AI Energy
    Score set is downloaded and cached by the parent, which sends it as
    prompts; a harness never reaches the network for data.
    """
    sent = prompts_from_spec(spec)
    if sent:
        return sent
    cfg = spec["config"]
    ds = cfg.get("dataset")
    if isinstance(ds, str):
        ds = {"source": "jsonl", "path": ds} if ds.endswith(".jsonl") else {"source": ds}
    ds = ds or {"source": "synthetic"}
    src = ds.get("source", "synthetic")
    n = int(cfg.get("n") or 100)
    if src == "synthetic":
        return synthetic_prompts(cfg, vocab_size=vocab_size, tokenizer=tokenizer)
    if src == "jsonl":
        recs = jsonl_records(ds.get("path") or "", ds.get("field"))
        return order_prompts(recs, cfg.get("dataset_order"), int(cfg.get("random_seed", 42)), n)
    raise DatasetError("dataset source %r must be resolved by llem before the worker starts "
                    "(the run spec carried no prompts)" % src)


_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def approx_token_ids(text, vocab_size):
    """Token IDs for text when the model has no tokenizer (random-weight
    models fed a text dataset): one ID per word or punctuation mark, hashed
    into the vocabulary. BPE tokenizers give roughly this count for English
    (about 1.3 tokens per word), and for random weights only the count
    matters; the docs say so."""
    lo = 4 if vocab_size > 8 else 0
    return [lo + zlib.crc32(w.encode("utf-8")) % (vocab_size - lo) for w in _WORD.findall(text)] or [lo]


# ---------------------------------------------------------------------------
# Batching and token counting
# ---------------------------------------------------------------------------


def make_batches(lengths, batch_size, strategy="fixed"):
    """Group prompt indices into batches.

    fixed: consecutive chunks of batch_size in dataset order (the original).
    sorted: indices sorted by input length (longest first, ties in dataset
    order), then chunked, so each batch pads little. Requests keep their
    dataset index, so results stay attributable.
    """
    if batch_size < 1:
        raise SpecError("batch_size %d: want ≥ 1" % batch_size)
    idx = list(range(len(lengths)))
    if strategy in ("sorted", "length_sorted", "sorted_by_length"):
        idx.sort(key=lambda i: -lengths[i])
    elif strategy not in (None, "fixed", "static"):
        raise SpecError("batching strategy %r: want fixed or sorted" % strategy)
    return [idx[k:k + batch_size] for k in range(0, len(idx), batch_size)]


def left_pad(rows, pad_id):
    """Left-pad token ID rows to one length (decoder-only generation needs
    padding on the left) → (input_ids, attention_mask) as lists."""
    width = max(len(r) for r in rows)
    ids = [[pad_id] * (width - len(r)) + list(r) for r in rows]
    mask = [[0] * (width - len(r)) + [1] * len(r) for r in rows]
    return ids, mask


def real_input_tokens(mask_row):
    """Prompt tokens of one row, excluding padding."""
    return int(sum(1 for m in mask_row if m))


def generated_length(new_tokens, eos_ids, min_new_tokens=0):
    """How many of a row's generated tokens are real, and why it stopped.

    new_tokens is the row's tokens after the prompt. Generation of a row
    ends at its first EOS (counted: the model computed it); everything after
    is padding that batched generate() appends while other rows continue,
    and is excluded. Before min_new_tokens, EOS is suppressed by the
    decoder, so it is not looked for there.
    """
    eos = set(eos_ids or ())
    for k, t in enumerate(new_tokens):
        if k >= min_new_tokens and t in eos:
            return k + 1, "eos"
    return len(new_tokens), "length"


# ---------------------------------------------------------------------------
# Errors → events with hints
# ---------------------------------------------------------------------------


def classify_error(exc, backend):
    """(kind, message, hint) for an exception, so the user reads a fix
    instead of a traceback. Kinds match pkg/worker.Error."""
    name = type(exc).__name__
    msg = str(exc) or name
    low = msg.lower()
    if isinstance(exc, HarnessError):
        return exc.kind, msg, exc.hint
    if isinstance(exc, ProtocolError):
        return "protocol", msg, "the harness and llem disagree: reinstall llem so both come from one version"
    if isinstance(exc, DatasetError):
        return "dataset", msg, "check the dataset section (path, field, n); llem params lists its fields"
    if isinstance(exc, SpecError):
        return "config", msg, "check the study's fields for this run (llem params %s lists them)" % backend
    if isinstance(exc, ImportError):
        mod = (getattr(exc, "name", None) or "").split(".")[0]
        if not mod:
            m = re.search(r"No module named '([\w\.]+)'", msg)
            mod = m.group(1).split(".")[0] if m else ""
        hint = INSTALL_HINTS.get(mod, "pip install %s" % mod if mod else "install the %s backend's Python packages" % backend)
        return "missing_package", "import %s: %s" % (mod or "module", msg), \
            hint + "; or point llem at a Python that has it: --python PATH or LLEM_PYTHON"
    if name == "OutOfMemoryError" or "out of memory" in low:
        return "oom", msg, OOM_HINTS.get(backend, OOM_HINTS["pytorch"])
    if name in ("GatedRepoError",) or "gated repo" in low or re.search(r"\b401\b", msg) or "unauthorized" in low \
            or "access to model" in low and "restricted" in low:
        return "gated", msg, ("the model is gated or private: accept its licence on huggingface.co, "
                             "then export HF_TOKEN=<token> (llem forwards it to the worker)")
    if name in ("RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError") \
            or "is not a valid model identifier" in low or "does not appear to have a file" in low \
            or "no such file or directory" in low and "config.json" in low:
        return "model_not_found", msg, ("check the model id or path; offline machines need the model in "
                                       "the HF cache (HF_HOME) or a local path, or use a random:<arch> model")
    if name in ("LocalEntryNotFoundError",) or "offline" in low and "hub" in low or \
            "couldn't connect" in low or "connection error" in low:
        return "model_not_found", msg, ("the model is not cached and the Hub is unreachable: download it first "
                                "(huggingface-cli download <model>) or set HF_HUB_OFFLINE=1 with a cached copy")
    if "cuda" in low and ("no cuda gpus" in low or "not available" in low or "driver" in low):
        return "unsupported", msg, "no usable CUDA GPU: check nvidia-smi and CUDA_VISIBLE_DEVICES"
    if isinstance(exc, (TypeError, ValueError)) and ("unexpected keyword" in low or "argument" in low):
        return "config", msg, ("a backend argument was rejected by %s; check the extra: keys and the "
                               "installed version (llem env shows it)" % backend)
    return "internal", "%s: %s" % (name, msg), ""


OOM_HINTS = {
    "pytorch": "CUDA ran out of memory: lower pytorch.batch_size, max_input_tokens or max_output_tokens, "
               "use a smaller precision (bf16/fp16) or load_in_8bit/load_in_4bit, or a smaller model",
    "vllm": "CUDA ran out of memory: lower vllm.engine.gpu_memory_utilization, max_model_len or "
            "max_num_seqs, or enable cpu_offload_gb",
    "tensorrt": "CUDA ran out of memory: lower tensorrt.max_batch_size, max_input_len/max_seq_len, or "
                "kv_cache free_gpu_memory_fraction",
}


class Terminated(BaseException):
    """SIGTERM from the parent: stop generating and report interrupted."""


EXIT_CODES = {"config": 2, "protocol": 2, "interrupted": 130}


def run_main(backend, versions, body, stdin=None):
    """Entry point of every harness.

    Takes stdout for the protocol, emits hello before anything that can
    fail (versions() must not raise: it reports what imports), reads the
    spec, runs body(spec, emitter), and turns any failure into an error
    event and the protocol's exit status: 2 for config/protocol, 130 for
    SIGINT/SIGTERM, 1 otherwise.
    """
    import signal
    import traceback

    em = Emitter.take_stdout()

    def _term(signum, frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, _term)
    try:
        vs = versions()
    except Exception:  # noqa: BLE001 - hello must go out regardless
        vs = {}
    em.hello(backend, vs)
    try:
        spec = read_spec(stdin or sys.stdin)
        body(spec, em)
    except (KeyboardInterrupt, Terminated):
        em.error("interrupted", "interrupted by a signal before the run finished")
        os._exit(130)  # skip library atexit hooks that may block on a dead GPU job
    except BaseException as exc:  # noqa: BLE001 - every failure becomes an event
        if isinstance(exc, SystemExit) and not exc.code:
            raise
        kind, msg, hint = classify_error(exc, backend)
        traceback.print_exc(file=sys.stderr)
        em.error(kind, msg, hint)
        sys.stderr.flush()
        sys.exit(EXIT_CODES.get(kind, 1))
    return 0


def warmup_indices(cfg, n_prompts):
    """The warmup prompts: the first warmup.n_warmup of the run's prompts,
    cycled when the list is shorter (docs/worker-protocol.md §3); none when
    warmup is disabled. After warmup_done the worker sleeps the thermal
    floor (thermal_floor below; docs/worker-protocol.md "Thermal floor")."""
    if not cfg_get(cfg, "warmup.enabled", True) or n_prompts == 0:
        return []
    k = int(cfg_get(cfg, "warmup.n_warmup", 5))
    return [i % n_prompts for i in range(k)]


def thermal_floor_seconds(cfg):
    """The pause between warmup_done and the first measured prefill:
    warmup.thermal_floor_seconds when warmup is enabled, else 0."""
    if not cfg_get(cfg, "warmup.enabled", True):
        return 0.0
    return max(0.0, float(cfg_get(cfg, "warmup.thermal_floor_seconds", 0) or 0))


def thermal_floor(cfg, sleep=time.sleep):
    """Sleep the thermal floor so the device settles before the measured
    window (docs/worker-protocol.md). A SIGTERM during the sleep raises
    out of it through the handler run_main installs."""
    s = thermal_floor_seconds(cfg)
    if s > 0:
        sleep(s)
    return s


def prompt_token_ids(prompt, tokenizer, vocab_size, max_input, engine):
    """Token IDs of a prompt for an engine fed token IDs (vLLM,
    TensorRT-LLM), truncated to max_input (first tokens kept) like the other
    backends: text goes through the model's tokenizer, or for random-weight
    models (no tokenizer) through the approximate word tokenizer. Sending
    IDs means the harness knows every request's exact input length."""
    if prompt.token_ids is not None:
        ids = list(prompt.token_ids)
    elif tokenizer is not None:
        ids = tokenizer.encode(prompt.text)
    elif vocab_size:
        ids = approx_token_ids(prompt.text, vocab_size)
    else:
        raise HarnessError("config", "text prompts need the model's tokenizer, and %s has none" % engine,
                           "remove skip_tokenizer_init from %s.extra, or use token-ID prompts"
                           % {"TensorRT-LLM": "tensorrt"}.get(engine, engine.lower()))
    return ids[:max_input]
