package engine

import (
	"context"
	"fmt"
	"math"

	"github.com/llenergymeasure/llem/internal/errs"
)

// Sequence is one sequence's KV cache: keys and values (after RoPE) of every
// position seen so far, per layer.
type Sequence struct {
	k, v [][]float32 // per layer, [capacity * kvDim]
	n    int
	cap  int
}

// NewSequence allocates a KV cache for up to capacity positions (at most
// MaxPositionEmbeddings).
func (m *Model) NewSequence(capacity int) *Sequence {
	capacity = min(capacity, m.cfg.MaxPositionEmbeddings)
	s := &Sequence{cap: capacity, k: make([][]float32, m.cfg.NumLayers), v: make([][]float32, m.cfg.NumLayers)}
	for l := range s.k {
		s.k[l] = make([]float32, capacity*m.kvDim)
		s.v[l] = make([]float32, capacity*m.kvDim)
	}
	return s
}

// Len is the number of positions in the cache.
func (s *Sequence) Len() int { return s.n }

// row is one token being processed: its sequence and position.
type row struct {
	seq *Sequence
	pos int
	tok int
}

// fwd holds the scratch buffers of forward passes, grown on demand and
// reused across decode steps.
type fwd struct {
	m      *Model
	p      *pool
	x, h   []float32 // [T, D]
	qkv    []float32 // [T, qDim+2kvDim]
	att    []float32 // [T, qDim]
	gu     []float32 // [T, 2I]
	act    []float32 // [T, I]
	cos    []float32 // [T, hd/2]
	sin    []float32
	hsel   []float32 // [L, D] rows that need logits
	logits []float32 // [L, V]
	embRow []float32 // an embedding row widened from bf16 storage
	scores [][]float32
	maxCtx int
}

func (m *Model) newFwd() *fwd {
	f := &fwd{m: m, p: newPool(m.opts.threads)}
	f.embRow = make([]float32, m.cfg.HiddenSize)
	f.scores = make([][]float32, m.opts.threads)
	return f
}

func (f *fwd) close() { f.p.close() }

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

func (f *fwd) ensure(T, L, ctxLen int) {
	m := f.m
	D, I := m.cfg.HiddenSize, m.cfg.IntermediateSize
	f.x = grow(f.x, T*D)
	f.h = grow(f.h, T*D)
	f.qkv = grow(f.qkv, T*(m.qDim+2*m.kvDim))
	f.att = grow(f.att, T*m.qDim)
	f.gu = grow(f.gu, T*2*I)
	f.act = grow(f.act, T*I)
	f.cos = grow(f.cos, T*m.hd/2)
	f.sin = grow(f.sin, T*m.hd/2)
	f.hsel = grow(f.hsel, L*D)
	f.logits = grow(f.logits, L*m.cfg.VocabSize)
	if ctxLen > f.maxCtx {
		for i := range f.scores {
			f.scores[i] = make([]float32, ctxLen)
		}
		f.maxCtx = ctxLen
	}
}

