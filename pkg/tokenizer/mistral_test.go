package tokenizer

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// TestMistralPublishedIDs checks the SentencePiece-style path against token
// ids published by mistral-tokenizer-js (testdata/mistral/README.md): spaces,
// tabs, newlines, byte fallback for CJK and emoji, and a 420-token paragraph.
func TestMistralPublishedIDs(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/tokenizer.json"
	if err := os.WriteFile(path, gunzip(t, "testdata/mistral/tokenizer.json.gz"), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/mistral/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) != 12 {
		t.Fatalf("%d cases, want 12", len(cases))
	}
	for _, c := range cases {
		got := tok.Encode(c.Text, true)
		if !reflect.DeepEqual(got, c.IDs) {
			t.Errorf("Encode(%.40q) = %v…, want %v…", c.Text, got[:min(len(got), 10)], c.IDs[:min(len(c.IDs), 10)])
		}
		if dec := tok.Decode(got, true); dec != c.Text {
			t.Errorf("Decode(Encode(%.40q)) = %.40q", c.Text, dec)
		}
	}
}
