"""FAKE vllm.sampling_params (see __init__.py)."""

from . import BeamSearchParams, SamplingParams  # noqa: F401


class RequestOutputKind:
    CUMULATIVE = 0
    DELTA = 1
    FINAL_ONLY = 2
