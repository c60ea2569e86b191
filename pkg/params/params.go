// Package params introspects the backend sections of llem's CUE schema
// (schema/pytorch.cue, vllm.cue, tensorrt.cue, native.cue): every
// first-class parameter with its type, default, bounds, doc comment and the
// backend argument it maps to, the known-missing lists, and the coverage
// figure derived from both.
//
// The schema is the single source of truth: nothing here lists parameters by
// hand. BackendArgs turns a run's backend section into the backend's own
// keyword arguments using only the mapping attributes (@pytorch(...),
// @vllm(...), @tensorrt(...), @native(...)), and CheckExtra validates the
// `extra:` escape hatch against the same attributes and against the
// arguments llem fills from shared experiment fields (#<Backend>SharedArgs).
// The cross-field rules are listed from the error("…") messages of the
// schema files, so the docs cannot drift from the constraints.
//
//go:generate go run ./internal/gendoc ../../docs/params.md
//go:generate go run ./internal/gengrid ../../schema/grids_gen.cue
package params

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/parser"

	"github.com/llenergymeasure/llem/schema"
)

// BackendNames lists the backends with a section in the schema, in display
// order (their #Backends entries' order). The schema is scanned on first
// use, not at init, so commands that never ask (llem --version, completion
// queries) do not pay for parsing it.
func BackendNames() []string {
	if d := fast(); d != nil {
		return d.names
	}
	return scanned().names
}

// Targets are the design's coverage goals (issue 2): first-class params as a
// share of first-class plus known impactful missing arguments, from each
// #Backends entry's coverage_target. The native engine has none: every
// option it has is first-class by construction.
func Targets() map[string]float64 {
	if d := fast(); d != nil {
		return d.targets
	}
	return scanned().targets
}

var scanned = sync.OnceValue(func() (s struct {
	names   []string
	targets map[string]float64
}) {
	files, err := embedded()
	if err == nil {
		s.names, s.targets, _, _, err = scanFiles(files)
	}
	if err != nil {
		panic("params: embedded schema: " + err.Error()) // embedded: a test fails first
	}
	return s
})

// embedded is the embedded schema files, parsed once per process with their
// comments: listing the backends, compiling their sections and reading the
// rules all read these trees instead of parsing the files again (parsing
// was most of `llem params`' start-up). Parsed on first use, not at init,
// so that a backend registered from another package's init
// (schema.Register) is in.
var embedded = sync.OnceValues(func() (map[string]*ast.File, error) {
	return parseFiles(schema.Files())
})

// parseFiles parses CUE sources (name → text) with their comments.
func parseFiles(src map[string][]byte) (map[string]*ast.File, error) {
	files := make(map[string]*ast.File, len(src))
	for name, text := range src {
		f, err := parser.ParseFile(name, text, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse schema file %s: %w", name, err)
		}
		files[name] = f
	}
	return files, nil
}

// scanBackends reads the #Backends entries of the schema files by syntax
// alone (no evaluation, so it costs a parse at start-up): each backend's
// file declares `#Backends: <name>: {section: #X, order: N,
// coverage_target?: F, ...}` with literal values: the section definition
// #X with its #XKnownMissing and #XSharedArgs.
func scanBackends(src map[string][]byte) (names []string, targets map[string]float64, backendFiles []string, sections map[string][3]string, err error) {
	files, err := parseFiles(src)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return scanFiles(files)
}

// scanFiles is scanBackends over parsed files.
func scanFiles(files map[string]*ast.File) (names []string, targets map[string]float64, backendFiles []string, sections map[string][3]string, err error) {
	type entry struct {
		name  string
		order int
	}
	var entries []entry
	targets, sections = map[string]float64{}, map[string][3]string{}
	fileNames := make([]string, 0, len(files))
	for n := range files {
		fileNames = append(fileNames, n)
	}
	sort.Strings(fileNames)
	for _, fn := range fileNames {
		f := files[fn]
		found := false
		for _, d := range f.Decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			if l, _, _ := ast.LabelName(fd.Label); l != "#Backends" {
				continue
			}
			st, ok := fd.Value.(*ast.StructLit)
			if !ok {
				continue
			}
			for _, e := range st.Elts {
				ef, ok := e.(*ast.Field)
				if !ok {
					continue
				}
				name, static, _ := ast.LabelName(ef.Label)
				body, ok := ef.Value.(*ast.StructLit)
				if !static || !ok {
					continue // the pattern constraining every entry
				}
				found = true
				en := entry{name: name}
				for _, x := range body.Elts {
					xf, ok := x.(*ast.Field)
					if !ok {
						continue
					}
					key, _, _ := ast.LabelName(xf.Label)
					switch v := xf.Value.(type) {
					case *ast.Ident:
						if key == "section" {
							sections[name] = [3]string{v.Name, v.Name + "KnownMissing", v.Name + "SharedArgs"}
						}
					case *ast.BasicLit:
						switch key {
						case "order":
							en.order, _ = strconv.Atoi(v.Value)
						case "coverage_target":
							targets[name], _ = strconv.ParseFloat(v.Value, 64)
						}
					}
				}
				if _, ok := sections[name]; !ok || en.order == 0 {
					return nil, nil, nil, nil, fmt.Errorf("%s: #Backends: %s needs a literal section: #X and order: N", fn, name)
				}
				entries = append(entries, en)
			}
		}
		if found {
			backendFiles = append(backendFiles, fn)
		}
	}
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].order < entries[j].order })
	for _, e := range entries {
		names = append(names, e.name)
	}
	return names, targets, backendFiles, sections, nil
}

