package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestSplitsMatchPythonRegex(t *testing.T) {
	raw, err := os.ReadFile("testdata/splits.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []map[string]any
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	funcs := map[string]splitFunc{"gpt2": gpt2Split, "llama3": llama3Split(3), "qwen2": llama3Split(1)}
	for _, c := range cases {
		text := c["text"].(string)
		for name, f := range funcs {
			var want []string
			for _, w := range c[name].([]any) {
				want = append(want, w.(string))
			}
			got := splitAll(text, f)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s split of %q:\n got %q\nwant %q", name, text, got, want)
			}
		}
	}
}

// tinyJSON builds a GPT-2-style tokenizer.json whose vocabulary is the 256
// byte symbols (id = byte value) plus six merges, so expected ids can be
// worked out by hand.
func tinyJSON(t testing.TB, arrayMerges bool, extra map[string]any) []byte {
	t.Helper()
	vocab := map[string]int{}
	for b := range 256 {
		vocab[string(byteToRune[b])] = b
	}
	merges := [][2]string{{"h", "e"}, {"l", "l"}, {"Ġ", "t"}, {"Ġt", "he"}, {"he", "ll"}, {"hell", "o"}}
	var mj []any
	for i, m := range merges {
		vocab[m[0]+m[1]] = 256 + i
		if arrayMerges {
			mj = append(mj, []string{m[0], m[1]})
		} else {
			mj = append(mj, m[0]+" "+m[1])
		}
	}
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 300, "content": "<|endoftext|>", "special": true},
			{"id": 301, "content": "<sep>", "special": false, "lstrip": true, "rstrip": true},
		},
		"normalizer":     nil,
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
		"post_processor": map[string]any{"type": "ByteLevel", "trim_offsets": true},
		"decoder":        map[string]any{"type": "ByteLevel"},
		"model":          map[string]any{"type": "BPE", "vocab": vocab, "merges": mj},
	}
	for k, v := range extra {
		doc[k] = v
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustLoad(t testing.TB, raw []byte) *Tokenizer {
	t.Helper()
	tok, err := Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestEncodeHandWorked(t *testing.T) {
	for _, arrays := range []bool{false, true} {
		tok := mustLoad(t, tinyJSON(t, arrays, nil))
		for _, tc := range []struct {
			text string
			want []int
		}{
			// "hello" → he, ll, hell, hello; " the" → he, Ġt, Ġthe; " world" has no merges.
			{"hello the world", []int{261, 259, 32, 119, 111, 114, 108, 100}},
			{"hello<|endoftext|>the", []int{261, 300, 116, 256}},
			// <sep> strips the whitespace on both sides.
			{"hello  <sep>  hello", []int{261, 301, 261}},
			{"<|endoftext|><|endoftext|>", []int{300, 300}},
			{"", nil},
		} {
			if got := tok.Encode(tc.text, true); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("arrays=%v Encode(%q) = %v, want %v", arrays, tc.text, got, tc.want)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	tok := mustLoad(t, tinyJSON(t, false, nil))
	for _, text := range []string{
		"hello the world",
		"naïve café — 日本語のテキスト, Ελληνικά, emoji 🙂🚀!",
		"  spaces\t\ttabs\nnewlines\r\n  ",
		"before <|endoftext|> after",
		"= = Reception = =",
	} {
		ids := tok.Encode(text, false)
		if got := tok.Decode(ids, false); got != text {
			t.Errorf("round trip of %q gave %q (ids %v)", text, got, ids)
		}
	}
	ids := tok.Encode("a<|endoftext|>b", false)
	if got := tok.Decode(ids, true); got != "ab" {
		t.Errorf("Decode with skipSpecial = %q, want %q", got, "ab")
	}
	// A multi-byte character cut in half decodes to U+FFFD, not invalid UTF-8.
	if got := tok.Decode(tok.Encode("日", false)[:1], false); got != "\uFFFD" {
		t.Errorf("half a character decoded to %q", got)
	}
}

func TestTemplateAndLlama3Style(t *testing.T) {
	extra := map[string]any{
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": llama3Pattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false},
		}},
		"post_processor": map[string]any{"type": "Sequence", "processors": []any{
			map[string]any{"type": "ByteLevel"},
			map[string]any{"type": "TemplateProcessing",
				"single":         []any{map[string]any{"SpecialToken": map[string]any{"id": "<|endoftext|>", "type_id": 0}}, map[string]any{"Sequence": map[string]any{"id": "A", "type_id": 0}}},
				"special_tokens": map[string]any{"<|endoftext|>": map[string]any{"id": "<|endoftext|>", "ids": []int{300}, "tokens": []string{"<|endoftext|>"}}}},
		}},
	}
	tok := mustLoad(t, tinyJSON(t, false, extra))
	// Llama 3 splits digits in groups of three: "12345" → "123", "45".
	got := tok.Encode("hello 12345", true)
	want := []int{300, 261, 32, '1', '2', '3', '4', '5'}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got := tok.Encode("hello", false); !reflect.DeepEqual(got, []int{261}) {
		t.Errorf("Encode without specials = %v", got)
	}
}

func TestDigitsAndPrefixSpace(t *testing.T) {
	extra := map[string]any{"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Digits", "individual_digits": true},
		map[string]any{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true},
	}}}
	tok := mustLoad(t, tinyJSON(t, false, extra))
	// "hello" gets a prefix space ("Ġhello" has no merge for "Ġh", so
	// Ġ + hello); each digit is its own piece and gets one too.
	got := tok.Encode("hello12", false)
	want := []int{32, 261, 32, '1', 32, '2'}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
}

