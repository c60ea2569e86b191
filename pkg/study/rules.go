package study

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"

	"github.com/llenergymeasure/llem/schema"
)

// Rule-connected components.
//
// The part of a backend section left after the independent leaves
// (split.go) still costs one unification of the whole section definition
// per distinct remainder: a grid over two rule-bound params of one section
// (max_num_seqs × gpu_memory_utilization) unifies #VLLM once per pair. Two
// params that no chain of schema rules connects can be checked apart: the
// remainder's leaves are grouped by component, each group is checked with
// the section's structure (every struct of the remainder, so presence rules
// read the same) but no other group's leaves, and the effective section is
// the structure's own effective value with each group's changes laid over
// it. Any failure, or two groups changing the same path, falls back to the
// remainder checked whole (and that to the whole section), so reasons read
// as before.
//
// Components are computed from the schema by name, like freeFieldNames:
// every rule (comprehension, embedded expression, let) joins all the names
// it mentions, and a field whose constraint refers to other fields joins
// its own name with them. Aliases (S={...}) used other than as S.name or
// S["name"] (S[f] with f ranging over a list of literals) make the scan
// give up: then no section is split this way.

type unionFind map[string]string

func (u unionFind) find(x string) string {
	p, ok := u[x]
	if !ok {
		return x
	}
	if p == x {
		return x
	}
	r := u.find(p)
	u[x] = r
	return r
}

func (u unionFind) join(names []string) {
	if len(names) == 0 {
		return
	}
	for _, n := range names {
		if _, ok := u[n]; !ok {
			u[n] = n
		}
	}
	r := u.find(names[0])
	for _, n := range names[1:] {
		if s := u.find(n); s != r {
			u[s] = r
		}
	}
}

