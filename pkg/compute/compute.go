// Package compute estimates the arithmetic and the memory of an inference
// run from the model's architecture and the run's shape: FLOPs (total, per
// input and output token) and the GPU memory it needs (weights, KV cache,
// activations) with a "may not fit" verdict against a device. Nothing is
// measured here; callers put the numbers beside measured ones, named as
// estimates.
//
// # FLOPs
//
// A forward pass over one token at context position t costs
//
//	C(t) = 2·N + 2·n_layer·t·d_attn
//
// the formula of Kaplan et al. 2020, "Scaling Laws for Neural Language
// Models", Table 1 (C_forward ≈ 2N + 2·n_layer·n_ctx·d_attn), with the
// token's actual causal context t in place of n_ctx, as a KV-cached
// decoder attends to t positions. N counts the parameters used in matrix
// multiplications: every parameter except the input embedding table,
// which is a lookup (when the embeddings are tied the table is also the
// LM head, a matmul, so it counts once). d_attn = n_heads·head_dim. The
// PaLM appendix (Chowdhery et al. 2022, App. B: 6N + 12·L·H·Q·T for
// training) counts the attention-times-values product as well, twice the
// attention term here; llem keeps Kaplan's count and states it.
//
// A request of P prompt tokens generating O tokens runs T = P + O − 1
// forward tokens (the last generated token is never fed back): prefill
// is t = 1..P, decode t = P+1..T. Summing C(t):
//
//	prefill = 2·N·P + n_layer·d_attn·P·(P+1)
//	total   = 2·N·T + n_layer·d_attn·T·(T+1)
//	decode  = total − prefill
//
// per input token = prefill / P, per output token = decode / (O − 1) (each
// decode step makes one token; the first comes from prefill). These are
// useful FLOPs: padding in a batch adds work they do not count. A sliding
// window (every layer) caps t at the window.
package compute

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/llenergymeasure/llem/pkg/engine"
)

// Arch is what the estimates need of a model.
type Arch struct {
	// Params is every parameter (HF num_parameters()).
	Params int64
	// ActiveParams, when > 0, is the parameters one token passes through
	// in a mixture of experts (top-k experts, not all); 0: Params.
	ActiveParams int64
	// EmbeddingLookupParams is the input embedding table when it is not
	// also the LM head (untied embeddings); 0 when tied.
	EmbeddingLookupParams int64
	Layers                int
	DModel                int
	Heads, KVHeads        int
	HeadDim               int
	Vocab                 int
	FFN                   int
	// SlidingWindow, when > 0, is the attention window of every layer.
	SlidingWindow int
}

// FromEngine is the Arch of an engine config (a native model or a
// random-weight preset).
func FromEngine(c engine.Config) Arch {
	hd := c.HeadDim
	if hd == 0 && c.NumHeads > 0 {
		hd = c.HiddenSize / c.NumHeads
	}
	a := Arch{Params: c.NumParams(), Layers: c.NumLayers, DModel: c.HiddenSize, Heads: c.NumHeads, KVHeads: c.NumKVHeads,
		HeadDim: hd, Vocab: c.VocabSize, FFN: c.IntermediateSize}
	if !c.TieWordEmbeddings {
		a.EmbeddingLookupParams = int64(c.VocabSize) * int64(c.HiddenSize)
	}
	if c.SlidingWindow > 0 && len(c.LayerTypes) == 0 {
		a.SlidingWindow = c.SlidingWindow
	}
	return a
}

// MatmulParams is N of the FLOPs formula: the parameters a token runs
// through (the active ones in a mixture of experts), less an untied input
// embedding table.
func (a Arch) MatmulParams() int64 {
	if a.ActiveParams > 0 {
		return a.ActiveParams - a.EmbeddingLookupParams
	}
	return a.Params - a.EmbeddingLookupParams
}

