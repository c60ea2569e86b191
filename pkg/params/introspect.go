package params

import (
	"fmt"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/token"
)

// introspect walks a backend's section definition. A field carrying the
// backend's attribute is a param; a struct field without one (vllm.engine,
// tensorrt.sampling) is a group that is walked; `extra` is the escape hatch.
// Any other field is a schema bug and an error, so a param can never exist
// without a mapping.
func (s *Schema) introspect(backend string, target float64) (*Report, error) {
	d := s.defs[backend]
	def := s.val.LookupPath(cue.ParsePath(d[0]))
	if !def.Exists() {
		return nil, fmt.Errorf("introspect %s: schema has no %s", backend, d[0])
	}
	r := &Report{Backend: backend}
	if err := walk(def, backend, nil, r); err != nil {
		return nil, err
	}
	missing := s.val.LookupPath(cue.ParsePath(d[1]))
	if !missing.Exists() {
		return nil, fmt.Errorf("introspect %s: schema has no %s", backend, d[1])
	}
	if err := missing.Decode(&r.KnownMissing); err != nil {
		return nil, fmt.Errorf("decode %s: %w", d[1], err)
	}
	if r.KnownMissing == nil {
		r.KnownMissing = []Missing{}
	}
	shared := s.val.LookupPath(cue.ParsePath(d[2]))
	if !shared.Exists() {
		return nil, fmt.Errorf("introspect %s: schema has no %s", backend, d[2])
	}
	var sm map[string]string
	if err := shared.Decode(&sm); err != nil {
		return nil, fmt.Errorf("decode %s: %w", d[2], err)
	}
	r.SharedArgs = []Shared{}
	for _, a := range sortedKeys(sm) {
		r.SharedArgs = append(r.SharedArgs, Shared{Arg: a, From: sm[a]})
	}
	n, m := len(r.Params), len(r.KnownMissing)
	r.Coverage = Coverage{FirstClass: n, Missing: m, Target: target}
	if n+m > 0 {
		r.Coverage.Ratio = float64(n) / float64(n+m)
	}
	return r, nil
}

func walk(v cue.Value, backend string, key []string, r *Report) error {
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return fmt.Errorf("introspect %s: %w", strings.Join(append([]string{backend}, key...), "."), err)
	}
	for it.Next() {
		name := fieldName(it.Selector())
		f := it.Value()
		k := append(append([]string(nil), key...), name)
		path := backend + "." + strings.Join(k, ".")
		if len(key) == 0 && name == "extra" {
			r.ExtraTargets = fieldNames(f)
			continue
		}
		if ra := f.Attribute("removed"); ra.Err() == nil {
			// A param upstream dropped: kept in the schema only so that a
			// study using it gets the error naming its replacement.
			continue
		}
		attr := f.Attribute(backend)
		if attr.Err() != nil {
			if f.IncompleteKind() == cue.StructKind {
				if err := walk(f, backend, k, r); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("introspect %s: field has no @%s(target.arg) mapping attribute", path, backend)
		}
		p, err := describe(f, backend, path, k, it.IsOptional(), attr)
		if err != nil {
			return err
		}
		r.Params = append(r.Params, p)
	}
	return nil
}

func describe(f cue.Value, backend, path string, key []string, optional bool, attr cue.Attribute) (Param, error) {
	p := Param{Path: path, Key: key, Optional: optional}
	arg, err := attr.String(0)
	if err != nil {
		return p, fmt.Errorf("introspect %s: read @%s attribute: %w", path, backend, err)
	}
	target, rest, ok := strings.Cut(arg, ".")
	if !ok || target == "" || rest == "" {
		return p, fmt.Errorf("introspect %s: mapping %q is not target.arg", path, arg)
	}
	p.Mapping = Mapping{Backend: backend, Target: target, Arg: rest}
	if bd, found, err := attr.Lookup(1, "default"); err != nil {
		return p, fmt.Errorf("introspect %s: read default= of @%s: %w", path, backend, err)
	} else if found {
		p.BackendDefault = bd
	}
	var doc []string
	for _, c := range f.Doc() {
		doc = append(doc, strings.TrimSpace(c.Text()))
	}
	p.Doc = strings.Join(strings.Fields(strings.Join(doc, " ")), " ")

	// Only an explicit *default counts: CUE also gives open lists an
	// implicit default of [], which is not something llem sends.
	if d, ok := f.Default(); ok && d.IsConcrete() && hasDefaultMarker(f) {
		var x any
		if err := d.Decode(&x); err != nil {
			return p, fmt.Errorf("introspect %s: decode default: %w", path, err)
		}
		p.Default = x
	}
	expr, err := fieldExpr(f)
	if err != nil {
		return p, fmt.Errorf("introspect %s: %w", path, err)
	}
	p.Schema = exprString(expr)
	p.Type, p.Options, p.Bounds = classify(expr, f.IncompleteKind())
	if p.Type == "enum" && p.Default != nil && !containsValue(p.Options, p.Default) {
		// The default literal (*x) is one of the allowed values too.
		p.Options = append([]any{p.Default}, p.Options...)
		p.Schema = exprString(&ast.BinaryExpr{X: mustLit(p.Default), Op: token.OR, Y: expr})
	}
	return p, nil
}