// ruleComponents returns the component of every field name that takes part
// in a rule (names absent are in no rule: each is its own component), or
// nil when the schema uses a construct the scan cannot follow.
func ruleComponents() map[string]string {
	files := schema.Files()
	var parsed []*ast.File
	for _, name := range schema.Names() {
		f, err := parser.ParseFile("schema/"+name, files[name])
		if err != nil {
			return nil
		}
		parsed = append(parsed, f)
	}
	// Names bound by aliases and for clauses; those also declared as
	// fields are treated as field mentions (the conservative side).
	aliases, forVars, dynVars, declared := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	// Definitions that are lists of literals: a for clause over one ranges
	// over known names.
	defLists := map[string][]string{}
	literals := func(e ast.Expr) ([]string, bool) {
		l, ok := e.(*ast.ListLit)
		if !ok {
			return nil, false
		}
		var out []string
		for _, e := range l.Elts {
			b, ok := e.(*ast.BasicLit)
			if !ok {
				return nil, false
			}
			if s, err := strconvUnquote(b.Value); err == nil {
				out = append(out, s)
			}
		}
		return out, true
	}
	// Definitions that are structs of static labels, possibly spread over
	// files (#Backends: native: {...} in native.cue): a for clause over one
	// ranges over its labels. A pattern constraining the entries
	// ([string]: #BackendEntry) adds none; anything else that could add a
	// label (embedding, comprehension, computed label) rules the
	// definition out.
	defStructs, notStatic := map[string][]string{}, map[string]bool{}
	structLabels := func(s *ast.StructLit) ([]string, bool) {
		var out []string
		for _, d := range s.Elts {
			switch x := d.(type) {
			case *ast.Field:
				if name, ok, err := ast.LabelName(x.Label); err == nil && ok {
					out = append(out, name)
					continue
				}
				if l, ok := x.Label.(*ast.ListLit); ok && len(l.Elts) == 1 {
					if _, ok := x.Value.(*ast.Ident); ok {
						continue // [string]: #Entry
					}
				}
				return nil, false
			case *ast.Attribute, *ast.CommentGroup:
			default:
				return nil, false
			}
		}
		return out, true
	}
	// listOf: a definition that is a list comprehension over exactly one
	// known definition (#BackendNames: [for ... in #Backends ...]).
	listOf := map[string]ast.Expr{}
	for _, f := range parsed {
		ast.Walk(f, func(n ast.Node) bool {
			if x, ok := n.(*ast.Field); ok {
				if name, ok, err := ast.LabelName(x.Label); err == nil && ok && strings.HasPrefix(name, "#") {
					if lits, ok := literals(x.Value); ok {
						defLists[name] = lits
					} else if s, ok := x.Value.(*ast.StructLit); ok {
						if labels, ok := structLabels(s); ok {
							defStructs[name] = append(defStructs[name], labels...)
						} else {
							notStatic[name] = true
						}
					} else if l, ok := x.Value.(*ast.ListLit); ok && len(l.Elts) == 1 {
						if _, ok := l.Elts[0].(*ast.Comprehension); ok {
							listOf[name] = l
						}
					}
				}
			}
			return true
		}, nil)
	}
	for name, labels := range defStructs {
		if _, ok := defLists[name]; !ok && !notStatic[name] {
			defLists[name] = labels
		}
	}
	for name, l := range listOf {
		var src []string
		ast.Walk(l, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && strings.HasPrefix(id.Name, "#") {
				if _, known := defLists[id.Name]; known {
					src = append(src, id.Name)
				}
			}
			return true
		}, nil)
		if _, ok := defLists[name]; !ok && len(src) == 1 {
			defLists[name] = defLists[src[0]]
		}
	}
	forLits := func(src ast.Expr) ([]string, bool) {
		if id, ok := src.(*ast.Ident); ok {
			lits, ok := defLists[id.Name]
			return lits, ok
		}
		return literals(src)
	}
	for _, f := range parsed {
		ast.Walk(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Alias:
				aliases[x.Ident.Name] = true
			case *ast.Field:
				if name, ok, err := ast.LabelName(x.Label); err == nil && ok {
					declared[name] = true
				}
			case *ast.LetClause:
				declared[x.Ident.Name] = true
			case *ast.ForClause:
				_, lit := forLits(x.Source)
				for _, id := range []*ast.Ident{x.Key, x.Value} {
					if id != nil {
						forVars[id.Name] = true
						if !lit {
							dynVars[id.Name] = true
						}
					}
				}
			}
			return true
		}, nil)
	}
	unsafe := false
	// knownLabel: a label (f) where f ranges over known names.
	knownLabel := func(l ast.Label) bool {
		p, ok := l.(*ast.ParenExpr)
		if !ok {
			return false
		}
		id, ok := p.X.(*ast.Ident)
		return ok && forVars[id.Name] && !dynVars[id.Name] && !declared[id.Name]
	}
	var mentions func(n ast.Node) []string
	mentions = func(n ast.Node) []string {
		var out []string
		hidden := 0
		var visit func(n ast.Node) bool
		visit = func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Field:
				// A field a rule declares or constrains is part of it,
				// unless hidden (_invalid: ...).
				name, ok, err := ast.LabelName(x.Label)
				if !(err == nil && ok) {
					if !knownLabel(x.Label) {
						unsafe = true // fields by pattern or computed name
					}
					ast.Walk(x.Label, visit, nil)
				} else if strings.HasPrefix(name, "_") {
					hidden++
				} else if hidden == 0 {
					out = append(out, name)
				}
				ast.Walk(x.Value, visit, nil)
				if err == nil && ok && strings.HasPrefix(name, "_") {
					hidden--
				}
				return false
			case *ast.ForClause:
				if id, ok := x.Source.(*ast.Ident); ok {
					out = append(out, defLists[id.Name]...)
				}
				return true
			case *ast.SelectorExpr:
				if name, ok, err := ast.LabelName(x.Sel); err == nil && ok {
					out = append(out, name)
				} else {
					unsafe = true
				}
				if id, ok := x.X.(*ast.Ident); ok && aliases[id.Name] && !declared[id.Name] {
					return false
				}
				ast.Walk(x.X, visit, nil)
				return false
			case *ast.IndexExpr:
				if id, ok := x.X.(*ast.Ident); ok && aliases[id.Name] && !declared[id.Name] {
					switch ix := x.Index.(type) {
					case *ast.BasicLit:
					case *ast.Ident:
						if !forVars[ix.Name] || dynVars[ix.Name] || declared[ix.Name] {
							unsafe = true
						}
					default:
						unsafe = true
					}
					ast.Walk(x.Index, visit, nil)
					return false
				}
				return true
			case *ast.Ident:
				switch {
				case predeclared[x.Name] || strings.HasPrefix(x.Name, "#"):
				case aliases[x.Name] && !declared[x.Name]:
					unsafe = true // the whole struct, not one of its fields
				case forVars[x.Name] && !declared[x.Name]:
				default:
					out = append(out, x.Name)
				}
			case *ast.BasicLit:
				if s, err := strconvUnquote(x.Value); err == nil {
					out = append(out, s)
				}
			}
			return true
		}
		ast.Walk(n, visit, nil)
		return out
	}
	u := unionFind{}
	// Only field and let names can link fields: builtins (error, or, len),
	// packages and message texts cannot.
	keep := func(names []string) []string {
		out := names[:0]
		for _, n := range names {
			if declared[n] {
				out = append(out, n)
			}
		}
		return out
	}
	var decls func(ds []ast.Decl)
	decls = func(ds []ast.Decl) {
		for _, d := range ds {
			switch x := d.(type) {
			case *ast.Field:
				v := x.Value
				if a, ok := v.(*ast.Alias); ok {
					v = a.Expr
				}
				name, static, err := ast.LabelName(x.Label)
				static = static && err == nil
				if _, ok := x.Label.(*ast.Alias); ok {
					static = false
				}
				if !static && len(keep(mentions(x.Value))) > 0 {
					unsafe = true // a pattern's fields depend on others
				}
				if s, ok := v.(*ast.StructLit); ok {
					if !static {
						u.join(keep(mentions(x.Label)))
					}
					decls(s.Elts)
					continue
				}
				switch {
				case !static:
					u.join(keep(append(mentions(x.Label), mentions(x.Value)...)))
				case !selfContained(x.Value):
					u.join(append([]string{name}, keep(mentions(x.Value))...))
				}
			case *ast.EmbedDecl:
				if s, ok := x.Expr.(*ast.StructLit); ok {
					decls(s.Elts)
					continue
				}
				u.join(keep(mentions(x.Expr)))
			case *ast.Comprehension:
				u.join(keep(mentions(x)))
			case *ast.LetClause:
				u.join(append([]string{x.Ident.Name}, keep(mentions(x.Expr))...))
			case *ast.Ellipsis:
				if x.Type != nil {
					u.join(keep(mentions(x.Type)))
				}
			case *ast.Attribute, *ast.CommentGroup, *ast.Package, *ast.ImportDecl:
			default:
				unsafe = true
			}
		}
	}
	for _, f := range parsed {
		decls(f.Decls)
	}
	if unsafe {
		return nil
	}
	out := make(map[string]string, len(u))
	for n := range u {
		out[n] = u.find(n)
	}
	return out
}