// FLOPs of a run.
type FLOPs struct {
	Total          float64 `json:"total"`
	Prefill        float64 `json:"prefill"`
	Decode         float64 `json:"decode"`
	PerInputToken  float64 `json:"per_input_token"`
	PerOutputToken float64 `json:"per_output_token" doc:"decode FLOPs per decode step; 0 when O ≤ 1"`
}

// attnSum is Σ_{t=1..T} min(t, w) (w = 0: no window).
func attnSum(T, w int64) float64 {
	if w <= 0 || T <= w {
		return float64(T) * float64(T+1) / 2
	}
	return float64(w)*float64(w+1)/2 + float64(T-w)*float64(w)
}

// RequestFLOPs is the FLOPs of one request of p prompt and o generated
// tokens (see the package doc).
func (a Arch) RequestFLOPs(p, o int) FLOPs {
	if p <= 0 {
		return FLOPs{}
	}
	n := float64(a.MatmulParams())
	attn := 2 * float64(a.Layers) * float64(a.Heads*a.HeadDim)
	w := int64(a.SlidingWindow)
	T := int64(p + max(o, 1) - 1)
	f := FLOPs{
		Prefill: 2*n*float64(p) + attn*attnSum(int64(p), w),
		Total:   2*n*float64(T) + attn*attnSum(T, w),
	}
	f.Decode = f.Total - f.Prefill
	f.PerInputToken = f.Prefill / float64(p)
	if o > 1 {
		f.PerOutputToken = f.Decode / float64(o-1)
	}
	return f
}

// RunFLOPs sums RequestFLOPs over requests of the same shape; per-token
// figures are those of one request.
func (a Arch) RunFLOPs(requests, p, o int) FLOPs {
	f := a.RequestFLOPs(p, o)
	k := float64(requests)
	f.Total, f.Prefill, f.Decode = f.Total*k, f.Prefill*k, f.Decode*k
	return f
}

// BytesPerValue is the storage of one weight or cache value at a
// precision; 0 for an unknown name.
func BytesPerValue(precision string) float64 {
	switch precision {
	case "fp32", "float32":
		return 4
	case "fp16", "float16", "bf16", "bfloat16":
		return 2
	case "fp8", "int8", "float8":
		return 1
	case "int4", "fp4", "nf4":
		return 0.5
	}
	return 0
}

// Shape is what a run asks of the model at once.
type Shape struct {
	Batch        int // concurrent sequences
	InputTokens  int // prompt tokens per sequence
	OutputTokens int // generated tokens per sequence
	// WeightBytes and KVBytes per value (BytesPerValue); activations use
	// WeightBytes.
	WeightBytes, KVBytes float64
}

// Memory is a run's estimated peak device memory.
type Memory struct {
	WeightsBytes    int64 `json:"weights_bytes" doc:"parameters × bytes per weight"`
	KVCacheBytes    int64 `json:"kv_cache_bytes" doc:"2 (K and V) × layers × kv heads × head dim × bytes × batch × (input + output) tokens"`
	ActivationBytes int64 `json:"activation_bytes" doc:"prefill's largest transient: hidden and FFN activations, attention scores and probabilities, logits, plus WorkspaceBytes"`
	TotalBytes      int64 `json:"total_bytes"`
	// DeviceBytes is the device's memory the verdict compares with (0:
	// unknown, no verdict).
	DeviceBytes int64 `json:"device_bytes,omitempty"`
	// MayNotFit is set when TotalBytes passes Headroom × DeviceBytes.
	MayNotFit bool   `json:"may_not_fit"`
	Verdict   string `json:"verdict"`
}

// WorkspaceBytes is the fixed allowance for the framework's own buffers
// (cuBLAS workspaces, the allocator's rounding): about what the
// smallest preset's measured peak exceeded its tensors by on an H200
// (docs/results.md).
const WorkspaceBytes = 64 << 20

