// Package cueset applies command-line overrides (`--set path=value`) to the
// text of a CUE file, so the result goes through the same study loading and
// schema as a file written by hand.
//
// It edits text, not a re-formatted syntax tree: a field the file already
// has gets its value replaced in place and every other byte keeps its
// line and column, so errors still point into the user's file; a field the
// file lacks is appended at the end, where CUE unifies it with the rest.
package cueset

import (
	"fmt"
	"slices"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/llenergymeasure/llem/internal/errs"
)

// Set is one parsed `path=value` override.
type Set struct {
	Path  []string
	Value string // CUE expression text
}

// Parse splits "a.b.c=value" into its path and the CUE text of its value.
// A value that is a CUE literal (number, bool, null, quoted string, list,
// struct, negative number) is used as written; anything else is taken as a
// string, so `--set base.model=random:llama-15m` needs no quotes.
func Parse(arg string) (Set, error) {
	path, val, ok := strings.Cut(arg, "=")
	if !ok || strings.TrimSpace(path) == "" {
		return Set{}, errs.BadInput(fmt.Errorf("--set %q: want path=value", arg),
			"write e.g. --set base.n=10 or --set base.native.batch_size=4")
	}
	parts := strings.Split(strings.TrimSpace(path), ".")
	for _, p := range parts {
		if p == "" || !ast.IsValidIdent(p) {
			return Set{}, errs.BadInput(fmt.Errorf("--set %q: %q is not a field name", arg, p),
				"a path is field names joined by dots, e.g. base.warmup.thermal_floor_seconds")
		}
	}
	return Set{Path: parts, Value: ValueText(val)}, nil
}

// ValueText is the CUE text for a command-line value (see Parse).
func ValueText(val string) string {
	if e, err := parser.ParseExpr("--set", val); err == nil && isLiteral(e) {
		return val
	}
	return literal.String.Quote(val)
}

// isLiteral reports whether e is a value by itself (no references that
// would resolve against the file).
func isLiteral(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return x.Name == "true" || x.Name == "false" || x.Name == "null"
	case *ast.UnaryExpr:
		return (x.Op == token.SUB || x.Op == token.ADD) && isLiteral(x.X)
	case *ast.ListLit:
		for _, el := range x.Elts {
			if !isLiteral(el) {
				return false
			}
		}
		return true
	case *ast.StructLit:
		for _, d := range x.Elts {
			f, ok := d.(*ast.Field)
			if !ok || !isLiteral(f.Value) {
				return false
			}
		}
		return true
	}
	return false
}

// Apply returns src with every override applied, in order. filename is
// used for syntax errors only.
func Apply(filename string, src []byte, sets []Set) ([]byte, error) {
	out := slices.Clone(src)
	for _, s := range sets {
		f, err := parser.ParseFile(filename, out, parser.ParseComments)
		if err != nil {
			// A broken file is reported by the study loader, with every
			// position; overrides cannot be placed in it.
			return src, nil
		}
		type span struct{ start, end int }
		var spans []span
		for _, fl := range find(f.Decls, s.Path) {
			spans = append(spans, span{fl.Value.Pos().Offset(), fl.Value.End().Offset()})
		}
		if len(spans) == 0 {
			out = appendField(out, s)
			continue
		}
		// Replace from the end so earlier offsets stay valid.
		slices.SortFunc(spans, func(a, b span) int { return b.start - a.start })
		for _, sp := range spans {
			out = slices.Concat(out[:sp.start:sp.start], []byte(s.Value), out[sp.end:])
		}
	}
	return out, nil
}

// find returns the fields at path among decls, following struct literals
// (`a: {b: 1}` and `a: b: 1` alike).
func find(decls []ast.Decl, path []string) []*ast.Field {
	var found []*ast.Field
	for _, d := range decls {
		f, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		name, _, err := ast.LabelName(f.Label)
		if err != nil || name != path[0] {
			continue
		}
		if len(path) == 1 {
			found = append(found, f)
			continue
		}
		if st, ok := f.Value.(*ast.StructLit); ok {
			found = append(found, find(st.Elts, path[1:])...)
		}
	}
	return found
}

// appendField adds `a: b: value` at the end of src.
func appendField(src []byte, s Set) []byte {
	var b strings.Builder
	if len(src) > 0 && src[len(src)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString("\n// --set\n")
	b.WriteString(strings.Join(s.Path, ": "))
	b.WriteString(": ")
	b.WriteString(s.Value)
	b.WriteByte('\n')
	return append(src, b.String()...)
}
