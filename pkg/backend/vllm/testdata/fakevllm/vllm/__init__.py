"""FAKE vLLM for llem's tests: vLLM needs an NVIDIA GPU and cannot be
installed on the machines that run llem's test suite. This stands in for
the handful of APIs harness_vllm.py calls (LLM, SamplingParams, the
engine's add_request/step loop) so the harness's whole control flow and its
protocol output are tested end to end. It computes nothing: every step
gives each running request one token; a request whose prompt ends in
token 2 stops with EOS after 2 tokens. Calls are logged to the file named
by FAKE_VLLM_LOG so tests can check the arguments the harness passed.
"""

import json
import os

__version__ = "0.0.0-fake"

# The argument names the real classes accept come from the pinned upstream
# snapshot (tools/upstream/targets.json -> snapshots/vllm-<version>.json), so
# the fake rejects exactly what that vLLM rejects: an unknown keyword is a
# TypeError, as from the real constructors.
_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 6))


def _surfaces():
    up = os.path.join(_ROOT, "tools", "upstream")
    with open(os.path.join(up, "targets.json")) as f:
        snap = json.load(f)["vllm"]["snapshot"]
    with open(os.path.join(up, "snapshots", snap)) as f:
        surf = json.load(f)["surfaces"]
    names = {k: {x["name"] for x in v.get("fields", [])} for k, v in surf.items()}
    required = {k: {x["name"] for x in v.get("fields", []) if x.get("required")} for k, v in surf.items()}
    return names, required


_NAMES, _REQUIRED = _surfaces()
ENGINE_ARGS = _NAMES["engine"] | _NAMES["llm"]
SAMPLING_ARGS = _NAMES["sampling"]
BEAM_SEARCH_ARGS = _NAMES["beam_search"]
ATTENTION_ARGS = _NAMES["attention"]


def _check(cls, kw, allowed, required=()):
    bad = sorted(set(kw) - allowed)
    if bad:
        raise TypeError(f"{cls}.__init__() got an unexpected keyword argument {bad[0]!r}")
    missing = sorted(set(required) - set(kw))
    if missing:
        raise TypeError(f"{cls}.__init__() missing required argument {missing[0]!r}")


