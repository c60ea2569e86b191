package study

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/build"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/schema"
)

// studyKeys are the top-level fields that make a file a study rather than a
// single experiment.
var studyKeys = map[string]bool{
	"name": true, "base": true, "grid": true, "experiments": true,
	"exclude": true, "execution": true, "runners": true, "carbon": true, "slurm": true,
}

// isBackend reports whether s names a backend of the schema (#BackendNames).
func (l *loader) isBackend(s string) bool {
	return slices.Contains(l.backends, s)
}

// backendChoices is the schema's backends as an error message lists them:
// "pytorch" | "vllm" | "tensorrt" | "native".
func (l *loader) backendChoices() string {
	q := make([]string, len(l.backends))
	for i, b := range l.backends {
		q[i] = strconv.Quote(b)
	}
	return strings.Join(q, " | ")
}

// hintFix is the hint attached to every invalid-study error.
const hintFix = "fix the fields above (all errors are listed); `llem params BACKEND` lists backend params, docs/study-language.md the study language"

// Load reads the study (or single-experiment) file at path, validates it
// against the embedded schema and expands it into a Plan. Mistakes in the
// file are returned as an *Error with every diagnostic, marked as bad input
// (exit 2). A study whose runs are partly invalid still loads: the invalid
// runs are in Plan.Skipped.
func Load(ctx context.Context, path string) (*Plan, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.BadInput(fmt.Errorf("read study: %w", err), "check the path of the study file")
	}
	return LoadSource(ctx, path, src)
}

// LoadSource is Load for a file already in memory; filename is used for
// positions in errors and for the default study name.
func LoadSource(ctx context.Context, filename string, src []byte) (*Plan, error) {
	l, err := newLoader(filename)
	if err != nil {
		return nil, err
	}
	p, err := l.load(ctx, src)
	if err != nil {
		return nil, err
	}
	return p, nil
}

type loader struct {
	ctx      *cue.Context
	file     string
	schema   cue.Value
	expDef   cue.Value
	studyDef cue.Value
	execDef  cue.Value
	runDef   cue.Value
	bctx     *build.Context
	schInst  *build.Instance
	diags    []Diagnostic
	user     cue.Value // the user's file, for values at error paths
	kind     string    // "study" or "experiment"
	perRun   bool      // errors are about one run (paths relative to #Experiment)
	runCfg   map[string]any
	// partialDef is #Partial; sections maps backend names to #PyTorch, ...
	partialDef cue.Value
	sections   map[string]cue.Value
	cache      map[string]partResult
	partDefs   map[string]cue.Value // definitions of independent fields and sub-structs
	keyBuf     bytes.Buffer
	topBuf     map[string]any // scratch space reused across runs
	canonOf    map[string][]byte
	keys       []string
	reqs       []reqField           // required fields of the schema, see required.go
	free       map[string]bool      // section params checked on their own, see split.go
	leafDefs   map[string]cue.Value // their definitions by backend.path
	comp       map[string]string    // rule-connected components of field names, see rules.go
	backends   []string             // the schema's #BackendNames
	dsDefs     map[bool]cue.Value   // dataset definitions by random model, see datasetDef
	wuDefs     map[string]cue.Value // warmup definitions by backend, see warmupDef
	textOK     map[string]bool      // backends whose random presets take text, see tokenizerReasons
}

