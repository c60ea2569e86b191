#!/usr/bin/env python3
"""Builds the transformers-fidelity fixtures of llem's native engine.

The native backend (pkg/engine) claims to compute what transformers computes.
This script makes the evidence: tiny random checkpoints of every architecture
the engine runs, saved by transformers itself, and what transformers
generates from them, so a Go test (pkg/engine/hf5_test.go) can check the
engine token for token without Python.

Each case is a model built from a transformers config, saved with
save_pretrained (safetensors), then reloaded with from_pretrained in fp32 on
the CPU (eager attention) to record, for a fixed prompt of token ids:

  tokens       the 20 greedy tokens of model.generate(do_sample=False)
  step_logits  the raw logits generate saw at each of those 20 steps (KV cache)
  logits       the logits at every position of one uncached forward pass over
               prompt + generated tokens

Every case is saved in two config styles, and both must give the same
outputs in transformers (checked here) and the same engine Config (checked in
Go):

  config.json         as transformers >= 5 writes it: rope_theta and the
                      scaling inside `rope_parameters`, `dtype`, Qwen2's
                      `layer_types`;
  config.legacy.json  the same model as transformers 4 wrote it: top-level
                      `rope_theta` and `rope_scaling`, `torch_dtype`, and for
                      Qwen2 cases that can be so expressed, no `layer_types`
                      (derived from use_sliding_window/max_window_layers).

To keep the fixtures small, cases share weights: every llama-family case
(Llama, SmolLM, Llama 3.1 rope, linear rope, Mistral) uses one tied
checkpoint, every Qwen2 case one untied checkpoint with q/k/v biases. The
weights are stored as bf16 (halving the files); the reference is computed in
fp32 from those values (from_pretrained(dtype=float32) widens them exactly),
which is what the engine does with a bf16 checkpoint. Norm weights and biases
are random too (transformers initialises them to 1 and 0), so an engine that
ignored one would fail. Seeds are searched (from SEED up) until every greedy
step of every case of a family has a top-1/top-2 logit gap of at least
MIN_GAP, so a 1e-5 numerical difference cannot flip a token.

It also records how the `tokenizers` library decodes invalid UTF-8 (a
ByteLevel and a ByteFallback tokenizer.json, both written here) for
pkg/tokenizer's tests.

Run it where transformers >= 5 is installed (no GPU needed):

  python3 scripts/native-fidelity/make_fixtures.py OUTDIR

OUTDIR/hf5 then holds what pkg/engine/testdata/hf5 commits, and
OUTDIR/utf8 what pkg/tokenizer/testdata/utf8 commits.
"""

import copy
import datetime
import json
import os
import platform
import shutil
import sys
import traceback

import safetensors
import tokenizers
import torch
import transformers
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

SEED = 1234
MAX_SEED_TRIES = 40
MIN_GAP = 2e-3
PROMPT = [1, 17, 5, 63, 40, 8, 8, 30, 12, 50, 3, 22]
NEW_TOKENS = 20

# Shapes shared by every case of a family (so the weights can be shared).
LLAMA_SHAPE = dict(vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                   tie_word_embeddings=True, bos_token_id=1, eos_token_id=None)
QWEN2_SHAPE = dict(vocab_size=64, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                   tie_word_embeddings=False, bos_token_id=1, eos_token_id=None)


def drop_layer_types(d):
    d.pop("layer_types", None)


def qwen2_full_legacy(d):
    # transformers 4 kept the window in config.json even when
    # use_sliding_window was false (Qwen2.5's files do).
    d.pop("layer_types", None)
    d["sliding_window"] = 5


