package study

import (
	"context"
	"errors"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and it
// either returns a plan with runs or an error (a *study.Error for anything
// that parses as input).
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`model: "random:llama-15m"
backend: "native"`))
	f.Add([]byte(nativeBase + `grid: {n: [1, 2], native: batch_size: [1, 4]}
exclude: [{n: 2}]
execution: {cycles: 2, order: "shuffled", seed: 3}`))
	f.Add([]byte(`base: {model: "m", backend: "nativ"}
grid: vllm: engine: max_num_seqs: [1]`))
	f.Add([]byte(`import "github.com/llenergymeasure/llem/schema"
schema.#Study
experiments: [for x in [1, 2] {model: "m", n: x}]`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 {
			return
		}
		p, err := LoadSource(context.Background(), "fuzz.cue", src)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) && err.Error() == "" {
				t.Fatalf("empty error")
			}
			return
		}
		if len(p.Runs) == 0 {
			t.Fatal("plan without runs and without error")
		}
	})
}
