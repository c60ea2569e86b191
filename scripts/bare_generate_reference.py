#!/usr/bin/env python3
"""Harness overhead reference for the PyTorch backend (issue 7; goal ≤ 2 %).

Runs the same model, prompts and generate() settings two ways, alternating,
on one GPU:

  bare     a plain loop: model.generate(batch) for every batch, one
           torch.cuda.synchronize() before and after the loop, nothing else;
  harness  llem's real harness (pkg/backend/pytorch/harness_pytorch.py with
           llem_common.py), started as llem starts it (a subprocess fed a
           RunSpec), whose events give the measured window: first prefill
           start → last phase end.

overhead = (harness window − bare loop) / bare loop, per batch size, median
over --reps. The harness's costs are a synchronize + timestamp per generated
step (a LogitsProcessor), building token tensors per batch and writing
events between batches; all of them fall inside the window, so this is the
whole overhead a measured run carries.

Both sides use: random:<arch> built with from_config on the GPU from the
same seed (weights do not affect speed), the synthetic token-ID prompts of
llem_common.synthetic_prompts, greedy decoding, max_new_tokens =
min_new_tokens = output length (fixed work per run), left padding, the
same warmup (2 batches).

  python3 scripts/bare_generate_reference.py --json out.json
  python3 scripts/bare_generate_reference.py --self-test   # no GPU needed
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYHARNESS = os.path.join(ROOT, "pkg", "backend", "pyharness")
HARNESS = os.path.join(ROOT, "pkg", "backend", "pytorch", "harness_pytorch.py")
sys.path.insert(0, PYHARNESS)

import llem_common as lc  # noqa: E402


def run_config(arch, n, input_len, output_len, precision, seed, n_warmup):
    """The experiment config both sides use (the harness gets it as
    RunSpec.config)."""
    return {
        "model": "random:" + arch, "backend": "pytorch", "precision": precision, "n": n,
        "dataset": {"source": "synthetic", "input_len": input_len, "output_len": output_len,
                    "distribution": "fixed"},
        "max_input_tokens": input_len, "max_output_tokens": output_len, "random_seed": seed,
        "decoder": {"temperature": 0.0, "do_sample": False},
        "warmup": {"enabled": True, "n_warmup": n_warmup, "thermal_floor_seconds": 0},
    }


def window_from_events(events):
    """(window_ns, sum of batch durations ns, output tokens) from a harness
    event list; raises if the run failed."""
    phases = [e for e in events if e.get("event") == "phase"]
    err = [e for e in events if e.get("event") == "error"]
    if err:
        raise RuntimeError("harness failed: %s: %s (%s)" % (err[0]["kind"], err[0]["message"], err[0].get("hint", "")))
    done = [e for e in events if e.get("event") == "done"]
    if not phases or not done:
        raise RuntimeError("harness output has no phases or no done event")
    starts, ends = {}, {}
    for e in phases:
        if e["name"] == "prefill" and e["state"] == "start":
            starts[e["batch"]] = e["t_ns"]
        elif e["state"] == "end":
            ends[e["batch"]] = e["t_ns"]  # the later end (decode) overwrites prefill's
    total = sum(ends[b] - s for b, s in starts.items())
    window = max(ends.values()) - min(starts.values())
    return window, total, done[0]["output_tokens"]


def overhead_pct(harness_ns, bare_ns):
    return 100.0 * (harness_ns - bare_ns) / bare_ns


def run_harness(python, cfg, batch_size):
    spec = {"protocol_version": 1, "run_id": "overhead-bs%d" % batch_size, "cycle": 0, "config": cfg,
            "backend_args": {"llem": {"batch_size": batch_size, "batching": "fixed", "torch_compile": False},
                             "from_pretrained": {"attn_implementation": "sdpa"}},
            "prompts": []}
    with tempfile.TemporaryDirectory() as d:
        for name, src in (("harness_pytorch.py", HARNESS), ("llem_common.py", os.path.join(PYHARNESS, "llem_common.py"))):
            with open(src) as f, open(os.path.join(d, name), "w") as g:
                g.write(f.read())
        p = subprocess.run([python, "-u", os.path.join(d, "harness_pytorch.py")], input=json.dumps(spec),
                           capture_output=True, text=True)
    events = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
    return window_from_events(events)


def bare_loop(model, torch, prompts, batch_size, output_len, pad_id, n_warmup):
    batches = lc.make_batches([len(p.token_ids) for p in prompts], batch_size, "fixed")
    device = next(model.parameters()).device

    def tensors(batch):
        ids, mask = lc.left_pad([prompts[i].token_ids for i in batch], pad_id)
        return torch.tensor(ids, device=device), torch.tensor(mask, device=device)

    kw = dict(max_new_tokens=output_len, min_new_tokens=output_len, do_sample=False, pad_token_id=pad_id)
    warm = lc.warmup_indices({"warmup": {"n_warmup": n_warmup}}, len(prompts))
    with torch.inference_mode():
        for w in range(0, len(warm), batch_size):
            ids, mask = tensors(warm[w:w + batch_size])
            model.generate(input_ids=ids, attention_mask=mask, **kw)
        torch.cuda.synchronize()
        t0 = time.monotonic_ns()
        out_tokens = 0
        for batch in batches:
            ids, mask = tensors(batch)
            out = model.generate(input_ids=ids, attention_mask=mask, **kw)
            out_tokens += (out.shape[1] - ids.shape[1]) * out.shape[0]
        torch.cuda.synchronize()
        return time.monotonic_ns() - t0, out_tokens


def paired(model, torch, prompts, batch_size, output_len, pad_id, pairs):
    """In-process paired comparison of one batch: plain generate() vs
    generate() with the harness's per-step instrumentation (a
    LogitsProcessor that synchronizes and stamps the time after every
    forward pass, as harness_pytorch.StepClock). Pairs alternate order
    (AB, BA, ...) so drift cancels; returns per-pair (bare_ns, instr_ns)."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class StepClock(LogitsProcessor):
        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores):
            torch.cuda.synchronize()
            self.times.append(time.monotonic_ns())
            return scores

    device = next(model.parameters()).device
    ids, mask = lc.left_pad([p.token_ids for p in prompts[:batch_size]], pad_id)
    ids, mask = torch.tensor(ids, device=device), torch.tensor(mask, device=device)
    kw = dict(max_new_tokens=output_len, min_new_tokens=output_len, do_sample=False, pad_token_id=pad_id)

    def one(instrumented):
        extra = {"logits_processor": LogitsProcessorList([StepClock()])} if instrumented else {}
        torch.cuda.synchronize()
        t0 = time.monotonic_ns()
        model.generate(input_ids=ids, attention_mask=mask, **kw, **extra)
        torch.cuda.synchronize()
        return time.monotonic_ns() - t0

    out = []
    with torch.inference_mode():
        one(False)
        one(True)  # warmup both paths
        for i in range(pairs):
            if i % 2 == 0:
                b = one(False)
                h = one(True)
            else:
                h = one(True)
                b = one(False)
            out.append((b, h))
    return out


