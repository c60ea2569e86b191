"""llem worker for the PyTorch backend (Hugging Face transformers).

Started by llem as `python3 harness_pytorch.py` with llem_common.py next to
it; reads one RunSpec on stdin, writes protocol events on stdout (see
llem_common.py and docs/backends/pytorch.md).

Measurement method, per batch of prompts, one generate() call:
  t0          torch.cuda.synchronize(); prefill starts
  step k      a LogitsProcessor runs after every forward pass, synchronizes
              and stamps the time: step 0 is the end of the prefill forward
              (the first token exists), steps 1.. are decode steps
  t_end       generate() returns; synchronize; decode ends
prefill = [t0, step0], decode = [step0, t_end]. A request's TTFT is
step0 − t0 and its ITLs are the gaps between the steps that produced its own
tokens (a row stops at its first EOS; later positions are padding and are
neither counted nor timed).

Library arguments come from RunSpec.backend_args, built by llem from the
schema's mapping attributes: {"from_pretrained": {...}, "generate": {...}}.
This file keeps no table of transformers parameter names; it only reads the
harness's own knobs (batching, compile, quantization) from config.pytorch.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import llem_common as lc  # noqa: E402

BACKEND = "pytorch"

# Decoder fields dropped in greedy mode (the original's rule), because
# transformers warns about or rejects sampling knobs when do_sample=False.
SAMPLING_ONLY = ("temperature", "top_k", "top_p", "min_p")


def knobs(cfg, backend_args):
    """The harness's own settings: backend_args.llem (schema target
    "llem": batch_size, batching, torch_compile). A spec written by hand
    without backend_args falls back to the same names in config.pytorch."""
    sec = (backend_args or {}).get("llem")
    if sec is None:
        sec = cfg.get("pytorch") or {}
    return {
        "batch_size": int(sec.get("batch_size") or 1),
        "batching": sec.get("batching") or "fixed",
        "torch_compile": bool(sec.get("torch_compile")),
    }


# The schema's bitsandbytes switches, always sent (false by default), and
# the BitsAndBytesConfig-only keys: with neither switch on they ask for
# nothing, and no other quantization method takes them.
BNB_SWITCHES = ("load_in_4bit", "load_in_8bit")
BNB_ONLY_PREFIXES = ("bnb_4bit_", "llm_int8_")


def quantization_kind(q):
    """What a quantization_config dict asks for: "bitsandbytes", "other"
    (a quant_method such as torchao, hqq, quanto, gptq, awq, fp8, built with
    AutoQuantizationConfig.from_dict) or None (the schema's default switches
    alone: nothing). Keys that ask for nothing recognisable are an error,
    never dropped."""
    method = q.get("quant_method")
    bnb = any(q.get(k) for k in BNB_SWITCHES)
    if bnb:
        if method not in (None, "bitsandbytes"):
            raise lc.SpecError("pytorch quantization_config: load_in_4bit/load_in_8bit (bitsandbytes) and "
                               "quant_method %r ask for two quantizations; choose one" % method)
        return "bitsandbytes"
    rest = sorted(k for k in q if k not in BNB_SWITCHES)
    if method is None or method == "bitsandbytes":
        if rest:
            raise lc.SpecError("pytorch quantization_config keys %s ask for no quantization: set load_in_4bit or "
                               "load_in_8bit (bitsandbytes), or give extra: from_pretrained: quantization_config: "
                               "quant_method (e.g. torchao, hqq, quanto, fp8)" % ", ".join(rest))
        return None
    bnb_only = [k for k in rest if k.startswith(BNB_ONLY_PREFIXES)]
    if bnb_only:
        raise lc.SpecError("pytorch quantization_config keys %s are bitsandbytes options, but quant_method is %r"
                           % (", ".join(bnb_only), method))
    return "other"


def from_pretrained_kwargs(cfg, backend_args, dtype_key):
    """Keyword arguments for from_pretrained, before objects are built.

    dtype_key is "dtype" (transformers >= 4.56) or "torch_dtype"; its value
    is the precision's torch dtype name (the harness swaps in the torch
    object). backend_args.from_pretrained (schema target from_pretrained,
    extra: keys merged) is applied untouched, None values included. Its
    quantization_config dict stays when it asks for a quantization (see
    quantization_kind; the false bitsandbytes switches are removed from a
    non-bitsandbytes config) and is removed only when it is the schema's
    default switches alone. The top-level passthrough_kwargs of the
    original, if present, are merged last.
    """
    kw = {dtype_key: lc.TORCH_DTYPE_NAMES[lc.precision_name(cfg)]}
    for k, v in ((backend_args or {}).get("from_pretrained") or {}).items():
        kw[k] = v
    q = kw.get("quantization_config")
    if isinstance(q, dict):
        kind = quantization_kind(q)
        if kind is None:
            del kw["quantization_config"]
        elif kind == "other":
            kw["quantization_config"] = {k: v for k, v in q.items() if k not in BNB_SWITCHES}
    for k, v in (cfg.get("passthrough_kwargs") or {}).items():
        kw[k] = v
    return kw


# from_pretrained kwargs that AutoModelForCausalLM.from_config also takes
# (transformers' _from_config pops dtype/torch_dtype and
# attn_implementation and hands anything else to the model's __init__,
# which rejects it).
FROM_CONFIG_ARGS = ("dtype", "torch_dtype", "attn_implementation")
# Loading options that only place or fetch checkpoint weights, at the
# values llem always sends: without a checkpoint they ask for nothing (the
# harness builds the random model on its device, as device_map "auto" does
# on one GPU).
FROM_CONFIG_NEUTRAL = {"device_map": ("auto",), "trust_remote_code": (False,)}


def from_config_kwargs(fp_kw):
    """The from_pretrained kwargs of a random-weight model, for from_config:
    dtype and attention implementation apply; quantization needs a
    checkpoint; anything else is refused by name rather than dropped."""
    if "quantization_config" in fp_kw:
        raise lc.HarnessError("config", "quantization needs a checkpoint; random:<arch> "
                              "models are built from a config with random weights",
                              "use a real checkpoint for quantized runs")
    rest = sorted(k for k, v in fp_kw.items()
                  if k not in FROM_CONFIG_ARGS and v not in FROM_CONFIG_NEUTRAL.get(k, ()))
    if rest:
        raise lc.HarnessError("config", "from_pretrained arguments %s do not apply to random:<arch> models "
                              "(built with from_config: no checkpoint to load, place or fetch)" % ", ".join(rest),
                              "remove them, or use a real checkpoint")
    return {k: v for k, v in fp_kw.items() if k in FROM_CONFIG_ARGS}


def generate_kwargs(cfg, backend_args):
    """Keyword arguments for generate(), except inputs and max_new_tokens.

    The decoder section gives the sampling settings; greedy
    (temperature 0 or do_sample false) sends do_sample=False and drops the
    sampling-only knobs. backend_args.generate (num_beams, use_cache,
    cache_implementation, ..., extra: keys) is merged last and wins.
    """
    dec = lc.decoder_settings(cfg)
    kw = {}
    if lc.is_greedy(dec):
        kw["do_sample"] = False
    else:
        kw["do_sample"] = True
        kw["temperature"] = float(dec["temperature"])
        kw["top_k"] = int(dec["top_k"])
        kw["top_p"] = float(dec["top_p"])
        if dec.get("min_p") is not None:
            kw["min_p"] = float(dec["min_p"])
    kw["repetition_penalty"] = float(dec["repetition_penalty"])
    if dec.get("min_new_tokens") is not None:
        kw["min_new_tokens"] = int(dec["min_new_tokens"])
    for k, v in ((backend_args or {}).get("generate") or {}).items():
        kw[k] = v  # None included: extra: forwards values untouched
    if not kw.get("do_sample"):
        for k in SAMPLING_ONLY:
            kw.pop(k, None)
    if kw.get("cache_implementation") == "paged":
        raise lc.SpecError(PAGED_REFUSAL)
    return floats_as_floats(kw)


# generate()'s cache_implementation "paged" hands the batch to transformers'
# continuous batching (generate_batch), which ignores the attention mask
# (padding becomes prompt), the logits processors llem times each token
# with, and returns one 3-D tensor; on the H200 with 5.17 it also failed
# under inference_mode. The schema refuses it with the same reason.
PAGED_REFUSAL = ("pytorch cache_implementation \"paged\" switches generate() to transformers' continuous "
                 "batching, which drops the attention mask and the per-token timing llem measures with; "
                 "llem does not drive generate_batch: use vllm for paged attention, or another cache")


def floats_as_floats(kw):
    """JSON writes a whole float (-1.0) as an integer (-1); transformers
    type-checks some float slots and refuses the int (GenerationConfig
    validate: "Each element in `sequence_bias` has to be a non-empty list
    of lists of positive integers and float", seen on the H200 with 5.17).
    Restore the float where the upstream type says float (in place)."""
    sb = kw.get("sequence_bias")
    if isinstance(sb, list):
        kw["sequence_bias"] = [[ids, float(b)] if isinstance(b, (int, float)) and not isinstance(b, bool) else [ids, b]
                               for ids, b in sb]
    ed = kw.get("exponential_decay_length_penalty")
    if isinstance(ed, list) and len(ed) == 2 and isinstance(ed[1], int) and not isinstance(ed[1], bool):
        kw["exponential_decay_length_penalty"] = (ed[0], float(ed[1]))
    return kw


# kwargs that transformers wants as objects, not dicts: the schema carries
# them as plain data (pytorch.compile_config, watermarking_config,
# kernel_config), the
# harness builds the object by its class name.
CONFIG_OBJECTS = {"compile_config": "CompileConfig", "watermarking_config": "WatermarkingConfig"}
FROM_PRETRAINED_OBJECTS = {"kernel_config": "KernelConfig"}


def wrap_config_objects(kw, transformers, objects=None):
    """Replace dict values of the objects' keys (CONFIG_OBJECTS by default)
    in kw by the transformers objects built from them (in place). Unknown
    classes in an older transformers raise a config error naming the key."""
    for key, cls in (CONFIG_OBJECTS if objects is None else objects).items():
        v = kw.get(key)
        if not isinstance(v, dict):
            continue
        ctor = getattr(transformers, cls, None)
        if ctor is None:
            raise lc.SpecError("pytorch %s: transformers %s has no %s (upgrade transformers or drop the key)"
                               % (key, getattr(transformers, "__version__", "?"), cls))
        kw[key] = ctor(**v)
    return kw


def build_quantization_config(q, torch, transformers):
    """The transformers object of a quantization_config dict:
    BitsAndBytesConfig for the bitsandbytes switches (dtype names become
    torch dtypes), else AutoQuantizationConfig.from_dict by quant_method."""
    if quantization_kind(q) == "bitsandbytes":
        q = dict(q)
        for key in ("bnb_4bit_compute_dtype", "bnb_4bit_quant_storage"):
            if isinstance(q.get(key), str):
                q[key] = getattr(torch, q[key])
        return transformers.BitsAndBytesConfig(**q)
    from transformers.quantizers.auto import AutoQuantizationConfig
    return AutoQuantizationConfig.from_dict(dict(q))


# generate() kwargs that need the tokenizer passed along (transformers
# raises without it): stop strings, token healing.
NEEDS_TOKENIZER = ("stop_strings", "token_healing")
# Universal assisted decoding (a draft with another tokenizer) needs both
# tokenizers.
NEEDS_ASSISTANT_TOKENIZER = ("assistant_lookbehind", "target_lookbehind")


def dtype_kwarg_name(transformers_version):
    """transformers renamed torch_dtype to dtype in 4.56."""
    return "dtype" if lc.version_tuple(transformers_version) >= (4, 56) else "torch_dtype"


def token_rows(prompts, tokenizer, max_input, vocab_size):
    """Every prompt's token IDs, truncated to max_input (the first tokens
    are kept, like the tokenizer's truncation=True). Done once before the
    measured window, so tokenization never falls inside it. Text goes
    through the tokenizer when there is one, else through
    llem_common.approx_token_ids (random-weight models)."""
    return [list(prompt_ids(p, tokenizer, vocab_size))[:max_input] for p in prompts]


def batch_inputs(rows, prompts, batch, pad_id):
    """Left-padded input IDs and attention mask of one batch, and each
    row's own output length (0 = the config's)."""
    ids, mask = lc.left_pad([rows[i] for i in batch], pad_id)
    return ids, mask, [prompts[i].max_tokens for i in batch]


def batch_results(batch_idx, batch, mask, new_tokens, row_max, eos_ids, min_new,
                  t0, steps, t_end):
    """RequestTimings of one batch from generate()'s new tokens and the step
    clock. new_tokens[r] is row r's tokens after the prompt; steps[k] is
    when token k of every still-running row was produced."""
    out = []
    for r, i in enumerate(batch):
        n, reason = lc.generated_length(new_tokens[r], eos_ids, min_new)
        if row_max[r] and n > row_max[r]:
            n, reason = row_max[r], "length"
        n = min(n, len(steps))
        out.append(lc.timings_from_token_times(i, batch_idx, lc.real_input_tokens(mask[r]),
                                               t0, steps[:n], t_end, reason))
    return out


def emit_batch(em, batch_idx, results, t0, steps, t_end):
    """The phase events of one batch, stamped with the moments measured."""
    size = len(results)
    first = steps[0] if steps else t_end
    em.phase("prefill", "start", batch_idx, size, t_ns=t0)
    em.phase("prefill", "end", batch_idx, size,
             input_tokens=sum(r.input_tokens for r in results),
             output_tokens=sum(1 for r in results if r.output_tokens), t_ns=first)
    decoded = sum(max(0, r.output_tokens - 1) for r in results)
    if decoded or len(steps) > 1:  # no decode pair when every request stopped at its first token
        em.phase("decode", "start", batch_idx, size, t_ns=first)
        em.phase("decode", "end", batch_idx, size, output_tokens=decoded, t_ns=t_end)
    for r in results:
        em.request(r)


def versions():
    """Versions for hello; torch is imported for its CUDA build (the
    harness needs it next anyway)."""
    v = lc.package_versions(["torch", "transformers", "accelerate", "bitsandbytes", "flash-attn",
                             "kernels"])
    try:
        import torch
        if torch.version.cuda:
            v["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            v["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - the import error is reported by main
        pass
    return v


def generate_companions(gen_kw, cfg, backend_args, tokenizer, load_tokenizer=None):
    """Add the objects generate() needs beside some kwargs (in place): the
    tokenizer for NEEDS_TOKENIZER, the assistant's tokenizer too for
    NEEDS_ASSISTANT_TOKENIZER, and trust_remote_code for a custom_generate
    method (from_pretrained's setting: the method is Hub code). A kwarg that
    needs a tokenizer on a tokenizer-less random:<arch> model is an error."""
    wants = [k for k in NEEDS_TOKENIZER + NEEDS_ASSISTANT_TOKENIZER if gen_kw.get(k)]
    if wants:
        if tokenizer is None:
            raise lc.HarnessError("config", "pytorch %s needs the model's tokenizer; random:<arch> models have none"
                                  % ", ".join(wants), "use a checkpoint with a tokenizer")
        gen_kw["tokenizer"] = tokenizer
    if any(gen_kw.get(k) for k in NEEDS_ASSISTANT_TOKENIZER) and isinstance(gen_kw.get("assistant_model"), str):
        if load_tokenizer is None:
            from transformers import AutoTokenizer
            load_tokenizer = AutoTokenizer.from_pretrained
        gen_kw["assistant_tokenizer"] = load_tokenizer(gen_kw["assistant_model"])
    if gen_kw.get("custom_generate"):
        fp = (backend_args or {}).get("from_pretrained") or {}
        gen_kw["trust_remote_code"] = bool(fp.get("trust_remote_code", False))
    return gen_kw


def load(cfg, backend_args, em, torch, transformers, device):
    """Load the model (and tokenizer) as the config says.
    Returns (model, tokenizer or None, vocab_size, eos_ids, pad_id, load_ns)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    model_id = cfg.get("model") or ""
    arch_name = lc.random_model_name(model_id)
    fp_kw = from_pretrained_kwargs(cfg, backend_args, dtype_kwarg_name(transformers.__version__))
    if arch_name:
        # Refuse what from_config cannot apply before building anything.
        fp_kw = from_config_kwargs(fp_kw)
    for key in ("dtype", "torch_dtype"):
        if isinstance(fp_kw.get(key), str):
            fp_kw[key] = getattr(torch, fp_kw[key])
    if isinstance(fp_kw.get("quantization_config"), dict):
        fp_kw["quantization_config"] = build_quantization_config(fp_kw["quantization_config"], torch, transformers)
    wrap_config_objects(fp_kw, transformers, FROM_PRETRAINED_OBJECTS)

    t_load = time.monotonic_ns()
    tokenizer = None
    if arch_name:
        model_type, hf_kw = lc.hf_config_kwargs(lc.architecture(arch_name), transformers.__version__)
        hf_cfg = AutoConfig.for_model(model_type, **hf_kw)
        # Build directly on the device: random init of an 8B model on the
        # CPU takes minutes, on the GPU seconds.
        with device:
            model = AutoModelForCausalLM.from_config(hf_cfg, **fp_kw)
        model = model.to(device)  # no-op when the device context was honoured
        vocab, eos, pad_id = hf_cfg.vocab_size, hf_cfg.eos_token_id, getattr(hf_cfg, "pad_token_id", None)
    else:
        tokenizer = AutoTokenizer.from_pretrained(
            model_id, trust_remote_code=bool(fp_kw.get("trust_remote_code", False)),
            **({"revision": fp_kw["revision"]} if fp_kw.get("revision") else {}))
        tokenizer.padding_side = "left"
        for k, v in ((backend_args or {}).get("tokenizer") or {}).items():
            setattr(tokenizer, k, v)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_id, **fp_kw)
        if not fp_kw.get("device_map") and "quantization_config" not in fp_kw:
            model = model.to(device)
        vocab = model.config.vocab_size
        eos = model.generation_config.eos_token_id
        pad_id = tokenizer.pad_token_id
    model.eval()
    eos_ids = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    if pad_id is None:
        pad_id = eos_ids[0] if eos_ids else 0
    return model, tokenizer, vocab, eos_ids, pad_id, t_load


