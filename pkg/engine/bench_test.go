package engine

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Benchmarks for `make bench`. Each iteration is one short Generate call, so
// the default -benchtime runs only a few of them (the machine's cores are
// shared). Metrics:
//   tok/s          decode (or prefill) tokens per second of that phase
//   roofline_frac  decode tok/s ÷ (copy bandwidth ÷ weight bytes per token),
//                  at batch 1: how close decode gets to streaming the
//                  weights at memory-copy speed
//   read_roofline_frac  the same against the read-only bandwidth (stricter:
//                  a copy also pays for writes, so decode can beat copy speed)
//   GB/s           (BenchmarkCopyBandwidth) bytes moved by copy(), read+write,
//                  as STREAM's Copy counts them; (BenchmarkReadBandwidth)
//                  bytes read by the dot kernel

var (
	benchModels   = map[string]*Model{}
	benchModelsMu sync.Mutex
)

func benchModel(b *testing.B, preset, storage string) *Model {
	benchModelsMu.Lock()
	defer benchModelsMu.Unlock()
	key := preset + "/" + storage
	if m, ok := benchModels[key]; ok {
		return m
	}
	cfg, ok := Preset(preset)
	if !ok {
		b.Fatalf("no preset %s", preset)
	}
	m, err := NewRandom(cfg, 1, WithStorage(storage))
	if err != nil {
		b.Fatal(err)
	}
	benchModels[key] = m
	return m
}

var (
	copyOnce sync.Once
	copyBW   float64 // bytes/s, read+write
)

// measureCopyBandwidth copies a 256 MiB buffer (beyond any cache this
// machine's workloads see) with one goroutine per core and returns the best
// of three rounds, in bytes moved per second.
func measureCopyBandwidth() float64 {
	copyOnce.Do(func() {
		const size = 256 << 20
		src, dst := make([]byte, size), make([]byte, size)
		for i := range src {
			src[i] = byte(i)
		}
		copy(dst, src) // fault the pages in
		n := runtime.GOMAXPROCS(0)
		best := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			var wg sync.WaitGroup
			for w := range n {
				wg.Add(1)
				go func(lo, hi int) {
					defer wg.Done()
					copy(dst[lo:hi], src[lo:hi])
				}(size*w/n, size*(w+1)/n)
			}
			wg.Wait()
			best = min(best, time.Since(start))
		}
		copyBW = 2 * size / best.Seconds()
	})
	return copyBW
}

var (
	readOnce sync.Once
	readBW   float64 // bytes/s
)

// measureReadBandwidth streams a 256 MiB float32 array through the same dot
// kernel the matmul uses, one goroutine per core, best of three rounds: the
// read-only ceiling a decode step (which only reads weights) can reach.
func measureReadBandwidth() float64 {
	readOnce.Do(func() {
		const n = 64 << 20
		const chunk = 4096
		a := make([]float32, n)
		v := make([]float32, chunk)
		for i := range a {
			a[i] = 1
		}
		threads := runtime.GOMAXPROCS(0)
		best := time.Duration(1 << 62)
		sink := make([]float32, threads)
		for range 3 {
			start := time.Now()
			var wg sync.WaitGroup
			for w := range threads {
				wg.Add(1)
				go func(w, lo, hi int) {
					defer wg.Done()
					var s float32
					for i := lo; i+chunk <= hi; i += chunk {
						s += dot(a[i:i+chunk], v)
					}
					sink[w] = s
				}(w, n/threads*w, n/threads*(w+1))
			}
			wg.Wait()
			best = min(best, time.Since(start))
		}
		readBW = 4 * n / best.Seconds()
	})
	return readBW
}

func BenchmarkReadBandwidth(b *testing.B) {
	for range b.N {
		readOnce = sync.Once{}
		measureReadBandwidth()
	}
	b.ReportMetric(readBW/1e9, "GB/s")
}

