package study

import (
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/llenergymeasure/llem/schema"
)

// Required fields (`name!:` in the schema) have no default, so a run that
// lacks one can never be valid whatever the grid point: it is a mistake in
// the file, not an invalid combination. CUE reports it per run as an
// "incomplete value" of the field's constraint; llem reports it once, at the
// struct the researcher should add it to (base, an experiments entry or the
// single-experiment file), with what to write.

// requiredIn maps each schema definition that declares required fields to
// where that definition sits in an experiment config. Definitions other
// than #Experiment apply when the config's value there has the
// definition's concrete discriminator (#JSONL: source "jsonl").
// TestRequiredFieldsKnown fails when the schema gains a required field in
// a definition missing here.
var requiredIn = map[string][]string{
	"#Experiment": nil,
	"#JSONL":      {"dataset"},
}

// reqField is one required field, relative to #Experiment.
type reqField struct {
	path []string
	key  string // dotted path
	when []reqCond
}

// reqCond is a discriminator: the config's value at path must be value.
type reqCond struct {
	path  []string
	value string
}

// requiredFields lists the required fields of the schema (AST scan of the
// embedded files, so `!` is seen even where CUE's API folds it away).
func (l *loader) requiredFields() []reqField {
	if l.reqs != nil {
		return l.reqs
	}
	var out []reqField
	for _, rf := range schemaRequired() {
		at, ok := requiredIn[rf.def]
		if !ok {
			continue // TestRequiredFieldsKnown reports it
		}
		f := reqField{path: append(append([]string(nil), at...), strings.Split(rf.field, ".")...)}
		f.key = strings.Join(f.path, ".")
		if rf.def != "#Experiment" {
			def := l.schema.LookupPath(cue.ParsePath(rf.def))
			it, err := def.Fields()
			if err == nil {
				for it.Next() {
					if s, err := it.Value().String(); err == nil && it.Value().IsConcrete() {
						f.when = append(f.when, reqCond{path: append(append([]string(nil), at...), it.Selector().Unquoted()), value: s})
					}
				}
			}
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	l.reqs = out
	return out
}

// missingRequired returns the required fields cfg lacks.
func (l *loader) missingRequired(cfg map[string]any) []reqField {
	var out []reqField
	for _, f := range l.requiredFields() {
		applies := true
		for _, c := range f.when {
			if v, ok := getPath(cfg, c.path); !ok || v != c.value {
				applies = false
				break
			}
		}
		if !applies {
			continue
		}
		if _, ok := getPath(cfg, f.path); !ok {
			out = append(out, f)
		}
	}
	return out
}

// reqMiss is one required field missing at one place of the file.
type reqMiss struct {
	field    reqField
	root     string    // "base", "experiments[3]" or "" (the file)
	user     cue.Value // the struct at root in the user's file, if any
	backends map[string]bool
	order    int
}

// noteMissing records the required fields a generated config lacks; root
// names the struct the fix belongs in.
func (x *expander) noteMissing(root string, user cue.Value, missing []reqField, cfg map[string]any) {
	if x.missing == nil {
		x.missing = map[string]*reqMiss{}
	}
	b, _ := cfg["backend"].(string)
	if b == "" {
		b = "pytorch"
	}
	for _, f := range missing {
		k := joinPath(root, f.key)
		m, ok := x.missing[k]
		if !ok {
			m = &reqMiss{field: f, root: root, user: user, backends: map[string]bool{}, order: len(x.missing)}
			x.missing[k] = m
		}
		m.backends[b] = true
	}
}

// reportMissing turns the recorded missing fields into diagnostics, one
// per field and place: base.P stands for every grid point, and also for
// the experiments when none of them sets P (and then they are not listed
// one by one).
func (x *expander) reportMissing() {
	if len(x.missing) == 0 {
		return
	}
	l := x.l
	// Fold experiments entries into base when all of them lack the field.
	for _, f := range l.requiredFields() {
		n := 0
		backends := map[string]bool{}
		for i := range x.s.experiments {
			if m, ok := x.missing[joinPath(fmt.Sprintf("experiments[%d]", i), f.key)]; ok {
				n++
				for b := range m.backends {
					backends[b] = true
				}
			}
		}
		bk := joinPath("base", f.key)
		if n > 1 && n == len(x.s.experiments) {
			if _, ok := x.missing[bk]; !ok {
				x.missing[bk] = &reqMiss{field: f, root: "base", user: l.user.LookupPath(cue.ParsePath("base")), backends: map[string]bool{}, order: -1}
			}
		}
		if m, ok := x.missing[bk]; ok {
			for b := range backends {
				m.backends[b] = true
			}
			for i := range x.s.experiments {
				delete(x.missing, joinPath(fmt.Sprintf("experiments[%d]", i), f.key))
			}
		}
	}
	ms := make([]*reqMiss, 0, len(x.missing))
	for _, m := range x.missing {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].order < ms[j].order })
	for _, m := range ms {
		pos := l.missingPos(m.root, m.user, m.field.path)
		d := diagAt(pos, joinPath(m.root, m.field.key), l.requiredMsg(m.field, m.backends))
		d.own = true
		l.diags = append(l.diags, d)
	}
}

