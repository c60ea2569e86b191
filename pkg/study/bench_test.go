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
func BenchmarkPlan10k(b *testing.B) {
	src := bench10k()
	b.ReportAllocs()
	var runs int
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		p, err := LoadSource(context.Background(), "bench.cue", src)
		if err != nil {
			b.Fatal(err)
		}
		runs = len(p.Runs)
	}
	if runs != 10000 {
		b.Fatalf("got %d runs, want 10000", runs)
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
