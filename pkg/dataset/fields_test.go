package dataset

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/schema"
)

// TestPromptFieldOrderAgrees keeps the prompt-field auto-detect order in
// one order everywhere it is written: promptFields (Go), the #JSONL doc
// comment (schema/dataset.cue, shown by llem params and the docs), the
// Python harnesses' PROMPT_FIELDS, and docs/study-language.md.
func TestPromptFieldOrderAgrees(t *testing.T) {
	want := []string{"prompt", "text", "instruction", "input", "question"} // the Python original's order
	if !slices.Equal(promptFields, want) {
		t.Errorf("promptFields = %v, want the original's %v", promptFields, want)
	}

	// Schema: the doc comment of #JSONL.field, "... among a, b, c."
	cue := string(schema.Files()["dataset.cue"])
	m := regexp.MustCompile(`(?s)#JSONL: \{.*?((?:\t// [^\n]*\n)+)\tfield\?:`).FindStringSubmatch(cue)
	if m == nil {
		t.Fatal("schema/dataset.cue: no doc comment above #JSONL.field")
	}
	doc := strings.Join(strings.Fields(strings.ReplaceAll(m[1], "//", "")), " ")
	lm := regexp.MustCompile(`among ([a-z_]+(?:, [a-z_]+)*)`).FindStringSubmatch(doc)
	if lm == nil {
		t.Fatalf("schema/dataset.cue: #JSONL.field doc does not list the order (\"among a, b, ...\"): %q", doc)
	}
	if got := strings.Split(lm[1], ", "); !slices.Equal(got, promptFields) {
		t.Errorf("schema/dataset.cue lists %v, pkg/dataset tries %v", got, promptFields)
	}

	// Python harnesses: PROMPT_FIELDS = ("a", "b", ...).
	py, err := os.ReadFile(filepath.Join("..", "backend", "pyharness", "llem_common.py"))
	if err != nil {
		t.Fatal(err)
	}
	pm := regexp.MustCompile(`(?m)^PROMPT_FIELDS = \(([^)]*)\)`).FindSubmatch(py)
	if pm == nil {
		t.Fatal("llem_common.py: no PROMPT_FIELDS = (...) line")
	}
	var got []string
	for _, q := range regexp.MustCompile(`"([^"]*)"|'([^']*)'`).FindAllStringSubmatch(string(pm[1]), -1) {
		got = append(got, q[1]+q[2])
	}
	if !slices.Equal(got, promptFields) {
		t.Errorf("llem_common.py PROMPT_FIELDS = %v, pkg/dataset tries %v", got, promptFields)
	}

	// Docs.
	md, err := os.ReadFile(filepath.Join("..", "..", "docs", "study-language.md"))
	if err != nil {
		t.Fatal(err)
	}
	quoted := "`" + strings.Join(promptFields, "`, `") + "`"
	if !strings.Contains(string(md), quoted) {
		t.Errorf("docs/study-language.md does not list the auto-detect order as %s", quoted)
	}
}

// TestPromptFieldPrecedence: the first non-empty field in the order wins.
func TestPromptFieldPrecedence(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"question": "q", "input": "i", "instruction": "ins", "text": "t"}`, "t"},
		{`{"question": "q", "input": "i", "instruction": "ins"}`, "ins"},
		{`{"question": "q", "input": "i"}`, "i"},
		{`{"question": "q", "prompt": "  ", "input": ""}`, "q"},
	} {
		p := filepath.Join(t.TempDir(), "d.jsonl")
		if err := os.WriteFile(p, []byte(tc.line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		recs, err := readJSONL(p, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1 || recs[0].prompt.Text != tc.want {
			t.Errorf("%s: prompt %q, want %q", tc.line, recs[0].prompt.Text, tc.want)
		}
	}
}
