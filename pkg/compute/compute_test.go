package compute

import (
	"math"
	"testing"

	"github.com/llenergymeasure/llem/pkg/engine"
)

func preset(t *testing.T, name string) Arch {
	t.Helper()
	c, ok := engine.Preset(name)
	if !ok {
		t.Fatalf("no preset %s", name)
	}
	return FromEngine(c)
}

// TestFLOPsByHand: the random presets' FLOPs worked out by hand from their
// config (pkg/engine presets) with the package's formula.
func TestFLOPsByHand(t *testing.T) {
	// llama-15m: d 288, 6 heads of 48, 6 KV heads, FFN 768, 6 layers,
	// vocabulary 32000, tied embeddings.
	// Per layer: q,k,v 288·(288+288+288) = 248,832; o 288·288 = 82,944;
	// gate, up, down 3·288·768 = 663,552; two norms 576 → 995,904.
	// N = 6·995,904 + 32000·288 (tied: embedding = LM head) + 288 (final
	// norm) = 5,975,424 + 9,216,000 + 288 = 15,191,712.
	a := preset(t, "llama-15m")
	if a.Params != 15_191_712 || a.MatmulParams() != 15_191_712 {
		t.Fatalf("llama-15m N = %d (matmul %d), want 15,191,712", a.Params, a.MatmulParams())
	}
	// P = 8, O = 2: T = 9 forward tokens.
	// prefill = 2·N·8 + 6·288·8·9 = 243,067,392 + 124,416 = 243,191,808
	// total   = 2·N·9 + 6·288·9·10 = 273,450,816 + 155,520 = 273,606,336
	// decode  = 30,414,528 (one decode step)
	f := a.RequestFLOPs(8, 2)
	want := FLOPs{Total: 273_606_336, Prefill: 243_191_808, Decode: 30_414_528, PerInputToken: 243_191_808.0 / 8, PerOutputToken: 30_414_528}
	if f != want {
		t.Errorf("llama-15m 8+2: %+v, want %+v", f, want)
	}
	// smollm-135m: d 576, 9 heads of 64, 3 KV heads (kv dim 192), FFN
	// 1536, 30 layers, vocabulary 49152, tied.
	// Per layer: 576·(576+192+192) = 552,960; 576·576 = 331,776;
	// 3·576·1536 = 2,654,208; norms 1,152 → 3,540,096.
	// N = 30·3,540,096 + 49152·576 + 576 = 106,202,880 + 28,311,552 + 576
	//   = 134,515,008.
	b := preset(t, "smollm-135m")
	if b.Params != 134_515_008 {
		t.Fatalf("smollm-135m N = %d, want 134,515,008", b.Params)
	}
	// P = 512, O = 128: T = 639.
	// prefill = 2·N·512 + 30·576·512·513 = 137,743,368,192 + 4,538,695,680
	// total   = 2·N·639 + 30·576·639·640 = 171,910,180,224 + 7,066,828,800
	g := b.RequestFLOPs(512, 128)
	if g.Prefill != 137_743_368_192+4_538_695_680 || g.Total != 171_910_180_224+7_066_828_800 {
		t.Errorf("smollm-135m 512+128: %+v", g)
	}
	if math.Abs(g.PerOutputToken-(g.Total-g.Prefill)/127) > 1e-6 || g.PerInputToken != g.Prefill/512 {
		t.Errorf("per-token figures %+v", g)
	}
	if r := b.RunFLOPs(10, 512, 128); r.Total != 10*g.Total || r.PerOutputToken != g.PerOutputToken {
		t.Errorf("run of 10: %+v", r)
	}
}

// TestUntiedAndWindow: an untied input embedding is a lookup, not FLOPs;
// a sliding window caps the attention context.
func TestUntiedAndWindow(t *testing.T) {
	a := Arch{Params: 1000, EmbeddingLookupParams: 400, Layers: 2, Heads: 2, HeadDim: 4}
	// N = 600; P = 3, O = 1: T = 3; attention 2·2·8·(1+2+3) = 192.
	if f := a.RequestFLOPs(3, 1); f.Total != 2*600*3+192 || f.Decode != 0 || f.PerOutputToken != 0 {
		t.Errorf("untied: %+v", f)
	}
	a.SlidingWindow = 2
	// contexts 1, 2, 2 → 5: attention 2·2·8·5 = 160.
	if f := a.RequestFLOPs(3, 1); f.Total != 2*600*3+160 {
		t.Errorf("window: %+v", f)
	}
}

// TestMemoryEstimate: the parts by hand for llama-15m, and the verdict.
func TestMemoryEstimate(t *testing.T) {
	a := preset(t, "llama-15m")
	s := Shape{Batch: 4, InputTokens: 100, OutputTokens: 28, WeightBytes: BytesPerValue("fp32"), KVBytes: BytesPerValue("fp32")}
	m := a.EstimateMemory(s, 80<<30)
	// weights 15,191,712·4; KV 2·6·288·4·4·128 = 7,077,888;
	// activations 4·100·(288+1536)·4 + 4·6·100·100·(4+4) + 2·4·32000·4
	//           + 64 MiB = 2,918,400 + 1,920,000 + 1,024,000 + 67,108,864
	//           = 72,971,264.
	if m.WeightsBytes != 60_766_848 || m.KVCacheBytes != 7_077_888 || m.ActivationBytes != 72_971_264 ||
		m.TotalBytes != 60_766_848+7_077_888+72_971_264 || m.MayNotFit {
		t.Errorf("llama-15m: %+v", m)
	}
	if small := a.EstimateMemory(s, 128<<20); !small.MayNotFit || small.Verdict[:11] != "may not fit" {
		t.Errorf("128 MiB device: %+v", small)
	}
	if unknown := a.EstimateMemory(s, 0); unknown.MayNotFit || unknown.Verdict == "" {
		t.Errorf("unknown device: %+v", unknown)
	}
}
