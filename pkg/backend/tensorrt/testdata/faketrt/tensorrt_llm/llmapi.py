"""FAKE tensorrt_llm.llmapi (see __init__.py): the config classes, built
from the pinned snapshot (_snapshot.py): each rejects keyword arguments
and Literal values the real pydantic class rejects; enums carry exactly
the snapshot's members."""

import enum

from . import _snapshot


class _Cfg:
    SURFACE = ""

    def __init__(self, **kw):
        _snapshot.check(type(self).__name__, self.SURFACE, kw)
        self.kw = kw

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in sorted(self.kw.items())))


def _cfg(name, surface):
    return type(name, (_Cfg,), {"SURFACE": surface})


KvCacheConfig = _cfg("KvCacheConfig", "kv_cache")
SchedulerConfig = _cfg("SchedulerConfig", "scheduler")
CudaGraphConfig = _cfg("CudaGraphConfig", "cuda_graph")
MoeConfig = _cfg("MoeConfig", "moe")
AttentionDpConfig = _cfg("AttentionDpConfig", "attention_dp")
TorchCompileConfig = _cfg("TorchCompileConfig", "torch_compile")


class _Decoding(_Cfg):
    """A decoding config: DecodingBaseConfig's fields plus the subclass's;
    supports_backend as upstream (checked by the fake LLM)."""
    SUBCLASS = ""
    PYTORCH = True

    def __init__(self, **kw):
        known = dict(_snapshot.fields("speculative"))
        if self.SUBCLASS:
            known.update(_snapshot.fields(self.SUBCLASS))
        for k in kw:
            if k not in known:
                raise TypeError("%s: Extra inputs are not permitted: %r (pydantic extra='forbid')"
                                % (type(self).__name__, k))
        self.kw = kw

    def supports_backend(self, backend):
        return self.PYTORCH or backend != "pytorch"


def _dec(name, subclass, pytorch=True):
    return type(name, (_Decoding,), {"SUBCLASS": subclass, "PYTORCH": pytorch})


DraftTargetDecodingConfig = _dec("DraftTargetDecodingConfig", "")
EagleDecodingConfig = _dec("EagleDecodingConfig", "speculative_eagle")
NGramDecodingConfig = _dec("NGramDecodingConfig", "speculative_ngram")
MTPDecodingConfig = _dec("MTPDecodingConfig", "speculative_mtp")
AutoDecodingConfig = _dec("AutoDecodingConfig", "")
MedusaDecodingConfig = _dec("MedusaDecodingConfig", "speculative_medusa", pytorch=False)
LookaheadDecodingConfig = _dec("LookaheadDecodingConfig", "speculative_lookahead", pytorch=False)

CapacitySchedulerPolicy = enum.Enum("CapacitySchedulerPolicy",
                                    {v: v for v in _snapshot.SURFACES["capacity_scheduler_policies"]["values"]})
ContextChunkingPolicy = enum.Enum("ContextChunkingPolicy",
                                  {v: v for v in _snapshot.SURFACES["context_chunking_policies"]["values"]})
