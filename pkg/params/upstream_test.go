package params

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/tools/upstream"
)

// generateCallKwargs are keyword arguments of transformers'
// GenerationMixin.generate() itself rather than GenerationConfig fields.
var generateCallKwargs = map[string]bool{"assistant_model": true, "custom_generate": true}

// TestMappingsExistUpstream checks every first-class mapping against the
// snapshot of the pinned library version: the argument exists upstream, is
// not one upstream accepts and discards, and a literal llem default matches
// upstream's literal default.
func TestMappingsExistUpstream(t *testing.T) {
	for _, b := range []string{"pytorch", "vllm", "tensorrt"} {
		snap, err := upstream.Load(b)
		if err != nil || snap == nil {
			t.Fatalf("%s: snapshot: %v", b, err)
		}
		r, err := report(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Params {
			k := SurfaceOf(b, p.Mapping)
			if k == "" {
				continue
			}
			surf, name, _ := strings.Cut(k, ".")
			if b == "pytorch" && surf == "generate" && generateCallKwargs[name] {
				continue
			}
			if b == "tensorrt" && k == "speculative.decoding_type" {
				continue // a ClassVar choosing the class: TestTensorRTEnumsMatchUpstream
			}
			f, ok := LookupField(snap, k)
			if !ok {
				t.Errorf("%s maps to %s, which %s %s does not have", p.Path, k, snap.Library, snap.Version)
				continue
			}
			if f.Discarded {
				t.Errorf("%s maps to %s, which %s %s accepts and discards", p.Path, k, snap.Library, snap.Version)
			}
			if f.Default == nil || p.BackendDefault == "" || (strings.Contains(p.Mapping.Arg, ".") && surf != "attention" && b != "tensorrt") {
				continue
			}
			up, upLit := pyLiteral(*f.Default)
			if !upLit && surf == "engine" {
				// EngineArgs defaults to a config class attribute; the LLM
				// class, which llem calls, may spell the literal.
				if lf, ok := snap.Surfaces["llm"].Field(name); ok && lf.Default != nil {
					up, upLit = pyLiteral(*lf.Default)
				}
			}
			mine, myLit := pyLiteral(p.BackendDefault)
			switch {
			case upLit && up != "none" && myLit && up != mine:
				t.Errorf("%s: default=%q but %s %s defaults %s to %s", p.Path, p.BackendDefault, snap.Library, snap.Version, k, *f.Default)
			case !upLit && myLit:
				// A literal llem cannot check against upstream (which
				// defaults to a reference such as SchedulerConfig.x) is how
				// defaults drift: say where the default comes from instead.
				t.Errorf("%s: default=%q is a literal, but %s %s defaults %s to %s; name that instead", p.Path, p.BackendDefault, snap.Library, snap.Version, k, *f.Default)
			}
		}
	}
}

// pyLiteral normalises a Python or CUE literal default ("0.9", "True",
// "false", "'auto'") for comparison; ok is false for anything else
// (references such as CacheConfig.swap_space, prose).
func pyLiteral(s string) (string, bool) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "true", "false", "none":
		return strings.ToLower(s), true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.FormatFloat(f, 'g', -1, 64), true
	}
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1], true
	}
	return "", false
}

// TestCacheImplementationEnumMatchesUpstream: the schema's enum is exactly
// what transformers' GenerationConfig.validate accepts
// (ALL_CACHE_IMPLEMENTATIONS + ("paged",)).
func TestCacheImplementationEnumMatchesUpstream(t *testing.T) {
	snap, err := upstream.Load("pytorch")
	if err != nil || snap == nil {
		t.Fatal(err)
	}
	want := map[string]bool{"paged": true}
	for _, v := range snap.Surfaces["cache_implementations"].Values {
		want[v] = true
	}
	r, _ := report("pytorch")
	for _, p := range r.Params {
		if p.Mapping.String() != "generate.cache_implementation" {
			continue
		}
		got := map[string]bool{}
		for _, o := range p.Options {
			got[o.(string)] = true
			if !want[o.(string)] {
				t.Errorf("cache_implementation %q is not accepted by transformers %s", o, snap.Version)
			}
		}
		for v := range want {
			if !got[v] {
				t.Errorf("cache_implementation lacks upstream value %q", v)
			}
		}
		return
	}
	t.Fatal("no generate.cache_implementation param")
}

// TestMeasuredCoverage: every snapshot knob has a relevance verdict (an
// error otherwise) and the measured figure is logged.
func TestMeasuredCoverage(t *testing.T) {
	for _, b := range []string{"pytorch", "vllm", "tensorrt"} {
		r, _ := report(b)
		m, ok, err := MeasuredCoverage(r)
		if err != nil || !ok {
			t.Fatalf("%s: %v (ok=%v)", b, err, ok)
		}
		t.Logf("%s: measured %.1f%% (%d/%d), curated %.1f%%; uncovered: %v", b, 100*m.Ratio, m.Covered, m.Relevant, 100*r.Coverage.Ratio, m.Uncovered)
	}
	// The native engine has no upstream library: not measured, no error
	// (llem params native --json failed with "no upstream target").
	r, _ := report("native")
	if _, ok, err := MeasuredCoverage(r); ok || err != nil {
		t.Errorf("native: measured %v, err %v; want not measured, no error", ok, err)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, []*Report{r}); err != nil {
		t.Errorf("llem params native --json: %v", err)
	}
}