// newLoader compiles the embedded schema into a fresh CUE context.
func newLoader(filename string) (*loader, error) {
	l := &loader{ctx: cuecontext.New(), file: filename}
	l.bctx = build.NewContext()
	l.schInst = l.bctx.NewInstance("schema", func(token.Pos, string) *build.Instance { return nil })
	files := schema.Files()
	for _, name := range schema.Names() {
		f, err := parser.ParseFile("schema/"+name, files[name], parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse embedded schema %s: %w", name, err)
		}
		if err := l.schInst.AddSyntax(f); err != nil {
			return nil, fmt.Errorf("add embedded schema %s: %w", name, err)
		}
	}
	l.schInst.ImportPath = schema.ImportPath
	l.schema = l.ctx.BuildInstance(l.schInst)
	if err := l.schema.Err(); err != nil {
		return nil, fmt.Errorf("compile embedded schema: %w", err)
	}
	l.expDef = l.schema.LookupPath(cue.ParsePath("#Experiment"))
	l.studyDef = l.schema.LookupPath(cue.ParsePath("#Study"))
	l.execDef = l.schema.LookupPath(cue.ParsePath("#Execution"))
	l.runDef = l.schema.LookupPath(cue.ParsePath("#Runner"))
	l.partialDef = l.schema.LookupPath(cue.ParsePath("#Partial"))
	l.partDefs = map[string]cue.Value{}
	for _, k := range append(append([]string(nil), independent...), subStructs...) {
		l.partDefs[k] = lookupField(l.expDef, k)
	}
	// The backends and their sections come from the schema's #Backends
	// (one entry per backend file), in display order.
	if err := l.schema.LookupPath(cue.ParsePath("#BackendNames")).Decode(&l.backends); err != nil {
		return nil, fmt.Errorf("embedded schema #BackendNames: %w", err)
	}
	l.sections = map[string]cue.Value{}
	for _, b := range l.backends {
		l.sections[b] = l.schema.LookupPath(cue.MakePath(cue.Def("#Backends"), cue.Str(b), cue.Str("section")))
	}
	return l, nil
}

func (l *loader) errorf(pos token.Pos, path, format string, args ...any) {
	d := diagAt(pos, path, fmt.Sprintf(format, args...))
	d.own = true
	l.diags = append(l.diags, d)
}

// fail returns the collected diagnostics as a bad-input error.
func (l *loader) fail() error {
	for i := range l.diags {
		l.diags[i].Path = indexPath(l.diags[i].Path)
	}
	return errs.BadInput(&Error{Diags: sortDiags(l.diags)}, hintFix)
}

