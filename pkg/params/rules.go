package params

import (
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
)

// ruleMessages extracts the cross-field rules of a backend file: the message
// of every error("…") inside a comprehension, with loop variables expanded
// (`for f in ["a", "b"]` yields one rule per element). The messages are the
// documentation of the rules, read from the schema like everything else.
func ruleMessages(f *ast.File) []string {
	var out []string
	seen := map[string]bool{}
	var visit func(n ast.Node, vars map[string][]string)
	visit = func(n ast.Node, vars map[string][]string) {
		switch x := n.(type) {
		case *ast.File:
			for _, d := range x.Decls {
				visit(d, vars)
			}
		case *ast.Field:
			visit(x.Value, vars)
		case *ast.Alias:
			visit(x.Expr, vars)
		case *ast.BinaryExpr:
			visit(x.X, vars)
			visit(x.Y, vars)
		case *ast.StructLit:
			for _, e := range x.Elts {
				visit(e, vars)
			}
		case *ast.EmbedDecl:
			visit(x.Expr, vars)
		case *ast.Comprehension:
			inner := vars
			for _, c := range x.Clauses {
				fc, ok := c.(*ast.ForClause)
				if !ok || fc.Value == nil {
					continue
				}
				if vals := stringList(fc.Source); vals != nil {
					inner = copyVars(inner)
					inner[fc.Value.Name] = vals
				}
			}
			visit(x.Value, inner)
		case *ast.CallExpr:
			if id, ok := x.Fun.(*ast.Ident); ok && id.Name == "error" && len(x.Args) == 1 {
				for _, m := range expand(x.Args[0], vars) {
					if !seen[m] {
						seen[m] = true
						out = append(out, m)
					}
				}
			}
		}
	}
	visit(f, map[string][]string{})
	return out
}

func copyVars(m map[string][]string) map[string][]string {
	c := make(map[string][]string, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

func stringList(e ast.Expr) []string {
	l, ok := e.(*ast.ListLit)
	if !ok {
		return nil
	}
	var out []string
	for _, el := range l.Elts {
		b, ok := el.(*ast.BasicLit)
		if !ok {
			return nil
		}
		s, err := literal.Unquote(b.Value)
		if err != nil {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// expand renders an error message: a plain string, or an interpolation
// whose loop variables are substituted (one message per value); any other
// interpolated expression is shown as "…".
func expand(e ast.Expr, vars map[string][]string) []string {
	switch x := e.(type) {
	case *ast.BasicLit:
		s, err := literal.Unquote(x.Value)
		if err != nil {
			return []string{x.Value}
		}
		return []string{s}
	case *ast.Interpolation:
		loop := ""
		for i := 1; i < len(x.Elts); i += 2 {
			if id, ok := x.Elts[i].(*ast.Ident); ok && vars[id.Name] != nil {
				loop = id.Name
			}
		}
		vals := []string{""}
		if loop != "" {
			vals = vars[loop]
		}
		var out []string
		for _, v := range vals {
			var b strings.Builder
			for i, el := range x.Elts {
				if i%2 == 0 {
					lit, _ := el.(*ast.BasicLit)
					if lit != nil {
						b.WriteString(fragment(lit.Value, i == 0, i == len(x.Elts)-1))
					}
					continue
				}
				if id, ok := el.(*ast.Ident); ok && id.Name == loop {
					b.WriteString(v)
				} else {
					b.WriteString("…")
				}
			}
			out = append(out, b.String())
		}
		return out
	}
	return nil
}

// fragment strips an interpolation fragment's delimiters ("…\( , )…\( ,
// )…") and unescapes it.
func fragment(s string, first, last bool) string {
	if first {
		s = strings.TrimPrefix(s, `"`)
	} else {
		s = strings.TrimPrefix(s, ")")
	}
	if last {
		s = strings.TrimSuffix(s, `"`)
	} else {
		s = strings.TrimSuffix(s, `\(`)
	}
	if u, err := literal.Unquote(`"` + s + `"`); err == nil {
		return u
	}
	return s
}
