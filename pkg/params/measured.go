package params

import (
	"fmt"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/tools/upstream"
)

// Measured is coverage over the upstream surface of the pinned library
// version (tools/upstream): first-class knobs / every knob the reviewed
// relevance list marks energy-relevant. Unlike Coverage, whose denominator
// is a hand-written known-missing list, the denominator comes from the
// snapshot extracted from the upstream source.
type Measured struct {
	Library string `json:"library"`
	Version string `json:"version"`
	// Covered is the number of relevant upstream knobs a first-class param
	// maps to; Relevant the number of relevant knobs.
	Covered  int     `json:"covered"`
	Relevant int     `json:"relevant"`
	Ratio    float64 `json:"ratio"`
	// Uncovered lists the relevant knobs without a first-class param
	// ("surface.name"), reachable only through extra:.
	Uncovered []string `json:"uncovered"`
}

// SurfaceOf maps a param's mapping to the snapshot knob it sets
// ("surface.name"), or "" when the target is not an upstream surface the
// snapshot holds (llem-side targets, environment variables, torch calls).
func SurfaceOf(backend string, m Mapping) string {
	first, _, _ := strings.Cut(m.Arg, ".")
	switch backend {
	case "vllm":
		if m.Target == "engine" && first == "attention_config" {
			// LLM(attention_config={...}) fills vLLM's AttentionConfig.
			_, sub, _ := strings.Cut(m.Arg, ".")
			sub, _, _ = strings.Cut(sub, ".")
			return "attention." + sub
		}
		if m.Target == "engine" || m.Target == "sampling" || m.Target == "beam_search" {
			return m.Target + "." + first
		}
	case "pytorch":
		if m.Target == "from_pretrained" || m.Target == "generate" {
			return m.Target + "." + first
		}
	case "tensorrt":
		if m.Target == "sampling" {
			return "sampling." + first
		}
		if m.Target == "llm" {
			// LLM(<x>_config={...}) fills the config class the snapshot
			// holds as surface <x> (speculative_config: the class that
			// decoding_type picks; LookupField looks in each).
			if surf, ok := trtConfigSurfaces[first]; ok {
				_, sub, _ := strings.Cut(m.Arg, ".")
				sub, _, _ = strings.Cut(sub, ".")
				if sub == "" {
					return "llm." + first
				}
				return surf + "." + sub
			}
			return "llm." + first
		}
	}
	return ""
}

// trtConfigSurfaces maps a TorchLlmArgs config-object argument to its
// snapshot surface (tools/upstream/sources/tensorrt_llm.json).
var trtConfigSurfaces = map[string]string{
	"kv_cache_config":      "kv_cache",
	"scheduler_config":     "scheduler",
	"cuda_graph_config":    "cuda_graph",
	"moe_config":           "moe",
	"attention_dp_config":  "attention_dp",
	"torch_compile_config": "torch_compile",
	"speculative_config":   "speculative",
}

// MeasuredCoverage computes Measured for a backend from its report and the
// pinned snapshot; ok is false when the backend has no snapshot yet.
func MeasuredCoverage(r *Report) (Measured, bool, error) {
	if r.pre != nil {
		if m := r.pre.measured; m != nil {
			return *m, true, nil
		}
		return Measured{}, false, nil
	}
	ts, err := upstream.Targets()
	if err != nil {
		return Measured{}, false, err
	}
	if _, ok := ts[r.Backend]; !ok {
		return Measured{}, false, nil // no upstream library (native): nothing to measure against
	}
	snap, err := upstream.Load(r.Backend)
	if err != nil || snap == nil {
		return Measured{}, false, err
	}
	rel, err := upstream.Relevance(r.Backend)
	if err != nil {
		return Measured{}, false, err
	}
	m := Measured{Library: snap.Library, Version: snap.Version, Uncovered: []string{}}
	covered := map[string]bool{}
	for _, p := range r.Params {
		if k := SurfaceOf(r.Backend, p.Mapping); k != "" {
			covered[k] = true
			if name, ok := strings.CutPrefix(k, "speculative."); ok {
				// The field may be declared by a decoding config subclass.
				for sn, sf := range snap.Surfaces {
					if _, has := sf.Field(name); has && strings.HasPrefix(sn, "speculative_") {
						covered[sn+"."+name] = true
					}
				}
			}
		}
	}
	// Shared experiment fields (precision, decoder:, ...) are counted by
	// their verdict ("set by llem from shared experiment fields"), not here.
	for _, k := range snap.Knobs() {
		v, ok := rel[k]
		if !ok {
			return Measured{}, false, fmt.Errorf("%s: upstream knob %s has no relevance verdict in tools/upstream/relevance/%s.json", r.Backend, k, r.Backend)
		}
		if !v.Relevant {
			continue
		}
		m.Relevant++
		if covered[k] {
			m.Covered++
		} else {
			m.Uncovered = append(m.Uncovered, k)
		}
	}
	sort.Strings(m.Uncovered)
	if m.Relevant > 0 {
		m.Ratio = float64(m.Covered) / float64(m.Relevant)
	}
	return m, true, nil
}

// LookupField finds the upstream field a "surface.name" knob names. For
// vLLM an engine argument may be declared by EngineArgs ("engine") or only
// by LLM.__init__ ("llm"), which forwards the rest to EngineArgs: both are
// looked at.
func LookupField(snap *upstream.Snapshot, key string) (upstream.Field, bool) {
	surf, name, _ := strings.Cut(key, ".")
	if sf := snap.Surfaces[surf]; sf != nil {
		if f, ok := sf.Field(name); ok {
			return f, true
		}
	}
	if surf == "engine" {
		if sf := snap.Surfaces["llm"]; sf != nil {
			return sf.Field(name)
		}
	}
	if surf == "speculative" {
		// A field of one decoding config class (speculative_eagle, ...).
		for _, k := range sortedSurfaceNames(snap) {
			if strings.HasPrefix(k, "speculative_") {
				if f, ok := snap.Surfaces[k].Field(name); ok {
					return f, true
				}
			}
		}
	}
	return upstream.Field{}, false
}

func sortedSurfaceNames(snap *upstream.Snapshot) []string {
	out := make([]string, 0, len(snap.Surfaces))
	for k := range snap.Surfaces {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