func TestIgnoreMerges(t *testing.T) {
	raw := tinyJSON(t, false, nil)
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	model := doc["model"].(map[string]any)
	model["ignore_merges"] = true
	model["vocab"].(map[string]any)["Ġworld"] = 400
	raw, _ = json.Marshal(doc)
	if got := mustLoad(t, raw).Encode(" world", false); !reflect.DeepEqual(got, []int{400}) {
		t.Errorf("ignore_merges: Encode = %v, want [400]", got)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra map[string]any
		want  string
		unsup bool
	}{
		{"wordpiece", map[string]any{"model": map[string]any{"type": "WordPiece", "vocab": map[string]int{"a": 0}}}, "model type", true},
		{"whitespace", map[string]any{"pre_tokenizer": map[string]any{"type": "Whitespace"}}, `pre-tokenizer "Whitespace"`, true},
		{"wordpiece decoder", map[string]any{"decoder": map[string]any{"type": "WordPiece"}}, `decoder "WordPiece"`, true},
		{"unknown split", map[string]any{"pre_tokenizer": map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `\w+`}, "behavior": "Isolated"}}, "Split pre-tokenizer pattern", true},
		{"byte-level decoder without byte-level pre-tokenizer", map[string]any{"pre_tokenizer": map[string]any{"type": "Digits"}}, "a ByteLevel decoder needs", true},
		{"bad normalizer", map[string]any{"normalizer": map[string]any{"type": "Lowercase"}}, "normalizer", true},
		{"bad merge", map[string]any{"model": map[string]any{"type": "BPE", "vocab": map[string]int{"a": 0}, "merges": []any{"abc"}}}, `merge 0 "abc"`, false},
		{"empty vocab", map[string]any{"model": map[string]any{"type": "BPE", "vocab": map[string]int{}}}, "vocab is empty", false},
		{"bad unk", map[string]any{"model": map[string]any{"type": "BPE", "vocab": map[string]int{"a": 0}, "unk_token": "<unk>"}}, "unk_token", false},
	} {
		_, err := Load(tinyJSON(t, false, tc.extra))
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUnsupported) != tc.unsup {
			t.Errorf("%s: got %v, want error containing %q (unsupported=%v)", tc.name, err, tc.want, tc.unsup)
		}
	}
	if _, err := Load([]byte("{")); err == nil {
		t.Error("Load accepted truncated JSON")
	}
	if _, err := LoadFile("testdata/does-not-exist.json"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadFile of a missing file: %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(tinyJSON(f, false, nil), "hello the world <|endoftext|>")
	f.Add(tinyJSON(f, true, nil), "naïve 🙂")
	f.Add(spmJSON(f, "normalizer", true), "hello wörld</s>  ")
	f.Add(spmJSON(f, "metaspace", false), "hé llo<s>")
	f.Add([]byte(`{"model":{"vocab":{"a":0},"merges":[["a","a"]]},"pre_tokenizer":{"type":"ByteLevel"}}`), "aaaa")
	f.Add([]byte(`{"added_tokens":[{"id":5,"content":"x","lstrip":true}],"model":{"vocab":{"a":0}},"pre_tokenizer":{"type":"ByteLevel","use_regex":false}}`), " x a")
	f.Fuzz(func(t *testing.T, raw []byte, text string) {
		tok, err := Load(raw)
		if err != nil {
			return
		}
		// Whatever loads must encode and decode any text without panicking,
		// and give ids inside the vocabulary.
		for _, id := range tok.Encode(text, true) {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("id %d outside vocabulary of %d", id, tok.VocabSize())
			}
		}
		_ = tok.Decode(tok.Encode(text, false), true)
	})
}

func TestNFCNormalizer(t *testing.T) {
	plain := mustLoad(t, tinyJSON(t, false, nil))
	nfc := mustLoad(t, tinyJSON(t, false, map[string]any{"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "NFC"}}}}))
	composed, decomposed := "caf\u00e9", "cafe\u0301"
	if reflect.DeepEqual(plain.Encode(composed, false), plain.Encode(decomposed, false)) {
		t.Fatal("without a normalizer the two forms must differ")
	}
	if got, want := nfc.Encode(decomposed, false), plain.Encode(composed, false); !reflect.DeepEqual(got, want) {
		t.Errorf("NFC: decomposed text gave %v, want the composed form's %v", got, want)
	}
}
