package study

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"

	"github.com/llenergymeasure/llem/schema"
)

// Backend sections, split further.
//
// A backend section is validated as one part (its rules relate its own
// fields), so a grid over two params of one backend (batch_size × num_beams)
// costs one CUE unification per distinct pair, ~0.5 ms each. Most section
// params take part in no rule: such a leaf is checked on its own, once per
// distinct value, against its field's constraint, and the section without
// those leaves is checked once per distinct remainder; the effective
// section is the remainder's with the leaves set. Any failure falls back to
// the whole-section check, so reasons read exactly as before. The
// remainder itself is checked per group of rule-connected params
// (rules.go). TestSectionSplitMatchesWhole covers these routes.

// predeclared are CUE's type identifiers: a constraint made only of these,
// literals and definitions depends on no other field.
var predeclared = map[string]bool{
	"_": true, "null": true, "bool": true, "int": true, "float": true, "number": true,
	"string": true, "bytes": true, "uint": true, "rune": true,
	"int8": true, "int16": true, "int32": true, "int64": true, "int128": true,
	"uint8": true, "uint16": true, "uint32": true, "uint64": true, "uint128": true,
	"float32": true, "float64": true,
}

// freeFieldNames scans every schema file and returns the field names that
// are safe to check on their own: never mentioned outside a label (no
// selector S.name, no identifier, no string literal such as the names a
// rule loops over) and declared, everywhere, with a constraint that refers
// to nothing but types, literals and definitions. The scan is by name over
// the whole schema, so it errs on the side of checking a field with its
// section.
func freeFieldNames() map[string]bool {
	mentioned := map[string]bool{}
	declared := map[string]bool{}
	bound := map[string]bool{} // declared at least once with a dependent constraint
	var visit func(n ast.Node) bool
	visit = func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.Field:
			if name, ok, err := ast.LabelName(x.Label); err == nil && ok {
				declared[name] = true
				if !selfContained(x.Value) {
					bound[name] = true
				}
			} else {
				ast.Walk(x.Label, visit, nil)
			}
			ast.Walk(x.Value, visit, nil)
			return false // attributes and the label are not mentions
		case *ast.Ident:
			mentioned[x.Name] = true
		case *ast.BasicLit:
			if s, err := strconvUnquote(x.Value); err == nil {
				mentioned[s] = true
			}
		}
		return true
	}
	files := schema.Files()
	for _, name := range schema.Names() {
		f, err := parser.ParseFile("schema/"+name, files[name])
		if err != nil {
			return nil
		}
		ast.Walk(f, visit, nil)
	}
	out := map[string]bool{}
	for n := range declared {
		if !mentioned[n] && !bound[n] {
			out[n] = true
		}
	}
	return out
}

// schemaFree and schemaComponents scan the embedded schema once per
// process; the maps are only read.
var (
	schemaFree       = sync.OnceValue(freeFieldNames)
	schemaComponents = sync.OnceValue(ruleComponents)
)

// selfContained reports whether a field's value refers only to types,
// literals and definitions.
func selfContained(e ast.Expr) bool {
	ok := true
	ast.Walk(e, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.Ident:
			if !predeclared[x.Name] && !strings.HasPrefix(x.Name, "#") {
				ok = false
			}
		case *ast.SelectorExpr, *ast.IndexExpr, *ast.CallExpr, *ast.Comprehension, *ast.Interpolation:
			ok = false
		}
		return ok
	}, nil)
	return ok
}

func strconvUnquote(s string) (string, error) {
	var out string
	err := json.Unmarshal([]byte(s), &out)
	return out, err
}

// leaf is one independent param of a section: path inside the section.
type leaf struct {
	path []string
	def  cue.Value
	raw  any
}

// sectionLeaves lists the independent leaves of a section's raw value.
func (l *loader) sectionLeaves(backend string, raw map[string]any) []leaf {
	if l.free == nil {
		l.free = schemaFree()
		l.leafDefs = map[string]cue.Value{}
		l.comp = schemaComponents()
	}
	var out []leaf
	var walk func(m map[string]any, path []string)
	walk = func(m map[string]any, path []string) {
		for k, v := range m {
			if len(path) == 0 && k == "extra" {
				continue // plain data, checked against first-class params
			}
			p := append(path[:len(path):len(path)], k)
			if mm, ok := v.(map[string]any); ok {
				if len(p) < 4 {
					walk(mm, p)
				}
				continue
			}
			if !l.free[k] {
				continue
			}
			key := backend + "." + strings.Join(p, ".")
			def, ok := l.leafDefs[key]
			if !ok {
				def = l.defAtFrom(l.sections[backend], p)
				l.leafDefs[key] = def
			}
			if def.Exists() {
				out = append(out, leaf{path: p, def: def, raw: v})
			}
		}
	}
	walk(raw, nil)
	return out
}

// validateSplit validates a section as remainder + independent leaves. ok
// is false when the split does not apply or anything is invalid: the caller
// then checks the whole section.
func (l *loader) validateSplit(kind string, def cue.Value, raw map[string]any, cfg map[string]any) (partResult, bool) {
	leaves := l.sectionLeaves(kind, raw)
	if len(leaves) == 0 && l.comp == nil {
		return partResult{}, false
	}
	rest := raw
	if len(leaves) > 0 {
		rest = clone(raw)
	}
	for _, lf := range leaves {
		m := rest
		for _, seg := range lf.path[:len(lf.path)-1] {
			m = m[seg].(map[string]any)
		}
		delete(m, lf.path[len(lf.path)-1])
	}
	eff, ok := l.validateRest(kind, def, rest, cfg, len(leaves) == 0)
	if !ok {
		return partResult{}, false
	}
	for _, lf := range leaves {
		lr := l.validateLeaf(kind, lf)
		if len(lr.reasons) > 0 {
			return partResult{}, false
		}
		dec := json.NewDecoder(bytes.NewReader(lr.canon))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return partResult{}, false
		}
		setPath(eff, lf.path, v)
	}
	var b bytes.Buffer
	if err := writeCanonical(&b, eff); err != nil {
		return partResult{}, false
	}
	var r partResult
	if err := r.fill(kind, b.Bytes()); err != nil {
		return partResult{}, false
	}
	return r, true
}

// validateLeaf checks one independent param value against its field's
// constraint (cached per path and value).
func (l *loader) validateLeaf(backend string, lf leaf) partResult {
	l.keyBuf.Reset()
	l.keyBuf.WriteString("leaf\x00")
	l.keyBuf.WriteString(backend)
	for _, s := range lf.path {
		l.keyBuf.WriteByte('.')
		l.keyBuf.WriteString(s)
	}
	l.keyBuf.WriteByte(0)
	if err := writeCanonical(&l.keyBuf, lf.raw); err != nil {
		return partResult{reasons: []reason{{Msg: err.Error()}}}
	}
	if r, ok := l.cache[string(l.keyBuf.Bytes())]; ok {
		return r
	}
	key := l.keyBuf.String()
	var r partResult
	ev := lf.def.Unify(l.ctx.Encode(lf.raw))
	if err := ev.Validate(cue.Concrete(true)); err != nil {
		r.reasons = []reason{{Msg: err.Error()}}
	} else if js, err := ev.MarshalJSON(); err != nil {
		r.reasons = []reason{{Msg: err.Error()}}
	} else if c, err := canonicalJSON(js); err != nil {
		r.reasons = []reason{{Msg: err.Error()}}
	} else {
		r.canon = c
	}
	if l.cache == nil {
		l.cache = map[string]partResult{}
	}
	l.cache[key] = r
	return r
}