def self_test():
    """Checks the pure helpers without torch (run by a Go test)."""
    ev = [{"event": "phase", "name": "prefill", "state": "start", "batch": 0, "t_ns": 100},
          {"event": "phase", "name": "prefill", "state": "end", "batch": 0, "t_ns": 110},
          {"event": "phase", "name": "decode", "state": "start", "batch": 0, "t_ns": 110},
          {"event": "phase", "name": "decode", "state": "end", "batch": 0, "t_ns": 200},
          {"event": "phase", "name": "prefill", "state": "start", "batch": 1, "t_ns": 205},
          {"event": "phase", "name": "prefill", "state": "end", "batch": 1, "t_ns": 215},
          {"event": "done", "requests": 2, "input_tokens": 4, "output_tokens": 3}]
    assert window_from_events(ev) == (115, 100 + 10, 3), window_from_events(ev)
    assert abs(overhead_pct(102, 100) - 2.0) < 1e-9
    try:
        window_from_events([{"event": "error", "kind": "oom", "message": "x"}])
    except RuntimeError as e:
        assert "oom" in str(e)
    else:
        raise AssertionError("error event not raised")
    cfg = run_config("llama-15m", 4, 8, 4, "bf16", 1, 1)
    ps = lc.synthetic_prompts(cfg, vocab_size=lc.architecture("llama-15m")["vocab_size"])
    assert len(ps) == 4 and all(len(p.token_ids) == 8 for p in ps)
    print("self-test ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="llama-3.1-8b")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "fp16", "bf16"])
    ap.add_argument("--batch-sizes", default="1,8,32")
    ap.add_argument("--batches", type=int, default=4,
                    help="batches per run: each batch size runs batch_size × batches prompts")
    ap.add_argument("--input-len", type=int, default=256)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="warmup prompts (as warmup.n_warmup)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--python", default=sys.executable, help="interpreter for the harness subprocess")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--paired", type=int, default=0,
                    help="instead of the harness subprocess, N in-process pairs of one batch: plain "
                         "generate() vs generate() with the harness's per-step synchronize+timestamp")
    a = ap.parse_args()
    if a.self_test:
        self_test()
        return

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = lc.architecture(a.arch)
    model_type, hf_kw = lc.hf_config_kwargs(arch, transformers.__version__)
    pad_id = arch["eos_token_id"]
    torch.manual_seed(a.seed)
    dkey = "dtype" if lc.version_tuple(transformers.__version__) >= (4, 56) else "torch_dtype"
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(
            AutoConfig.for_model(model_type, **hf_kw),
            **{dkey: getattr(torch, lc.TORCH_DTYPE_NAMES[a.precision]), "attn_implementation": "sdpa"})
    model = model.to("cuda").eval()

    if a.paired:
        rows = []
        for bs in [int(x) for x in a.batch_sizes.split(",")]:
            cfg = run_config(a.arch, bs, a.input_len, a.output_len, a.precision, a.seed, a.warmup)
            prompts = lc.synthetic_prompts(cfg, vocab_size=arch["vocab_size"])
            pairs = paired(model, torch, prompts, bs, a.output_len, pad_id, a.paired)
            pct = [overhead_pct(h, b) for b, h in pairs]
            for (b, h), o in zip(pairs, pct):
                print("bs=%d bare=%.3fs instrumented=%.3fs (%+.2f%%)" % (bs, b / 1e9, h / 1e9, o), flush=True)
            rows.append({"batch_size": bs, "bare_s": [b / 1e9 for b, _ in pairs],
                         "instrumented_s": [h / 1e9 for _, h in pairs], "overhead_pct_per_pair": pct,
                         "overhead_pct_median": statistics.median(pct)})
            print("bs=%d median paired overhead %+.2f%%" % (bs, statistics.median(pct)), flush=True)
        out = {"mode": "paired", "arch": a.arch, "precision": a.precision, "input_len": a.input_len,
               "output_len": a.output_len, "pairs": a.paired, "gpu": torch.cuda.get_device_name(0),
               "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
               "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows}
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
        return

    rows = []
    for bs in [int(x) for x in a.batch_sizes.split(",")]:
        cfg = run_config(a.arch, bs * a.batches, a.input_len, a.output_len, a.precision, a.seed, a.warmup)
        prompts = lc.synthetic_prompts(cfg, vocab_size=arch["vocab_size"])
        bare, harness, harness_batches = [], [], []
        for rep in range(a.reps):
            b_ns, b_tok = bare_loop(model, torch, prompts, bs, a.output_len, pad_id, a.warmup)
            h_ns, h_batches_ns, h_tok = run_harness(a.python, cfg, bs)
            if b_tok != h_tok:
                raise SystemExit("token counts differ: bare %d, harness %d (bs %d)" % (b_tok, h_tok, bs))
            bare.append(b_ns)
            harness.append(h_ns)
            harness_batches.append(h_batches_ns)
            print("bs=%d rep=%d bare=%.3fs harness=%.3fs (%.2f%%)" % (bs, rep, b_ns / 1e9, h_ns / 1e9,
                                                                   overhead_pct(h_ns, b_ns)), flush=True)
        row = {"batch_size": bs, "prompts": len(prompts), "output_tokens": b_tok,
               "bare_s": [x / 1e9 for x in bare], "harness_window_s": [x / 1e9 for x in harness],
               "harness_batches_s": [x / 1e9 for x in harness_batches],
               "overhead_pct_median": overhead_pct(statistics.median(harness), statistics.median(bare)),
               "overhead_pct_per_rep": [overhead_pct(h, b) for h, b in zip(harness, bare)]}
        rows.append(row)
    out = {"arch": a.arch, "precision": a.precision, "batches": a.batches, "input_len": a.input_len,
           "output_len": a.output_len, "reps": a.reps, "gpu": torch.cuda.get_device_name(0),
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "cuda": torch.version.cuda},
           "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows}
    print("\n%-6s %-12s %-14s %s" % ("bs", "bare s", "harness s", "overhead (median)"))
    for r in rows:
        print("%-6d %-12.3f %-14.3f %+.2f%%" % (r["batch_size"], statistics.median(r["bare_s"]),
                                               statistics.median(r["harness_window_s"]), r["overhead_pct_median"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