def main(spec, em):
    cfg = spec["config"]
    backend_args = spec.get("backend_args") or {}
    import torch
    import transformers
    from transformers import LogitsProcessor, LogitsProcessorList

    k = knobs(cfg, backend_args)
    seed = int(cfg.get("random_seed", 42))
    for fn, v in (backend_args.get("torch") or {}).items():
        getattr(torch, fn)(v)  # e.g. set_float32_matmul_precision("high")
    torch.manual_seed(seed)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if not cuda:
        em.log("no CUDA device: running on CPU (timings are not GPU timings)", "warn")

    model, tokenizer, vocab, eos_ids, pad_id, t_load = load(cfg, backend_args, em, torch, transformers, device)
    if k["torch_compile"]:
        try:
            model.forward = torch.compile(model.forward, **(backend_args.get("compile") or {}))
        except Exception as exc:  # noqa: BLE001 - the original treats this as non-fatal
            em.log("torch.compile failed, running eager: %s" % exc, "warn")
    sync()
    load_ns = time.monotonic_ns() - t_load
    mem = torch.cuda.memory_allocated() if cuda else model.get_memory_footprint()
    archs = getattr(model.config, "architectures", None) or [type(model).__name__]
    em.loaded(cfg.get("model") or "", sum(p.numel() for p in model.parameters()),
              getattr(model.config, "num_hidden_layers", 0) or 0, loaded_dtype(cfg, backend_args),
              mem, load_ns, architecture=archs[0])

    prompts = lc.build_prompts(spec, vocab_size=vocab if tokenizer is None else None, tokenizer=tokenizer)
    max_input = int(cfg.get("max_input_tokens") or 512)
    max_output = int(cfg.get("max_output_tokens") or 128)
    gen_kw = generate_kwargs(cfg, backend_args)
    gen_kw["pad_token_id"] = pad_id
    wrap_config_objects(gen_kw, transformers)
    generate_companions(gen_kw, cfg, backend_args, tokenizer)
    if isinstance(gen_kw.get("assistant_model"), str):
        # The schema passes the draft model's id; generate() wants the model.
        from transformers import AutoModelForCausalLM
        dkey = dtype_kwarg_name(transformers.__version__)
        dtype = getattr(torch, lc.TORCH_DTYPE_NAMES[lc.precision_name(cfg)])
        gen_kw["assistant_model"] = AutoModelForCausalLM.from_pretrained(
            gen_kw["assistant_model"], **{dkey: dtype}).to(device).eval()
    min_new = int(gen_kw.get("min_new_tokens") or 0)
    forced = lc.forced_output(cfg) and "min_new_tokens" not in gen_kw

    class StepClock(LogitsProcessor):
        """Stamps the end of every forward pass (after a synchronize)."""

        def __init__(self):
            self.times = []

        def __call__(self, input_ids, scores):
            sync()
            self.times.append(time.monotonic_ns())
            return scores

    rows = token_rows(prompts, tokenizer, max_input, vocab)
    batches = lc.make_batches([len(r) for r in rows], k["batch_size"], k["batching"])

    def run_batch(batch):
        ids, mask, row_max = batch_inputs(rows, prompts, batch, pad_id)
        row_max = [m or max_output for m in row_max]
        want = max(row_max)
        extra = {"min_new_tokens": want} if forced else {}
        input_ids = torch.tensor(ids, device=device)
        attention = torch.tensor(mask, device=device)
        clock = StepClock()
        sync()
        t0 = time.monotonic_ns()
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=attention,
                                 max_new_tokens=want, logits_processor=LogitsProcessorList([clock]),
                                 **gen_kw, **extra)
        sync()
        t_end = time.monotonic_ns()
        seqs = getattr(out, "sequences", out)
        new = seqs[:, input_ids.shape[1]:].tolist()
        return mask, row_max, new, t0, clock.times, t_end

    warm = lc.warmup_indices(cfg, len(prompts))
    for w in range(0, len(warm), k["batch_size"]):
        run_batch(warm[w:w + k["batch_size"]])
    em.warmup_done(len(warm))
    lc.thermal_floor(cfg)

    lc.reset_cuda_peaks(torch)  # the allocator's peaks cover the measured batches only
    torch.manual_seed(seed)
    total_in = total_out = 0
    for b, batch in enumerate(batches):
        mask, row_max, new, t0, steps, t_end = run_batch(batch)
        # Forced lengths suppress EOS for the whole batch's length.
        floor = max(row_max) if forced else min_new
        results = batch_results(b, batch, mask, new, row_max, eos_ids, floor, t0, steps, t_end)
        emit_batch(em, b, results, t0, steps, t_end)
        total_in += sum(r.input_tokens for r in results)
        total_out += sum(r.output_tokens for r in results)
    em.done(len(prompts), total_in, total_out, memory=torch_memory(torch, model, cuda))


