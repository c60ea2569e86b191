package study

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"cuelang.org/go/cue/parser"
)

// FuzzLoad feeds arbitrary bytes to the loader. It must never panic; it
// returns either a plan with at least one run, every run with an ID, or a
// *study.Error whose every diagnostic says something: a message free of
// formatting junk, and, for input that is valid CUE syntax, a position or
// a field path (or one of the study-level messages that have neither).
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
	f.Add([]byte(`base: {backend: "native"}
grid: n: [1, 2]`))
	f.Add([]byte(`base: {model: "random:llama-15m", dataset: source: "jsonl"}
experiments: [{n: 1}, {dataset: path: "p.jsonl"}]`))
	f.Add([]byte(`base: {model: "m", precision: "fp16"}
grid: {backend: ["pytorch", "vllm"], pytorch: batch_size: [1, 2], vllm: engine: max_num_seqs: [8], decoder: temperature: [0, 0.5]}
carbon: region: "FR"
runners: vllm: kind: "docker"`))
	id := regexp.MustCompile(`^[0-9a-f]{12}$`)
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 {
			return
		}
		p, err := LoadSource(context.Background(), "fuzz.cue", src)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, not *study.Error: %v", err, err)
			}
			if len(se.Diags) == 0 {
				t.Fatalf("*study.Error without diagnostics: %v", err)
			}
			_, perr := parser.ParseFile("fuzz.cue", src)
			for _, d := range se.Diags {
				if strings.TrimSpace(d.Msg) == "" {
					t.Fatalf("diagnostic without a message: %+v", d)
				}
				if strings.Contains(d.Msg, "%!") || strings.Contains(d.Msg, "<nil>") {
					t.Fatalf("diagnostic with formatting junk: %q", d.Msg)
				}
				if perr == nil && d.File == "" && d.Path == "" && !studyLevel(d.Msg) {
					t.Fatalf("diagnostic with neither position nor path: %q", d.Msg)
				}
				if d.File != "" && (d.Line < 1 || d.Col < 1) {
					t.Fatalf("diagnostic with a broken position: %+v", d)
				}
			}
			return
		}
		if len(p.Runs) == 0 {
			t.Fatal("plan without runs and without error")
		}
		for _, r := range p.Runs {
			if !id.MatchString(r.ID) || len(r.ConfigJSON) == 0 {
				t.Fatalf("run without ID or config: %+v", r)
			}
		}
		if len(p.Order) != p.Execution.Cycles && p.Execution.SteadyState == nil {
			t.Fatalf("%d cycles in the order, execution says %d", len(p.Order), p.Execution.Cycles)
		}
	})
}

// studyLevel reports whether msg is one of the messages about the whole
// study, which have no position or path of their own.
func studyLevel(msg string) bool {
	for _, p := range []string{"the study produced no runs", "nothing to run: all "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
