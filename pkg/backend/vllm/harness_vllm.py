"""llem worker for the vLLM backend.

Started by llem as `python3 harness_vllm.py` with llem_common.py next to
it; reads one RunSpec on stdin, writes protocol events on stdout (see
llem_common.py and docs/backends/vllm.md).

vLLM batches continuously, so there is no per-batch prefill/decode boundary
to timestamp. The measured window is one batch (index 0, every request),
split by the method docs/worker-protocol.md prescribes for such backends
(phase_split_method=prefill-pass, announced in a `log` event):

  prefill phase  a separate pass over every prompt with max_tokens=1
                 (prefix cache reset afterwards, so the next pass cannot
                 reuse it);
  decode phase   the real workload, which prefills again and decodes:
                 decode energy = decode-phase energy − prefill-phase energy
                 (optimum-benchmark's decode = generate − prefill).

The real workload is driven step by step through the engine (add_request +
step, what LLM.generate does internally), stamping the moment each
request's tokens arrive on the host. That gives every request's TTFT and
all its inter-token latencies (vLLM V1 leaves RequestOutput.metrics empty
in offline mode, so they cannot come from there). A request's start_ns is
the start of the full pass.

Library arguments come from RunSpec.backend_args, built by llem from the
schema's mapping attributes: {"engine": {...}, "sampling": {...}}, with
extra: keys already merged; they are applied untouched.
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import llem_common as lc  # noqa: E402

BACKEND = "vllm"


def engine_kwargs(cfg, backend_args, model_path, random_arch):
    """Keyword arguments of vllm.LLM().

    The experiment gives model, dtype and seed; backend_args.engine (the
    schema mapping, with speculative_config already a dict, plus extra:
    keys) is applied on top untouched. Random-weight models load a
    config-only directory with load_format="dummy" and no tokenizer.
    """
    kw = {
        "model": model_path,
        "dtype": lc.TORCH_DTYPE_NAMES[lc.precision_name(cfg)],
        "seed": int(cfg.get("random_seed", 42)),
    }
    if random_arch:
        kw["load_format"] = "dummy"
        kw["skip_tokenizer_init"] = True
    for k, v in ((backend_args or {}).get("engine") or {}).items():
        kw[k] = v  # None included: extra: forwards values untouched
    return kw


def apply_env(backend_args, environ):
    """backend_args.env (e.g. VLLM_ATTENTION_BACKEND): set before vLLM is
    imported, because vLLM reads them at import and engine start."""
    for k, v in ((backend_args or {}).get("env") or {}).items():
        environ[str(k)] = str(v)


def sampling_kwargs(cfg, backend_args, max_tokens, detokenize=True, forced=False):
    """Keyword arguments of vllm.SamplingParams for one request.

    Greedy (temperature 0 or do_sample false) sends temperature=0 only, as
    the original did; otherwise the decoder's knobs, with top_k 0 meaning
    "off", which vLLM spells -1. backend_args.sampling is merged last and
    wins (so sampling.max_tokens overrides the prompt's length).
    """
    dec = lc.decoder_settings(cfg)
    kw = {"max_tokens": int(max_tokens)}
    if lc.is_greedy(dec):
        kw["temperature"] = 0.0
    else:
        kw["temperature"] = float(dec["temperature"])
        kw["top_p"] = float(dec["top_p"])
        top_k = int(dec["top_k"])
        kw["top_k"] = top_k if top_k > 0 else -1
        if dec.get("min_p") is not None:
            kw["min_p"] = float(dec["min_p"])
    if forced:
        kw["ignore_eos"] = True  # synthetic output_len is a length to generate
    if float(dec.get("repetition_penalty", 1.0)) != 1.0:
        kw["repetition_penalty"] = float(dec["repetition_penalty"])
    for k, v in ((backend_args or {}).get("sampling") or {}).items():
        kw[k] = v  # None included: extra: forwards values untouched
    if isinstance(kw.get("logit_bias"), dict):
        # JSON object keys are strings; SamplingParams.logit_bias is
        # dict[int, float] (token id -> bias).
        kw["logit_bias"] = {int(t): float(b) for t, b in kw["logit_bias"].items()}
    if not detokenize:
        kw["detokenize"] = False
    return kw


def request_input(prompt, vocab_size, tokenizer, max_input):
    """A vLLM prompt as token IDs (a TokensPrompt dict); see
    llem_common.prompt_token_ids."""
    return {"prompt_token_ids": lc.prompt_token_ids(prompt, tokenizer, vocab_size, max_input, "vLLM")}


def versions():
    return lc.package_versions(["vllm", "torch", "transformers", "flashinfer-python", "triton"])


def write_random_model_dir(arch_name, root):
    """A directory with only config.json, which vLLM loads with
    load_format="dummy" (random weights, no download)."""
    arch = lc.architecture(arch_name)
    path = os.path.join(root, "random-" + arch_name)
    os.makedirs(path, exist_ok=True)
    arch.setdefault("torch_dtype", "bfloat16")
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(arch, f, indent=1)
    return path, arch


def main(spec, em):
    cfg = spec["config"]
    backend_args = spec.get("backend_args") or {}
    beam = backend_args.get("beam_search")
    apply_env(backend_args, os.environ)
    from vllm import LLM, SamplingParams

    model_id = cfg.get("model") or ""
    arch_name = lc.random_model_name(model_id)
    vocab, arch, model_path = None, None, model_id
    if arch_name:
        model_path, arch = write_random_model_dir(arch_name, tempfile.mkdtemp(prefix="llem-vllm-"))
        vocab = arch["vocab_size"]
    t_load = time.monotonic_ns()
    llm = LLM(**engine_kwargs(cfg, backend_args, model_path, bool(arch_name)))
    load_ns = time.monotonic_ns() - t_load
    params_count, layers, arch_cls = 0, 0, ""
    if arch:
        params_count, layers, arch_cls = lc.count_params(arch), arch["num_hidden_layers"], arch["architectures"][0]
    else:
        try:
            hf = llm.llm_engine.model_config.hf_config
            layers = getattr(hf, "num_hidden_layers", 0) or 0
            vocab = getattr(hf, "vocab_size", None)
            arch_cls = (getattr(hf, "architectures", None) or [""])[0]
        except Exception:  # noqa: BLE001 - internal layout differs across versions
            pass
    em.loaded(model_id, params_count, layers, lc.precision_name(cfg), gpu_used_bytes(), load_ns,
              architecture=arch_cls)

    tokenizer = None if arch_name else _tokenizer(llm)
    prompts = lc.build_prompts(spec, vocab_size=vocab, tokenizer=tokenizer)
    max_output = int(cfg.get("max_output_tokens") or 128)
    max_input = int(cfg.get("max_input_tokens") or 512)
    inputs = [request_input(p, vocab, tokenizer, max_input) for p in prompts]
    detok = not arch_name
    forced = lc.forced_output(cfg)
    params = [SamplingParams(**sampling_kwargs(cfg, backend_args, p.max_tokens or max_output, detok, forced))
              for p in prompts]

    warm = lc.warmup_indices(cfg, len(prompts))
    if warm:
        llm.generate([inputs[i] for i in warm], [params[i] for i in warm], use_tqdm=False)
    em.warmup_done(len(warm))
    lc.thermal_floor(cfg)

    # Batch 0's prefill: a prefill-only pass (max_tokens=1) over every prompt.
    one = [SamplingParams(**prefill_only(sampling_kwargs(cfg, backend_args, 1, detok, False)))
           for _ in prompts]
    em.log(lc.PREFILL_PASS_LOG)
    t_p0 = time.monotonic_ns()
    llm.generate(inputs, one, use_tqdm=False)
    t_p1 = time.monotonic_ns()
    if hasattr(llm, "reset_prefix_cache"):
        llm.reset_prefix_cache()  # or the full pass would reuse the prefill just measured

    t0 = time.monotonic_ns()
    tracker = lc.StreamTracker(t0)
    if beam:
        from vllm.sampling_params import BeamSearchParams
        em.log(BEAM_SEARCH_LOG)
        run_beam_search(llm, inputs, BeamSearchParams(**beam_search_kwargs(cfg, backend_args, max_output)), tracker)
    else:
        run_stepwise(llm, inputs, params, tracker)
    t_end = time.monotonic_ns()
    results = tracker.results(len(prompts), t_end)
    lc.emit_prefill_pass_window(em, results, t_p0, t_p1, t0, t_end)
    em.done(len(results), sum(r.input_tokens for r in results), sum(r.output_tokens for r in results),
            phase_split_method=lc.PHASE_SPLIT_METHOD,
            memory=lc.memory_report("vllm cache_config", kv_cache=lc.vllm_kv_cache_bytes(llm)))


BEAM_SEARCH_LOG = ("vllm.beam_search: the workload runs through LLM.beam_search, which returns only when "
                   "every beam has finished; each request's tokens are stamped at the end of the call, "
                   "so TTFT and inter-token latencies are not measured")


def beam_search_kwargs(cfg, backend_args, max_output):
    """Keyword arguments of vllm.BeamSearchParams: backend_args.beam_search
    (beam_width, length_penalty, ignore_eos, include_stop_str_in_output,
    extra: keys) over max_tokens (required upstream; max_output_tokens when
    absent) and temperature (decoder.temperature; 0 when greedy)."""
    dec = lc.decoder_settings(cfg)
    kw = {"max_tokens": int(max_output),
          "temperature": 0.0 if lc.is_greedy(dec) else float(dec["temperature"])}
    for k, v in ((backend_args or {}).get("beam_search") or {}).items():
        kw[k] = v  # None included: extra: forwards values untouched
    return kw


def run_beam_search(llm, inputs, params, tracker):
    """Run every request through LLM.beam_search (prompts as TokensPrompt
    dicts) and record each request's best beam at the end of the call."""
    outs = llm.beam_search(inputs, params)
    t = time.monotonic_ns()
    for i, (inp, out) in enumerate(zip(inputs, outs)):
        n_in = len(inp["prompt_token_ids"])
        best = out.sequences[0] if out.sequences else None
        n_new = max(0, len(best.tokens) - n_in) if best is not None else 0
        reason = (getattr(best, "finish_reason", None) or "") if best is not None else ""
        if not reason:
            reason = "length" if n_new >= params.max_tokens else "stop"
        tracker.observe(i, n_new, t, n_in, True, reason)


def prefill_only(kw):
    """Sampling kwargs of the prefill-only pass: one token, nothing that
    would force more."""
    kw = dict(kw, max_tokens=1)
    for k in ("min_tokens", "ignore_eos", "n", "best_of"):
        kw.pop(k, None)
    return kw


def gpu_used_bytes():
    """GPU memory in use after load: vLLM preallocates its KV cache, so
    this is weights + cache, which is what the run occupies."""
    try:
        import torch
        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            return total - free
    except Exception:  # noqa: BLE001
        pass
    return 0


def cfg_has(cfg, path):
    return lc.cfg_get(cfg, path) is not None


def _tokenizer(llm):
    try:
        return llm.get_tokenizer()
    except Exception:  # noqa: BLE001
        return None


def run_stepwise(llm, inputs, params, tracker):
    """Run every request through the engine one step at a time (what
    LLM.generate does), recording when each request's tokens arrive."""
    from vllm.sampling_params import RequestOutputKind

    engine = llm.llm_engine
    for i, (inp, sp) in enumerate(zip(inputs, params)):
        sp.output_kind = RequestOutputKind.DELTA
        engine.add_request(str(i), inp, sp)
    for i, inp in enumerate(inputs):
        tracker.inputs[i] = len(inp["prompt_token_ids"])
    while engine.has_unfinished_requests():
        outs = engine.step()
        t = time.monotonic_ns()
        for o in outs:
            comp = o.outputs[0] if o.outputs else None
            n_new = len(comp.token_ids) if comp is not None else 0
            reason = (comp.finish_reason or "") if comp is not None else ""
            tracker.observe(int(o.request_id), n_new, t, None, bool(o.finished), reason)

if __name__ == "__main__":
    lc.run_main(BACKEND, versions, main)