def torch_memory(torch, model, cuda):
    """The done event's memory: the CUDA caching allocator's peaks over the
    measured batches (torch.cuda.max_memory_allocated/_reserved, summed over
    devices) and the weights (PreTrainedModel.get_memory_footprint:
    parameters and buffers). transformers' default DynamicCache grows with
    each step, so there is no preallocated KV cache to report; its share is
    inside the allocated peak."""
    alloc, reserved = lc.cuda_peaks(torch)
    try:
        weights = model.get_memory_footprint()
    except Exception:  # noqa: BLE001 - optional
        weights = 0
    return lc.memory_report("torch.cuda" if cuda else "transformers get_memory_footprint (CPU)",
                            alloc, reserved, 0, weights)


def prompt_ids(p, tokenizer, vocab):
    if p.token_ids is not None:
        return p.token_ids
    if tokenizer is not None:
        return tokenizer.encode(p.text, add_special_tokens=True)
    return lc.approx_token_ids(p.text, vocab)


def loaded_dtype(cfg, backend_args):
    """How the weights are stored, in the protocol's words."""
    q = ((backend_args or {}).get("from_pretrained") or {}).get("quantization_config") or {}
    if q.get("load_in_4bit"):
        return "int4"
    if q.get("load_in_8bit"):
        return "int8"
    return lc.precision_name(cfg)


if __name__ == "__main__":
    lc.run_main(BACKEND, versions, main)