// forward runs the transformer over rows (any mix of sequences and
// positions; each row's position must be its sequence's next free slot, in
// order) and returns the logits of the rows listed in logitRows, [len, V].
// Rows of different sequences never see each other: attention reads only the
// row's own sequence cache, so batched prefill needs no padding or masks.
func (f *fwd) forward(ctx context.Context, rows []row, logitRows []int) ([]float32, error) {
	m := f.m
	cfg := m.cfg
	T, D, I, V := len(rows), cfg.HiddenSize, cfg.IntermediateSize, cfg.VocabSize
	hd, half := m.hd, m.hd/2
	qkvDim := m.qDim + 2*m.kvDim
	maxCtx := 0
	for _, r := range rows {
		if r.pos >= r.seq.cap {
			return nil, errs.BadInput(fmt.Errorf("run model: position %d exceeds the KV cache of %d positions", r.pos, r.seq.cap),
				fmt.Sprintf("keep prompt plus output within max_position_embeddings (%d)", cfg.MaxPositionEmbeddings))
		}
		if r.tok < 0 || r.tok >= V {
			return nil, errs.BadInput(fmt.Errorf("run model: token id %d outside the vocabulary of %d", r.tok, V), "use token ids from the model's own tokenizer")
		}
		maxCtx = max(maxCtx, r.pos+1)
	}
	f.ensure(T, len(logitRows), maxCtx)
	x := f.x
	for t, r := range rows {
		copy(x[t*D:(t+1)*D], m.embed.row(r.tok, f.embRow))
		ropeTable(f.cos[t*half:(t+1)*half], f.sin[t*half:(t+1)*half], m.invFreq, r.pos)
	}
	groups := cfg.NumHeads / cfg.NumKVHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	for li := range m.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l := &m.layers[li]
		window := cfg.layerWindow(li)
		f.p.run(T, func(_, lo, hi int) {
			for t := lo; t < hi; t++ {
				rmsnorm(f.h[t*D:(t+1)*D], x[t*D:(t+1)*D], l.attnNorm, cfg.RMSNormEps)
			}
		})
		matmul(f.p, f.qkv, f.h, T, &l.wqkv, false)
		// Bias, RoPE and the KV cache write; rows own distinct cache slots.
		f.p.run(T, func(_, lo, hi int) {
			for t := lo; t < hi; t++ {
				r := rows[t]
				q := f.qkv[t*qkvDim : (t+1)*qkvDim]
				if l.bqkv != nil {
					for i, b := range l.bqkv {
						q[i] += b
					}
				}
				cos, sin := f.cos[t*half:(t+1)*half], f.sin[t*half:(t+1)*half]
				for h := range cfg.NumHeads + cfg.NumKVHeads {
					rope(q[h*hd:(h+1)*hd], cos, sin)
				}
				copy(r.seq.k[li][r.pos*m.kvDim:(r.pos+1)*m.kvDim], q[m.qDim:m.qDim+m.kvDim])
				copy(r.seq.v[li][r.pos*m.kvDim:(r.pos+1)*m.kvDim], q[m.qDim+m.kvDim:])
			}
		})
		f.p.run(T*cfg.NumHeads, func(wk, lo, hi int) {
			for i := lo; i < hi; i++ {
				t, h := i/cfg.NumHeads, i%cfg.NumHeads
				r := rows[t]
				q := f.qkv[t*qkvDim+h*hd : t*qkvDim+(h+1)*hd]
				off := (h / groups) * hd
				// A window of w keeps the keys at positions pos-w+1..pos,
				// as transformers' sliding-window mask does (kv > q - w).
				start := 0
				if window > 0 {
					start = max(0, r.pos-window+1)
				}
				sc := f.scores[wk][:r.pos+1-start]
				kc, vc := r.seq.k[li], r.seq.v[li]
				mx := float32(math.Inf(-1))
				for j := range sc {
					p := (start + j) * m.kvDim
					s := dot(q, kc[p+off:p+off+hd]) * scale
					sc[j] = s
					mx = max(mx, s)
				}
				var sum float32
				for j, s := range sc {
					e := expf(s - mx)
					sc[j] = e
					sum += e
				}
				out := f.att[t*m.qDim+h*hd : t*m.qDim+(h+1)*hd]
				clear(out)
				inv := 1 / sum
				for j, e := range sc {
					p := (start + j) * m.kvDim
					axpy(e*inv, vc[p+off:p+off+hd], out)
				}
			}
		})
		matmul(f.p, x, f.att, T, &l.wo, true)
		if l.bo != nil {
			for t := range T {
				for i, b := range l.bo {
					x[t*D+i] += b
				}
			}
		}
		f.p.run(T, func(_, lo, hi int) {
			for t := lo; t < hi; t++ {
				rmsnorm(f.h[t*D:(t+1)*D], x[t*D:(t+1)*D], l.mlpNorm, cfg.RMSNormEps)
			}
		})
		matmul(f.p, f.gu, f.h, T, &l.wgu, false)
		f.p.run(T, func(_, lo, hi int) {
			for t := lo; t < hi; t++ {
				g, u, a := f.gu[t*2*I:t*2*I+I], f.gu[t*2*I+I:(t+1)*2*I], f.act[t*I:(t+1)*I]
				for i := range a {
					a[i] = silu(g[i]) * u[i]
				}
			}
		})
		matmul(f.p, x, f.act, T, &l.wdown, true)
	}
	for _, r := range rows {
		r.seq.n = max(r.seq.n, r.pos+1)
	}
	if len(logitRows) == 0 {
		return nil, nil
	}
	for i, t := range logitRows {
		rmsnorm(f.hsel[i*D:(i+1)*D], x[t*D:(t+1)*D], m.norm, cfg.RMSNormEps)
	}
	logits := f.logits[:len(logitRows)*V]
	matmul(f.p, logits, f.hsel, len(logitRows), m.lmHead, false)
	return logits, nil
}

// Forward appends tokens to seq (a fresh sequence when nil) and returns the
// logits after every appended token ([len(tokens)][vocab], freshly
// allocated). Calling it token by token is step-by-step decode with the KV
// cache; calling it once with a whole sequence is a full recompute.
func (m *Model) Forward(ctx context.Context, seq *Sequence, tokens []int) ([][]float32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq == nil {
		seq = m.NewSequence(len(tokens))
	}
	rows := make([]row, len(tokens))
	idx := make([]int, len(tokens))
	for i, t := range tokens {
		rows[i] = row{seq: seq, pos: seq.n + i, tok: t}
		idx[i] = i
	}
	f := m.newFwd()
	defer f.close()
	logits, err := f.forward(ctx, rows, idx)
	if err != nil {
		return nil, err
	}
	V := m.cfg.VocabSize
	out := make([][]float32, len(tokens))
	for i := range out {
		out[i] = append([]float32(nil), logits[i*V:(i+1)*V]...)
	}
	return out, nil
}
