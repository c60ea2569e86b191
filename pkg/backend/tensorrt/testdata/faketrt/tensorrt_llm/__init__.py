"""FAKE tensorrt_llm for llem's tests: TensorRT-LLM needs an NVIDIA GPU
and NVIDIA's package index and cannot be installed on the machines that
run llem's test suite. This stands in for the LLM API calls that
harness_tensorrt.py makes (LLM, SamplingParams, generate, generate_async
streaming, save, the llmapi config classes) so the harness's control flow,
engine cache and protocol output are tested end to end. It computes
nothing: each streamed chunk carries one more token, up to max_tokens.
Calls are appended to the file named by FAKE_TRT_LOG.
"""

import json
import os

__version__ = "1.0.0"


def _log(kind, payload):
    path = os.environ.get("FAKE_TRT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"call": kind, "args": payload}, default=repr) + "\n")


class SamplingParams:
    def __init__(self, **kw):
        self.kw = kw
        self.max_tokens = kw.get("max_tokens", 16)


class _Completion:
    def __init__(self, token_ids, finish_reason):
        self.token_ids = token_ids
        self.finish_reason = finish_reason


class _Output:
    def __init__(self, prompt_ids, token_ids, finished, reason):
        self.prompt_token_ids = prompt_ids
        self.outputs = [_Completion(token_ids, reason)]
        self.finished = finished


class LLM:
    def __init__(self, **kw):
        _log("LLM", kw)
        self.tokenizer = None
        self.iter_stats = bool(kw.get("enable_iter_perf_stats"))

    def get_stats(self, timeout):
        """Iteration stats as the LLM API returns them (dicts with the
        executor's camelCase keys); like the PyTorch backend, only with
        enable_iter_perf_stats. The fake's cache: 64 blocks of 32 tokens."""
        if not self.iter_stats:
            return []
        return [{"iter": 0, "kvCacheStats": {"maxNumBlocks": 64, "freeNumBlocks": 60, "usedNumBlocks": 4,
                                             "tokensPerBlock": 32, "allocTotalBlocks": 4, "allocNewBlocks": 4,
                                             "reusedBlocks": 0}}]

    def generate(self, inputs, params, use_tqdm=True):
        _log("generate", {"n": len(inputs), "max_tokens": [p.max_tokens for p in params]})
        return []

    async def _stream(self, prompt, params):
        toks = []
        for k in range(params.max_tokens):
            toks = toks + [7]
            fin = k == params.max_tokens - 1
            yield _Output(prompt, list(toks), fin, "length" if fin else None)

    def generate_async(self, prompt, params, streaming=False):
        return self._stream(prompt, params)

    def save(self, d):
        _log("save", {"dir": d})
        with open(os.path.join(d, "rank0.engine"), "w") as f:
            f.write("fake engine\n")

    def shutdown(self):
        pass
