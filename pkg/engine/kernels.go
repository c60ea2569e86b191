package engine

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas/gonum"
)

// pool is a fixed set of goroutines that split loops with the caller: a
// parallel loop costs one channel send per extra worker, not a goroutine
// per row. One pool lives for one Generate/Forward call.
type pool struct {
	n    int
	jobs chan poolJob
}

type poolJob struct {
	fn     func(worker, lo, hi int)
	worker int
	lo, hi int
	wg     *sync.WaitGroup
}

func newPool(n int) *pool {
	p := &pool{n: n, jobs: make(chan poolJob, n)}
	for i := 1; i < n; i++ {
		go func() {
			for j := range p.jobs {
				j.fn(j.worker, j.lo, j.hi)
				j.wg.Done()
			}
		}()
	}
	return p
}

func (p *pool) close() { close(p.jobs) }

// run calls fn over [0,total) split into at most p.n contiguous ranges, one
// per worker index; the caller runs worker 0. Each worker index runs exactly
// once per call, so fn may use per-worker scratch indexed by worker.
func (p *pool) run(total int, fn func(worker, lo, hi int)) {
	n := min(p.n, total)
	if n <= 1 {
		if total > 0 {
			fn(0, 0, total)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(n - 1)
	for w := 1; w < n; w++ {
		p.jobs <- poolJob{fn: fn, worker: w, lo: total * w / n, hi: total * (w + 1) / n, wg: &wg}
	}
	fn(0, 0, total/n)
	wg.Wait()
}

var blas32 gonum.Implementation

// dotGo is the portable inner product: gonum's Sdot, a 16-way unrolled SSE
// loop on amd64 and plain Go elsewhere.
func dotGo(a, b []float32) float32 {
	return blas32.Sdot(len(a), a, 1, b, 1)
}

// axpyGo is the portable y += a*x (gonum's SSE Saxpy on amd64).
func axpyGo(a float32, x, y []float32) {
	blas32.Saxpy(len(x), a, x, 1, y, 1)
}

func bf16(v uint16) float32 { return math.Float32frombits(uint32(v) << 16) }

func dotBF16Go(x []float32, w []uint16) float32 {
	var s0, s1, s2, s3 float32
	x = x[:len(w)]
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += x[i] * bf16(w[i])
		s1 += x[i+1] * bf16(w[i+1])
		s2 += x[i+2] * bf16(w[i+2])
		s3 += x[i+3] * bf16(w[i+3])
	}
	for ; i < len(w); i++ {
		s0 += x[i] * bf16(w[i])
	}
	return (s0 + s1) + (s2 + s3)
}

func dot4Go(w, x []float32, stride int, out *[4]float32) {
	n := len(w)
	for r := range 4 {
		out[r] = dotGo(w, x[r*stride:r*stride+n])
	}
}

func dot4BF16Go(w []uint16, x []float32, stride int, out *[4]float32) {
	n := len(w)
	for r := range 4 {
		out[r] = dotBF16Go(x[r*stride:r*stride+n], w)
	}
}

// bf16Widen converts bfloat16 bits to float32 (exact).
func bf16Widen(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = bf16(v)
	}
}

// actBlock is how many activation rows are multiplied against one weight
// row before moving to the next: as many as fit in about 24 KiB, so they stay
// in L1 while weight rows stream past (a multiple of 4, the kernel's width;
// at most 32). Measured on BenchmarkMatmul/T64: 32 rows of 576 floats
// (72 KiB, spilling to L2) ran at ~10 GMAC/s, 8-16 rows at 15-20.
func actBlock(cols int) int {
	return min(32, max(4, (24<<10)/(cols*4)&^3))
}

