package params

import (
	"encoding/json"
	"testing"
)

// FuzzBackendArgs feeds arbitrary JSON sections to BackendArgs: it must
// never panic, and whatever it accepts must be JSON data again with every
// first-class value placed at its mapping.
func FuzzBackendArgs(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"batch_size": 4, "extra": {"generate": {"x": 1}}}`,
		`{"engine": {"max_num_seqs": 8, "speculative_model": "m"}, "extra": {"engine": {"speculative_config": {"k": 1}}}}`,
		`{"extra": {"llm": {"kv_cache_config": 3}}}`,
		`{"extra": {"engine": {"max_num_seqs": 4}}}`,
		`{"sampling": {"max_tokens": 3}, "extra": null}`,
	} {
		for i := range BackendNames() {
			f.Add(uint8(i), seed)
		}
	}
	s, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, bi uint8, js string) {
		var sec map[string]any
		if json.Unmarshal([]byte(js), &sec) != nil {
			return
		}
		b := BackendNames()[int(bi)%len(BackendNames())]
		_ = s.CheckExtra(b, sec)
		args, err := s.BackendArgs(b, sec)
		if err != nil {
			return
		}
		if _, err := json.Marshal(args); err != nil {
			t.Fatalf("accepted section gives non-JSON args: %v", err)
		}
		r, _ := s.Report(b)
		for _, p := range r.Params {
			v, ok := lookup(sec, p.Key)
			if !ok {
				continue
			}
			got, ok := lookup(args, append([]string{p.Mapping.Target}, splitArg(p.Mapping.Arg)...))
			if !ok {
				t.Fatalf("%s set but missing at %s", p.Path, p.Mapping)
			}
			gb, _ := json.Marshal(got)
			vb, _ := json.Marshal(v)
			if string(gb) != string(vb) {
				t.Fatalf("%s = %s, but %s = %s", p.Path, vb, p.Mapping, gb)
			}
		}
	})
}