// indexPath writes list indexes of a dotted path as the file does:
// "experiments.1.n" → "experiments[1].n", "grid.n.0" → "grid.n[0]".
func indexPath(p string) string {
	if p == "" || strings.ContainsAny(p, " =") {
		return p // grid coordinates, not a path
	}
	segs := strings.Split(p, ".")
	var b strings.Builder
	for i, seg := range segs {
		if _, err := strconv.Atoi(seg); err == nil && i > 0 {
			b.WriteString("[" + seg + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(seg)
	}
	return b.String()
}

// compileUser parses and builds the user's file. The schema import (any
// alias) resolves to the embedded schema. A top-level embedding of a schema
// definition (`schema.#Study`) is moved into a hidden field: it still
// type-checks the file for `cue vet`, but defaults are then applied only
// once, per run, so preset-dependent defaults behave the same with or
// without the import. It returns the value and the embedded definition's
// name ("#Study", "#Experiment" or "").
func (l *loader) compileUser(src []byte) (cue.Value, string, bool) {
	f, err := parser.ParseFile(l.file, src, parser.ParseComments)
	if err != nil {
		l.addCueErrors(err, "")
		return cue.Value{}, "", false
	}
	embedded := ""
	alias := ""
	for spec := range f.ImportSpecs() {
		p, _ := strconv.Unquote(spec.Path.Value)
		if p == schema.ImportPath {
			alias = "schema"
			if spec.Name != nil {
				alias = spec.Name.Name
			}
		}
	}
	if alias != "" {
		var decls []ast.Decl
		for i, d := range f.Decls {
			e, ok := d.(*ast.EmbedDecl)
			if !ok {
				decls = append(decls, d)
				continue
			}
			// schema.#Study & {...}: the form that makes `cue vet` reject
			// unknown fields (fields beside an embedded definition extend
			// it). The struct's fields become the file's.
			expr, body := e.Expr, []ast.Decl(nil)
			if b, ok := expr.(*ast.BinaryExpr); ok && b.Op == token.AND {
				if st, ok := b.Y.(*ast.StructLit); ok && isSchemaDef(b.X, alias) {
					expr, body = b.X, st.Elts
				}
			}
			if !isSchemaDef(expr, alias) {
				decls = append(decls, d)
				continue
			}
			embedded = expr.(*ast.SelectorExpr).Sel.(*ast.Ident).Name
			decls = append(decls, &ast.Field{Label: ast.NewIdent(fmt.Sprintf("_llem_schema_%d", i)), Value: expr})
			decls = append(decls, body...)
		}
		f.Decls = decls
	}
	inst := l.bctx.NewInstance(filepath.Dir(l.file), func(pos token.Pos, path string) *build.Instance {
		if path == schema.ImportPath {
			return l.schInst
		}
		return nil
	})
	if err := inst.AddSyntax(f); err != nil {
		l.addCueErrors(err, "")
		return cue.Value{}, "", false
	}
	v := l.ctx.BuildInstance(inst)
	if err := v.Err(); err != nil {
		l.addCueErrors(err, "")
		return cue.Value{}, "", false
	}
	if err := v.Validate(); err != nil {
		// Conflicts within the user's own file (before the schema).
		l.addCueErrors(err, "")
		return cue.Value{}, "", false
	}
	return v, embedded, true
}

// isSchemaDef reports whether e is alias.#Name (a schema definition).
func isSchemaDef(e ast.Expr, alias string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok || x.Name != alias {
		return false
	}
	_, ok = sel.Sel.(*ast.Ident)
	return ok
}

func (l *loader) load(ctx context.Context, src []byte) (*Plan, error) {
	v, embedded, ok := l.compileUser(src)
	if !ok {
		return nil, l.fail()
	}
	if v.IncompleteKind() != cue.StructKind {
		l.errorf(v.Pos(), "", "the file must be a struct of fields (a study or an experiment)")
		return nil, l.fail()
	}
	kind := "experiment"
	if embedded == "#Study" {
		kind = "study"
	} else if embedded != "#Experiment" {
		it, _ := v.Fields()
		for it.Next() {
			if studyKeys[it.Selector().Unquoted()] {
				kind = "study"
				break
			}
		}
	}
	l.user, l.kind = v, kind
	base := filepath.Base(l.file)
	p := &Plan{Name: strings.TrimSuffix(base, filepath.Ext(base)), Source: l.file, Kind: kind}
	var s spec
	if kind == "study" {
		// Every stage reports in one pass: values as written (types,
		// bounds, unknown fields, extra: keys), then, with the values found
		// wrong left out, required fields and cross-field rules per run.
		s = l.checkStudy(v)
		l.checkValues(&s)
		l.strip(&s)
	} else {
		s = l.checkExperiment(v)
		if len(l.diags) > 0 {
			return nil, l.fail()
		}
	}
	if s.name != "" {
		p.Name = s.name
	}
	p.Execution = s.exec
	p.Carbon = s.carbon
	p.Slurm = s.slurm
	p.gpuPos = l.gpuPositions()
	if err := l.expand(ctx, p, &s); err != nil {
		return nil, err
	}
	if len(l.diags) > 0 {
		return nil, l.fail()
	}
	return p, nil
}

// spec is the study as decoded, before expansion.
type spec struct {
	name        string
	base        map[string]any
	dims        []dim
	experiments []map[string]any
	names       []string // experiments entries' names ("" when unnamed)
	exclude     []rule
	exec        Execution
	runners     map[string]Runner
	carbon      *carbon.Config
	slurm       *Slurm
	single      bool
}

// dim is one grid dimension.
type dim struct {
	path    []string // field path, e.g. [decoder temperature]
	key     string   // dotted path
	backend string   // scoped to this backend, or "" for universal
	values  []any
	pos     token.Pos
	elemPos []token.Pos // position of each value
	bad     []bool      // values reported wrong on their own (strip)
}

// rule is one exclude entry, flattened to leaf paths.
type rule struct {
	index  int
	leaves []ruleLeaf
}

type ruleLeaf struct {
	path  []string
	canon []string // canonical JSON of each accepted value
}

func (l *loader) checkExperiment(v cue.Value) spec {
	l.checkFields(v, l.partialDef, nil)
	s := spec{single: true, exec: l.decodeExecution(cue.Value{})}
	// Required fields the file lacks: one clear line each, instead of
	// CUE's "incomplete value" of the field's constraint.
	var missing []reqField
	if v.IsConcrete() {
		var m map[string]any
		if v.Decode(&m) == nil {
			missing = l.missingRequired(m)
			b, _ := m["backend"].(string)
			for _, f := range missing {
				d := diagAt(l.missingPos("", v, f.path), f.key, l.requiredMsg(f, map[string]bool{cmp.Or(b, "pytorch"): true}))
				d.own = true
				l.diags = append(l.diags, d)
			}
		}
	}
	ev := l.expDef.Unify(v)
	if err := ev.Validate(cue.Concrete(true)); err != nil {
		for _, d := range l.cueDiags(err, "", true) {
			// Without a required field, rules that read it are unresolved:
			// CUE reports them at the schema; the missing field says it all.
			if len(missing) > 0 && d.File != l.file {
				continue
			}
			if !coveredByMissing(d.Path, missing) {
				l.diags = append(l.diags, d)
			}
		}
		return s
	}
	s.base = l.decodeMap(v, "")
	s.exec.Cycles = 1
	return s
}

// coveredByMissing reports whether a CUE error at path is about one of the
// missing required fields (at it, or the disjunction around it).
func coveredByMissing(path string, missing []reqField) bool {
	for _, f := range missing {
		if path == f.key || strings.HasPrefix(f.key, path+".") {
			return true
		}
	}
	return false
}

func (l *loader) checkStudy(v cue.Value) spec {
	var s spec
	l.checkFields(v, l.studyDef, nil)
	sv := l.studyDef.Unify(v)
	if err := sv.Validate(); err != nil {
		l.addCueErrors(err, "")
	}
	if n := v.LookupPath(cue.ParsePath("name")); n.Exists() {
		s.name, _ = n.String()
	}
	if b := v.LookupPath(cue.ParsePath("base")); b.Exists() {
		s.base = l.decodeMap(b, "base")
	}
	if g := v.LookupPath(cue.ParsePath("grid")); g.Exists() {
		l.collectDims(g, nil, &s.dims)
	}
	if e := v.LookupPath(cue.ParsePath("experiments")); e.Exists() {
		it, err := e.List()
		if err == nil {
			for i := 0; it.Next(); i++ {
				m := l.decodeMap(it.Value(), fmt.Sprintf("experiments[%d]", i))
				name, _ := m["name"].(string)
				delete(m, "name") // a label, not part of the run's config
				s.experiments = append(s.experiments, m)
				s.names = append(s.names, name)
			}
		}
	}
	if e := v.LookupPath(cue.ParsePath("exclude")); e.Exists() {
		it, err := e.List()
		if err == nil {
			for i := 0; it.Next(); i++ {
				s.exclude = append(s.exclude, l.decodeRule(it.Value(), i))
			}
		}
	}
	s.exec = l.decodeExecution(v.LookupPath(cue.ParsePath("execution")))
	if c := v.LookupPath(cue.ParsePath("carbon")); c.Exists() {
		s.carbon = l.decodeCarbon(c)
	}
	if sl := v.LookupPath(cue.ParsePath("slurm")); sl.Exists() {
		s.slurm = new(Slurm)
		if err := sl.Decode(s.slurm); err != nil {
			l.addCueErrors(err, "slurm")
		}
	}
	s.runners = map[string]Runner{}
	if r := v.LookupPath(cue.ParsePath("runners")); r.Exists() {
		it, _ := r.Fields()
		for it.Next() {
			var rr Runner
			if err := l.runDef.Unify(it.Value()).Decode(&rr); err == nil {
				s.runners[it.Selector().Unquoted()] = rr
			}
		}
	}
	return s
}

// decodeCarbon decodes the study's carbon block (its bounds are checked by
// #Carbon) and checks what CUE cannot: that a region is in llem's table.
func (l *loader) decodeCarbon(v cue.Value) *carbon.Config {
	var c carbon.Config
	if err := v.Decode(&c); err != nil {
		l.addCueErrors(err, "carbon")
		return nil
	}
	if c.Region != "" {
		if _, err := carbon.Lookup(c.Region); err != nil {
			var names []string
			for _, r := range carbon.Regions() {
				names = append(names, r.ISO3, r.ISO2, r.Name)
			}
			msg := fmt.Sprintf("unknown region %q", c.Region)
			if s := suggest(c.Region, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			msg += "; use an ISO 3166 country code or name from llem's table (e.g. FRA, DE, United States; list: docs/carbon.md) or set carbon.intensity_g_per_kwh"
			l.errorf(v.LookupPath(cue.ParsePath("region")).Pos(), "carbon.region", "%s", msg)
		}
	}
	return &c
}

func (l *loader) decodeExecution(v cue.Value) Execution {
	e := l.execDef
	if v.Exists() {
		e = e.Unify(v)
	}
	var x Execution
	if err := e.Decode(&x); err != nil {
		l.addCueErrors(err, "execution")
	}
	if f, ok := x.SteadyState.(float64); ok && f == 1 {
		x.SteadyState = true
	}
	return x
}

// decodeMap decodes a concrete struct into plain Go data.
func (l *loader) decodeMap(v cue.Value, path string) map[string]any {
	var m map[string]any
	if err := v.Decode(&m); err != nil {
		l.addCueErrors(err, path)
		return nil
	}
	return m
}

// collectDims walks grid: a list ends a path (one dimension), a struct
// goes deeper. The first path element decides the scope: a backend name
// makes the dimension backend-scoped.
func (l *loader) collectDims(g cue.Value, path []string, out *[]dim) {
	it, err := g.Fields()
	if err != nil {
		l.errorf(g.Pos(), "grid"+dotted(path), "want a struct of value lists")
		return
	}
	for it.Next() {
		name := it.Selector().Unquoted()
		fv := it.Value()
		p := append(append([]string(nil), path...), name)
		key := strings.Join(p, ".")
		switch fv.IncompleteKind() {
		case cue.ListKind:
			if !l.checkPath(l.partialDef, p, fv.Pos(), "grid.") {
				continue
			}
			var vals []any
			if err := fv.Decode(&vals); err != nil {
				l.addCueErrors(err, "grid."+key)
				continue
			}
			if len(vals) == 0 {
				l.errorf(fv.Pos(), "grid."+key, "empty list: a dimension needs at least one value")
				continue
			}
			d := dim{path: p, key: key, values: vals, pos: fv.Pos()}
			if li, err := fv.List(); err == nil {
				for li.Next() {
					pos := li.Value().Pos()
					if !pos.IsValid() {
						pos = d.pos
					}
					d.elemPos = append(d.elemPos, pos)
				}
			}
			for len(d.elemPos) < len(vals) {
				d.elemPos = append(d.elemPos, d.pos)
			}
			if l.isBackend(p[0]) && len(p) > 1 {
				d.backend = p[0]
			}
			*out = append(*out, d)
		case cue.StructKind:
			if len(p) == 1 && !l.checkPath(l.partialDef, p, fv.Pos(), "grid.") {
				continue
			}
			l.collectDims(fv, p, out)
		default:
			l.errorf(fv.Pos(), "grid."+key, "want a list of values to sweep, e.g. [%s]", valueString(fv))
		}
	}
}

func valueString(v cue.Value) string {
	b, err := v.MarshalJSON()
	if err != nil {
		return "..."
	}
	return string(b)
}

func dotted(p []string) string {
	if len(p) == 0 {
		return ""
	}
	return "." + strings.Join(p, ".")
}

// checkPath reports whether path names a field of def (descending while
// def is a plain struct), with a did-you-mean when it does not.
func (l *loader) checkPath(def cue.Value, path []string, pos token.Pos, prefix string) bool {
	cur := def
	for i, seg := range path {
		if !isPlainStruct(cur) {
			return true
		}
		sel := cue.Str(seg)
		if !cur.Allows(sel) {
			l.unknownField(pos, prefix+strings.Join(path[:i+1], "."), seg, cur)
			return false
		}
		cur = l.field(cur, seg)
	}
	return true
}

// field looks up a field's definition; backend sections resolve to their
// named definitions (#PyTorch, ...), because in #Experiment a section's
// value also carries the section-must-match-backend rule.
func (l *loader) field(def cue.Value, name string) cue.Value {
	if d, ok := l.sections[name]; ok && (def == l.expDef || def == l.partialDef) {
		return d
	}
	return lookupField(def, name)
}

// lookupField finds a regular, required or optional field of def.
func lookupField(def cue.Value, name string) cue.Value {
	if f := def.LookupPath(cue.MakePath(cue.Str(name))); f.Exists() {
		return f
	}
	if f := def.LookupPath(cue.MakePath(cue.Str(name).Optional())); f.Exists() {
		return f
	}
	return def.LookupPath(cue.MakePath(cue.Str(name).Required()))
}

// isPlainStruct reports whether def is a struct that is not a disjunction
// (a disjunction's allowed fields depend on the branch).
func isPlainStruct(def cue.Value) bool {
	if !def.Exists() || def.IncompleteKind() != cue.StructKind {
		return false
	}
	op, _ := def.Expr()
	return op != cue.OrOp
}

func fieldNames(def cue.Value) []string {
	var names []string
	it, err := def.Fields(cue.Optional(true))
	if err != nil {
		return nil
	}
	for it.Next() {
		names = append(names, it.Selector().Unquoted())
	}
	return names
}

func (l *loader) unknownField(pos token.Pos, path, name string, def cue.Value) {
	names := fieldNames(def)
	msg := "unknown field"
	if s := suggest(name, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	} else if len(names) > 0 && len(names) <= 20 {
		msg += "; allowed: " + strings.Join(names, ", ")
	}
	l.errorf(pos, path, "%s", msg)
}

// checkFields reports every field of v that def does not allow (the
// closed-struct typo check CUE reports only one at a time), recursing into
// structs and lists of structs.
func (l *loader) checkFields(v, def cue.Value, path []string) {
	if len(path) > 32 || !isPlainStruct(def) || v.IncompleteKind() != cue.StructKind {
		return
	}
	it, err := v.Fields()
	if err != nil {
		return
	}
	for it.Next() {
		sel := it.Selector()
		name := sel.Unquoted()
		p := append(append([]string(nil), path...), name)
		fv := it.Value()
		if !def.Allows(cue.Str(name)) {
			l.unknownField(fv.Pos(), strings.Join(p, "."), name, def)
			continue
		}
		if len(path) == 0 && (name == "grid" || name == "exclude") && def == l.studyDef {
			continue // checked against #Experiment by collectDims / decodeRule
		}
		dv := l.field(def, name)
		switch fv.IncompleteKind() {
		case cue.StructKind:
			l.checkFields(fv, dv, p)
		case cue.ListKind:
			elem := dv.LookupPath(cue.MakePath(cue.AnyIndex))
			if !elem.Exists() {
				continue
			}
			li, err := fv.List()
			if err != nil {
				continue
			}
			for i := 0; li.Next(); i++ {
				l.checkFields(li.Value(), elem, append(p[:len(p):len(p)], strconv.Itoa(i)))
			}
		}
	}
}

func (l *loader) decodeRule(v cue.Value, i int) rule {
	r := rule{index: i}
	var walk func(v cue.Value, path []string)
	walk = func(v cue.Value, path []string) {
		if v.IncompleteKind() == cue.StructKind {
			it, err := v.Fields()
			if err != nil {
				return
			}
			for it.Next() {
				walk(it.Value(), append(append([]string(nil), path...), it.Selector().Unquoted()))
			}
			return
		}
		if len(path) == 0 {
			l.errorf(v.Pos(), fmt.Sprintf("exclude[%d]", i), "want a struct of field values, e.g. {backend: \"vllm\", precision: \"fp32\"}")
			return
		}
		if !l.checkPath(l.partialDef, path, v.Pos(), fmt.Sprintf("exclude[%d].", i)) {
			return
		}
		var x any
		if err := v.Decode(&x); err != nil {
			l.addCueErrors(err, fmt.Sprintf("exclude[%d].%s", i, strings.Join(path, ".")))
			return
		}
		leaf := ruleLeaf{path: path}
		if xs, ok := x.([]any); ok {
			for _, e := range xs {
				leaf.canon = append(leaf.canon, canonValue(e))
			}
		} else {
			leaf.canon = []string{canonValue(x)}
		}
		// A value outside an enum can never match: almost surely a typo.
		if allowed := enumValues(l.defAtFrom(l.expDef, path)); allowed != nil {
			for _, c := range leaf.canon {
				if !contains(allowed, c) {
					msg := fmt.Sprintf("%s can never match; use one of %s", c, strings.Join(allowed, " | "))
					if s := suggest(strings.Trim(c, `"`), trimQuotes(allowed)); s != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", s)
					}
					l.errorf(v.Pos(), fmt.Sprintf("exclude[%d].%s", i, strings.Join(path, ".")), "%s", msg)
				}
			}
		}
		r.leaves = append(r.leaves, leaf)
	}
	walk(v, nil)
	return r
}

// canonValue is the canonical JSON of a plain Go value, for comparisons.
func canonValue(x any) string {
	var b bytes.Buffer
	if err := writeCanonical(&b, x); err != nil {
		return fmt.Sprint(x)
	}
	return b.String()
}

// addCueErrors turns CUE errors into diagnostics: the path without schema
// definition prefixes, a position in the user's file when there is one,
// and enum failures folded into one line with the allowed values.
func (l *loader) addCueErrors(err error, prefix string) {
	for _, d := range l.cueDiags(err, prefix, true) {
		l.diags = append(l.diags, d)
	}
}

// cueDiags converts err; with positions false it leaves positions out (for
// per-run reasons, whose position would be the schema).
func (l *loader) cueDiags(err error, prefix string, positions bool) []Diagnostic {
	var out []Diagnostic
	enumDone := map[string]bool{}
	list := cueerrors.Errors(err)
	if len(list) == 0 {
		return []Diagnostic{{Path: prefix, Msg: err.Error()}}
	}
	// A bound failure inside a disjunction (number & <=2 | *default) also
	// yields "empty disjunction" and "conflicting values" noise at the same
	// path; keep only the real message there.
	specific := map[string]bool{}
	for _, e := range list {
		format, args := e.Msg()
		if !isEnumFailure(fmt.Sprintf(format, args...)) {
			specific[joinPath(prefix, cleanPath(e.Path()))] = true
		}
	}
	// A value of the wrong type: one line saying what type is wanted,
	// instead of CUE's conflicts with every branch of the field's
	// disjunction ("conflicting values "4" and 1").
	typeMsg := map[string]string{}
	typeDone := map[string]bool{}
	for _, e := range list {
		full := joinPath(prefix, cleanPath(e.Path()))
		if _, ok := typeMsg[full]; !ok {
			typeMsg[full] = l.typeMessage(full)
		}
	}
	for _, e := range list {
		path := cleanPath(e.Path())
		full := joinPath(prefix, path)
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		if tm := typeMsg[full]; tm != "" {
			if typeDone[full] {
				continue
			}
			typeDone[full] = true
			msg = tm
		} else if isEnumFailure(msg) {
			if specific[full] || enumDone[full] {
				continue
			}
			if m, ok := l.enumMessage(full); ok {
				enumDone[full] = true
				msg = m
			} else if strings.Contains(msg, "conflicting values") && strings.Contains(msg, "empty disjunction") {
				msg = strings.TrimSpace(msg)
			}
		}
		if rest, ok := strings.CutPrefix(msg, "incomplete value "); ok && strings.Contains(rest, " | ") {
			// A disjunction without a default for this run (quality.source
			// of a tensorrt run): say what to choose, not CUE's term.
			msg = "has no default here; set it to one of " + rest
			if b, ok := l.runCfg["backend"].(string); ok && l.perRun {
				msg += " (for backend " + b + ")"
			}
		}
		if strings.HasPrefix(msg, "field not allowed") && l.hasDiagFor(full) {
			continue
		}
		d := Diagnostic{Path: full, Msg: msg}
		if positions {
			pos := l.userPos(e)
			if pos.Filename() != l.file && l.user.Exists() {
				if uv := l.user.LookupPath(userPath(full)); uv.Exists() && uv.Pos().IsValid() {
					pos = uv.Pos()
				}
			}
			d = diagAt(pos, full, msg)
		}
		out = append(out, d)
	}
	return out
}

func (l *loader) hasDiagFor(path string) bool {
	for _, d := range l.diags {
		if d.Path == path {
			return true
		}
	}
	return false
}

func isEnumFailure(msg string) bool {
	return strings.Contains(msg, "empty disjunction") || strings.HasPrefix(msg, "conflicting values")
}

// userPos picks the error position in the user's file, else the first one.
func (l *loader) userPos(e cueerrors.Error) token.Pos {
	ps := append([]token.Pos{e.Position()}, e.InputPositions()...)
	for _, p := range ps {
		if p.IsValid() && p.Filename() == l.file {
			return p
		}
	}
	for _, p := range ps {
		if p.IsValid() {
			return p
		}
	}
	return token.NoPos
}

// cleanPath drops schema definition labels ("#Study", "#Experiment") and
// hidden fields from a CUE error path.
func cleanPath(p []string) string {
	var out []string
	for _, s := range p {
		if strings.HasPrefix(s, "#") || strings.HasPrefix(s, "_") {
			// definitions and hidden fields (schema helpers such as
			// _invalid) mean nothing to the user
			continue
		}
		out = append(out, s)
	}
	return strings.Join(out, ".")
}

// userPath turns a dotted error path ("experiments.1.n") into a CUE path
// with list indexes.
func userPath(dotted string) cue.Path {
	var sels []cue.Selector
	for _, seg := range strings.Split(dotted, ".") {
		if i, err := strconv.Atoi(seg); err == nil {
			sels = append(sels, cue.Index(i))
			continue
		}
		sels = append(sels, cue.Str(seg))
	}
	return cue.MakePath(sels...)
}

func joinPath(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	}
	return prefix + "." + path
}

// enumMessage builds the one-line enum error for the field at path
// (relative to the study or experiment root): the value given, the allowed
// values on one line, and the closest allowed value.
func (l *loader) enumMessage(path string) (string, bool) {
	def := l.defAt(path)
	if !def.Exists() {
		return "", false
	}
	allowed := enumValues(def)
	if len(allowed) == 0 {
		return "", false
	}
	msg := "value not allowed"
	var given string
	if l.perRun {
		if rv, ok := getPath(l.runCfg, strings.Split(path, ".")); ok {
			given = canonValue(rv)
			msg = given + " is not allowed"
		}
	} else if l.user.Exists() {
		if uv := l.user.LookupPath(userPath(path)); uv.Exists() {
			given = valueString(uv)
			msg = given + " is not allowed"
		}
	}
	msg += "; use one of " + strings.Join(allowed, " | ")
	if given != "" {
		if s := suggest(strings.Trim(given, `"`), trimQuotes(allowed)); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
	}
	return msg, true
}

func trimQuotes(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.Trim(x, `"`)
	}
	return out
}

