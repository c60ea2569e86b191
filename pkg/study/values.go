package study

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

// Values on their own.
//
// A value that is wrong whatever else the run holds (a type, a bound, an
// enum, an `extra:` key shadowing a first-class param) is a mistake in the
// file, wherever it is written: base, an experiments entry or one value of
// a grid dimension. It is reported at its position (exit 2), never as a
// skipped run. #Study's CUE check covers base and experiments; checkValues
// covers what CUE cannot (every grid value, backend-scoped dimensions,
// extra: keys, experiment names). strip then leaves the wrong values out,
// so that required fields and cross-field rules are checked in the same
// pass on what remains, and every mistake is reported at once.

// checkValues checks every grid value, every extra: block of base and the
// experiments, and that experiment names are unique.
func (l *loader) checkValues(s *spec) {
	for i := range s.dims {
		d := &s.dims[i]
		var def cue.Value
		switch {
		case d.backend != "":
			def = l.defAtFrom(l.sections[d.backend], d.path[1:])
		default:
			def = l.defAtFrom(l.partialDef, d.path)
		}
		for j, v := range d.values {
			path := fmt.Sprintf("grid.%s.%d", d.key, j)
			if def.Exists() {
				cv := l.ctx.Encode(v)
				if err := def.Unify(cv).Validate(); err != nil {
					l.errorf(d.elemPos[j], path, "%s", l.valueMsg(def, cv, err))
					continue
				}
			}
			var sec map[string]any
			switch {
			case d.backend != "" && d.path[1] == "extra":
				sec = map[string]any{}
				setPath(sec, d.path[1:], v)
			case l.isBackend(d.key):
				sec, _ = v.(map[string]any)
			}
			if sec != nil {
				b := cmpOr(d.backend, d.key)
				for _, r := range extraReasons(b, sec) {
					l.errorf(d.elemPos[j], path, "%s", strings.TrimPrefix(r.String(), b+"."))
				}
			}
		}
	}
	check := func(root string, m map[string]any) {
		for _, b := range l.backends {
			sec, ok := m[b].(map[string]any)
			if !ok {
				continue
			}
			for _, r := range extraReasons(b, sec) {
				full := joinPath(root, r.Path)
				pos := token.NoPos
				if uv := l.user.LookupPath(userPath(full)); uv.Exists() {
					pos = uv.Pos()
				} else if uv := l.user.LookupPath(userPath(joinPath(root, b))); uv.Exists() {
					pos = uv.Pos()
				}
				l.errorf(pos, full, "%s", r.Msg)
			}
		}
	}
	check("base", s.base)
	seen := map[string]int{}
	for i, e := range s.experiments {
		root := fmt.Sprintf("experiments.%d", i)
		check(root, e)
		n := s.names[i]
		if n == "" {
			continue
		}
		if j, dup := seen[n]; dup {
			pos := l.user.LookupPath(userPath(root + ".name")).Pos()
			l.errorf(pos, root+".name", "name %q is already used by experiments[%d]; names label runs and must be unique", n, j)
			continue
		}
		seen[n] = i
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// strip leaves out of the spec every value a diagnostic is about, so the
// per-run checks that follow see only what is not already reported.
func (l *loader) strip(s *spec) {
	for _, d := range l.diags {
		segs := strings.Split(d.Path, ".")
		switch {
		case segs[0] == "base" && len(segs) > 1:
			deletePath(s.base, segs[1:])
		case segs[0] == "experiments" && len(segs) > 2:
			if i, err := strconv.Atoi(segs[1]); err == nil && i >= 0 && i < len(s.experiments) {
				deletePath(s.experiments[i], segs[2:])
			}
		case segs[0] == "grid" && len(segs) > 2:
			j, err := strconv.Atoi(segs[len(segs)-1])
			if err != nil {
				continue
			}
			key := strings.Join(segs[1:len(segs)-1], ".")
			for k := range s.dims {
				if dd := &s.dims[k]; dd.key == key && j < len(dd.values) {
					if dd.bad == nil {
						dd.bad = make([]bool, len(dd.values))
					}
					dd.bad[j] = true
				}
			}
		}
	}
	dims := s.dims[:0]
	for _, d := range s.dims {
		if d.bad != nil {
			var vals []any
			var pos []token.Pos
			for j, v := range d.values {
				if !d.bad[j] {
					vals = append(vals, v)
					pos = append(pos, d.elemPos[j])
				}
			}
			d.values, d.elemPos, d.bad = vals, pos, nil
		}
		if len(d.values) > 0 {
			dims = append(dims, d)
		}
	}
	s.dims = dims
}

// deletePath removes the value at path (or the innermost struct field on
// the way to it, when path goes into a list).
func deletePath(m map[string]any, path []string) {
	for i, seg := range path {
		if i == len(path)-1 {
			delete(m, seg)
			return
		}
		next, ok := m[seg].(map[string]any)
		if !ok {
			delete(m, seg)
			return
		}
		m = next
	}
}

// valueMsg says why the value v does not satisfy def, in one line: the
// allowed values of an enum, the expected type ("must be an integer, got
// "4""), or CUE's own message for a bound.
func (l *loader) valueMsg(def, v cue.Value, err error) string {
	given := valueString(v)
	if allowed := enumValues(def); allowed != nil && v.IncompleteKind()&(cue.StringKind|cue.NumberKind|cue.BoolKind) != 0 {
		msg := given + " is not allowed; use one of " + strings.Join(allowed, " | ")
		if s := suggest(strings.Trim(given, `"`), trimQuotes(allowed)); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return msg
	}
	if m := kindMismatch(def, v); m != "" {
		return m
	}
	var first string
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		if first == "" {
			first = msg
		}
		if !isEnumFailure(msg) {
			return msg
		}
	}
	if first == "" {
		first = err.Error()
	}
	return first
}

// kindMismatch returns "must be an integer, got "eight"" when v's type is
// none that def accepts, else "".
func kindMismatch(def, v cue.Value) string {
	dk, vk := def.IncompleteKind(), v.IncompleteKind()
	if !def.Exists() || !v.Exists() || dk == cue.BottomKind || vk == cue.BottomKind || dk&vk != 0 || dk == cue.TopKind {
		return ""
	}
	msg := "must be " + kindNames(dk) + ", got " + valueString(v)
	if dk == cue.StructKind {
		if label, ok := selectorFor(def, v); ok {
			msg += fmt.Sprintf(" (write {%s: %s})", label, valueString(v))
		}
	}
	return msg
}

// selectorFor finds, for a scalar v given where a struct is expected, the
// field of one of def's alternatives whose fixed value is v: `dataset:
// "synthetic"` was meant as `dataset: {source: "synthetic"}`.
func selectorFor(def, v cue.Value) (string, bool) {
	def = def.Eval() // a reference such as #Dataset becomes its disjunction
	alts := []cue.Value{def}
	if op, args := def.Expr(); op == cue.OrOp {
		alts = args
	}
	for _, alt := range alts {
		it, err := alt.Fields(cue.Optional(true))
		if err != nil {
			continue
		}
		for it.Next() {
			fv := it.Value()
			if fv.IsConcrete() && fv.Kind() == v.Kind() && fv.Equals(v) {
				return it.Selector().String(), true
			}
		}
	}
	return "", false
}

// kindNames describes a set of CUE kinds: "an integer", "a number or a
// string".
func kindNames(k cue.Kind) string {
	var out []string
	if k&cue.BoolKind != 0 {
		out = append(out, "true or false")
	}
	switch {
	case k&cue.NumberKind == cue.NumberKind:
		out = append(out, "a number")
	case k&cue.IntKind != 0:
		out = append(out, "an integer")
	case k&cue.FloatKind != 0:
		out = append(out, "a number")
	}
	if k&cue.StringKind != 0 {
		out = append(out, "a string")
	}
	if k&cue.BytesKind != 0 {
		out = append(out, "bytes")
	}
	if k&cue.ListKind != 0 {
		out = append(out, "a list")
	}
	if k&cue.StructKind != 0 {
		out = append(out, "a struct")
	}
	if k&cue.NullKind != 0 {
		out = append(out, "null")
	}
	if len(out) == 0 {
		return k.String()
	}
	return strings.Join(out, " or ")
}

// typeMessage is kindMismatch for a path of the user's file (or, per run,
// of the run's config).
func (l *loader) typeMessage(path string) string {
	if path == "" {
		return ""
	}
	def := l.defAt(path)
	if !def.Exists() {
		return ""
	}
	var given cue.Value
	if l.perRun {
		v, ok := getPath(l.runCfg, strings.Split(path, "."))
		if !ok {
			return ""
		}
		given = l.ctx.Encode(v)
	} else if l.user.Exists() {
		given = l.user.LookupPath(userPath(path))
	}
	if !given.Exists() || !given.IsConcrete() {
		return ""
	}
	msg := kindMismatch(def, given)
	if msg != "" && given.IncompleteKind() == cue.ListKind && !strings.HasPrefix(path, "grid") {
		msg += " (to sweep several values, put the list under grid:)"
	}
	return msg
}

// fieldPos finds where the field at path of a run's config (origin, grid
// coordinates) is written: the experiments entry, the grid value, then
// base; else the struct the run came from. It returns the position and
// the path to show.
func (x *expander) fieldPos(origin string, coords map[string]any, path string) (token.Pos, string) {
	l := x.l
	segs := strings.Split(path, ".")
	if path != "" {
		if strings.HasPrefix(origin, "experiments[") {
			ep := "experiments." + strings.TrimSuffix(strings.TrimPrefix(origin, "experiments["), "]")
			if uv := l.user.LookupPath(userPath(ep + "." + path)); uv.Exists() && uv.Pos().IsValid() {
				return uv.Pos(), origin + "." + path
			}
		}
		if origin == "file" {
			if uv := l.user.LookupPath(userPath(path)); uv.Exists() && uv.Pos().IsValid() {
				return uv.Pos(), path
			}
		}
		if origin == "grid" {
			for _, d := range x.s.dims {
				if d.key != path && !strings.HasPrefix(path, d.key+".") && !strings.HasPrefix(d.key, path+".") {
					continue
				}
				want := canonValue(coords[d.key])
				for j, v := range d.values {
					if canonValue(v) == want {
						return d.elemPos[j], "grid." + d.key
					}
				}
				return d.pos, "grid." + d.key
			}
		}
		if origin != "file" {
			for i := len(segs); i > 0; i-- {
				p := "base." + strings.Join(segs[:i], ".")
				if uv := l.user.LookupPath(userPath(p)); uv.Exists() && uv.Pos().IsValid() {
					return uv.Pos(), "base." + path
				}
			}
		}
	}
	var at cue.Value
	switch {
	case strings.HasPrefix(origin, "experiments["):
		at = l.user.LookupPath(userPath("experiments." + strings.TrimSuffix(strings.TrimPrefix(origin, "experiments["), "]")))
		return posOr(at, l.user), joinPath(origin, path)
	case origin == "grid":
		at = l.user.LookupPath(cue.ParsePath("grid"))
	case origin == "base":
		at = l.user.LookupPath(cue.ParsePath("base"))
	}
	if origin == "file" {
		return l.user.Pos(), path
	}
	return posOr(at, l.user), joinPath("base", path)
}

func posOr(v, fallback cue.Value) token.Pos {
	if v.Exists() && v.Pos().IsValid() {
		return v.Pos()
	}
	return fallback.Pos()
}

// tokenizerReasons reports a text dataset given to a random-weight preset
// on a backend whose presets take token IDs only (#BackendEntry
// random_text_prompts): the run would fail on its first prompt.
func (l *loader) tokenizerReasons(c Config) []reason {
	if !strings.HasPrefix(c.Model, "random:") || c.Dataset.Source == "synthetic" || c.Dataset.Source == "" {
		return nil
	}
	if l.textOK == nil {
		l.textOK = map[string]bool{}
		for _, b := range l.backends {
			v := l.schema.LookupPath(cue.MakePath(cue.Def("#Backends"), cue.Str(b), cue.Str("random_text_prompts")))
			ok, err := v.Bool()
			l.textOK[b] = err != nil || ok
		}
	}
	if l.textOK[c.Backend] {
		return nil
	}
	return []reason{{Path: "dataset.source", Msg: fmt.Sprintf("%q is a text dataset, but %s has no tokenizer and backend %s takes token IDs only; use dataset: {source: \"synthetic\"} (the default for random: models) or a model with a tokenizer",
		c.Dataset.Source, c.Model, c.Backend)}}
}

// checkFiles reports every JSONL dataset file the runs name that does not
// exist (or is not a regular file), at the dataset.path that names it.
func (l *loader) checkFiles(x *expander) {
	p := x.p
	seen := map[string]bool{}
	for _, r := range p.Runs {
		ds := r.Config.Dataset
		if ds.Source != "jsonl" || ds.Path == "" {
			continue
		}
		full := p.ResolvePath(ds.Path)
		pos, where := x.fieldPos(r.Origin, r.Coordinates, "dataset.path")
		key := full + "\x00" + where
		if seen[key] {
			continue
		}
		seen[key] = true
		st, err := os.Stat(full)
		switch {
		case err != nil && errors.Is(err, fs.ErrNotExist):
			l.errorf(pos, where, "no such file: %s (a JSONL path is relative to the study file's directory)", full)
		case err != nil:
			l.errorf(pos, where, "cannot read %s: %v", full, err)
		case !st.Mode().IsRegular():
			l.errorf(pos, where, "%s is not a regular file; want a JSONL file of prompts", full)
		}
	}
}
