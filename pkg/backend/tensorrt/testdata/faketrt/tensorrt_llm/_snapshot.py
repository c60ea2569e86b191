"""The FAKE's source of truth: the argument surface of the pinned
TensorRT-LLM (tools/upstream/snapshots/<target snapshot>.json, extracted
from the upstream source by tools/upstream/extract.py). The fake's classes
accept exactly the keyword arguments the real ones accept (TorchLlmArgs
and the config classes are pydantic models with extra="forbid";
SamplingParams is a kw_only dataclass) and the Literal/Enum values the
snapshot records, so a harness call the real library rejects fails here
too. FAKE_TRT_SNAPSHOT names the snapshot file; without it the fake
refuses to start rather than accept anything."""

import json
import os


def load():
    path = os.environ.get("FAKE_TRT_SNAPSHOT")
    if not path:
        raise RuntimeError("FAKE tensorrt_llm: set FAKE_TRT_SNAPSHOT to the pinned snapshot JSON")
    with open(path) as f:
        return json.load(f)


SNAPSHOT = load()
SURFACES = SNAPSHOT["surfaces"]


def fields(surface):
    return {f["name"]: f for f in SURFACES[surface].get("fields", [])}


def check(cls_name, surface, kw):
    """Reject what pydantic's extra="forbid" and Literal types reject."""
    known = fields(surface)
    for k, v in kw.items():
        if k not in known:
            raise TypeError("%s: Extra inputs are not permitted: %r (pydantic extra='forbid')" % (cls_name, k))
        vals = known[k].get("values")
        if vals and v is not None and not (isinstance(v, str) and v in vals) and not hasattr(v, "value"):
            raise ValueError("%s.%s: input should be one of %s, got %r" % (cls_name, k, vals, v))
