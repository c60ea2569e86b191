package engine

import (
	"context"
	"math"
	"testing"
)

// refModel is a deliberately naive reference transformer: float64, plain
// loops, no KV cache, HF-named weights, recomputing the whole sequence for
// every call. It shares no code with the engine (its RoPE frequencies,
// norm, attention and MLP are written out here from the transformers
// definitions), so agreement means the optimised engine computes the model.
type refModel struct {
	cfg Config
	w   map[string][]float64
}

func newRef(m *Model) *refModel {
	r := &refModel{cfg: m.cfg, w: map[string][]float64{}}
	for name, t := range m.tensors() {
		v := make([]float64, len(t.data))
		for i, x := range t.data {
			v[i] = float64(x)
		}
		r.w[name] = v
	}
	if m.cfg.TieWordEmbeddings {
		r.w["lm_head.weight"] = r.w["model.embed_tokens.weight"]
	}
	return r
}

// linear computes W x (+ b) for W of shape [out, in].
func refLinear(w []float64, b []float64, x []float64, out int) []float64 {
	in := len(x)
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		s := 0.0
		for i := 0; i < in; i++ {
			s += w[o*in+i] * x[i]
		}
		if b != nil {
			s += b[o]
		}
		y[o] = s
	}
	return y
}

func refNorm(x, w []float64, eps float64) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i := range x {
		y[i] = x[i] * inv * w[i]
	}
	return y
}

func (r *refModel) invFreq(hd int) []float64 {
	c := r.cfg
	f := make([]float64, hd/2)
	for i := range f {
		f[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(hd))
		if rs := c.RopeScaling; rs != nil {
			switch rs.Type {
			case "linear":
				f[i] /= rs.Factor
			case "llama3":
				wave := 2 * math.Pi / f[i]
				old := float64(rs.OriginalMaxPositionEmbeddings)
				if wave > old/rs.LowFreqFactor {
					f[i] /= rs.Factor
				} else if wave >= old/rs.HighFreqFactor {
					s := (old/wave - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
					f[i] = (1-s)*f[i]/rs.Factor + s*f[i]
				}
			}
		}
	}
	return f
}

// logits returns the logits after every token of the sequence.
func (r *refModel) logits(tokens []int) [][]float64 {
	c := r.cfg
	D, I, V := c.HiddenSize, c.IntermediateSize, c.VocabSize
	hd := c.HeadDim
	if hd == 0 {
		hd = D / c.NumHeads
	}
	nh, nkv := c.NumHeads, c.NumKVHeads
	T := len(tokens)
	inv := r.invFreq(hd)
	x := make([][]float64, T)
	for p, t := range tokens {
		x[p] = append([]float64(nil), r.w["model.embed_tokens.weight"][t*D:(t+1)*D]...)
	}
	rot := func(v []float64, pos int) {
		h := hd / 2
		for i := 0; i < h; i++ {
			a := float64(pos) * inv[i]
			x1, x2 := v[i], v[i+h]
			v[i] = x1*math.Cos(a) - x2*math.Sin(a)
			v[i+h] = x2*math.Cos(a) + x1*math.Sin(a)
		}
	}
	for l := 0; l < c.NumLayers; l++ {
		p := "model.layers." + itoa(l) + "."
		q := make([][]float64, T)
		k := make([][]float64, T)
		v := make([][]float64, T)
		for t := 0; t < T; t++ {
			h := refNorm(x[t], r.w[p+"input_layernorm.weight"], c.RMSNormEps)
			q[t] = refLinear(r.w[p+"self_attn.q_proj.weight"], r.w[p+"self_attn.q_proj.bias"], h, nh*hd)
			k[t] = refLinear(r.w[p+"self_attn.k_proj.weight"], r.w[p+"self_attn.k_proj.bias"], h, nkv*hd)
			v[t] = refLinear(r.w[p+"self_attn.v_proj.weight"], r.w[p+"self_attn.v_proj.bias"], h, nkv*hd)
			for hh := 0; hh < nh; hh++ {
				rot(q[t][hh*hd:(hh+1)*hd], t)
			}
			for hh := 0; hh < nkv; hh++ {
				rot(k[t][hh*hd:(hh+1)*hd], t)
			}
		}
		for t := 0; t < T; t++ {
			att := make([]float64, nh*hd)
			for hh := 0; hh < nh; hh++ {
				g := hh / (nh / nkv)
				// Causal mask, plus the sliding window of a windowed layer
				// (every layer when LayerTypes is nil): key j is visible
				// iff j <= t and t - j < window.
				windowed := c.SlidingWindow > 0 && (c.LayerTypes == nil || c.LayerTypes[l] == "sliding_attention")
				var sc []float64
				var js []int
				for j := 0; j <= t; j++ {
					if windowed && t-j >= c.SlidingWindow {
						continue
					}
					s := 0.0
					for d := 0; d < hd; d++ {
						s += q[t][hh*hd+d] * k[j][g*hd+d]
					}
					sc = append(sc, s/math.Sqrt(float64(hd)))
					js = append(js, j)
				}
				mx := math.Inf(-1)
				for _, s := range sc {
					mx = math.Max(mx, s)
				}
				sum := 0.0
				for i := range sc {
					sc[i] = math.Exp(sc[i] - mx)
					sum += sc[i]
				}
				for i, j := range js {
					for d := 0; d < hd; d++ {
						att[hh*hd+d] += sc[i] / sum * v[j][g*hd+d]
					}
				}
			}
			o := refLinear(r.w[p+"self_attn.o_proj.weight"], r.w[p+"self_attn.o_proj.bias"], att, D)
			for i := range o {
				x[t][i] += o[i]
			}
			h := refNorm(x[t], r.w[p+"post_attention_layernorm.weight"], c.RMSNormEps)
			gt := refLinear(r.w[p+"mlp.gate_proj.weight"], nil, h, I)
			up := refLinear(r.w[p+"mlp.up_proj.weight"], nil, h, I)
			a := make([]float64, I)
			for i := range a {
				a[i] = gt[i] / (1 + math.Exp(-gt[i])) * up[i]
			}
			d := refLinear(r.w[p+"mlp.down_proj.weight"], nil, a, D)
			for i := range d {
				x[t][i] += d[i]
			}
		}
	}
	out := make([][]float64, T)
	for t := range x {
		out[t] = refLinear(r.w["lm_head.weight"], nil, refNorm(x[t], r.w["model.norm.weight"], c.RMSNormEps), V)
	}
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// tinyConfigs cover every architectural switch: GQA with tied embeddings
// (llama), q/k/v bias with an untied head (qwen2), a sliding window
// (mistral), llama3 rope scaling with an explicit head_dim, MHA with a
// llama attention bias on o_proj too, and windows on some layers only
// (qwen2's layer_types).
func tinyConfigs() map[string]Config {
	base := Config{Architecture: "LlamaForCausalLM", ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, VocabSize: 64, MaxPositionEmbeddings: 64, RMSNormEps: 1e-5, RopeTheta: 10000,
		TieWordEmbeddings: true, BOSTokenID: []int{1}, EOSTokenIDs: []int{2}}
	qwen := base
	qwen.Architecture, qwen.ModelType, qwen.AttentionBias, qwen.TieWordEmbeddings, qwen.RopeTheta = "Qwen2ForCausalLM", "qwen2", true, false, 1e6
	mistral := base
	mistral.Architecture, mistral.ModelType, mistral.SlidingWindow, mistral.NumKVHeads = "MistralForCausalLM", "mistral", 5, 1
	l3 := base
	l3.HeadDim = 12
	l3.RopeTheta = 500000
	l3.RopeScaling = &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 16}
	mha := base
	mha.NumKVHeads, mha.AttentionBias, mha.OutputBias, mha.NumLayers = 4, true, true, 3
	qwenWin := qwen
	qwenWin.NumLayers, qwenWin.SlidingWindow = 3, 4
	qwenWin.LayerTypes = []string{SlidingAttention, FullAttention, SlidingAttention}
	return map[string]Config{"llama-gqa-tied": base, "qwen2-bias-untied": qwen, "mistral-window": mistral, "llama3-rope-headdim": l3,
		"llama-mha-bias": mha, "qwen2-layer-windows": qwenWin}
}

func maxAbsDiff(a []float32, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-b[i]))
	}
	return d
}