// restLeaf is a leaf of a section remainder: a scalar or list (extra: as a
// whole) with its path.
type restLeaf struct {
	path []string
	v    any
}

// restLeaves lists the remainder's leaves; empty structs are structure.
func restLeaves(m map[string]any, path []string, out []restLeaf) []restLeaf {
	for k, v := range m {
		p := append(path[:len(path):len(path)], k)
		if mm, ok := v.(map[string]any); ok && !(len(path) == 0 && k == "extra") {
			out = restLeaves(mm, p, out)
			continue
		}
		out = append(out, restLeaf{path: p, v: v})
	}
	return out
}

// validateRest checks a section remainder, by rule-connected groups of its
// leaves where there are several, and returns its effective value (numbers
// as json.Number). ok is false when it is invalid or the groups disagree.
// With only set (the remainder is the whole section), ok is false instead
// of checking the remainder whole.
func (l *loader) validateRest(kind string, def cue.Value, rest map[string]any, cfg map[string]any, only bool) (map[string]any, bool) {
	rkind := kind + "\x00rest"
	whole := func() (map[string]any, bool) {
		if only { // the caller checks the whole section itself
			return nil, false
		}
		r := l.validatePart(rkind, def, kind, rest, cfg)
		if len(r.reasons) > 0 {
			return nil, false
		}
		eff, err := decodeNumbers(r.canon)
		return eff, err == nil
	}
	if l.comp == nil {
		return whole()
	}
	leaves := restLeaves(rest, nil, nil)
	group := map[string][]restLeaf{}
	for _, lf := range leaves {
		name := lf.path[len(lf.path)-1]
		c, ok := l.comp[name]
		if !ok {
			c = "\x00" + name // in no rule: a component of its own
		}
		group[c] = append(group[c], lf)
	}
	if len(group) < 2 {
		return whole()
	}
	skeleton := clone(rest)
	for _, lf := range leaves {
		m := skeleton
		for _, seg := range lf.path[:len(lf.path)-1] {
			m = m[seg].(map[string]any)
		}
		delete(m, lf.path[len(lf.path)-1])
	}
	rb := l.validatePart(rkind, def, kind, skeleton, cfg)
	if len(rb.reasons) > 0 {
		return whole()
	}
	base, err := decodeNumbers(rb.canon)
	if err != nil {
		return whole()
	}
	eff := clone(base)
	changed := map[string]bool{}
	for _, g := range group {
		raw := clone(skeleton)
		for _, lf := range g {
			setPath(raw, lf.path, lf.v)
		}
		r := l.validatePart(rkind, def, kind, raw, cfg)
		if len(r.reasons) > 0 {
			return whole()
		}
		ge, err := decodeNumbers(r.canon)
		if err != nil || !overlay(eff, base, ge, nil, changed) {
			return whole()
		}
	}
	return eff, true
}

// overlay sets in eff every leaf where g differs from base; false if g
// lacks one of base's paths or a path was already changed by another group.
func overlay(eff, base, g map[string]any, path []string, changed map[string]bool) bool {
	for k := range base {
		if _, ok := g[k]; !ok {
			return false
		}
	}
	for k, gv := range g {
		p := append(path[:len(path):len(path)], k)
		bv, inBase := base[k]
		gm, gIsMap := gv.(map[string]any)
		bm, bIsMap := bv.(map[string]any)
		if gIsMap && bIsMap {
			em, ok := eff[k].(map[string]any)
			if !ok {
				return false
			}
			if !overlay(em, bm, gm, p, changed) {
				return false
			}
			continue
		}
		if inBase && reflect.DeepEqual(gv, bv) {
			continue
		}
		key := strings.Join(p, "\x00")
		if changed[key] {
			return false
		}
		changed[key] = true
		for c := range changed { // a change below or above another one
			if c != key && (strings.HasPrefix(c, key+"\x00") || strings.HasPrefix(key, c+"\x00")) {
				return false
			}
		}
		eff[k] = gv
	}
	return true
}

func decodeNumbers(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	err := dec.Decode(&m)
	return m, err
}