func BenchmarkCopyBandwidth(b *testing.B) {
	for range b.N {
		copyOnce = sync.Once{}
		measureCopyBandwidth()
	}
	b.ReportMetric(copyBW/1e9, "GB/s")
}

func benchPrompt(n, seed int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = 1 + (i*7919+seed*104729)%1000
	}
	return p
}

const (
	decodePrompt = 8
	decodeTokens = 16
	prefillLen   = 32
)

func BenchmarkDecode(b *testing.B) {
	for _, preset := range []string{"llama-15m", "smollm-135m"} {
		for _, storage := range []string{"fp32", "bf16"} {
			for _, batch := range []int{1, 8} {
				if storage == "bf16" && batch != 1 {
					continue // bf16 is about the bytes read at batch 1
				}
				b.Run(fmt.Sprintf("%s/%s/batch%d", preset, storage, batch), func(b *testing.B) {
					m := benchModel(b, preset, storage)
					reqs := make([]Request, batch)
					for i := range reqs {
						reqs[i] = Request{Prompt: benchPrompt(decodePrompt, i), MaxNewTokens: decodeTokens + 1}
					}
					var start int64
					var total time.Duration
					hooks := Hooks{
						DecodeStart: func(t int64) { start = t },
						DecodeEnd:   func(t int64) { total += time.Duration(t - start) },
					}
					b.ResetTimer()
					for range b.N {
						if _, err := m.Generate(context.Background(), reqs, Sampling{Greedy: true, IgnoreEOS: true}, hooks); err != nil {
							b.Fatal(err)
						}
					}
					b.StopTimer()
					tps := float64(b.N*batch*decodeTokens) / total.Seconds()
					b.ReportMetric(tps, "tok/s")
					if batch == 1 {
						// Measure the bandwidths right after the decode runs, so
						// both see the same load on a shared machine.
						copyOnce, readOnce = sync.Once{}, sync.Once{}
						roof := measureCopyBandwidth() / float64(m.WeightBytesPerToken())
						b.ReportMetric(tps/roof, "roofline_frac")
						b.ReportMetric(tps*float64(m.WeightBytesPerToken())/measureReadBandwidth(), "read_roofline_frac")
					}
				})
			}
		}
	}
}

func BenchmarkPrefill(b *testing.B) {
	for _, preset := range []string{"llama-15m", "smollm-135m"} {
		for _, batch := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/batch%d", preset, batch), func(b *testing.B) {
				m := benchModel(b, preset, "fp32")
				reqs := make([]Request, batch)
				for i := range reqs {
					reqs[i] = Request{Prompt: benchPrompt(prefillLen, i), MaxNewTokens: 1}
				}
				var start int64
				var total time.Duration
				hooks := Hooks{
					PrefillStart: func(t int64) { start = t },
					PrefillEnd:   func(t int64) { total += time.Duration(t - start) },
				}
				b.ResetTimer()
				for range b.N {
					if _, err := m.Generate(context.Background(), reqs, Sampling{Greedy: true}, hooks); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(b.N*batch*prefillLen)/total.Seconds(), "tok/s")
			})
		}
	}
}

// BenchmarkMatmul times the kernel alone on a prefill-shaped product
// (T activation rows × SmolLM's 576→1536 projection), in multiply-adds per
// second: the compute ceiling prefill and batched decode work against.
func BenchmarkMatmul(b *testing.B) {
	for _, T := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("T%d", T), func(b *testing.B) {
			w := newMat(1536, 576, false)
			fillNormal(w.f32, 1, "w", 0, InitStd)
			x := make([]float32, T*576)
			fillNormal(x, 2, "x", 0, 1)
			dst := make([]float32, T*1536)
			p := newPool(runtime.GOMAXPROCS(0))
			defer p.close()
			for b.Loop() {
				matmul(p, dst, x, T, &w, false)
			}
			b.ReportMetric(float64(b.N)*float64(T*1536*576)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
