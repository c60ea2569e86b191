package study

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"

	"cuelang.org/go/cue"

	"github.com/llenergymeasure/llem/pkg/params"
)

// Per-run validation, decomposed and memoised.
//
// Unifying a whole config with #Experiment costs 1-4 ms (the schema is
// large: four backend sections, presets, cross-field rules), which would make
// a 10,000-run grid take tens of seconds. A config splits into parts that the
// schema checks independently:
//
//   - the top level: model, backend, precision and which backend sections
//     are present — all of #Experiment's own cross-field rules live here;
//   - each other top-level scalar (n, max_output_tokens, ...), on its own;
//   - each sub-struct (dataset, decoder, warmup, baseline, energy), checked
//     against its own definition;
//   - the backend section, checked against #PyTorch/#VLLM/#TensorRT/#Native
//     (backend-specific rules live inside those definitions).
//
// Grid points share most parts, so each distinct part is validated once and
// cached; the effective config is reassembled from the parts. This relies on
// one rule for schema authors: a cross-field rule either relates model,
// backend, precision and section presence (extend `independent` otherwise),
// or stays inside one sub-struct or section.
// TestDecomposedMatchesFull checks the two routes agree.

var subStructs = []string{"dataset", "decoder", "warmup", "baseline", "energy"}

// independent are top-level scalars that no cross-field rule mentions; each
// is checked on its own against its field's constraint.
var independent = []string{"n", "dataset_order", "max_input_tokens", "max_output_tokens", "random_seed"}

type partResult struct {
	canon   []byte            // canonical JSON of the effective value
	fields  map[string][]byte // "top" only: canonical JSON per field
	typed   any               // the effective value decoded into Go types
	reasons []reason
}

// reason is why a run is invalid: a field path of the run's config
// ("precision", "vllm.engine.max_num_seqs") and what is wrong there.
type reason struct {
	Path string
	Msg  string
}

func (r reason) String() string {
	if r.Path == "" {
		return r.Msg
	}
	return r.Path + ": " + r.Msg
}

