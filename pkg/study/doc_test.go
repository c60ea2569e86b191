package study

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDocExamples loads the CUE blocks of docs/study-language.md. A block
// that names a model or a base is a complete study (or experiment) and
// must load as written; the others are fragments (a grid, an exclude
// list, ...) and must load once given a base with a model. Where a block
// states its run count ("= 12 runs", "12 in all"), the plan has it.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/study-language.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```cue\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 8 {
		t.Fatalf("found %d cue blocks in docs/study-language.md", len(blocks))
	}
	complete := regexp.MustCompile(`(?m)^\s*(model|base|name):`)
	count := regexp.MustCompile(`(?m)(?:= |; )(\d+) (?:runs$|in all)`)
	counted := 0
	for i, b := range blocks {
		src := b[1]
		full := complete.MatchString(src)
		if !full {
			src = "base: {model: \"random:llama-15m\"}\n" + src
		}
		p, err := LoadSource(t.Context(), "/tmp/doc.cue", []byte(src))
		if err != nil {
			t.Errorf("block %d (complete: %v) does not load: %v\n%s", i+1, full, err, b[1])
			continue
		}
		if m := count.FindAllStringSubmatch(src, -1); m != nil {
			counted++
			want, _ := strconv.Atoi(m[len(m)-1][1])
			if len(p.Runs) != want {
				t.Errorf("block %d: %d runs, the doc says %d\n%s", i+1, len(p.Runs), want, strings.TrimSpace(b[1]))
			}
		}
	}
	if counted < 2 {
		t.Errorf("checked the run count of %d blocks, want the two grid examples", counted)
	}
}