// Param is one first-class backend parameter.
type Param struct {
	// Path is the full dotted path in an experiment, e.g.
	// "vllm.engine.max_num_seqs".
	Path string `json:"path"`
	// Key is the path inside the backend section, e.g. ["engine",
	// "max_num_seqs"].
	Key []string `json:"key"`
	// Type is the short kind: int, number, float, string, bool, enum, list,
	// map, or the schema expression when it mixes kinds.
	Type string `json:"type"`
	// Options are the allowed values of an enum, in schema order.
	Options []any `json:"options,omitempty"`
	// Default is the concrete default llem always sends; nil when the field
	// is optional and absence means "the backend's default".
	Default any `json:"default,omitempty"`
	// BackendDefault documents the backend's own default (from the
	// attribute's default="…"), used when Default is nil.
	BackendDefault string `json:"backend_default,omitempty"`
	// Bounds are the value constraints, e.g. ">=1 & <=4096", or the element
	// constraint of a list.
	Bounds string `json:"bounds,omitempty"`
	// Schema is the field's CUE expression without the default marker.
	Schema string `json:"schema"`
	// Optional is true when the field may be left out.
	Optional bool `json:"optional"`
	// Doc is the field's doc comment.
	Doc string `json:"doc"`
	// Mapping says which backend argument receives the value.
	Mapping Mapping `json:"mapping"`
}

// Mapping is a parsed mapping attribute: @<Backend>(<Target>.<Arg>).
type Mapping struct {
	Backend string `json:"backend"`
	// Target is the call or object receiving the value (e.g. "engine",
	// "generate", "llm"); see docs/params.md for each backend's targets.
	Target string `json:"target"`
	// Arg is the keyword argument, dotted when nested inside a config
	// object (e.g. "speculative_config.model").
	Arg string `json:"arg"`
}

// String renders the mapping the way the schema writes it: target.arg.
func (m Mapping) String() string { return m.Target + "." + m.Arg }

// Missing is one impactful backend argument that is not first-class.
type Missing struct {
	Name string `json:"name"`
	Arg  string `json:"arg"`
	Why  string `json:"why"`
}

// Shared is a backend argument llem fills from a shared experiment field
// (precision, random_seed, decoder.*) instead of the backend section.
type Shared struct {
	Arg  string `json:"arg"`
	From string `json:"from"`
}

// Coverage is first-class / (first-class + known missing).
type Coverage struct {
	FirstClass int     `json:"first_class"`
	Missing    int     `json:"known_missing"`
	Ratio      float64 `json:"ratio"`
	// Target is the design goal, 0 when there is none.
	Target float64 `json:"target,omitempty"`
}

// Met reports whether the coverage reaches its target (true without one).
func (c Coverage) Met() bool { return c.Ratio >= c.Target }

// Report is everything `llem params` shows for one backend.
type Report struct {
	Backend      string    `json:"backend"`
	Params       []Param   `json:"params"`
	Coverage     Coverage  `json:"coverage"`
	KnownMissing []Missing `json:"known_missing"`
	// ExtraTargets are the targets `extra:` accepts, in schema order.
	ExtraTargets []string `json:"extra_targets"`
	// SharedArgs are the arguments llem fills from shared experiment fields,
	// sorted by argument; extra: may not set them.
	SharedArgs []Shared `json:"shared_args"`
	// Rules are the messages of the backend's cross-field rules, read from
	// the error("…") calls of its schema file.
	Rules []string `json:"rules"`
	// pre is set on reports read from precomputed/ (not compiled).
	pre *precomputedExtra
}

// Schema is the compiled backend part of llem's schema with its
// introspection results. Its reports and methods other than Value read
// plain Go data built once by Compile, so they are safe for concurrent use.
type Schema struct {
	val     cue.Value
	reports map[string]*Report
	// argIndex maps backend → "target.arg" → the param (or shared field)
	// that owns the argument, for CheckExtra.
	argIndex map[string]map[string]string
	// keys maps backend → every valid dotted key of its section.
	keys map[string]map[string]keyKind
	// defs maps backend → its section, known-missing and shared-args
	// definitions.
	defs map[string][3]string
}

var (
	defaultOnce   sync.Once
	defaultSchema *Schema
	defaultErr    error
)

