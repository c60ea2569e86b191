//go:build !amd64 || purego

package engine

// useAsm is false where no assembly kernels exist (non-amd64 or the purego
// build tag); the portable Go kernels run instead.
var useAsm = false

func dot(a, b []float32) float32                                    { return dotGo(a, b[:len(a)]) }
func dotBF16(x []float32, w []uint16) float32                       { return dotBF16Go(x[:len(w)], w) }
func dot4(w, x []float32, stride int, out *[4]float32)              { dot4Go(w, x, stride, out) }
func dot4BF16(w []uint16, x []float32, stride int, out *[4]float32) { dot4BF16Go(w, x, stride, out) }

func axpy(a float32, x, y []float32) { axpyGo(a, x, y[:len(x)]) }