def _log(kind, payload):
    path = os.environ.get("FAKE_VLLM_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"call": kind, "args": payload}, default=str) + "\n")


class SamplingParams:
    def __init__(self, **kw):
        _check("SamplingParams", kw, SAMPLING_ARGS)
        self.kw = kw
        self.max_tokens = kw.get("max_tokens", 16)
        self.output_kind = None


class _Completion:
    def __init__(self, token_ids, finish_reason):
        self.token_ids = token_ids
        self.finish_reason = finish_reason


class _Output:
    def __init__(self, rid, prompt_ids, token_ids, finished, reason):
        self.request_id = rid
        self.prompt_token_ids = prompt_ids
        self.outputs = [_Completion(token_ids, reason)]
        self.finished = finished


class _DType:
    """Stands in for a torch.dtype: vLLM's ModelConfig.dtype is one, and
    the harness reads its itemsize."""

    def __init__(self, name, itemsize):
        self.name, self.itemsize = name, itemsize

    def __str__(self):
        return "torch." + self.name


class _Namespace:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class _ModelConfig:
    """The ModelConfig methods the harness calls, with vLLM's names and
    signatures (vllm/config/model.py): per-rank layers and KV heads."""

    def __init__(self, hf, dtype):
        self.hf, self.dtype, self.use_mla = hf, dtype, False

    def get_num_layers(self, parallel_config):
        return self.hf["num_hidden_layers"] // parallel_config.pipeline_parallel_size

    def get_num_kv_heads(self, parallel_config):
        kv = self.hf.get("num_key_value_heads") or self.hf["num_attention_heads"]
        return max(1, kv // parallel_config.tensor_parallel_size)

    def get_head_size(self):
        return self.hf.get("head_dim") or self.hf["hidden_size"] // self.hf["num_attention_heads"]


# The fake engine "profiles" a fixed number of KV cache blocks.
FAKE_NUM_GPU_BLOCKS = 1000


def _vllm_config(kw):
    """The front end's VllmConfig after the engine core's READY handshake:
    cache_config.num_gpu_blocks filled in (vllm/v1/engine/utils.py)."""
    hf = {"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64}
    path = os.path.join(str(kw.get("model") or ""), "config.json")
    if os.path.isfile(path):
        with open(path) as f:
            hf = json.load(f)
    dtype = {"bfloat16": _DType("bfloat16", 2), "float16": _DType("float16", 2),
             "float32": _DType("float32", 4)}.get(str(kw.get("dtype") or "bfloat16"), _DType("bfloat16", 2))
    par = _Namespace(tensor_parallel_size=int(kw.get("tensor_parallel_size") or 1),
                     pipeline_parallel_size=int(kw.get("pipeline_parallel_size") or 1))
    cache = _Namespace(num_gpu_blocks=FAKE_NUM_GPU_BLOCKS, block_size=int(kw.get("block_size") or 16),
                       cache_dtype=str(kw.get("kv_cache_dtype") or "auto"))
    return _Namespace(cache_config=cache, model_config=_ModelConfig(hf, dtype), parallel_config=par)


class _Engine:
    def __init__(self, kw=None):
        self.reqs = {}
        self.vllm_config = _vllm_config(kw or {})

    def add_request(self, rid, prompt, params):
        ids = prompt["prompt_token_ids"] if isinstance(prompt, dict) else [5] * len(prompt.split())
        limit = params.max_tokens
        if ids and ids[-1] == 2 and not params.kw.get("ignore_eos"):
            limit = min(limit, 2)
        self.reqs[rid] = {"ids": ids, "done": 0, "limit": limit,
                          "eos": limit < params.max_tokens, "first": True}

    def has_unfinished_requests(self):
        return bool(self.reqs)

    def step(self):
        outs = []
        for rid in list(self.reqs):
            r = self.reqs[rid]
            r["done"] += 1
            fin = r["done"] >= r["limit"]
            reason = ("stop" if r["eos"] else "length") if fin else None
            outs.append(_Output(rid, r["ids"] if r["first"] else None, [7], fin, reason))
            r["first"] = False
            if fin:
                del self.reqs[rid]
        return outs


class BeamSearchParams:
    def __init__(self, **kw):
        _check("BeamSearchParams", kw, BEAM_SEARCH_ARGS, _REQUIRED["beam_search"])
        self.kw = kw
        self.max_tokens = kw["max_tokens"]
        self.beam_width = kw["beam_width"]


class _BeamSeq:
    def __init__(self, tokens):
        self.tokens = tokens
        self.finish_reason = None


class _BeamOut:
    def __init__(self, seqs):
        self.sequences = seqs


class LLM:
    def __init__(self, **kw):
        _check("LLM", kw, ENGINE_ARGS)
        if isinstance(kw.get("attention_config"), dict):
            _check("AttentionConfig", kw["attention_config"], ATTENTION_ARGS)
        _log("LLM", kw)
        if kw.get("model") == "fake/oom":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.llm_engine = _Engine(kw)

    def get_tokenizer(self):
        return None

    def generate(self, prompts, params, use_tqdm=True):
        _log("generate", {"n": len(prompts), "max_tokens": [p.max_tokens for p in params]})
        return []

    def beam_search(self, prompts, params, lora_request=None, use_tqdm=False, concurrency_limit=None):
        """Each prompt (a TokensPrompt dict) gets its best beam: the prompt
        plus max_tokens tokens, or 2 tokens when the prompt ends in 2."""
        _log("beam_search", {"n": len(prompts), "params": params.kw})
        outs = []
        for p in prompts:
            ids = list(p["prompt_token_ids"])
            n = params.max_tokens
            if ids and ids[-1] == 2 and not params.kw.get("ignore_eos"):
                n = min(n, 2)
            outs.append(_BeamOut([_BeamSeq(ids + [7] * n)]))
        return outs

    def reset_prefix_cache(self):
        _log("reset_prefix_cache", {})
