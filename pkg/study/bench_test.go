package study

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// bench10k is a 10,000-run grid: 10 × 10 × 10 × 10 over universal dims.
func bench10k() []byte {
	var b strings.Builder
	b.WriteString("name: \"bench\"\nbase: {model: \"random:llama-15m\", backend: \"native\", precision: \"fp32\", dataset: {source: \"synthetic\", input_len: 32, output_len: 16}}\n")
	b.WriteString("grid: {\n")
	ints := func(from, n int) string {
		var xs []string
		for i := range n {
			xs = append(xs, fmt.Sprint(from+i))
		}
		return "[" + strings.Join(xs, ", ") + "]"
	}
	fmt.Fprintf(&b, "\tn: %s\n", ints(1, 10))
	fmt.Fprintf(&b, "\tmax_output_tokens: %s\n", ints(16, 10))
	fmt.Fprintf(&b, "\trandom_seed: %s\n", ints(0, 10))
	fmt.Fprintf(&b, "\tnative: batch_size: %s\n", ints(1, 10))
	b.WriteString("}\nexecution: {cycles: 3, order: \"shuffled\"}\n")
	return []byte(b.String())
}

// BenchmarkPlan10k measures load + validate + expand of a 10,000-run grid
// (target: ≤ 0.4 s and ≤ 64 MB allocated per plan on the 2-core machine).
// It is the best case: one backend, universal dimensions, so the parts
// cache validates each distinct value once.
func BenchmarkPlan10k(b *testing.B) { benchPlan(b, bench10k(), 10000) }

// benchMixed10k is a 10,000-run grid over two backends with
// backend-scoped dimensions, decoder and backend params varied:
// 2 backends × (5 temperatures × 5 top_p) × 200 scoped points.
func benchMixed10k() []byte {
	var b strings.Builder
	b.WriteString("name: \"bench-mixed\"\nbase: {model: \"random:llama-15m\", precision: \"fp16\", dataset: {source: \"synthetic\", input_len: 32, output_len: 16}}\n")
	b.WriteString("grid: {\n\tbackend: [\"pytorch\", \"vllm\"]\n")
	list := func(n int, f func(i int) string) string {
		var xs []string
		for i := range n {
			xs = append(xs, f(i))
		}
		return "[" + strings.Join(xs, ", ") + "]"
	}
	fmt.Fprintf(&b, "\tdecoder: temperature: %s\n", list(5, func(i int) string { return fmt.Sprint(float64(i) * 0.25) }))
	fmt.Fprintf(&b, "\tdecoder: top_p: %s\n", list(5, func(i int) string { return fmt.Sprint(0.6 + float64(i)*0.1) }))
	fmt.Fprintf(&b, "\tpytorch: batch_size: %s\n", list(20, func(i int) string { return fmt.Sprint(i + 1) }))
	fmt.Fprintf(&b, "\tpytorch: num_beams: %s\n", list(10, func(i int) string { return fmt.Sprint(i + 1) }))
	fmt.Fprintf(&b, "\tvllm: engine: max_num_seqs: %s\n", list(20, func(i int) string { return fmt.Sprint(8 * (i + 1)) }))
	fmt.Fprintf(&b, "\tvllm: engine: gpu_memory_utilization: %s\n", list(10, func(i int) string { return fmt.Sprint(0.5 + float64(i)*0.05) }))
	b.WriteString("}\nexecution: {cycles: 3, order: \"shuffled\"}\n")
	return []byte(b.String())
}

// BenchmarkPlanMixed10k is the 10,000-run plan without the best case's
// shortcuts: two backends, scoped dimensions, decoder and backend params
// varied (same targets).
func BenchmarkPlanMixed10k(b *testing.B) { benchPlan(b, benchMixed10k(), 10000) }

func benchPlan(b *testing.B, src []byte, want int) {
	b.ReportAllocs()
	var runs int
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		p, err := LoadSource(context.Background(), "bench.cue", src)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Skipped) > 0 {
			b.Fatalf("%d skipped, first: %+v", len(p.Skipped), p.Skipped[0])
		}
		runs = len(p.Runs)
	}
	if runs != want {
		b.Fatalf("got %d runs, want %d", runs, want)
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(runs), "ns/run")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(runs), "B/run")
}

// BenchmarkPlanQuickstart is the fixed cost of a plan: compiling the
// embedded schema and a two-run study.
func BenchmarkPlanQuickstart(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(context.Background(), "../../examples/quickstart.cue"); err != nil {
			b.Fatal(err)
		}
	}
}