// missingPos is the position of the innermost struct of the user's file
// on the way to the missing field: base.dataset for base.dataset.path,
// else base itself; without a base, the grid or the experiments that
// generated the runs, else the file's first field.
func (l *loader) missingPos(root string, user cue.Value, path []string) token.Pos {
	if user.Exists() {
		pos := user.Pos()
		cur := user
		for _, seg := range path[:len(path)-1] {
			cur = cur.LookupPath(cue.MakePath(cue.Str(seg)))
			if !cur.Exists() {
				break
			}
			if p := cur.Pos(); p.IsValid() {
				pos = p
			}
		}
		if pos.IsValid() {
			return pos
		}
	}
	if root == "base" && l.user.Exists() {
		for _, k := range []string{"grid", "experiments"} {
			if v := l.user.LookupPath(cue.ParsePath(k)); v.Exists() && v.Pos().IsValid() {
				return v.Pos()
			}
		}
	}
	if l.user.Exists() {
		return l.user.Pos()
	}
	return token.NoPos
}

// requiredMsg says what to write for a missing required field.
func (l *loader) requiredMsg(f reqField, backends map[string]bool) string {
	const head = "required field missing: "
	switch f.key {
	case "model":
		return head + "set it to a Hugging Face id, a local path or random:<preset> (presets: " + l.presetList(backends) + ")"
	case "dataset.path":
		return head + "set it to the JSONL file of prompts, relative to the study file's directory (or use another dataset.source)"
	}
	msg := head + "set it"
	if d := l.defAtFrom(l.expDef, f.path); d.Exists() {
		for _, c := range d.Doc() {
			if t := strings.TrimSpace(c.Text()); t != "" {
				msg += " (" + strings.ReplaceAll(t, "\n", " ") + ")"
				break
			}
		}
	}
	return msg
}

// presetList lists the random-weight presets of the given backends, from
// the schema's #RandomPresets.
func (l *loader) presetList(backends map[string]bool) string {
	var presets map[string][]string
	if err := l.schema.LookupPath(cue.ParsePath("#RandomPresets")).Decode(&presets); err != nil {
		return "see `llem params`"
	}
	names := func(b string) string {
		var xs []string
		for _, p := range presets[b] {
			xs = append(xs, "random:"+p)
		}
		return strings.Join(xs, ", ")
	}
	var bs []string
	for _, b := range l.backends {
		if backends[b] {
			bs = append(bs, b)
		}
	}
	switch len(bs) {
	case 0:
		bs = l.backends
	case 1:
		return names(bs[0]) + " for backend " + bs[0]
	}
	var parts []string
	for _, b := range bs {
		parts = append(parts, b+": "+names(b))
	}
	return strings.Join(parts, "; ")
}

// schemaReq is a required field as declared: its definition and its path
// inside it (dotted when the field sits in a nested struct literal).
type schemaReq struct {
	def   string
	field string
}

// schemaRequired scans the embedded schema for `name!:` fields.
func schemaRequired() []schemaReq {
	var out []schemaReq
	files := schema.Files()
	for _, name := range schema.Names() {
		f, err := parser.ParseFile("schema/"+name, files[name])
		if err != nil {
			continue // newLoader reports a broken schema
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			def, _, err := ast.LabelName(fd.Label)
			if err != nil || !strings.HasPrefix(def, "#") {
				continue
			}
			var walk func(e ast.Expr, path []string)
			walk = func(e ast.Expr, path []string) {
				s, ok := e.(*ast.StructLit)
				if !ok || len(path) > 8 {
					return
				}
				for _, el := range s.Elts {
					sf, ok := el.(*ast.Field)
					if !ok {
						continue
					}
					n, _, err := ast.LabelName(sf.Label)
					if err != nil {
						continue
					}
					p := append(path[:len(path):len(path)], n)
					if sf.Constraint == token.NOT {
						out = append(out, schemaReq{def: def, field: strings.Join(p, ".")})
					}
					walk(sf.Value, p)
				}
			}
			walk(fd.Value, nil)
		}
	}
	return out
}
