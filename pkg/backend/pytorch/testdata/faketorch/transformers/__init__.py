"""FAKE transformers for llem's tests (see ../torch). A "model" generates
token 7 at every step, except that a row whose prompt ends in token 2 emits
the config's EOS at its second new token (unless min_new_tokens forbids
it) and pads afterwards, like batched generate(). generate() calls every
logits processor once per step, as transformers does, and stops when all
rows have finished. Calls are appended to the file named by FAKE_HF_LOG.
"""

import json
import os

import torch

__version__ = "5.17.0"


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
        return _Model(config)

    @staticmethod
    def from_pretrained(name, **kw):
        _log("from_pretrained", dict(kw, name=name))
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
