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


def _log(kind, payload):
    path = os.environ.get("FAKE_VLLM_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"call": kind, "args": payload}, default=str) + "\n")


class SamplingParams:
    def __init__(self, **kw):
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


class LLM:
    def __init__(self, **kw):
        _log("LLM", kw)
        if kw.get("model") == "fake/oom":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.llm_engine = _Engine()

    def get_tokenizer(self):
        return None

    def generate(self, prompts, params, use_tqdm=True):
        _log("generate", {"n": len(prompts), "max_tokens": [p.max_tokens for p in params]})
        return []

    def reset_prefix_cache(self):
        _log("reset_prefix_cache", {})