// fieldExpr returns the field's value expression from the schema source,
// with the default marker (*x |) removed.
func fieldExpr(f cue.Value) (ast.Expr, error) {
	field, ok := f.Source().(*ast.Field)
	if !ok {
		return nil, fmt.Errorf("no source field (got %T)", f.Source())
	}
	var keep []ast.Expr
	for _, d := range disjuncts(field.Value) {
		if u, ok := d.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			continue
		}
		keep = append(keep, d)
	}
	if len(keep) == 0 {
		return field.Value, nil
	}
	e := keep[0]
	for _, x := range keep[1:] {
		e = &ast.BinaryExpr{X: e, Op: token.OR, Y: x}
	}
	return e, nil
}

func disjuncts(e ast.Expr) []ast.Expr {
	if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.OR {
		return append(disjuncts(b.X), disjuncts(b.Y)...)
	}
	if p, ok := e.(*ast.ParenExpr); ok {
		return disjuncts(p.X)
	}
	return []ast.Expr{e}
}

func conjuncts(e ast.Expr) []ast.Expr {
	if b, ok := e.(*ast.BinaryExpr); ok && b.Op == token.AND {
		return append(conjuncts(b.X), conjuncts(b.Y)...)
	}
	return []ast.Expr{e}
}

// classify derives the short type, enum options and bounds from the field
// expression. Mixed expressions keep the schema text as their type.
func classify(e ast.Expr, kind cue.Kind) (typ string, options []any, bounds string) {
	ds := disjuncts(e)
	if len(ds) > 1 {
		var opts []any
		for _, d := range ds {
			lit, ok := d.(*ast.BasicLit)
			if !ok {
				return exprString(e), nil, ""
			}
			opts = append(opts, litValue(lit))
		}
		return "enum", opts, ""
	}
	switch x := e.(type) {
	case *ast.BasicLit:
		return "enum", []any{litValue(x)}, ""
	case *ast.ListLit:
		return "list", nil, listElem(x)
	case *ast.StructLit:
		return "map", nil, exprString(x)
	}
	var bs []string
	typ = kindName(kind)
	for _, c := range conjuncts(e) {
		switch x := c.(type) {
		case *ast.UnaryExpr:
			bs = append(bs, exprString(x))
		case *ast.Ident:
			typ = x.Name
		default:
			return exprString(e), nil, ""
		}
	}
	return typ, nil, strings.Join(bs, " & ")
}

func listElem(l *ast.ListLit) string {
	if len(l.Elts) == 1 {
		if el, ok := l.Elts[0].(*ast.Ellipsis); ok && el.Type != nil {
			return "each " + exprString(el.Type)
		}
	}
	return exprString(l)
}

func litValue(l *ast.BasicLit) any {
	switch l.Kind {
	case token.STRING:
		s, err := literal.Unquote(l.Value)
		if err == nil {
			return s
		}
	case token.INT:
		var n int64
		if _, err := fmt.Sscan(l.Value, &n); err == nil {
			return n
		}
	case token.FLOAT:
		var f float64
		if _, err := fmt.Sscan(l.Value, &f); err == nil {
			return f
		}
	case token.TRUE:
		return true
	case token.FALSE:
		return false
	case token.NULL:
		return nil
	}
	return l.Value
}

func kindName(k cue.Kind) string {
	switch k {
	case cue.IntKind:
		return "int"
	case cue.FloatKind:
		return "float"
	case cue.NumberKind:
		return "number"
	case cue.StringKind:
		return "string"
	case cue.BoolKind:
		return "bool"
	case cue.ListKind:
		return "list"
	case cue.StructKind:
		return "map"
	}
	return k.String()
}

func exprString(e ast.Node) string {
	b, err := format.Node(e, format.Simplify())
	if err != nil {
		return fmt.Sprintf("%v", e)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

func fieldName(sel cue.Selector) string {
	s := sel.String()
	s = strings.TrimSuffix(strings.TrimSuffix(s, "?"), "!")
	if u, err := literal.Unquote(s); err == nil {
		return u
	}
	return s
}

func fieldNames(v cue.Value) []string {
	var out []string
	it, err := v.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	for it.Next() {
		out = append(out, fieldName(it.Selector()))
	}
	return out
}

func containsValue(xs []any, v any) bool {
	for _, x := range xs {
		if fmt.Sprint(x) == fmt.Sprint(v) {
			return true
		}
	}
	return false
}

// mustLit renders a decoded default back as a CUE literal for display.
func mustLit(v any) ast.Expr {
	switch x := v.(type) {
	case string:
		return ast.NewString(x)
	case bool:
		return ast.NewBool(x)
	default:
		return ast.NewLit(token.FLOAT, fmt.Sprint(x))
	}
}

func hasDefaultMarker(f cue.Value) bool {
	field, ok := f.Source().(*ast.Field)
	if !ok {
		return false
	}
	for _, d := range disjuncts(field.Value) {
		if u, ok := d.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			return true
		}
	}
	return false
}
