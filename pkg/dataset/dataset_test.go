package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/protocol"
)

func synthCfg(n, in, out int, dist string, spread float64) Config {
	return Config{N: n, Order: "interleaved", MaxInputTokens: 512, MaxOutputTokens: 128, RandomSeed: 42,
		Dataset: Spec{Source: "synthetic", InputLen: in, OutputLen: out, Distribution: dist, Spread: spread}}
}

func TestSyntheticTokenIDs(t *testing.T) {
	opts := Options{VocabSize: 50, Reserved: []int{0, 1, 2}}
	ps, err := Build(synthCfg(20, 16, 4, "fixed", 0), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 20 {
		t.Fatalf("got %d prompts", len(ps))
	}
	for _, p := range ps {
		if len(p.TokenIDs) != 16 || p.MaxTokens != 4 || p.Text != "" {
			t.Fatalf("prompt %+v, want 16 ids and max_tokens 4", p)
		}
		for _, id := range p.TokenIDs {
			if id < 3 || id >= 50 {
				t.Fatalf("id %d is reserved or outside the vocabulary", id)
			}
		}
	}
	again, _ := Build(synthCfg(20, 16, 4, "fixed", 0), opts)
	if !reflect.DeepEqual(ps, again) {
		t.Error("same seed gave different prompts")
	}
	c := synthCfg(20, 16, 4, "fixed", 0)
	c.RandomSeed = 7
	other, _ := Build(c, opts)
	if reflect.DeepEqual(ps, other) {
		t.Error("different seeds gave the same prompts")
	}
}

func TestSyntheticDistributions(t *testing.T) {
	for _, tc := range []struct {
		dist           string
		spread         float64
		lo, hi         int // allowed input lengths
		wantVariation  bool
		maxIn, wantMax int
	}{
		{"fixed", 0.5, 100, 100, false, 512, 0},
		{"uniform", 0.25, 75, 125, true, 512, 0},
		{"normal", 0.25, 1, 512, true, 512, 0},
		{"normal", 1, 1, 110, true, 110, 110}, // clipped to max_input_tokens
	} {
		c := synthCfg(400, 100, 50, tc.dist, tc.spread)
		c.MaxInputTokens = tc.maxIn
		ps, err := Build(c, Options{VocabSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		sum := 0
		for _, p := range ps {
			n := len(p.TokenIDs)
			if n < tc.lo || n > tc.hi || p.MaxTokens < 1 || p.MaxTokens > 128 {
				t.Fatalf("%s: input %d outside [%d, %d] or output %d", tc.dist, n, tc.lo, tc.hi, p.MaxTokens)
			}
			seen[n] = true
			sum += n
		}
		if (len(seen) > 1) != tc.wantVariation {
			t.Errorf("%s: %d distinct lengths", tc.dist, len(seen))
		}
		if tc.wantMax > 0 && !seen[tc.wantMax] {
			t.Errorf("%s: no prompt clipped to %d", tc.dist, tc.wantMax)
		}
		if tc.wantMax == 0 {
			if mean := float64(sum) / 400; mean < 95 || mean > 105 {
				t.Errorf("%s: mean length %.1f, want ≈100", tc.dist, mean)
			}
		}
	}
}

// fakeTokenizer stands in for a BPE tokenizer: one token per
// whitespace-separated field, except "multi" which is two.
type fakeTokenizer struct{}

func (fakeTokenizer) Encode(text string, _ bool) []int {
	var ids []int
	for _, f := range strings.Fields(text) {
		ids = append(ids, 1)
		if f == "multi" {
			ids = append(ids, 2)
		}
	}
	return ids
}

func TestSyntheticText(t *testing.T) {
	ps, err := Build(synthCfg(5, 33, 8, "fixed", 0), Options{Tokenizer: fakeTokenizer{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.TokenIDs != nil || len(strings.Fields(p.Text)) != 33 {
			t.Errorf("prompt %+v, want 33 words of text", p)
		}
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func texts(ps []protocol.Prompt) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Text)
	}
	return out
}

const sourced = `{"_provenance": "test"}
{"prompt": "a1", "source": "a"}
{"text": "a2", "source": "a"}

{"question": " b1 ", "source": "b"}
{"instruction": "a3", "source": "a"}
{"input": "c1", "source": "c"}
`

func TestJSONLOrders(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.jsonl", sourced)
	for _, tc := range []struct {
		order string
		n     int
		want  []string
	}{
		{"interleaved", 5, []string{"a1", "b1", "c1", "a2", "a3"}},
		{"grouped", 5, []string{"a1", "a2", "a3", "b1", "c1"}},
		{"interleaved", 2, []string{"a1", "b1"}},
	} {
		c := Config{N: tc.n, Order: tc.order, RandomSeed: 1, Dataset: Spec{Source: "jsonl", Path: "p.jsonl"}}
		ps, err := Build(c, Options{BaseDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if got := texts(ps); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.order, got, tc.want)
		}
	}
	c := Config{N: 5, Order: "shuffled", RandomSeed: 1, Dataset: Spec{Source: "jsonl", Path: filepath.Join(dir, "p.jsonl")}}
	a, _ := Build(c, Options{})
	b, _ := Build(c, Options{})
	if !reflect.DeepEqual(a, b) {
		t.Error("shuffled is not reproducible with the same seed")
	}
	got := texts(a)
	sorted := append([]string(nil), got...)
	if strings.Join(sorted, "") == "a1a2b1a3c1" {
		t.Error("shuffled left file order unchanged")
	}
	c.RandomSeed = 2
	d, _ := Build(c, Options{})
	if reflect.DeepEqual(a, d) {
		t.Error("different seeds shuffled identically")
	}
}

func TestJSONLErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body, field string
		n                 int
		want              string
	}{
		{"bad line", "{\"prompt\": \"x\"}\nnot json\n", "", 1, "bad.jsonl:2: not a JSON object"},
		{"no field", "{\"prompt\": \"x\"}\n{\"body\": \"y\", \"id\": 3}\n", "", 1, "bad.jsonl:2: dataset: no prompt field found (looked for prompt, text, instruction, input, question; the record has body, id)"},
		{"named field", "{\"prompt\": \"x\"}\n", "body", 1, `field "body" is missing`},
		{"too few", "{\"prompt\": \"x\"}\n", "", 3, "has only 1 prompts but n = 3"},
		{"empty", "\n\n", "", 1, "has no prompts"},
		{"bad max_new_tokens", "{\"prompt\": \"x\", \"max_new_tokens\": 2.5}\n", "", 1, `"max_new_tokens" is 2.5`},
	} {
		p := writeFile(t, dir, "bad.jsonl", tc.body)
		_, err := Build(Config{N: tc.n, Dataset: Spec{Source: "jsonl", Path: p, Field: tc.field}}, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrDataset) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	_, err := Build(Config{N: 1, Dataset: Spec{Source: "jsonl", Path: filepath.Join(dir, "missing.jsonl")}}, Options{})
	if err == nil || errs.Hint(err) == "" {
		t.Errorf("missing file: %v (want an error with a hint)", err)
	}
	for _, c := range []Config{
		{N: 0, Dataset: Spec{Source: "synthetic", InputLen: 1, OutputLen: 1}},
		{N: 1, Dataset: Spec{Source: "hub"}},
		{N: 1, Order: "sorted", Dataset: Spec{Source: "synthetic", InputLen: 1, OutputLen: 1}},
		{N: 1, Dataset: Spec{Source: "synthetic", InputLen: 1, OutputLen: 1, Distribution: "zipf"}},
		{N: 1, Dataset: Spec{Source: "synthetic", InputLen: 0, OutputLen: 1}},
	} {
		if _, err := Build(c, Options{VocabSize: 10}); err == nil || errs.Hint(err) == "" {
			t.Errorf("Build(%+v) = %v, want an error with a hint", c, err)
		}
	}
}

func TestAIEnergyScore(t *testing.T) {
	cache := t.TempDir()
	c := Config{N: 2, Order: "interleaved", Dataset: Spec{Source: "aienergyscore"}}
	_, err := Build(c, Options{HFHubCache: cache})
	if err == nil || !errors.Is(err, ErrDataset) ||
		!strings.Contains(errs.Hint(err), "huggingface-cli download --repo-type dataset AIEnergyScore/text_generation --revision "+AIEnergyScoreRevision) {
		t.Fatalf("empty cache: %v (hint %q)", err, errs.Hint(err))
	}
	// Another revision of the set is not the pinned one.
	writeFile(t, cache, "datasets--AIEnergyScore--text_generation/snapshots/abc123/text_generation.jsonl", "{\"text\": \"other\"}\n")
	if _, err := Build(c, Options{HFHubCache: cache}); err == nil {
		t.Fatal("read a snapshot other than the pinned revision")
	}
	writeFile(t, cache, "datasets--AIEnergyScore--text_generation/snapshots/"+AIEnergyScoreRevision+"/text_generation.jsonl",
		"{\"text\": \"first\"}\n{\"text\": \"  \"}\n{\"text\": \" second \"}\n{\"text\": \"third\"}\n")
	ps, err := Build(c, Options{HFHubCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(ps); !reflect.DeepEqual(got, []string{"first", "second"}) {
		t.Errorf("got %v", got)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"model":"x","n":3,"dataset":"prompts.jsonl","random_seed":5,"decoder":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{N: 3, Order: "interleaved", MaxInputTokens: 512, MaxOutputTokens: 128, RandomSeed: 5,
		Dataset: Spec{Source: "jsonl", Path: "prompts.jsonl"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v", c, want)
	}
	if _, err := ParseConfig([]byte(`{"dataset":"wikitext"}`)); err == nil {
		t.Error("accepted an unknown dataset alias")
	}
}

// noWordsTokenizer has no single-token words: every byte is a token.
type noWordsTokenizer struct{}

func (noWordsTokenizer) Encode(text string, _ bool) []int { return make([]int, len(text)) }

func TestSyntheticFallsBackToIDs(t *testing.T) {
	ps, err := Build(synthCfg(2, 5, 2, "fixed", 0), Options{Tokenizer: noWordsTokenizer{}, VocabSize: 300})
	if err != nil || len(ps[0].TokenIDs) != 5 || ps[0].Text != "" {
		t.Fatalf("got %+v, %v; want token IDs", ps, err)
	}
	if _, err := Build(synthCfg(2, 5, 2, "fixed", 0), Options{Tokenizer: noWordsTokenizer{}}); err == nil {
		t.Fatal("no words and no vocabulary size: want an error")
	}
}

func TestJSONLMaxTokens(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "m.jsonl", "{\"prompt\": \"a\", \"max_new_tokens\": 7}\n{\"prompt\": \"b\", \"max_tokens\": 3}\n{\"prompt\": \"c\"}\n")
	ps, err := Build(Config{N: 3, Dataset: Spec{Source: "jsonl", Path: p}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].MaxTokens != 7 || ps[1].MaxTokens != 3 || ps[2].MaxTokens != 0 {
		t.Errorf("max tokens %d %d %d, want 7 3 0", ps[0].MaxTokens, ps[1].MaxTokens, ps[2].MaxTokens)
	}
}

func TestHubCacheDir(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", "")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := HubCacheDir(); got != "/xdg/huggingface/hub" {
		t.Errorf("XDG: %s", got)
	}
	t.Setenv("HF_HOME", "/hf")
	if got := HubCacheDir(); got != "/hf/hub" {
		t.Errorf("HF_HOME: %s", got)
	}
	t.Setenv("HF_HUB_CACHE", "/cache")
	if got := HubCacheDir(); got != "/cache" {
		t.Errorf("HF_HUB_CACHE: %s", got)
	}
}
