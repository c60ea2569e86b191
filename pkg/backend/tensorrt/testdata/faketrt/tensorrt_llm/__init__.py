"""FAKE tensorrt_llm for llem's tests: TensorRT-LLM needs an NVIDIA GPU
and NVIDIA's package index and cannot be installed on the machines that
run llem's test suite. This stands in for the LLM API calls that
harness_tensorrt.py makes (LLM, SamplingParams, generate, generate_async
streaming, the llmapi config classes) so the harness's control flow and
protocol output are tested end to end. Its argument checking comes from
the pinned snapshot (_snapshot.py): LLM(**kw) accepts exactly
TorchLlmArgs' fields (BaseLlmArgs + TorchLlmArgs, extra="forbid"),
config objects where the real one takes them, Literal values only from
their set, and refuses a speculative config whose supports_backend
("pytorch") is False; SamplingParams accepts exactly the dataclass's
fields. It computes nothing: each streamed chunk carries one more token,
up to max_tokens. Calls are appended to the file named by FAKE_TRT_LOG.
"""

import json
import os

from . import _snapshot, llmapi

__version__ = _snapshot.SNAPSHOT["version"]


def _log(kind, payload):
    path = os.environ.get("FAKE_TRT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"call": kind, "args": payload}, default=repr) + "\n")


class SamplingParams:
    def __init__(self, **kw):
        known = _snapshot.fields("sampling")
        for k in kw:
            if k not in known or k.startswith("_"):
                raise TypeError("SamplingParams.__init__() got an unexpected keyword argument %r" % k)
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


# LLM() arguments that the real TorchLlmArgs validates into a config class:
# a plain dict is coerced by pydantic, an object must be that class.
_CONFIG_ARGS = {"kv_cache_config": "KvCacheConfig", "scheduler_config": "SchedulerConfig",
                "cuda_graph_config": "CudaGraphConfig", "moe_config": "MoeConfig",
                "attention_dp_config": "AttentionDpConfig", "torch_compile_config": "TorchCompileConfig"}


class LLM:
    """tensorrt_llm.LLM: the PyTorch runtime (TorchLlmArgs)."""

    def __init__(self, **kw):
        _snapshot.check("TorchLlmArgs", "llm", kw)
        if "model" not in kw:
            raise TypeError("TorchLlmArgs: model is required")
        for k, cls in _CONFIG_ARGS.items():
            v = kw.get(k)
            if isinstance(v, dict):
                getattr(llmapi, cls)(**v)
            elif v is not None and type(v).__name__ != cls:
                raise TypeError("TorchLlmArgs.%s: expected %s, got %s" % (k, cls, type(v).__name__))
        sc = kw.get("speculative_config")
        if sc is not None:
            if not isinstance(sc, llmapi._Decoding):
                raise TypeError("TorchLlmArgs.speculative_config: expected a decoding config, got %r" % (sc,))
            if not sc.supports_backend("pytorch"):
                raise ValueError("Speculation type %s does not support backend pytorch" % type(sc).__name__)
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

    def shutdown(self):
        pass
