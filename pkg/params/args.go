package params

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ExtraError is one problem with a backend section's `extra:` block.
type ExtraError struct {
	// Path is the offending key, e.g. "vllm.extra.engine.max_num_seqs".
	Path string
	// Msg says what is wrong and what to write instead.
	Msg string
}

func (e *ExtraError) Error() string { return e.Path + ": " + e.Msg }

// CheckExtra validates the `extra:` block of a backend section (the decoded
// JSON of e.g. the run's `vllm:` object). It reports, all at once:
// a target that the backend does not have; a key that a first-class param
// already maps to (shadowing: the error names the param to set instead);
// a key that would replace a config object first-class params fill; and
// values that are not plain JSON data. A nil or absent extra is valid.
//
// pkg/study calls it for every run; BackendArgs calls it too, so arguments
// are never built from an invalid section.
func CheckExtra(backend string, section map[string]any) []error {
	s, err := Default()
	if err != nil {
		return []error{err}
	}
	return s.CheckExtra(backend, section)
}

// CheckExtra is the package-level CheckExtra on this schema.
func (s *Schema) CheckExtra(backend string, section map[string]any) []error {
	r, err := s.Report(backend)
	if err != nil {
		return []error{err}
	}
	raw, ok := section["extra"]
	if !ok || raw == nil {
		return nil
	}
	base := backend + ".extra"
	extra, ok := raw.(map[string]any)
	if !ok {
		return []error{&ExtraError{base, fmt.Sprintf("must be an object keyed by target (%s), got %s", strings.Join(r.ExtraTargets, ", "), jsonKind(raw))}}
	}
	var errs []error
	for _, target := range sortedKeys(extra) {
		p := base + "." + target
		if !contains(r.ExtraTargets, target) {
			errs = append(errs, &ExtraError{p, fmt.Sprintf("unknown target %q; extra keys go under one of %s (e.g. extra: %s: {key: value})", target, strings.Join(r.ExtraTargets, ", "), r.ExtraTargets[0])})
			continue
		}
		args, ok := extra[target].(map[string]any)
		if !ok {
			errs = append(errs, &ExtraError{p, fmt.Sprintf("must be an object of %s arguments, got %s", target, jsonKind(extra[target]))})
			continue
		}
		errs = append(errs, s.checkArgs(backend, p, target, args)...)
	}
	return errs
}

// checkArgs checks one level of extra arguments below prefix (a target or a
// nested config object) against the first-class mappings.
func (s *Schema) checkArgs(backend, path, prefix string, args map[string]any) []error {
	var errs []error
	idx := s.argIndex[backend]
	for _, k := range sortedKeys(args) {
		arg := prefix + "." + k
		p := path + "." + k
		v := args[k]
		if param, ok := idx[arg]; ok {
			errs = append(errs, &ExtraError{p, fmt.Sprintf("shadows first-class %s; set that instead", param)})
			continue
		}
		if canon, ok := upstreamAliases[backend][arg]; ok {
			if param, ok := idx[canon]; ok {
				errs = append(errs, &ExtraError{p, fmt.Sprintf("shadows first-class %s (upstream reads %s as an alias of %s); set that instead", param, k, canon)})
				continue
			}
		}
		if inner := s.paramsUnder(backend, arg); len(inner) > 0 {
			sub, ok := v.(map[string]any)
			if !ok {
				errs = append(errs, &ExtraError{p, fmt.Sprintf("would replace the %s object that first-class %s fill; set keys inside it instead", k, strings.Join(inner, ", "))})
				continue
			}
			errs = append(errs, s.checkArgs(backend, p, arg, sub)...)
			continue
		}
		if err := plain(v); err != "" {
			errs = append(errs, &ExtraError{p, err})
		}
	}
	return errs
}

// upstreamAliases maps, per backend, an upstream argument (target.path)
// that sets the same thing as another one under a different name to that
// other argument, so that an extra: key spelt the alias way is caught as
// shadowing the first-class param of the canonical name.
var upstreamAliases = map[string]map[string]string{
	"vllm": {
		// EngineArgs.cuda_graph_sizes defaults to, and is copied into,
		// CompilationConfig.cudagraph_capture_sizes.
		"engine.cuda_graph_sizes":                              "engine.cudagraph_capture_sizes",
		"engine.compilation_config.cudagraph_capture_sizes":    "engine.cudagraph_capture_sizes",
		"engine.compilation_config.max_cudagraph_capture_size": "engine.max_cudagraph_capture_size",
		// EngineArgs.attention_backend = AttentionConfig.backend.
		"engine.attention_backend": "engine.attention_config.backend",
		// Read by older vLLM only; the same setting as attention_config.backend.
		"env.VLLM_ATTENTION_BACKEND": "engine.attention_config.backend",
		// Deprecated flat EngineArgs fields copied into EPLBConfig
		// (arg_utils.py @ 99d7eb5d, "will be removed in v0.12.0").
		"engine.num_redundant_experts": "engine.eplb_config.num_redundant_experts",
		"engine.eplb_window_size":      "engine.eplb_config.window_size",
		"engine.eplb_step_interval":    "engine.eplb_config.step_interval",
	},
	"tensorrt": {
		// speculative_model is the DecodingBaseConfig alias of speculative_model_dir.
		"llm.speculative_config.speculative_model": "llm.speculative_config.speculative_model_dir",
	},
}