# name: (family, model class, config class, config kwargs, use the old
# "type" key in legacy rope_scaling, extra legacy edit)
CASES = {
    "llama-smollm": ("llama", LlamaForCausalLM, LlamaConfig,
                     dict(rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
                     False, None),
    "llama31-rope": ("llama", LlamaForCausalLM, LlamaConfig,
                     dict(rms_norm_eps=1e-5, rope_parameters={
                         "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64}),
                     False, None),
    "llama-linear": ("llama", LlamaForCausalLM, LlamaConfig,
                     dict(rms_norm_eps=1e-5, rope_parameters={"rope_type": "linear", "rope_theta": 10000.0,
                                                             "factor": 4.0}),
                     True, None),
    "mistral-window": ("llama", MistralForCausalLM, MistralConfig,
                       dict(rms_norm_eps=1e-5, sliding_window=5, head_dim=16,
                            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
                       False, None),
    # Qwen2 with theta 1e6 and a window on layers >= max_window_layers.
    "qwen2-window": ("qwen2", Qwen2ForCausalLM, Qwen2Config,
                     dict(use_sliding_window=True, sliding_window=5, max_window_layers=1,
                          rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
                     False, drop_layer_types),
    # Explicit layer_types that max_window_layers could not express (it is
    # set to something else on purpose: layer_types wins in transformers).
    "qwen2-layertypes": ("qwen2", Qwen2ForCausalLM, Qwen2Config,
                         dict(use_sliding_window=True, sliding_window=4, max_window_layers=2,
                              layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                              rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
                         False, None),
    # Qwen2.5 as shipped: use_sliding_window false, so no window anywhere.
    "qwen2-full": ("qwen2", Qwen2ForCausalLM, Qwen2Config,
                   dict(use_sliding_window=False, sliding_window=5, max_window_layers=1,
                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
                   False, qwen2_full_legacy),
}

FAMILIES = {"llama": LLAMA_SHAPE, "qwen2": QWEN2_SHAPE}


def log(*a):
    print(*a, flush=True)


def fill(model, seed):
    """Random weights, bf16-representable: matrices and biases ~ N(0, 0.1^2),
    norm weights ~ 1 + N(0, 0.1^2), drawn in sorted-name order so two model
    classes with the same tensor names get the same values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            v = torch.randn(p.shape, generator=g, dtype=torch.float32) * 0.1
            if "norm" in name:
                v += 1.0
            p.copy_(v.to(torch.bfloat16).to(torch.float32))


def legacy_config(cfg, use_type_key, edit):
    """Rewrites a transformers-5 config.json as transformers 4 wrote it."""
    d = copy.deepcopy(cfg)
    rp = d.pop("rope_parameters", None) or {}
    d["rope_theta"] = rp.get("rope_theta", 10000.0)
    rope_type = rp.get("rope_type", "default")
    if rope_type == "default":
        d["rope_scaling"] = None
    else:
        sc = {k: v for k, v in rp.items() if k != "rope_theta"}
        if use_type_key:
            sc["type"] = sc.pop("rope_type")
        d["rope_scaling"] = sc
    if "dtype" in d:
        d["torch_dtype"] = d.pop("dtype")
    if edit is not None:
        edit(d)
    return d


def fmt_row(row):
    return "[" + ",".join(format(float(v), ".9g") for v in row) + "]"


def run_reference(model_dir):
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    ids = torch.tensor([PROMPT])
    with torch.no_grad():
        out = m.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                         max_new_tokens=NEW_TOKENS, output_logits=True, return_dict_in_generate=True)
        seq = out.sequences
        full = m(seq, use_cache=False).logits[0]
    tokens = seq[0, len(PROMPT):].tolist()
    step = torch.stack([l[0] for l in out.logits])
    return m, tokens, step, full, seq[0].tolist()


def check_case(name, tokens, step, full):
    """Self-consistency of transformers' own outputs, and the smallest
    top-1/top-2 gap of the greedy steps."""
    info = {}
    if len(tokens) != NEW_TOKENS:
        raise RuntimeError(f"{name}: generate returned {len(tokens)} tokens, want {NEW_TOKENS}")
    n0 = len(PROMPT) - 1
    tf = full[n0:n0 + NEW_TOKENS].argmax(-1).tolist()
    info["forward_argmax_equals_generate"] = tf == tokens
    info["max_abs_step_vs_forward"] = float((step - full[n0:n0 + NEW_TOKENS]).abs().max())
    top2 = step.topk(2, dim=-1).values
    info["min_top2_gap"] = float((top2[:, 0] - top2[:, 1]).min())
    return info


def build_family(family, out_dir, work):
    """Finds a seed whose greedy steps have no near-ties in any case of the
    family, then writes the family's weights and each case's files."""
    names = [n for n, c in CASES.items() if c[0] == family]
    for attempt in range(MAX_SEED_TRIES):
        seed = SEED + attempt
        results = {}
        ok = True
        for name in names:
            _, cls, ccls, kw, use_type_key, edit = CASES[name]
            cfg = ccls(**FAMILIES[family], **kw)
            model = cls(cfg)
            fill(model, seed)
            v5_dir = os.path.join(work, f"{name}-{seed}", "v5")
            model.to(torch.bfloat16).save_pretrained(v5_dir)
            with open(os.path.join(v5_dir, "config.json")) as f:
                v5_cfg = json.load(f)
            leg_dir = os.path.join(work, f"{name}-{seed}", "legacy")
            os.makedirs(leg_dir)
            shutil.copy(os.path.join(v5_dir, "model.safetensors"), leg_dir)
            leg_cfg = legacy_config(v5_cfg, use_type_key, edit)
            with open(os.path.join(leg_dir, "config.json"), "w") as f:
                json.dump(leg_cfg, f, indent=2, sort_keys=True)
            m5, tokens, step, full, seq = run_reference(v5_dir)
            ml, tokens_l, step_l, full_l, _ = run_reference(leg_dir)
            info = check_case(name, tokens, step, full)
            info["legacy_same_tokens"] = tokens_l == tokens
            info["legacy_max_abs_logit_diff"] = float((full_l - full).abs().max())
            info["legacy_same_rope_parameters"] = m5.config.rope_parameters == ml.config.rope_parameters
            info["rope_parameters"] = m5.config.rope_parameters
            info["layer_types"] = getattr(m5.config, "layer_types", None)
            info["legacy_layer_types"] = getattr(ml.config, "layer_types", None)
            info["sliding_window"] = getattr(m5.config, "sliding_window", None)
            info["legacy_sliding_window"] = getattr(ml.config, "sliding_window", None)
            log(f"  {name} seed {seed}: tokens {tokens}")
            log(f"    {json.dumps(info, sort_keys=True)}")
            results[name] = dict(v5_dir=v5_dir, v5_cfg=v5_cfg, leg_cfg=leg_cfg, tokens=tokens, step=step,
                                 full=full, seq=seq, info=info)
            if info["min_top2_gap"] < MIN_GAP:
                ok = False
                log(f"    near-tie (gap {info['min_top2_gap']:.2e} < {MIN_GAP}): next seed")
                break
        if not ok:
            continue
        # All cases of the family share one weights file: check they are the
        # same tensors (save_pretrained of the same values).
        ref = None
        for name in names:
            t = load_file(os.path.join(results[name]["v5_dir"], "model.safetensors"))
            if ref is None:
                ref = t
                continue
            if set(t) != set(ref) or any(not torch.equal(t[k], ref[k]) for k in t):
                raise RuntimeError(f"{name}: weights differ from the family's first case")
        shutil.copy(os.path.join(results[names[0]]["v5_dir"], "model.safetensors"),
                    os.path.join(out_dir, f"{family}.safetensors"))
        for name in names:
            r = results[name]
            d = os.path.join(out_dir, name)
            os.makedirs(d)
            shutil.copy(os.path.join(r["v5_dir"], "config.json"), os.path.join(d, "config.json"))
            with open(os.path.join(d, "config.legacy.json"), "w") as f:
                json.dump(r["leg_cfg"], f, indent=2, sort_keys=True)
                f.write("\n")
            with open(os.path.join(d, "expected.json"), "w") as f:
                f.write("{\n")
                f.write(f'"case": {json.dumps(name)},\n')
                f.write(f'"weights": {json.dumps(family + ".safetensors")},\n')
                f.write(f'"seed": {seed},\n')
                f.write(f'"prompt": {json.dumps(PROMPT)},\n')
                f.write(f'"tokens": {json.dumps(r["tokens"])},\n')
                f.write(f'"checks": {json.dumps(r["info"], sort_keys=True)},\n')
                f.write('"step_logits": [\n' + ",\n".join(fmt_row(x) for x in r["step"].tolist()) + "\n],\n")
                f.write('"logits": [\n' + ",\n".join(fmt_row(x) for x in r["full"].tolist()) + "\n]\n")
                f.write("}\n")
        return seed
    raise RuntimeError(f"{family}: no seed in {MAX_SEED_TRIES} tries without a near-tie")


# ---- tokenizers: how invalid UTF-8 is decoded ----

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def bytelevel_tokenizer():
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    vocab["he"] = 256
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 257, "content": "<eos>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": [["h", "e"]]},
    }


def bytefallback_tokenizer():
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = 3 + b
    for t in ["\u2581", "a", "b", "\u2581a", "\u00e9"]:
        vocab[t] = len(vocab)
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for c, i in (("<unk>", 0), ("<s>", 1), ("</s>", 2))]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True,
                  "ignore_merges": False, "vocab": vocab, "merges": [["\u2581", "a"]]},
    }


# Byte sequences (ids = byte values in the ByteLevel tokenizer); 256 is the
# "he" token and 257 the special <eos>.
BYTELEVEL_CASES = {
    "valid": [0xE6, 0x97, 0xA5, 0x41],
    "truncated 3-byte": [0xE6, 0x97],
    "truncated 3-byte then ASCII": [0xE6, 0x97, 0x41],
    "truncated 4-byte": [0xF0, 0x9F, 0x98],
    "truncated 4-byte then ASCII": [0xF0, 0x9F, 0x98, 0x41],
    "lead then full char": [0xE6, 0xE6, 0x97, 0xA5],
    "truncated 2-byte at end": [0x41, 0xC3],
    "overlong 2-byte": [0xC0, 0xAF],
    "overlong 3-byte": [0xE0, 0x80, 0xAF],
    "overlong 4-byte": [0xF0, 0x80, 0x80, 0xAF],
    "lone continuations": [0x80, 0xBF, 0x41, 0x80],
    "surrogate high": [0xED, 0xA0, 0x80],
    "surrogate low": [0xED, 0xB2, 0x80],
    "above U+10FFFF": [0xF4, 0x90, 0x80, 0x80],
    "F5 and FF": [0xF5, 0x41, 0xFF],
    "truncated then special": [0xE6, 0x97, 257, 0xA5],
    "merge token between bytes": [0xE6, 256, 0xA5],
}

BF = 3  # id of <0x00> in the ByteFallback tokenizer
BYTEFALLBACK_CASES = {
    "valid bytes": [262, BF + 0xE5, BF + 0x8F, BF + 0xAB, 260],
    "truncated bytes": [262, BF + 0xE5, BF + 0x8F, 260],
    "ascii byte then invalid": [BF + 0x61, BF + 0xE5],
    "lone continuation": [259, BF + 0x80, 261],
    "surrogate bytes": [BF + 0xED, BF + 0xA0, BF + 0x80],
    "split by special": [BF + 0xE5, 1, BF + 0x8F, BF + 0xAB],
    "valid then invalid run": [BF + 0xC3, BF + 0xA9, BF + 0xFF],
    "non-byte token": [263, BF + 0xC3],
}


def tokenizer_cases(out_dir):
    from tokenizers import Tokenizer
    os.makedirs(out_dir)
    result = {"tokenizers_version": tokenizers.__version__, "tokenizers": {}}
    for tname, build, cases in (("bytelevel", bytelevel_tokenizer, BYTELEVEL_CASES),
                                ("bytefallback", bytefallback_tokenizer, BYTEFALLBACK_CASES)):
        js = build()
        with open(os.path.join(out_dir, f"{tname}.tokenizer.json"), "w") as f:
            json.dump(js, f, ensure_ascii=True, indent=1, sort_keys=True)
            f.write("\n")
        tok = Tokenizer.from_str(json.dumps(js))
        rows = []
        for cname, ids in cases.items():
            row = {"name": cname, "ids": ids,
                   "decode": tok.decode(ids, skip_special_tokens=False),
                   "decode_skip_special": tok.decode(ids, skip_special_tokens=True)}
            if tname == "bytelevel" and all(i < 256 for i in ids):
                row["python_bytes_decode_replace"] = bytes(ids).decode("utf-8", "replace")
            rows.append(row)
            log(f"  {tname} {cname}: {json.dumps(row, ensure_ascii=True)}")
        result["tokenizers"][tname] = rows
    with open(os.path.join(out_dir, "decode_cases.json"), "w") as f:
        json.dump(result, f, ensure_ascii=True, indent=1)
        f.write("\n")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_fixtures.py OUTDIR")
    out = sys.argv[1]
    hf5 = os.path.join(out, "hf5")
    work = os.path.join(out, "work")
    os.makedirs(hf5)
    os.makedirs(work)
    torch.set_num_threads(4)
    manifest = {
        "script": "scripts/native-fidelity/make_fixtures.py",
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "safetensors": safetensors.__version__,
        "tokenizers": tokenizers.__version__,
        "prompt": PROMPT,
        "new_tokens": NEW_TOKENS,
        "min_gap": MIN_GAP,
        "cases": {},
        "seeds": {},
        "errors": [],
    }
    log(json.dumps({k: manifest[k] for k in ("date_utc", "python", "torch", "transformers", "tokenizers")}))
    for family in FAMILIES:
        log(f"family {family}")
        try:
            manifest["seeds"][family] = build_family(family, hf5, work)
        except Exception:
            tb = traceback.format_exc()
            log(tb)
            manifest["errors"].append(f"{family}: {tb}")
    for name, c in CASES.items():
        manifest["cases"][name] = {"family": c[0], "class": c[1].__name__}
    try:
        log("tokenizers")
        tokenizer_cases(os.path.join(out, "utf8"))
    except Exception:
        tb = traceback.format_exc()
        log(tb)
        manifest["errors"].append(f"tokenizers: {tb}")
    with open(os.path.join(hf5, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    shutil.rmtree(work)
    log("errors:", len(manifest["errors"]))


if __name__ == "__main__":
    main()
