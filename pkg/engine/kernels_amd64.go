//go:build amd64 && !purego

package engine

import "golang.org/x/sys/cpu"

// useAsm selects the AVX2+FMA kernels of kernels_amd64.s. Plain Go never
// emits SIMD (nor FMA below GOAMD64=v3), and both decode (streaming weights)
// and prefill (compute) are bounded by these inner products. Tests flip it
// to check the portable kernels give the same results.
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func dotAVX2(a, b *float32, n int) float32

//go:noescape
func dotBF16AVX2(x *float32, w *uint16, n int) float32

//go:noescape
func dot4AVX2(w *float32, x *float32, stride int, n int, out *[4]float32)

//go:noescape
func dot4BF16AVX2(w *uint16, x *float32, stride int, n int, out *[4]float32)

// dot is the inner product of two equal-length vectors.
func dot(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	if !useAsm || n < 8 {
		return dotGo(a, b)
	}
	n8 := n &^ 7
	s := dotAVX2(&a[0], &b[0], n8)
	for i := n8; i < n; i++ {
		s += a[i] * b[i]
	}
	return s
}

// dotBF16 is x · w with w in bfloat16.
func dotBF16(x []float32, w []uint16) float32 {
	n := len(w)
	x = x[:n]
	if !useAsm || n < 8 {
		return dotBF16Go(x, w)
	}
	n8 := n &^ 7
	s := dotBF16AVX2(&x[0], &w[0], n8)
	for i := n8; i < n; i++ {
		s += x[i] * bf16(w[i])
	}
	return s
}

// dot4 computes out[i] = w · x[i*stride : i*stride+len(w)] for i < 4.
func dot4(w, x []float32, stride int, out *[4]float32) {
	n := len(w)
	_ = x[3*stride+n-1]
	if !useAsm || n < 8 {
		dot4Go(w, x, stride, out)
		return
	}
	n8 := n &^ 7
	dot4AVX2(&w[0], &x[0], stride, n8, out)
	for i := n8; i < n; i++ {
		for r := range 4 {
			out[r] += w[i] * x[r*stride+i]
		}
	}
}

// dot4BF16 is dot4 with w in bfloat16.
func dot4BF16(w []uint16, x []float32, stride int, out *[4]float32) {
	n := len(w)
	_ = x[3*stride+n-1]
	if !useAsm || n < 8 {
		dot4BF16Go(w, x, stride, out)
		return
	}
	n8 := n &^ 7
	dot4BF16AVX2(&w[0], &x[0], stride, n8, out)
	for i := n8; i < n; i++ {
		for r := range 4 {
			out[r] += bf16(w[i]) * x[r*stride+i]
		}
	}
}

//go:noescape
func axpyAVX2(a float32, x, y *float32, n int)

// axpy computes y += a*x.
func axpy(a float32, x, y []float32) {
	n := len(x)
	y = y[:n]
	if !useAsm || n < 8 {
		axpyGo(a, x, y)
		return
	}
	n8 := n &^ 7
	axpyAVX2(a, &x[0], &y[0], n8)
	for i := n8; i < n; i++ {
		y[i] += a * x[i]
	}
}
