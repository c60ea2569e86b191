package engine

import (
	"context"
	"math"
	"testing"

	"github.com/llenergymeasure/llem/pkg/engine/safetensors"
)

// TestKernels checks every inner-product kernel (assembly where available,
// and the portable ones) against a float64 sum, for lengths around the
// 8/16/32-element unrolling boundaries and unaligned starts.
func TestKernels(t *testing.T) {
	rng := splitmix64(5)
	vec := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.float64()*2 - 1)
		}
		return v
	}
	for _, asm := range []bool{false, true} {
		saved := useAsm
		useAsm = asm && saved
		for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 100, 288, 577} {
			for _, off := range []int{0, 1, 3} {
				stride := n + 5
				x := vec(off + 4*stride)[off:]
				w := vec(off + n)[off:]
				wb := make([]uint16, n)
				for i, v := range w {
					wb[i] = safetensors.F32ToBF16(v)
				}
				tol := 1e-5 * float64(n+1)
				y := vec(n + off)[off:]
				y0 := append([]float32(nil), y...)
				axpy(0.5, w, y)
				for i := range n {
					if want := float64(y0[i]) + 0.5*float64(w[i]); math.Abs(float64(y[i])-want) > 1e-6 {
						t.Fatalf("asm=%v n=%d: axpy[%d] = %v, want %v", useAsm, n, i, y[i], want)
					}
				}
				var o4, b4 [4]float32
				if n > 0 {
					dot4(w, x, stride, &o4)
					dot4BF16(wb, x, stride, &b4)
				}
				for r := range 4 {
					xr := x[r*stride : r*stride+n]
					var want, wantB float64
					for i := range n {
						want += float64(w[i]) * float64(xr[i])
						wantB += float64(bf16(wb[i])) * float64(xr[i])
					}
					if got := dot(xr, w); math.Abs(float64(got)-want) > tol {
						t.Errorf("asm=%v n=%d off=%d: dot = %v, want %v", useAsm, n, off, got, want)
					}
					if got := dotBF16(xr, wb); math.Abs(float64(got)-wantB) > tol {
						t.Errorf("asm=%v n=%d off=%d: dotBF16 = %v, want %v", useAsm, n, off, got, wantB)
					}
					if n > 0 && (math.Abs(float64(o4[r])-want) > tol || math.Abs(float64(b4[r])-wantB) > tol) {
						t.Errorf("asm=%v n=%d off=%d row %d: dot4 = %v, dot4BF16 = %v, want %v, %v", useAsm, n, off, r, o4[r], b4[r], want, wantB)
					}
				}
			}
		}
		useAsm = saved
	}
}

// TestPortableKernelsMatchReference runs the reference comparison with the
// assembly kernels switched off, so the portable path is checked too.
func TestPortableKernelsMatchReference(t *testing.T) {
	if !useAsm {
		t.Skip("assembly kernels not in use; TestLogitsMatchReference already covers the portable ones")
	}
	useAsm = false
	defer func() { useAsm = true }()
	m := tinyModel(t, "qwen2-bias-untied")
	ref := newRef(m).logits([]int{1, 2, 3, 4, 5, 6, 7, 8, 9})
	got, err := m.Forward(context.Background(), nil, []int{1, 2, 3, 4, 5, 6, 7, 8, 9})
	if err != nil {
		t.Fatal(err)
	}
	for p := range got {
		if d := maxAbsDiff(got[p], ref[p]); d > 2e-5 {
			t.Fatalf("position %d: max |engine-reference| = %g", p, d)
		}
	}
}

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-87); x < 88; x += 0.001953125 {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 3e-7 {
		t.Errorf("expf max relative error %g, want <= 3e-7 (~2 ulp)", worst)
	}
	if expf(-100) != 0 || !math.IsInf(float64(expf(100)), 1) || expf(0) != 1 {
		t.Errorf("expf edges: %v %v %v", expf(-100), expf(100), expf(0))
	}
	if nan := float32(math.NaN()); expf(nan) == expf(nan) {
		t.Error("expf(NaN) is not NaN")
	}
}