func reasonStrings(rs []reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

func extraReasons(kind string, section map[string]any) []reason {
	var out []reason
	for _, e := range params.CheckExtra(kind, section) {
		var xe *params.ExtraError
		if errors.As(e, &xe) {
			out = append(out, reason{Path: xe.Path, Msg: xe.Msg})
			continue
		}
		out = append(out, reason{Path: kind + ".extra", Msg: e.Error()})
	}
	return out
}

func (l *loader) validatePart(kind string, def cue.Value, prefix string, raw any, cfg map[string]any) partResult {
	return l.validatePartVariant(kind, "", def, prefix, raw, cfg)
}

// validatePartVariant is validatePart for a part whose definition depends
// on other fields (the dataset's default on the model, the warm-up's on
// the backend): variant names the definition, for the cache.
func (l *loader) validatePartVariant(kind, variant string, def cue.Value, prefix string, raw any, cfg map[string]any) partResult {
	l.keyBuf.Reset()
	l.keyBuf.WriteString(kind)
	l.keyBuf.WriteByte(0)
	l.keyBuf.WriteString(variant)
	l.keyBuf.WriteByte(0)
	if err := writeCanonical(&l.keyBuf, raw); err != nil {
		return partResult{reasons: []reason{{Path: prefix, Msg: err.Error()}}}
	}
	if r, ok := l.cache[string(l.keyBuf.Bytes())]; ok {
		return r
	}
	key := l.keyBuf.String()
	if m, ok := raw.(map[string]any); ok && l.isBackend(kind) {
		if r, ok := l.validateSplit(kind, def, m, cfg); ok {
			r.reasons = append(r.reasons, extraReasons(kind, r.typed.(map[string]any))...)
			if l.cache == nil {
				l.cache = map[string]partResult{}
			}
			l.cache[key] = r
			return r
		}
	}
	var r partResult
	ev := def.Unify(l.ctx.Encode(raw))
	if err := ev.Validate(cue.Concrete(true)); err != nil {
		r.reasons = l.runReasons(err, cfg, prefix)
	} else if js, err := ev.MarshalJSON(); err != nil {
		r.reasons = l.runReasons(err, cfg, prefix)
	} else if err := r.fill(kind, js); err != nil {
		r.reasons = []reason{{Path: prefix, Msg: err.Error()}}
	} else if l.isBackend(kind) {
		// extra: keys must be plain data and must not shadow first-class
		// params (pkg/params knows the mapping attributes).
		r.reasons = append(r.reasons, extraReasons(kind, r.typed.(map[string]any))...)
	}
	if l.cache == nil {
		l.cache = map[string]partResult{}
	}
	l.cache[key] = r
	return r
}

// fill computes the canonical bytes and the typed value of a valid part.
func (r *partResult) fill(kind string, js []byte) error {
	if kind == "top" {
		js = dropDefaultScope(js)
	}
	canon, err := canonicalJSON(js)
	if err != nil {
		return err
	}
	r.canon = canon
	switch kind {
	case "top":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(canon, &m); err != nil {
			return err
		}
		r.fields = make(map[string][]byte, len(m))
		for k, v := range m {
			r.fields[k] = v
		}
		var t Config
		err = json.Unmarshal(canon, &t)
		t.PyTorch, t.VLLM, t.TensorRT, t.Native = nil, nil, nil, nil
		r.typed = t
	case "n", "max_input_tokens", "max_output_tokens":
		var x int
		err = json.Unmarshal(canon, &x)
		r.typed = x
	case "random_seed":
		var x int64
		err = json.Unmarshal(canon, &x)
		r.typed = x
	case "dataset_order":
		var x string
		err = json.Unmarshal(canon, &x)
		r.typed = x
	case "dataset":
		var x Dataset
		err = json.Unmarshal(canon, &x)
		r.typed = x
	case "decoder":
		var x Decoder
		err = json.Unmarshal(canon, &x)
		r.typed = x
	case "warmup":
		var x Warmup
		err = json.Unmarshal(canon, &x)
		r.typed = x
	case "baseline":
		var x Baseline
		err = json.Unmarshal(canon, &x)
		r.typed = x
	case "energy":
		var x Energy
		err = json.Unmarshal(canon, &x)
		r.typed = x
	default: // a backend section
		var x map[string]any
		err = json.Unmarshal(canon, &x)
		r.typed = x
	}
	return err
}

// dropDefaultScope removes quality.scope when it is "run", the meaning of
// its absence: the schema gives scope no default (one would move the run
// IDs of every scored study written before scope existed), so this keeps
// `scope: "run"` and no scope the same effective config and run ID.
func dropDefaultScope(js []byte) []byte {
	if !bytes.Contains(js, []byte(`"scope"`)) {
		return js
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return js
	}
	q, ok := m["quality"].(map[string]any)
	if !ok || q["scope"] != QualityScopeRun {
		return js
	}
	delete(q, "scope")
	out, err := json.Marshal(m)
	if err != nil {
		return js
	}
	return out
}

// validateRun checks one config. It returns the canonical effective config
// and its Go form, or the reasons it is invalid (one each).
//
// The effective config always holds the run's backend section with its
// defaults filled in, present in the file or not, so that `{}` and
// `{native: batch_size: 1}` (the default) are the same run with the same ID.
func (l *loader) validateRun(cfg map[string]any) ([]byte, Config, []reason) {
	if l.topBuf == nil {
		l.topBuf = make(map[string]any, 8)
	}
	top := l.topBuf
	clear(top)
	for k, v := range cfg {
		switch {
		case contains(subStructs, k), contains(independent, k):
		case l.isBackend(k):
			top[k] = map[string]any{} // presence only: the section-match rule
		default:
			top[k] = v
		}
	}
	tr := l.validatePart("top", l.expDef, "", top, cfg)
	var reasons []reason
	reasons = append(reasons, tr.reasons...)
	var parts [16]struct {
		key string
		r   partResult
	}
	np := 0
	check := func(k, variant string, def cue.Value, always bool) {
		raw, ok := cfg[k]
		if !ok {
			if !always {
				return
			}
			raw = map[string]any{}
		}
		prefix := ""
		if l.isBackend(k) {
			prefix = k // section definitions' error paths start inside the section
		}
		pr := l.validatePartVariant(k, variant, def, prefix, raw, cfg)
		reasons = append(reasons, pr.reasons...)
		parts[np].key, parts[np].r = k, pr
		np++
	}
	for _, k := range independent {
		check(k, "", l.partDefs[k], false)
	}
	for _, k := range subStructs {
		if k == "dataset" || k == "warmup" {
			continue // their defaults depend on top's fields: below
		}
		check(k, "", l.partDefs[k], false)
	}
	var c Config
	if len(tr.reasons) == 0 {
		// Defaults for everything the run did not set come from top.
		c = tr.typed.(Config)
		random := strings.HasPrefix(c.Model, "random:")
		check("dataset", strconv.FormatBool(random), l.datasetDef(random), false)
		check("warmup", c.Backend, l.warmupDef(c.Backend), false)
		if l.isBackend(c.Backend) {
			check(c.Backend, "", l.sections[c.Backend], true)
		}
	}
	if len(reasons) > 0 {
		return nil, c, reasons
	}
	// Effective config = top's fields (defaults included), with the parts
	// checked on their own replacing them; other sections dropped.
	if l.canonOf == nil {
		l.canonOf = make(map[string][]byte, 16)
	}
	canonOf := l.canonOf
	clear(canonOf)
	for k, v := range tr.fields {
		if !l.isBackend(k) {
			canonOf[k] = v
		}
	}
	for i := range np {
		canonOf[parts[i].key] = parts[i].r.canon
	}
	keys := l.keys[:0]
	size := 2
	for k, v := range canonOf {
		keys = append(keys, k)
		size += len(k) + 4 + len(v)
	}
	sort.Strings(keys)
	l.keys = keys
	b := bytes.NewBuffer(make([]byte, 0, size))
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeString(b, k)
		b.WriteByte(':')
		b.Write(canonOf[k])
	}
	b.WriteByte('}')
	for i := range np {
		c.set(parts[i].key, parts[i].r.typed)
	}
	return b.Bytes(), c, nil
}

