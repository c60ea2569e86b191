"""FAKE transformers for llem's tests (see ../torch). A "model" generates
token 7 at every step, except that a row whose prompt ends in token 2 emits
the config's EOS at its second new token (unless min_new_tokens forbids
it) and pads afterwards, like batched generate(). generate() calls every
logits processor once per step, as transformers does, and stops when all
rows have finished. Calls are appended to the file named by FAKE_HF_LOG.

What it accepts comes from the pinned upstream snapshot
(tools/upstream/targets.json -> snapshots/transformers-<version>.json,
extracted from transformers' own source): from_pretrained rejects a
keyword transformers does not take (the real one hands leftovers to the
model's __init__, a TypeError), generate() rejects an unknown keyword
(the real _validate_model_kwargs raises ValueError "The following
`model_kwargs` are not used by the model") and a cache_implementation
outside ALL_CACHE_IMPLEMENTATIONS + ("paged",) (GenerationConfig.validate).
from_config takes only what PreTrainedModel._from_config pops (dtype,
torch_dtype, attn_implementation); the rest reaches the model's __init__.
"""

import json
import os

import torch

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 6))


def _snapshot():
    up = os.path.join(_ROOT, "tools", "upstream")
    with open(os.path.join(up, "targets.json")) as f:
        target = json.load(f)["pytorch"]
    with open(os.path.join(up, "snapshots", target["snapshot"])) as f:
        snap = json.load(f)
    return target["version"], snap["surfaces"]


__version__, _SURFACES = _snapshot()
FROM_PRETRAINED_ARGS = {f["name"] for f in _SURFACES["from_pretrained"]["fields"]}
GENERATION_CONFIG_ARGS = {f["name"] for f in _SURFACES["generate"]["fields"]}
CACHE_IMPLEMENTATIONS = set(_SURFACES["cache_implementations"]["values"]) | {"paged"}
# Keyword arguments of GenerationMixin.generate() itself (not
# GenerationConfig fields), as its signature and docs name them.
GENERATE_CALL_ARGS = {"inputs", "input_ids", "attention_mask", "generation_config", "logits_processor",
                      "stopping_criteria", "prefix_allowed_tokens_fn", "synced_gpus", "assistant_model",
                      "streamer", "negative_prompt_ids", "negative_prompt_attention_mask",
                      "use_model_defaults", "custom_generate", "tokenizer", "assistant_tokenizer",
                      "trust_remote_code"}
FROM_CONFIG_ARGS = {"dtype", "torch_dtype", "attn_implementation"}


def _check_generate(kw):
    unused = sorted(k for k in kw if k not in GENERATION_CONFIG_ARGS and k not in GENERATE_CALL_ARGS)
    if unused:
        raise ValueError("The following `model_kwargs` are not used by the model: %s (note: typos in the "
                         "generate arguments will also show up in this list)" % unused)
    ci = kw.get("cache_implementation")
    if ci is not None and ci not in CACHE_IMPLEMENTATIONS:
        raise ValueError("Invalid `cache_implementation` (%s). Choose one of: %s"
                         % (ci, sorted(CACHE_IMPLEMENTATIONS)))
    # SequenceBiasLogitsProcessor._validate_arguments (run when the
    # processor is built): token ids > 0 and a float bias, an int refused.
    sb = kw.get("sequence_bias")
    if isinstance(sb, list) and any(len(e) == 0 or not (isinstance(e[0], list) and all(
            isinstance(t, int) and t > 0 for t in e[0]) and isinstance(e[1], float)) for e in sb):
        raise ValueError("Each element in `sequence_bias` has to be a non-empty list of lists of positive "
                         "integers and float, but is %s." % (sb,))


def _check_assisted(kw, rows):
    """GenerationMixin.generate, ASSISTED_GENERATION mode (an assistant
    model, prompt lookup or early exit): one row at a time, no static
    cache classes."""
    if not (kw.get("assistant_model") is not None or kw.get("prompt_lookup_num_tokens") is not None
            or kw.get("assistant_early_exit") is not None):
        return
    if rows > 1:
        raise ValueError("assisted generate is only supported for batch_size = 1")
    if kw.get("cache_implementation") in ("static", "hybrid", "sliding_window"):
        raise ValueError("assisted generate is not supported with Static cache classes`")


def _log(kind, payload):
    path = os.environ.get("FAKE_HF_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"call": kind, "args": payload}, default=str) + "\n")


class LogitsProcessor:
    def __call__(self, input_ids, scores):
        raise NotImplementedError


class LogitsProcessorList(list):
    pass


class _Config:
    def __init__(self, **kw):
        self.__dict__.update(kw)


class AutoConfig:
    @staticmethod
    def for_model(model_type, **kw):
        return _Config(model_type=model_type, **kw)


class _Param:
    def __init__(self, n):
        self.n = n

    def numel(self):
        return self.n


class _GenConfig:
    def __init__(self, eos):
        self.eos_token_id = eos


class _Model:
    def __init__(self, config):
        self.config = config
        self.generation_config = _GenConfig(config.eos_token_id)

    def parameters(self):
        return [_Param(1000), _Param(234)]

    def eval(self):
        return self

    def to(self, device):
        return self

    def get_memory_footprint(self):
        return 4936

    def generate(self, input_ids=None, attention_mask=None, max_new_tokens=20, logits_processor=None,
                 min_new_tokens=0, pad_token_id=0, **kw):
        _check_generate(kw)
        _check_assisted(kw, input_ids.shape[0])
        _log("generate", dict(kw, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                              pad_token_id=pad_token_id, rows=input_ids.shape[0],
                              processors=len(logits_processor or [])))
        eos = self.config.eos_token_id
        rows = input_ids.tolist()
        done = [False] * len(rows)
        new = [[] for _ in rows]
        for step in range(max_new_tokens):
            for p in logits_processor or []:
                p(input_ids, None)
            for r, row in enumerate(rows):
                if done[r]:
                    new[r].append(pad_token_id)
                elif row[-1] == 2 and step == 1 and step >= min_new_tokens:
                    new[r].append(eos)
                    done[r] = True
                else:
                    new[r].append(7)
            if all(done):
                break
        return torch.Tensor([row + n for row, n in zip(rows, new)])


class AutoModelForCausalLM:
    @staticmethod
    def from_config(config, **kw):
        _log("from_config", kw)
        bad = sorted(set(kw) - FROM_CONFIG_ARGS)
        if bad:
            raise TypeError("__init__() got an unexpected keyword argument %r" % bad[0])
        return _Model(config)

    @staticmethod
    def from_pretrained(name, **kw):
        _log("from_pretrained", dict(kw, name=name))
        bad = sorted(set(kw) - FROM_PRETRAINED_ARGS)
        if bad:
            raise TypeError("__init__() got an unexpected keyword argument %r" % bad[0])
        if name == "org/gated":
            raise OSError("401 Client Error. Cannot access gated repo for url https://huggingface.co/org/gated")
        raise OSError("%s is not a local folder and is not a valid model identifier listed on "
                      "'https://huggingface.co/models'" % name)


class AutoTokenizer:
    @staticmethod
    def from_pretrained(name, **kw):
        return AutoModelForCausalLM.from_pretrained(name, **kw)


class BitsAndBytesConfig:
    def __init__(self, **kw):
        self.kw = kw