// matmul computes dst[t][r] (+)= x[t] · w[r] for T activation rows. Each
// weight row is loaded once per block of activation rows and multiplied
// against four activation rows per kernel call (one weight load, four FMAs),
// which is why a batched decode step costs little more than a
// single-sequence one and prefill is compute- rather than memory-bound.
// Weight rows are split across the pool.
func matmul(p *pool, dst, x []float32, T int, w *mat, add bool) {
	rows, cols := w.rows, w.cols
	p.run(rows, func(_, lo, hi int) {
		var o [4]float32
		store := func(t, r int, s float32) {
			if add {
				dst[t*rows+r] += s
			} else {
				dst[t*rows+r] = s
			}
		}
		blk := actBlock(cols)
		// Two-level blocking: a tile of weight rows (~256 KiB, stays in L2)
		// is read from memory once and multiplied against every block of
		// activation rows (L1-sized) before moving on.
		tile := max(4, (256<<10)/(cols*4))
		for r0 := lo; r0 < hi; r0 += tile {
			r1 := min(hi, r0+tile)
			for t0 := 0; t0 < T; t0 += blk {
				t1 := min(T, t0+blk)
				for r := r0; r < r1; r++ {
					t := t0
					if w.f32 != nil {
						wr := w.f32[r*cols : (r+1)*cols]
						for ; t+4 <= t1; t += 4 {
							dot4(wr, x[t*cols:], cols, &o)
							store(t, r, o[0])
							store(t+1, r, o[1])
							store(t+2, r, o[2])
							store(t+3, r, o[3])
						}
						for ; t < t1; t++ {
							store(t, r, dot(x[t*cols:(t+1)*cols], wr))
						}
					} else {
						wr := w.b16[r*cols : (r+1)*cols]
						for ; t+4 <= t1; t += 4 {
							dot4BF16(wr, x[t*cols:], cols, &o)
							store(t, r, o[0])
							store(t+1, r, o[1])
							store(t+2, r, o[2])
							store(t+3, r, o[3])
						}
						for ; t < t1; t++ {
							store(t, r, dotBF16(x[t*cols:(t+1)*cols], wr))
						}
					}
				}
			}
		}
	})
}

// rmsnorm writes x / sqrt(mean(x²) + eps) * w into dst (HF LlamaRMSNorm; the
// mean is accumulated in float64).
func rmsnorm(dst, x, w []float32, eps float64) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(x))+eps))
	for i, v := range x {
		dst[i] = v * inv * w[i]
	}
}

// ropeInvFreq returns the rotary frequencies, computed in float32 as
// transformers does, with linear or llama3 scaling applied.
func ropeInvFreq(c Config, hd int) []float64 {
	f := make([]float64, hd/2)
	for i := range f {
		f[i] = float64(float32(1 / math.Pow(c.RopeTheta, float64(2*i)/float64(hd))))
	}
	rs := c.RopeScaling
	if rs == nil {
		return f
	}
	switch rs.Type {
	case "linear":
		for i := range f {
			f[i] = float64(float32(f[i] / rs.Factor))
		}
	case "llama3":
		old := float64(rs.OriginalMaxPositionEmbeddings)
		lowWave, highWave := old/rs.LowFreqFactor, old/rs.HighFreqFactor
		for i, inv := range f {
			wave := 2 * math.Pi / inv
			switch {
			case wave < highWave:
				// high frequency: unchanged
			case wave > lowWave:
				f[i] = inv / rs.Factor
			default:
				smooth := (old/wave - rs.LowFreqFactor) / (rs.HighFreqFactor - rs.LowFreqFactor)
				f[i] = (1-smooth)*inv/rs.Factor + smooth*inv
			}
			f[i] = float64(float32(f[i]))
		}
	}
	return f
}

// ropeTable fills cos and sin (len hd/2) for one position. The angle is
// rounded to float32 like transformers' float32 position × frequency.
func ropeTable(cos, sin []float32, invFreq []float64, pos int) {
	for i, f := range invFreq {
		a := float64(float32(pos) * float32(f))
		cos[i] = float32(math.Cos(a))
		sin[i] = float32(math.Sin(a))
	}
}

// rope rotates one head vector in place with HF's rotate_half convention:
// dimension i pairs with i + hd/2.
func rope(v, cos, sin []float32) {
	h := len(v) / 2
	a, b := v[:h], v[h:2*h]
	for i := range h {
		x, y := a[i], b[i]
		a[i] = x*cos[i] - y*sin[i]
		b[i] = y*cos[i] + x*sin[i]
	}
}

// silu is x·sigmoid(x).
func silu(x float32) float32 {
	return x / (1 + expf(-x))
}

// expf is a float32 exp accurate to about 2 ulp (Cephes' expf: reduce by
// k·ln2 with a two-part constant, degree-6 polynomial on |r| <= ln2/2, scale
// by 2^k). math.Exp in float64 was a tenth of prefill time in attention's
// softmax and SwiGLU.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.72:
		return float32(math.Inf(1))
	case x < -87.33:
		return 0
	}
	const log2e = 1.44269504088896341
	fk := x * log2e
	if fk < 0 {
		fk -= 0.5
	} else {
		fk += 0.5
	}
	k := int32(fk)
	kf := float32(k)
	r := x - kf*0.693359375 - kf*-2.12194440e-4
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	y := p*r*r + r + 1
	// 2^k in two halves so k = 128 or -126 stay representable.
	h := k / 2
	return y * math.Float32frombits(uint32(h+127)<<23) * math.Float32frombits(uint32(k-h+127)<<23)
}
