package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

func gunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// gpt2JSON assembles GPT-2's tokenizer.json (as HF publishes it for "gpt2")
// from OpenAI's encoder.json and vocab.bpe in testdata/gpt2.
func gpt2JSON(t testing.TB) []byte {
	t.Helper()
	var vocab map[string]int
	if err := json.Unmarshal(gunzip(t, "testdata/gpt2/encoder.json.gz"), &vocab); err != nil {
		t.Fatal(err)
	}
	var merges []string
	for _, line := range strings.Split(string(gunzip(t, "testdata/gpt2/vocab.bpe.gz")), "\n") {
		if line != "" && !strings.HasPrefix(line, "#version") {
			merges = append(merges, line)
		}
	}
	doc := map[string]any{
		"version":        "1.0",
		"added_tokens":   []any{map[string]any{"id": 50256, "content": "<|endoftext|>", "special": true}},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
		"decoder":        map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
		"model":          map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestGPT2PublishedIDs checks token IDs published by two independent GPT-2
// tokenizers: gpt-3-encoder's Encoder.test.js and tiktoken's
// tests/test_simple_public.py.
func TestGPT2PublishedIDs(t *testing.T) {
	tok := mustLoad(t, gpt2JSON(t))
	if tok.VocabSize() != 50257 {
		t.Fatalf("vocabulary %d, want 50257", tok.VocabSize())
	}
	for _, tc := range []struct {
		text string
		want []int
	}{
		{"", nil},
		{" ", []int{220}},
		{"\t", []int{197}},
		{"This is some text", []int{1212, 318, 617, 2420}},
		{"indivisible", []int{521, 452, 12843}},
		{"hello 👋 world 🌍", []int{31373, 50169, 233, 995, 12520, 234, 235}},
		{"hello world", []int{31373, 995}},
		{"hello <|endoftext|>", []int{31373, 220, 50256}},
	} {
		got := tok.Encode(tc.text, true)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Encode(%q) = %v, want %v", tc.text, got, tc.want)
		}
		if dec := tok.Decode(got, false); dec != tc.text {
			t.Errorf("Decode(Encode(%q)) = %q", tc.text, dec)
		}
	}
}

// BenchmarkEncodeGPT2 is encoding speed with the real GPT-2 vocabulary.
func BenchmarkEncodeGPT2(b *testing.B) {
	tok := mustLoad(b, gpt2JSON(b))
	var text bytes.Buffer
	for text.Len() < 64<<10 {
		text.WriteString("The quick brown fox jumps over the lazy dog; naïve café, 日本語のテキスト, 3.14159 and 2026-11-26.\n")
	}
	s := text.String()
	b.SetBytes(int64(len(s)))
	n := 0
	for b.Loop() {
		tok.mu.Lock()
		clear(tok.cache)
		tok.mu.Unlock()
		n += len(tok.Encode(s, false))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
}

// TestFastPathMatchesStrings: BPE on ids gives what BPE on strings gives.
func TestFastPathMatchesStrings(t *testing.T) {
	tok := mustLoad(t, gpt2JSON(t))
	if tok.fast == nil {
		t.Fatal("GPT-2 should use the id fast path")
	}
	raw, err := os.ReadFile("testdata/splits.json")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw) + " indivisibility antidisestablishmentarianism 🙂🙂🙂 aaaaaaaaaaaaaaaa"
	fast := tok.Encode(text, false)
	tok.fast = nil
	clear(tok.cache)
	slow := tok.Encode(text, false)
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast and string BPE differ: %d vs %d tokens", len(fast), len(slow))
	}
}
