// Package testmodel writes a tiny real checkpoint with a byte-level
// tokenizer for tests that need a model that loads and generates in
// milliseconds. Only tests import it.
package testmodel

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/pkg/engine"
)

// TinyTokenizerJSON is a byte-level BPE tokenizer whose ids are the byte
// values, plus one merge ("h e" → 256) and an <eos> special token (257).
func TinyTokenizerJSON() []byte {
	bs := map[int]rune{}
	n := 0
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			bs[b] = rune(b)
		} else {
			bs[b] = rune(256 + n)
			n++
		}
	}
	vocab := map[string]int{"he": 256}
	for b, r := range bs {
		vocab[string(r)] = b
	}
	raw, _ := json.Marshal(map[string]any{
		"added_tokens":  []any{map[string]any{"id": 257, "content": "<eos>", "special": true}},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"decoder":       map[string]any{"type": "ByteLevel"},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": []string{"h e"}},
	})
	return raw
}

// TinyCheckpoint writes a 2-layer Llama checkpoint (bf16 safetensors,
// config.json) with TinyTokenizerJSON (vocabulary 258, EOS 257) into a
// temporary directory and returns it: a real checkpoint that loads and
// generates in milliseconds.
func TinyCheckpoint(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	mc := engine.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", HiddenSize: 32, IntermediateSize: 48, NumLayers: 2,
		NumHeads: 4, NumKVHeads: 2, VocabSize: 258, MaxPositionEmbeddings: 128, RMSNormEps: 1e-5, RopeTheta: 10000,
		TieWordEmbeddings: true, EOSTokenIDs: []int{257}}
	m, err := engine.NewRandom(mc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(dir, "BF16"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), TinyTokenizerJSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