// trtEnumSurfaces names the snapshot's value set of TensorRT-LLM arguments
// typed by an Enum class (or, for decoding_type, chosen by the
// DecodingBaseConfig.from_dict dispatch table); Literal[...] fields carry
// their values in the field itself.
var trtEnumSurfaces = map[string]string{
	"llm.scheduler_config.capacity_scheduler_policy": "capacity_scheduler_policies",
	"llm.scheduler_config.context_chunking_policy":   "context_chunking_policies",
	"llm.sampler_type":                     "sampler_types",
	"llm.speculative_config.decoding_type": "decoding_types",
}

// TestTensorRTEnumsMatchUpstream: every closed set of a first-class
// TensorRT-LLM param holds only values the pinned TensorRT-LLM accepts, and
// when upstream's set is closed (Literal or Enum) llem offers all of it
// except the values a rule refuses with a reason.
func TestTensorRTEnumsMatchUpstream(t *testing.T) {
	snap, err := upstream.Load("tensorrt")
	if err != nil || snap == nil {
		t.Fatalf("snapshot: %v", err)
	}
	r, _ := report("tensorrt")
	checked := 0
	for _, p := range r.Params {
		if len(p.Options) == 0 {
			continue
		}
		var want []string
		if sn, ok := trtEnumSurfaces[p.Mapping.String()]; ok {
			want = snap.Surfaces[sn].Values
		} else if k := SurfaceOf("tensorrt", p.Mapping); k != "" {
			if f, ok := LookupField(snap, k); ok {
				want = f.Values
			}
		}
		if want == nil {
			continue // upstream types it str (attn_backend, kv_cache_config.dtype)
		}
		checked++
		up := map[string]bool{}
		for _, v := range want {
			up[v] = true
		}
		got := map[string]bool{}
		for _, o := range p.Options {
			got[o.(string)] = true
			if !up[o.(string)] {
				t.Errorf("%s offers %q, which TensorRT-LLM %s does not accept (%v)", p.Path, o, snap.Version, want)
			}
		}
		for _, v := range want {
			if !got[v] && !trtRefusedUpstreamValues[p.Path+"="+v] {
				t.Errorf("%s lacks upstream value %q", p.Path, v)
			}
		}
	}
	if checked < 6 {
		t.Errorf("checked only %d enums against the snapshot", checked)
	}
}

// trtRefusedUpstreamValues are upstream values llem does not offer: the
// PyTorch runtime refuses them or they need objects a study cannot carry.
var trtRefusedUpstreamValues = map[string]bool{
	"tensorrt.speculative_decoding_mode=SaveState":    true, // writes hidden states to disk, forces batch size 1
	"tensorrt.speculative_decoding_mode=UserProvided": true, // needs a Drafter object
}

// TestEnumsMatchUpstreamLiterals: a first-class enum whose upstream field is
// typed Literal[...] offers exactly the literal's values (a closed enum
// narrower than upstream hides values, a wider one lets through values
// upstream rejects).
func TestEnumsMatchUpstreamLiterals(t *testing.T) {
	checked := 0
	for _, b := range []string{"pytorch", "vllm"} {
		snap, err := upstream.Load(b)
		if err != nil || snap == nil {
			t.Fatalf("%s: snapshot: %v", b, err)
		}
		r, _ := report(b)
		for _, p := range r.Params {
			k := SurfaceOf(b, p.Mapping)
			if k == "" || len(p.Options) == 0 {
				continue
			}
			f, ok := LookupField(snap, k)
			if !ok || f.Type == nil {
				continue
			}
			want, ok := literalValues(*f.Type)
			if !ok {
				continue
			}
			checked++
			got := map[string]bool{}
			for _, o := range p.Options {
				got[fmt.Sprint(o)] = true
			}
			for v := range want {
				if !got[v] {
					t.Errorf("%s lacks %s %s value %s of %s", p.Path, snap.Library, snap.Version, v, *f.Type)
				}
			}
			for v := range got {
				if !want[v] {
					t.Errorf("%s offers %s, which %s %s's %s does not accept", p.Path, v, snap.Library, snap.Version, *f.Type)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no enum with a Literal upstream type was checked")
	}
}

// literalValues parses the values of the Literal[...] in a Python type
// annotation ("Literal[2, 3, 4] | None", "Literal['a', 'b']"), unquoted.
func literalValues(typ string) (map[string]bool, bool) {
	i := strings.Index(typ, "Literal[")
	if i < 0 {
		return nil, false
	}
	rest := typ[i+len("Literal["):]
	j := strings.Index(rest, "]")
	if j < 0 {
		return nil, false
	}
	out := map[string]bool{}
	for _, v := range strings.Split(rest[:j], ",") {
		v = strings.Trim(strings.TrimSpace(v), `'"`)
		if v != "" {
			out[v] = true
		}
	}
	return out, true
}
