package engine

import (
	"fmt"
	"hash/fnv"
	"runtime"
	"sync"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/engine/safetensors"
)

// Option configures a Model.
type Option func(*options)

type options struct {
	threads int
	storage string
}

// WithThreads sets how many goroutines run the matrix kernels and attention
// (default GOMAXPROCS). Values below 1 mean the default.
func WithThreads(n int) Option { return func(o *options) { o.threads = n } }

// WithStorage picks how weight matrices are held in memory: "fp32" (default)
// or "bf16" (half the bytes read per decode step, widened to fp32 in the
// kernel; compute stays fp32).
func WithStorage(dtype string) Option { return func(o *options) { o.storage = dtype } }

func buildOptions(opts []Option) (options, error) {
	o := options{storage: "fp32"}
	for _, f := range opts {
		f(&o)
	}
	if o.threads < 1 {
		o.threads = runtime.GOMAXPROCS(0)
	}
	if o.storage != "fp32" && o.storage != "bf16" {
		return o, errs.BadInput(fmt.Errorf("configure engine: unknown weight storage %q", o.storage), `use "fp32" or "bf16"`)
	}
	return o, nil
}

// mat is a row-major weight matrix [rows][cols] (HF's [out_features,
// in_features] layout) held either as float32 or as bfloat16 bits.
type mat struct {
	rows, cols int
	f32        []float32
	b16        []uint16
}

func newMat(rows, cols int, bf16 bool) mat {
	if bf16 {
		return mat{rows: rows, cols: cols, b16: make([]uint16, rows*cols)}
	}
	return mat{rows: rows, cols: cols, f32: make([]float32, rows*cols)}
}

// view returns rows [r0, r1) as a tensor view of the matching storage.
func (w *mat) view(r0, r1 int, shape ...int) hfTensor {
	if w.f32 != nil {
		return hfTensor{shape: shape, data: w.f32[r0*w.cols : r1*w.cols]}
	}
	return hfTensor{shape: shape, b16: w.b16[r0*w.cols : r1*w.cols]}
}

func (w *mat) bytes() int64 {
	return int64(len(w.f32))*4 + int64(len(w.b16))*2
}

// row returns row r as float32, widening into scratch when stored as bf16.
func (w *mat) row(r int, scratch []float32) []float32 {
	if w.f32 != nil {
		return w.f32[r*w.cols : (r+1)*w.cols]
	}
	src := w.b16[r*w.cols : (r+1)*w.cols]
	dst := scratch[:len(src)]
	bf16Widen(dst, src)
	return dst
}

type layer struct {
	attnNorm, mlpNorm []float32
	wqkv              mat       // q, k, v projections stacked: [qDim+2*kvDim, D]
	bqkv              []float32 // nil without attention bias
	wo                mat       // [D, qDim]
	bo                []float32 // nil unless OutputBias
	wgu               mat       // gate and up projections stacked: [2*I, D]
	wdown             mat       // [D, I]
}

// Model is a loaded llama-family model. It is safe for one Generate at a
// time; concurrent calls on one Model serialise on an internal lock.
type Model struct {
	cfg    Config
	opts   options
	hd     int
	qDim   int
	kvDim  int
	embed  mat // [V, D]; also the LM head when tied
	lmHead *mat
	norm   []float32
	layers []layer
	// invFreq[i] is the rotary frequency of dimension pair i (after scaling).
	invFreq []float64
	mu      sync.Mutex
}