// Default returns the schema compiled from the files embedded in the llem
// binary (package github.com/llenergymeasure/llem/schema). It is compiled
// once per process.
func Default() (*Schema, error) {
	defaultOnce.Do(func() {
		// Scanned again here, not at init: a backend registered from
		// another package's init (schema.Register) is in by now.
		all, err := embedded()
		if err != nil {
			defaultErr = err
			return
		}
		_, _, names, _, err := scanFiles(all)
		if err != nil {
			defaultErr = err
			return
		}
		files := make(map[string]*ast.File, len(names))
		for _, name := range names {
			files[name] = all[name]
		}
		defaultSchema, defaultErr = compileFiles(files)
	})
	return defaultSchema, defaultErr
}

// Compile builds a Schema from backend schema files (name → CUE source, each
// `package schema`). The files are merged into one instance, so definitions
// shared between them (#PlainData, #KnownMissingArg) resolve.
func Compile(src map[string][]byte) (*Schema, error) {
	files, err := parseFiles(src)
	if err != nil {
		return nil, err
	}
	return compileFiles(files)
}

// compileFiles is Compile over parsed files.
func compileFiles(files map[string]*ast.File) (*Schema, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	merged := &ast.File{Filename: "backends.cue"}
	rules := map[string][]string{}
	for i, n := range names {
		f := files[n]
		rules[strings.TrimSuffix(n, ".cue")] = ruleMessages(f)
		for _, d := range f.Decls {
			switch d.(type) {
			case *ast.Package:
				if i > 0 {
					continue
				}
			case *ast.ImportDecl:
				return nil, fmt.Errorf("compile schema: %s imports a package; backend files must be self-contained", n)
			}
			merged.Decls = append(merged.Decls, d)
		}
	}
	v := cuecontext.New().BuildFile(merged)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("compile backend schema: %w", err)
	}
	backends, targets, _, defs, err := scanFiles(files)
	if err != nil {
		return nil, err
	}
	s := &Schema{val: v, reports: map[string]*Report{}, argIndex: map[string]map[string]string{}, keys: map[string]map[string]keyKind{}, defs: defs}
	for _, b := range backends {
		r, err := s.introspect(b, targets[b])
		if err != nil {
			return nil, err
		}
		r.Rules = rules[b]
		if r.Rules == nil {
			r.Rules = []string{}
		}
		s.reports[b] = r
		s.keys[b] = sectionKeys(r)
		idx := map[string]string{}
		for _, p := range r.Params {
			idx[p.Mapping.String()] = p.Path
		}
		for _, sh := range r.SharedArgs {
			if owner, dup := idx[sh.Arg]; dup {
				return nil, fmt.Errorf("compile schema: %s argument %s is both first-class %s and filled from %s", b, sh.Arg, owner, sh.From)
			}
			idx[sh.Arg] = sh.From
		}
		s.argIndex[b] = idx
	}
	return s, nil
}

// Report returns the full introspection result for a backend.
func (s *Schema) Report(backend string) (*Report, error) {
	r, ok := s.reports[backend]
	if !ok {
		return nil, unknownBackend(backend)
	}
	return r, nil
}

// Value returns the CUE definition of a backend's section (e.g. #VLLM), for
// callers that validate sections themselves. Unlike the rest of Schema, CUE
// values are not safe for concurrent evaluation: unify from one goroutine.
func (s *Schema) Value(backend string) (cue.Value, error) {
	d, ok := s.defs[backend]
	if !ok {
		return cue.Value{}, unknownBackend(backend)
	}
	return s.val.LookupPath(cue.ParsePath(d[0])), nil
}

// List returns every first-class param of a backend, in schema order.
func List(backend string) ([]Param, error) {
	r, err := report(backend)
	if err != nil {
		return nil, err
	}
	return r.Params, nil
}

// KnownMissing returns the backend's known impactful missing arguments.
func KnownMissing(backend string) ([]Missing, error) {
	r, err := report(backend)
	if err != nil {
		return nil, err
	}
	return r.KnownMissing, nil
}

// CoverageOf returns the coverage figure of a backend.
func CoverageOf(backend string) (Coverage, error) {
	r, err := report(backend)
	if err != nil {
		return Coverage{}, err
	}
	return r.Coverage, nil
}

// Reports returns the reports of the given backends (all when none given).
func Reports(backends ...string) ([]*Report, error) {
	if d := fast(); d != nil {
		if len(backends) == 0 {
			backends = d.names
		}
		out := make([]*Report, 0, len(backends))
		for _, b := range backends {
			r, err := d.report(b)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	return compiledReports(backends...)
}

// compiledReports is Reports from the compiled schema.
func compiledReports(backends ...string) ([]*Report, error) {
	s, err := Default()
	if err != nil {
		return nil, err
	}
	if len(backends) == 0 {
		backends = scanned().names
	}
	out := make([]*Report, 0, len(backends))
	for _, b := range backends {
		r, err := s.Report(b)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func report(backend string) (*Report, error) {
	s, err := Default()
	if err != nil {
		return nil, err
	}
	return s.Report(backend)
}

func unknownBackend(b string) error {
	return fmt.Errorf("unknown backend %q (want one of %s)", b, strings.Join(BackendNames(), ", "))
}