// Headroom is the share of device memory an estimate may use before it
// "may not fit": the rest goes to the CUDA context, the allocator's
// fragmentation and the framework's workspace.
const Headroom = 0.9

// EstimateMemory estimates a run's peak memory and compares it with
// deviceBytes (0 for no verdict).
func (a Arch) EstimateMemory(s Shape, deviceBytes int64) Memory {
	b := float64(max(s.Batch, 1))
	ctx := float64(s.InputTokens + s.OutputTokens)
	p := float64(max(s.InputTokens, 1))
	m := Memory{
		WeightsBytes: int64(float64(a.Params) * s.WeightBytes),
		KVCacheBytes: int64(2 * float64(a.Layers) * float64(a.KVHeads*a.HeadDim) * s.KVBytes * b * ctx),
	}
	// The prefill of a batch holds at once: the hidden state and one
	// layer's FFN activations (gate and up), one layer's attention scores
	// in fp32 and their probabilities in the model's dtype (heads × P × P
	// each, unless a fused kernel avoids them: counted, to err on the side
	// of "may not fit"), and the last position's fp32 logits twice (the
	// logits and the processed scores of generation); plus the framework's
	// fixed workspace (cuBLAS and the like).
	act := b*p*float64(a.DModel+2*a.FFN)*s.WeightBytes + b*float64(a.Heads)*p*p*(4+s.WeightBytes) + 2*b*float64(a.Vocab)*4 + WorkspaceBytes
	m.ActivationBytes = int64(act)
	m.TotalBytes = m.WeightsBytes + m.KVCacheBytes + m.ActivationBytes
	m.DeviceBytes = deviceBytes
	switch {
	case deviceBytes <= 0:
		m.Verdict = fmt.Sprintf("needs about %s (device memory unknown)", gib(m.TotalBytes))
	case float64(m.TotalBytes) > Headroom*float64(deviceBytes):
		m.MayNotFit = true
		m.Verdict = fmt.Sprintf("may not fit: needs about %s of %s (weights %s, KV cache %s, activations %s)",
			gib(m.TotalBytes), gib(deviceBytes), gib(m.WeightsBytes), gib(m.KVCacheBytes), gib(m.ActivationBytes))
	default:
		m.Verdict = fmt.Sprintf("fits: needs about %s of %s", gib(m.TotalBytes), gib(deviceBytes))
	}
	return m
}

func gib(b int64) string {
	if b < 1<<30 {
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}

// ForModel is the Arch of a run's model where llem knows it without the
// worker: the random-weight presets ("random:<preset>"), whatever the
// backend builds them with. ok is false for checkpoints.
func ForModel(model string) (Arch, bool) {
	name, ok := strings.CutPrefix(model, engine.RandomPrefix)
	if !ok {
		return Arch{}, false
	}
	if c, ok := engine.Preset(name); ok {
		return FromEngine(c), true
	}
	// The Python harnesses' presets (llem_common.ARCHITECTURES: the shapes
	// of Llama-3.1-8B, Llama-3.2-1B, Qwen2.5-0.5B, …), kept equal to the
	// harness by TestHarnessPresetsMatchPython.
	a, ok := harnessArchs()[name]
	return a, ok
}

// harnessArchs are the Archs of harnessPresets, counted once.
var harnessArchs = sync.OnceValue(func() map[string]Arch {
	out := map[string]Arch{}
	for name, cfg := range harnessPresets() {
		if a, err := FromHFConfig(cfg); err == nil {
			out[name] = a
		}
	}
	return out
})

//go:embed harness_presets.json
var harnessPresetsJSON []byte

// harnessPresets is harness_presets.json: each random: preset of the
// Python harnesses as the Hugging Face config dict they build it from,
// parsed once (exports call ForModel for every row).
var harnessPresets = sync.OnceValue(func() map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(harnessPresetsJSON, &m); err != nil {
		panic("compute: harness_presets.json: " + err.Error()) // embedded; a test reads it
	}
	return m
})