func newModel(cfg Config, o options) *Model {
	m := &Model{cfg: cfg, opts: o, hd: cfg.headDim()}
	m.qDim = cfg.NumHeads * m.hd
	m.kvDim = cfg.NumKVHeads * m.hd
	D, I := cfg.HiddenSize, cfg.IntermediateSize
	// Matrices are allocated directly in their storage type, so loading a
	// bf16-stored model never holds an fp32 copy of every weight.
	b := o.storage == "bf16"
	m.embed = newMat(cfg.VocabSize, D, b)
	m.norm = make([]float32, D)
	m.layers = make([]layer, cfg.NumLayers)
	for i := range m.layers {
		l := &m.layers[i]
		l.attnNorm = make([]float32, D)
		l.mlpNorm = make([]float32, D)
		l.wqkv = newMat(m.qDim+2*m.kvDim, D, b)
		if cfg.AttentionBias {
			l.bqkv = make([]float32, m.qDim+2*m.kvDim)
		}
		l.wo = newMat(D, m.qDim, b)
		if cfg.OutputBias {
			l.bo = make([]float32, D)
		}
		l.wgu = newMat(2*I, D, b)
		l.wdown = newMat(D, I, b)
	}
	if cfg.TieWordEmbeddings {
		m.lmHead = &m.embed
	} else {
		h := newMat(cfg.VocabSize, D, b)
		m.lmHead = &h
	}
	m.invFreq = ropeInvFreq(cfg, m.hd)
	return m
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// NumParams is the parameter count (the tied LM head counted once).
func (m *Model) NumParams() int64 { return m.cfg.NumParams() }

// DType is the weight storage: "fp32" or "bf16". Activations are fp32.
func (m *Model) DType() string { return m.opts.storage }

// Threads is the number of goroutines the kernels use.
func (m *Model) Threads() int { return m.opts.threads }

// MemoryBytes is the memory held by the weights (not the KV cache, which
// Generate allocates per batch: see KVCacheBytes).
func (m *Model) MemoryBytes() int64 {
	n := m.embed.bytes() + int64(len(m.norm))*4
	if !m.cfg.TieWordEmbeddings {
		n += m.lmHead.bytes()
	}
	for i := range m.layers {
		l := &m.layers[i]
		n += l.wqkv.bytes() + l.wo.bytes() + l.wgu.bytes() + l.wdown.bytes()
		n += int64(len(l.attnNorm)+len(l.mlpNorm)+len(l.bqkv)+len(l.bo)) * 4
	}
	return n
}

// WeightBytesPerToken is how many bytes of weights one decode step reads:
// every matrix once (the embedding row lookup is negligible, but a tied LM
// head reads the whole embedding matrix). It is the numerator of the
// memory-bandwidth roofline.
func (m *Model) WeightBytesPerToken() int64 {
	n := m.lmHead.bytes() + int64(len(m.norm))*4
	for i := range m.layers {
		l := &m.layers[i]
		n += l.wqkv.bytes() + l.wo.bytes() + l.wgu.bytes() + l.wdown.bytes()
		n += int64(len(l.attnNorm)+len(l.mlpNorm)+len(l.bqkv)+len(l.bo)) * 4
	}
	return n
}

// KVCacheBytes is the KV cache one sequence of n positions needs.
func (m *Model) KVCacheBytes(n int) int64 {
	return int64(n) * int64(m.cfg.NumLayers) * 2 * int64(m.kvDim) * 4
}

// ---- seeded random weights ----

// splitmix64 is a tiny, fully specified PRNG: the same seed gives the same
// weights on every machine and Go version.
type splitmix64 uint64

func (s *splitmix64) next() uint64 {
	*s += 0x9e3779b97f4a7c15
	z := uint64(*s)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// float64 returns a uniform value in [0, 1).
func (s *splitmix64) float64() float64 { return float64(s.next()>>11) / (1 << 53) }

// irwinHallStd is the standard deviation of the sum of four uniform 16-bit
// integers: sqrt(4 * (65536^2-1) / 12).
const irwinHallStd = 37837.22659810598

// fillNormal fills dst with approximately normal values (mean, std): each is
// the sum of four 16-bit uniforms (Irwin–Hall), which needs only integer
// arithmetic and one exact float scaling, so it is bit-identical across
// machines (math.Log/Cos are not guaranteed to be). Work is split in fixed
// 64Ki chunks with their own seeds, so it is parallel yet independent of the
// thread count.
func fillNormal(dst []float32, seed int64, name string, mean, std float64) {
	h := fnv.New64a()
	h.Write([]byte(name))
	base := uint64(seed) ^ h.Sum64()
	const chunk = 1 << 16
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for c := 0; c*chunk < len(dst); c++ {
		part := dst[c*chunk : min(len(dst), (c+1)*chunk)]
		wg.Add(1)
		sem <- struct{}{}
		go func(c int, part []float32) {
			defer func() { <-sem; wg.Done() }()
			rng := splitmix64(base + uint64(c)*0xd1342543de82ef95)
			rng.next()
			for i := range part {
				r := rng.next()
				s := int64(r&0xffff) + int64(r>>16&0xffff) + int64(r>>32&0xffff) + int64(r>>48)
				part[i] = float32(mean + float64(s-131070)/irwinHallStd*std)
			}
		}(c, part)
	}
	wg.Wait()
}

// InitStd is the standard deviation of random weights (HF's
// initializer_range default).
const InitStd = 0.02

// NewRandom builds a model with seeded random weights, like vLLM's
// load_format=dummy: matrices and biases ~ N(0, 0.02²) (approximately), norm
// scales ~ N(1, 0.02²) so a norm that ignored its weight would be caught by
// the tests. The same (cfg, seed) gives bit-identical weights everywhere.
func NewRandom(cfg Config, seed int64, opts ...Option) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	m := newModel(cfg, o)
	for name, t := range m.tensors() {
		mean := 0.0
		if t.isNorm {
			mean = 1
		}
		if t.data != nil {
			fillNormal(t.data, seed, name, mean, InitStd)
			continue
		}
		// bf16 storage: the same values as fp32 storage, rounded.
		tmp := make([]float32, len(t.b16))
		fillNormal(tmp, seed, name, mean, InitStd)
		t.set(tmp)
	}
	return m, nil
}

// hfTensor is one HF-named tensor, as a view into the model's (possibly
// stacked) buffers.
type hfTensor struct {
	shape  []int
	data   []float32 // fp32 storage (norms and biases always)
	b16    []uint16  // bf16 storage of a matrix
	isNorm bool
}

// set stores vals (len = the tensor's size) into the view, rounding to
// bf16 where that is the storage.
func (t hfTensor) set(vals []float32) {
	if t.data != nil {
		copy(t.data, vals)
		return
	}
	for i, v := range vals[:len(t.b16)] {
		t.b16[i] = safetensors.F32ToBF16(v)
	}
}

// tensors maps HF tensor names to views of the model's buffers. Stacked
// matrices are split back into their q/k/v and gate/up parts.
func (m *Model) tensors() map[string]hfTensor {
	D, I := m.cfg.HiddenSize, m.cfg.IntermediateSize
	ts := map[string]hfTensor{
		"model.embed_tokens.weight": m.embed.view(0, m.cfg.VocabSize, m.cfg.VocabSize, D),
		"model.norm.weight":         {shape: []int{D}, data: m.norm, isNorm: true},
	}
	if !m.cfg.TieWordEmbeddings {
		ts["lm_head.weight"] = m.lmHead.view(0, m.cfg.VocabSize, m.cfg.VocabSize, D)
	}
	for i := range m.layers {
		l := &m.layers[i]
		p := fmt.Sprintf("model.layers.%d.", i)
		ts[p+"input_layernorm.weight"] = hfTensor{shape: []int{D}, data: l.attnNorm, isNorm: true}
		ts[p+"post_attention_layernorm.weight"] = hfTensor{shape: []int{D}, data: l.mlpNorm, isNorm: true}
		q, kv := m.qDim, m.kvDim
		ts[p+"self_attn.q_proj.weight"] = l.wqkv.view(0, q, q, D)
		ts[p+"self_attn.k_proj.weight"] = l.wqkv.view(q, q+kv, kv, D)
		ts[p+"self_attn.v_proj.weight"] = l.wqkv.view(q+kv, q+2*kv, kv, D)
		if l.bqkv != nil {
			ts[p+"self_attn.q_proj.bias"] = hfTensor{shape: []int{m.qDim}, data: l.bqkv[:m.qDim]}
			ts[p+"self_attn.k_proj.bias"] = hfTensor{shape: []int{m.kvDim}, data: l.bqkv[m.qDim : m.qDim+m.kvDim]}
			ts[p+"self_attn.v_proj.bias"] = hfTensor{shape: []int{m.kvDim}, data: l.bqkv[m.qDim+m.kvDim:]}
		}
		ts[p+"self_attn.o_proj.weight"] = l.wo.view(0, D, D, m.qDim)
		if l.bo != nil {
			ts[p+"self_attn.o_proj.bias"] = hfTensor{shape: []int{D}, data: l.bo}
		}
		ts[p+"mlp.gate_proj.weight"] = l.wgu.view(0, I, I, D)
		ts[p+"mlp.up_proj.weight"] = l.wgu.view(I, 2*I, I, D)
		ts[p+"mlp.down_proj.weight"] = l.wdown.view(0, D, D, I)
	}
	return ts
}