// defAt finds the schema definition for a path of the user's file.
func (l *loader) defAt(path string) cue.Value {
	root := l.studyDef
	if l.kind == "experiment" || l.perRun {
		root = l.expDef
	}
	cur := root
	for _, seg := range strings.Split(path, ".") {
		if _, err := strconv.Atoi(seg); err == nil {
			cur = cur.LookupPath(cue.MakePath(cue.AnyIndex))
			continue
		}
		cur = l.field(cur, seg)
		if !cur.Exists() {
			return cur
		}
	}
	return cur
}

// defAtFrom follows path from def (backend sections via their named
// definitions).
func (l *loader) defAtFrom(def cue.Value, path []string) cue.Value {
	cur := def
	for _, seg := range path {
		cur = l.field(cur, seg)
		if !cur.Exists() {
			return cur
		}
	}
	return cur
}

// enumValues lists the concrete alternatives of a disjunction of scalars.
func enumValues(def cue.Value) []string {
	op, args := def.Expr()
	if op == cue.AndOp {
		// A field with extra rules (precision & backend support): the
		// first conjunct that is a plain enum lists the allowed values.
		for _, a := range args {
			if vs := enumValues(a); vs != nil {
				return vs
			}
		}
		return nil
	}
	if op != cue.OrOp {
		return nil
	}
	var out []string
	for _, a := range args {
		if !a.IsConcrete() || a.IncompleteKind()&(cue.StringKind|cue.NumberKind|cue.BoolKind) == 0 {
			return nil
		}
		out = append(out, valueString(a))
	}
	return out
}

var errNoRuns = errors.New("no valid runs")

func jsonMarshal(x any) ([]byte, error) { return json.Marshal(x) }
