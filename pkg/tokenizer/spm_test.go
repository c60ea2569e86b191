package tokenizer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// spmJSON builds a Llama-2-style tokenizer.json: <unk> <s> </s>, the 256
// byte tokens <0x00>…<0xFF> (ids 3…258), the characters ▁ h e l o w r d
// (259…266) and six merges (267…272: he, ll, ▁he, ▁hell, ▁hello, ▁w).
// style "normalizer" uses Prepend+Replace normalizers (Llama 2, TinyLlama);
// "metaspace" a Metaspace pre-tokenizer and decoder (Mistral 7B v0.1).
func spmJSON(t testing.TB, style string, byteFallback bool) []byte {
	t.Helper()
	vocab := map[string]int{"<unk>": 0, "<s>": 1, "</s>": 2}
	for b := range 256 {
		vocab[fmt.Sprintf("<0x%02X>", b)] = 3 + b
	}
	for i, c := range []string{"▁", "h", "e", "l", "o", "w", "r", "d"} {
		vocab[c] = 259 + i
	}
	merges := []string{"h e", "l l", "▁ he", "▁he ll", "▁hell o", "▁ w"}
	for i, m := range merges {
		vocab[strings.ReplaceAll(m, " ", "")] = 267 + i
	}
	doc := map[string]any{
		"added_tokens": []any{
			map[string]any{"id": 0, "content": "<unk>", "special": true},
			map[string]any{"id": 1, "content": "<s>", "special": true},
			map[string]any{"id": 2, "content": "</s>", "special": true},
		},
		"post_processor": map[string]any{"type": "TemplateProcessing",
			"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<s>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
			"special_tokens": map[string]any{"<s>": map[string]any{"id": "<s>", "ids": []int{1}, "tokens": []string{"<s>"}}}},
		"model": map[string]any{"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": byteFallback, "vocab": vocab, "merges": merges},
	}
	switch style {
	case "normalizer":
		doc["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": "▁"},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": "▁"},
		}}
		doc["pre_tokenizer"] = nil
		doc["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": "▁"}, "content": " "},
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
			map[string]any{"type": "Strip", "content": " ", "start": 1, "stop": 0},
		}}
	case "metaspace":
		doc["pre_tokenizer"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
		doc["decoder"] = map[string]any{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestSentencePieceStyle(t *testing.T) {
	const (
		o, r, l, d = 263, 265, 262, 266
		hello, w   = 271, 272
		he, ll     = 267, 268
	)
	for _, tc := range []struct {
		style, text string
		fallback    bool
		want        []int
		decoded     string // "" = text
	}{
		{"normalizer", "hello world", true, []int{1, hello, w, o, r, l, d}, ""},
		{"metaspace", "hello world", true, []int{1, hello, w, o, r, l, d}, ""},
		// é is not in the vocabulary: its UTF-8 bytes C3 A9 as <0xC3> <0xA9>.
		{"normalizer", "hé", true, []int{1, 259, 260, 3 + 0xC3, 3 + 0xA9}, ""},
		// Special tokens split the text; each piece is normalized (Prepend)…
		{"normalizer", "hello</s>hello", true, []int{1, hello, 2, hello}, "hello</s> hello"},
		// …while Metaspace's prepend_scheme "first" prepends only at the start.
		{"metaspace", "hello</s>hello", true, []int{1, hello, 2, he, ll, o}, ""},
		// Without byte_fallback unknown characters are <unk>, fused.
		{"normalizer", "ééh", false, []int{1, 259, 0, 260}, "<unk>h"},
	} {
		tok := mustLoad(t, spmJSON(t, tc.style, tc.fallback))
		got := tok.Encode(tc.text, true)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s Encode(%q) = %v, want %v", tc.style, tc.text, got, tc.want)
		}
		want := tc.decoded
		if want == "" {
			want = tc.text
		}
		if dec := tok.Decode(got[1:], false); dec != want {
			t.Errorf("%s Decode(%v) = %q, want %q", tc.style, got[1:], dec, want)
		}
	}
}

// TestHeapMergeMatchesStrings: the heap BPE over ids agrees with the plain
// lowest-rank-first string BPE on long random SentencePiece text.
func TestHeapMergeMatchesStrings(t *testing.T) {
	tok := mustLoad(t, spmJSON(t, "normalizer", true))
	rng := rand.New(rand.NewPCG(1, 2))
	parts := []string{"hello", "he", "ll", "o", " ", "w", "world", "hh", "ee", "  "}
	var b strings.Builder
	for b.Len() < 2000 {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	text := b.String()
	heapIDs := tok.Encode(text, false)
	stringIDs := tok.bpeStrings(tok.normalize(text))
	if !reflect.DeepEqual(heapIDs, stringIDs) {
		t.Fatalf("heap and string BPE differ (%d vs %d tokens)", len(heapIDs), len(stringIDs))
	}
}

// BenchmarkEncodeSentencePieceLong encodes one 100k-character prompt, which a
// SentencePiece tokenizer treats as a single word (the heap keeps it
// O(n log n)).
func BenchmarkEncodeSentencePieceLong(b *testing.B) {
	tok := mustLoad(b, spmJSON(b, "normalizer", true))
	text := strings.Repeat("hello world hé ", 100_000/15)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Encode(text, false)
	}
}