// TestLogitsMatchReference checks the engine against the float64 reference
// for the prefill of a prompt and for every following decode step, and that
// KV-cache decode equals a full recompute.
func TestLogitsMatchReference(t *testing.T) {
	const tol = 2e-5
	ctx := context.Background()
	for name, cfg := range tinyConfigs() {
		t.Run(name, func(t *testing.T) {
			m, err := NewRandom(cfg, 7)
			if err != nil {
				t.Fatal(err)
			}
			ref := newRef(m)
			seqTokens := []int{1, 17, 5, 63, 40, 8, 8, 30, 12, 50, 3, 22, 9}
			prompt := seqTokens[:6]
			want := ref.logits(seqTokens)
			// Sanity: logits are not trivially tiny, so tol is meaningful.
			if spread := maxAbsDiff(make([]float32, len(want[0])), want[0]); spread < 1e-2 {
				t.Fatalf("reference logits too small to compare (max |logit| %g)", spread)
			}
			seq := m.NewSequence(len(seqTokens))
			got, err := m.Forward(ctx, seq, prompt)
			if err != nil {
				t.Fatal(err)
			}
			for p := range prompt {
				if d := maxAbsDiff(got[p], want[p]); d > tol {
					t.Fatalf("prefill position %d: max |engine-reference| = %g > %g", p, d, tol)
				}
			}
			full, err := m.Forward(ctx, nil, seqTokens)
			if err != nil {
				t.Fatal(err)
			}
			for p := len(prompt); p < len(seqTokens); p++ {
				step, err := m.Forward(ctx, seq, seqTokens[p:p+1])
				if err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(step[0], want[p]); d > tol {
					t.Fatalf("decode step at position %d: max |engine-reference| = %g > %g", p, d, tol)
				}
				for i := range step[0] {
					if d := math.Abs(float64(step[0][i] - full[p][i])); d > 1e-5 {
						t.Fatalf("position %d: KV-cache decode logit %d = %v, full recompute %v", p, i, step[0][i], full[p][i])
					}
				}
			}
			if seq.Len() != len(seqTokens) {
				t.Errorf("sequence length %d, want %d", seq.Len(), len(seqTokens))
			}
		})
	}
}
