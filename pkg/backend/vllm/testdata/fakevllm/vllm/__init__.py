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


class _Engine:
    def __init__(self):
        self.reqs = {}

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
        self.llm_engine = _Engine()

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