// paramsUnder lists the first-class params mapped strictly inside arg.
func (s *Schema) paramsUnder(backend, arg string) []string {
	var out []string
	for a, p := range s.argIndex[backend] {
		if strings.HasPrefix(a, arg+".") {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// plain returns "" when v is plain JSON data (what encoding/json decodes
// into any), else what is wrong.
func plain(v any) string {
	switch x := v.(type) {
	case nil, bool, string, float64, float32, int, int64, int32, uint64, json.Number:
		return ""
	case []any:
		for i, e := range x {
			if err := plain(e); err != "" {
				return fmt.Sprintf("element %d: %s", i, err)
			}
		}
		return ""
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if err := plain(x[k]); err != "" {
				return fmt.Sprintf("key %q: %s", k, err)
			}
		}
		return ""
	}
	return fmt.Sprintf("value of Go type %T is not plain data (use null, booleans, numbers, strings, lists and objects)", v)
}

// BackendArgs turns a run's backend section (the decoded JSON of e.g. its
// `vllm:` object; nil when the run has none) into the backend's own
// keyword arguments, grouped by mapping target:
//
//	pytorch  {"from_pretrained": {...}, "generate": {...}, "compile": {...}, "tokenizer": {...}, "torch": {...}, "llem": {...}}
//	vllm     {"engine": {...}, "sampling": {...}, "beam_search": {...}, "env": {...}}
//	tensorrt {"llm": {...}, "sampling": {...}, "llem": {...}}
//	native   {"engine": {...}, "worker": {...}}
//
// Only the schema's mapping attributes decide where a value goes; dotted
// arguments become nested objects (speculative_config.model →
// {"speculative_config": {"model": …}}). A param absent from the section
// takes its concrete schema default if it has one and is otherwise not sent,
// so the backend's own default applies. `extra:` is validated with
// CheckExtra and then merged in untouched. Targets with no arguments are
// omitted.
func BackendArgs(backend string, section map[string]any) (map[string]any, error) {
	s, err := Default()
	if err != nil {
		return nil, err
	}
	return s.BackendArgs(backend, section)
}

// BackendArgs is the package-level BackendArgs on this schema.
func (s *Schema) BackendArgs(backend string, section map[string]any) (map[string]any, error) {
	r, err := s.Report(backend)
	if err != nil {
		return nil, err
	}
	if errs := s.unknownKeys(r, section); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if errs := s.CheckExtra(backend, section); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := map[string]any{}
	for _, p := range r.Params {
		v, ok := lookup(section, p.Key)
		if !ok {
			if p.Default == nil {
				continue
			}
			v = p.Default
		}
		dst := append([]string{p.Mapping.Target}, splitArg(p.Mapping.Arg)...)
		if err := setPath(out, dst, v); err != nil {
			return nil, fmt.Errorf("map %s to %s: %w", p.Path, p.Mapping, err)
		}
	}
	if extra, ok := section["extra"].(map[string]any); ok {
		for _, target := range sortedKeys(extra) {
			if err := merge(out, target, extra[target]); err != nil {
				return nil, fmt.Errorf("merge %s.extra.%s: %w", backend, target, err)
			}
		}
	}
	return out, nil
}

// unknownKeys reports section keys that are neither params, groups of
// params, nor extra. The schema's closed structs reject them earlier; this
// guards callers that build sections by hand.
func (s *Schema) unknownKeys(r *Report, section map[string]any) []error {
	keys := s.keys[r.Backend]
	var errs []error
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for _, k := range sortedKeys(m) {
			j := prefix + k
			kind, ok := keys[j]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("%s.%s: not a %s param; see `llem params %s`", r.Backend, j, r.Backend, r.Backend))
			case kind == keyGroup:
				if sub, ok := m[k].(map[string]any); ok {
					walk(j+".", sub)
				}
			}
		}
	}
	walk("", section)
	return errs
}

// keyKind classifies a dotted key of a backend section.
type keyKind int

const (
	keyParam keyKind = iota // a first-class param
	keyGroup                // a struct of params (vllm.engine)
	keyExtra                // the extra: block, checked by CheckExtra
)

// sectionKeys lists every valid dotted key of a backend section.
func sectionKeys(r *Report) map[string]keyKind {
	keys := map[string]keyKind{"extra": keyExtra}
	for _, p := range r.Params {
		for i := 1; i < len(p.Key); i++ {
			keys[strings.Join(p.Key[:i], ".")] = keyGroup
		}
	}
	for _, p := range r.Params {
		keys[strings.Join(p.Key, ".")] = keyParam
	}
	return keys
}

func lookup(m map[string]any, key []string) (any, bool) {
	var cur any = m
	for _, k := range key {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[k]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

func setPath(m map[string]any, path []string, v any) error {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k]
		if !ok {
			n := map[string]any{}
			m[k] = n
			m = n
			continue
		}
		nm, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is already set to a non-object value", k)
		}
		m = nm
	}
	last := path[len(path)-1]
	if _, dup := m[last]; dup {
		return fmt.Errorf("%s is mapped twice", last)
	}
	m[last] = v
	return nil
}

// merge deep-merges v into m[k]: objects merge key by key, anything else is
// set (CheckExtra has already ruled out overwriting first-class values).
func merge(m map[string]any, k string, v any) error {
	src, ok := v.(map[string]any)
	if !ok {
		if _, exists := m[k]; exists {
			return fmt.Errorf("%s would overwrite a first-class value", k)
		}
		m[k] = v
		return nil
	}
	dst, exists := m[k]
	if !exists {
		dst = map[string]any{}
		m[k] = dst
	}
	dm, ok := dst.(map[string]any)
	if !ok {
		return fmt.Errorf("%s would overwrite a first-class value", k)
	}
	for _, sk := range sortedKeys(src) {
		if err := merge(dm, sk, src[sk]); err != nil {
			return fmt.Errorf("%s.%w", k, err)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// splitArg splits a dotted mapping argument into its nesting levels.
func splitArg(arg string) []string { return strings.Split(arg, ".") }
