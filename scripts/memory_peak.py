"""Measure peak GPU memory of random-weight generation for the presets
pkg/compute estimates (docs/results.md, "Compute and memory estimates").

Prints one JSON line per case: preset, dtype, batch, input/output tokens,
torch.cuda.max_memory_allocated (bytes, the CUDA context excluded) and the
NVML-visible used memory after the run. Run on a GPU machine with torch and
transformers; nothing is downloaded (the architectures are the presets').
"""
import json
import torch
from transformers import LlamaConfig, LlamaForCausalLM

PRESETS = {
    "llama-15m": dict(hidden_size=288, intermediate_size=768, num_hidden_layers=6, num_attention_heads=6,
                      num_key_value_heads=6, vocab_size=32000, max_position_embeddings=2048, tie_word_embeddings=True),
    "smollm-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                        num_key_value_heads=3, vocab_size=49152, max_position_embeddings=2048, tie_word_embeddings=True),
}

for name, cfg in PRESETS.items():
    for dtype in (torch.float32, torch.float16):
        for batch, inp, out in ((8, 512, 128), (32, 512, 128)):
            torch.manual_seed(0)
            model = LlamaForCausalLM(LlamaConfig(**cfg, attn_implementation="eager")).to("cuda", dtype=dtype).eval()
            ids = torch.randint(3, cfg["vocab_size"], (batch, inp), device="cuda")
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            with torch.no_grad():
                model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=out, min_new_tokens=out, do_sample=False)
            torch.cuda.synchronize()
            print(json.dumps({"preset": name, "dtype": str(dtype).removeprefix("torch."), "batch": batch, "input": inp, "output": out,
                              "peak_allocated_bytes": torch.cuda.max_memory_allocated(),
                              "params": sum(p.numel() for p in model.parameters())}), flush=True)
            del model, ids
            torch.cuda.empty_cache()
