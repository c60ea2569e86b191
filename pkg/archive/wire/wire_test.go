package wire

import (
	"encoding/json"
	"testing"
)

func TestRecordHashIgnoresLayoutNotValues(t *testing.T) {
	a, err := RecordHash(json.RawMessage(`{"b": 1.50, "a": [1, {"y": "<x>", "x": null}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := RecordHash(json.RawMessage("{\"a\":[1,{\"x\":null,\"y\":\"<x>\"}],\n \"b\":1.50}"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("same record, different layout: %s vs %s", a, b)
	}
	c, _ := RecordHash(json.RawMessage(`{"a":[1,{"x":null,"y":"<x>"}],"b":1.5}`))
	if c == a {
		t.Fatal("1.50 and 1.5 are different texts of a number: the hash keeps numbers as written")
	}
	canon, _ := Canonical(json.RawMessage(`{"b": 1.50, "a": "<&>"}`))
	if string(canon) != `{"a":"<&>","b":1.50}` {
		t.Fatalf("canonical form: %s", canon)
	}
}

func TestRecordHashRejectsNonJSON(t *testing.T) {
	for _, in := range []string{``, `{`, `{} {}`, `nul`} {
		if _, err := RecordHash(json.RawMessage(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`[1,2,{"z":"é"}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := Canonical(in)
		if err != nil {
			return
		}
		c2, err := Canonical(c)
		if err != nil || string(c) != string(c2) {
			t.Fatalf("canonical form is not a fixed point: %q -> %q (%v)", c, c2, err)
		}
	})
}