func (c *Config) set(k string, v any) {
	switch k {
	case "n":
		c.N = v.(int)
	case "max_input_tokens":
		c.MaxInputTokens = v.(int)
	case "max_output_tokens":
		c.MaxOutputTokens = v.(int)
	case "random_seed":
		c.RandomSeed = v.(int64)
	case "dataset_order":
		c.DatasetOrder = v.(string)
	case "dataset":
		c.Dataset = v.(Dataset)
	case "decoder":
		c.Decoder = v.(Decoder)
	case "warmup":
		c.Warmup = v.(Warmup)
	case "baseline":
		c.Baseline = v.(Baseline)
	case "energy":
		c.Energy = v.(Energy)
	case "pytorch":
		c.PyTorch = v.(map[string]any)
	case "vllm":
		c.VLLM = v.(map[string]any)
	case "tensorrt":
		c.TensorRT = v.(map[string]any)
	case "native":
		c.Native = v.(map[string]any)
	}
}

// datasetDef is #Experiment's dataset with the default for a random-weight
// model (synthetic) or another model (the AI Energy Score set).
func (l *loader) datasetDef(random bool) cue.Value {
	if d, ok := l.dsDefs[random]; ok {
		return d
	}
	model := "m"
	if random {
		model = "random:x"
	}
	d := l.expDef.FillPath(cue.ParsePath("model"), model).LookupPath(cue.ParsePath("dataset"))
	if l.dsDefs == nil {
		l.dsDefs = map[bool]cue.Value{}
	}
	l.dsDefs[random] = d
	return d
}

// warmupDef is #Experiment's warmup for a backend (its thermal floor
// default is the backend's).
func (l *loader) warmupDef(backend string) cue.Value {
	if d, ok := l.wuDefs[backend]; ok {
		return d
	}
	d := l.expDef.FillPath(cue.ParsePath("backend"), backend).LookupPath(cue.ParsePath("warmup"))
	if l.wuDefs == nil {
		l.wuDefs = map[string]cue.Value{}
	}
	l.wuDefs[backend] = d
	return d
}

// validateRunFull is the reference route: one unification of the whole
// config with #Experiment (the run's backend section present, as
// validateRun makes it). Tests compare it with validateRun.
func (l *loader) validateRunFull(cfg map[string]any) ([]byte, []reason) {
	b, _ := cfg["backend"].(string)
	if b == "" {
		b = "pytorch"
	}
	if _, ok := cfg[b]; !ok && l.isBackend(b) {
		cfg = clone(cfg)
		cfg[b] = map[string]any{}
	}
	ev := l.expDef.Unify(l.ctx.Encode(cfg))
	if err := ev.Validate(cue.Concrete(true)); err != nil {
		return nil, l.runReasons(err, cfg, "")
	}
	js, err := ev.MarshalJSON()
	if err != nil {
		return nil, l.runReasons(err, cfg, "")
	}
	canon, err := canonicalJSON(js)
	if err != nil {
		return nil, []reason{{Msg: err.Error()}}
	}
	return canon, nil
}
