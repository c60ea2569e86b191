package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/text/encoding/unicode"
)

// decodeCases is testdata/utf8/decode_cases.json: what HF tokenizers 0.23.2
// returned for decode(ids) and decode(ids, skip_special_tokens=True) with
// the tokenizer.json files beside it (made by
// scripts/native-fidelity/make_fixtures.py; see the README there).
type decodeCases struct {
	Version    string `json:"tokenizers_version"`
	Tokenizers map[string][]struct {
		Name        string `json:"name"`
		IDs         []int  `json:"ids"`
		Decode      string `json:"decode"`
		DecodeSkip  string `json:"decode_skip_special"`
		PythonBytes string `json:"python_bytes_decode_replace"`
	} `json:"tokenizers"`
}

func loadUTF8Tokenizer(t *testing.T, name string) *Tokenizer {
	t.Helper()
	tok, err := LoadFile(filepath.Join("testdata", "utf8", name+".tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestDecodeInvalidUTF8MatchesHF replays the decodes recorded from the
// tokenizers library itself.
func TestDecodeInvalidUTF8MatchesHF(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "utf8", "decode_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dc decodeCases
	if err := json.Unmarshal(data, &dc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for name, cases := range dc.Tokenizers {
		tok := loadUTF8Tokenizer(t, name)
		for _, c := range cases {
			if got := tok.Decode(c.IDs, false); got != c.Decode {
				t.Errorf("%s %s: Decode(%v) = %+q, tokenizers %s gave %+q", name, c.Name, c.IDs, got, dc.Version, c.Decode)
			}
			if got := tok.Decode(c.IDs, true); got != c.DecodeSkip {
				t.Errorf("%s %s: Decode(%v, skipSpecial) = %+q, tokenizers %s gave %+q", name, c.Name, c.IDs, got, dc.Version, c.DecodeSkip)
			}
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d recorded cases", n)
	}
}

// TestDecodeInvalidUTF8 pins the replacement rule with expectations derived
// from the sources, independently of the recording above:
//
//   - ByteLevel: huggingface/tokenizers, tokenizers/src/pre_tokenizers/
//     byte_level.rs, `impl Decoder for ByteLevel`: the bytes of all tokens
//     go through String::from_utf8_lossy, which (rust-lang/rust,
//     library/core/src/str/lossy.rs, Utf8Chunks) emits one U+FFFD per
//     maximal subpart: the longest prefix of a well-formed sequence (lead
//     C2..DF, E0 A0..BF, E1..EC 80..BF, ED 80..9F, EE..EF 80..BF, F0 90..BF,
//     F1..F3 80..BF, F4 80..8F, then continuation bytes 80..BF), else one
//     byte;
//   - ByteFallback: tokenizers/src/decoders/byte_fallback.rs: a run of
//     <0xXX> tokens that String::from_utf8 rejects becomes one "�" per
//     token.
func TestDecodeInvalidUTF8(t *testing.T) {
	const R = "\uFFFD"
	bl := loadUTF8Tokenizer(t, "bytelevel") // id b is byte b; 256 "he"; 257 <eos> (special)
	for _, c := range []struct {
		name string
		ids  []int
		want string
	}{
		{"valid", []int{0xE6, 0x97, 0xA5}, "日"},
		{"truncated 3-byte: E6 97 is one maximal subpart", []int{0xE6, 0x97}, R},
		{"truncated, then ASCII", []int{0xE6, 0x97, 'A'}, R + "A"},
		{"truncated 4-byte F0 9F 98", []int{0xF0, 0x9F, 0x98}, R},
		{"lead byte, then a whole character", []int{0xE6, 0xE6, 0x97, 0xA5}, R + "日"},
		{"overlong C0 AF: C0 is never a lead", []int{0xC0, 0xAF}, R + R},
		{"overlong E0 80 AF: E0 needs A0..BF", []int{0xE0, 0x80, 0xAF}, R + R + R},
		{"overlong F0 80 80 AF: F0 needs 90..BF", []int{0xF0, 0x80, 0x80, 0xAF}, R + R + R + R},
		{"lone continuation bytes, one each", []int{0x80, 0xBF, 'A', 0x80}, R + R + "A" + R},
		{"surrogate ED A0 80: ED needs 80..9F", []int{0xED, 0xA0, 0x80}, R + R + R},
		{"above U+10FFFF: F4 needs 80..8F", []int{0xF4, 0x90, 0x80, 0x80}, R + R + R + R},
		{"F5 and FF are never leads", []int{0xF5, 'A', 0xFF}, R + "A" + R},
		{"a special token is a token too", []int{0xE6, 0x97, 257, 0xA5}, R + "<eos>" + R},
		{"a merged token between bytes", []int{0xE6, 256, 0xA5}, R + "he" + R},
	} {
		if got := bl.Decode(c.ids, false); got != c.want {
			t.Errorf("ByteLevel %s: Decode(%x) = %+q, want %+q", c.name, c.ids, got, c.want)
		}
	}
	// Skipping the special token first joins the bytes around it.
	if got := bl.Decode([]int{0xE6, 0x97, 257, 0xA5}, true); got != "日" {
		t.Errorf("ByteLevel skipSpecial across a cut character = %+q, want 日", got)
	}

	bf := loadUTF8Tokenizer(t, "bytefallback") // <0xXX> is id 3+XX; 259 ▁, 260 a, 261 b, 262 ▁a, 263 é
	const b = 3
	for _, c := range []struct {
		name string
		ids  []int
		want string
	}{
		{"valid run", []int{262, b + 0xE5, b + 0x8F, b + 0xAB, 260}, "a叫a"},
		{"truncated run: one � per byte", []int{262, b + 0xE5, b + 0x8F, 260}, "a" + R + R + "a"},
		{"a valid byte in an invalid run is lost", []int{b + 'a', b + 0xE5}, R + R},
		{"valid prefix é, then FF: three �", []int{b + 0xC3, b + 0xA9, b + 0xFF}, R + R + R},
		{"surrogate run", []int{b + 0xED, b + 0xA0, b + 0x80}, R + R + R},
		{"a special token splits runs", []int{b + 0xE5, 1, b + 0x8F, b + 0xAB}, R + "<s>" + R + R},
		{"a normal token ends a run", []int{263, b + 0xC3}, "é" + R},
	} {
		if got := bf.Decode(c.ids, false); got != c.want {
			t.Errorf("ByteFallback %s: Decode(%v) = %+q, want %+q", c.name, c.ids, got, c.want)
		}
	}
	if got := bf.Decode([]int{b + 0xE5, 1, b + 0x8F, b + 0xAB}, true); got != "叫" {
		t.Errorf("ByteFallback skipSpecial across a run = %+q, want 叫", got)
	}
}

// TestLossyUTF8MatchesXText compares lossyUTF8 with golang.org/x/text's
// UTF-8 decoder, an independent implementation of the same
// maximal-subpart rule, on random byte strings biased towards multi-byte
// leads and continuation bytes.
func TestLossyUTF8MatchesXText(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := []byte{0x00, 'a', 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}
	dec := unicode.UTF8.NewDecoder()
	for i := range 20000 {
		b := make([]byte, rng.IntN(12))
		for j := range b {
			if rng.IntN(3) == 0 {
				b[j] = byte(rng.IntN(256))
			} else {
				b[j] = pick[rng.IntN(len(pick))]
			}
		}
		want, err := dec.String(string(b))
		if err != nil {
			t.Fatal(err)
		}
		if got := lossyUTF8(b); got != want {
			t.Fatalf("case %d: lossyUTF8(% x) = %+q, x/text %+q", i, b, got, want)
		}
	}
}
