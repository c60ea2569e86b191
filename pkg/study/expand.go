package study

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/token"
)

// expand builds every run: the grid product per backend, then the
// experiments entries, each validated on its own against #Experiment.
func (l *loader) expand(ctx context.Context, p *Plan, s *spec) error {
	var universal, scoped []dim
	var backendDim *dim
	for i := range s.dims {
		d := &s.dims[i]
		switch {
		case d.key == "backend":
			backendDim = d
		case d.backend != "":
			scoped = append(scoped, *d)
		default:
			universal = append(universal, *d)
		}
	}
	var backends []string
	switch {
	case backendDim != nil:
		for _, v := range backendDim.values {
			b, ok := v.(string)
			if !ok || !l.isBackend(b) {
				l.errorf(backendDim.pos, "grid.backend", "%s is not allowed; use one of %s", canonValue(v), l.backendChoices())
				continue
			}
			backends = append(backends, b)
		}
	case s.base["backend"] != nil:
		if b, ok := s.base["backend"].(string); ok {
			backends = []string{b}
		}
	case len(scoped) > 0:
		for _, d := range scoped {
			if !contains(backends, d.backend) {
				backends = append(backends, d.backend)
			}
		}
	}
	for _, d := range scoped {
		if len(backends) > 0 && !contains(backends, d.backend) {
			l.errorf(d.pos, "grid."+d.key, "scoped to backend %s, but the study runs only %s; add %q to grid.backend or remove this dimension",
				d.backend, strings.Join(backends, ", "), d.backend)
		}
	}
	if backendDim != nil {
		p.Dims = append(p.Dims, "backend")
	}
	for _, d := range universal {
		p.Dims = append(p.Dims, d.key)
	}
	for _, d := range scoped {
		p.Dims = append(p.Dims, d.key)
	}

	// Refuse absurd products before building them (memory and time grow
	// linearly: ~3-8 KB and ~15-30 µs per run, docs/study-language.md).
	total := len(s.experiments)
	if len(s.dims) > 0 {
		bs := max(len(backends), 1)
		for bi := 0; bi < bs; bi++ {
			n := 1
			for _, d := range universal {
				n = satMul(n, len(d.values))
			}
			for _, d := range scoped {
				if len(backends) == 0 || d.backend == backends[bi] {
					n = satMul(n, len(d.values))
				}
			}
			total = satAdd(total, n)
		}
	}
	if total > MaxRuns {
		l.errorf(p0(s), "grid", "the study expands to %d configs, more than the limit of %d; split it into several studies or narrow the grid", total, MaxRuns)
		return nil
	}

	// Runs are large (~0.5 KB): size the slice once instead of growing it.
	p.Runs = make([]Run, 0, total)
	x := expander{l: l, p: p, s: s, seen: make(map[string]int, total)}
	x.multiBackend = len(backends) > 1
	if len(s.dims) > 0 {
		if len(backends) == 0 {
			backends = []string{""}
		}
		for _, b := range backends {
			dims := append([]dim(nil), universal...)
			for _, d := range scoped {
				if d.backend == b {
					dims = append(dims, d)
				}
			}
			if err := x.product(ctx, b, backends, dims, backendDim != nil); err != nil {
				return err
			}
		}
	}
	for i, e := range s.experiments {
		cfg := merge(x.baseFor(s.base, e), e)
		coords := map[string]any{"experiment": i}
		x.name = s.names[i]
		if err := x.add(ctx, fmt.Sprintf("experiments[%d]", i), coords, cfg); err != nil {
			return err
		}
		x.name = ""
	}
	if len(s.dims) == 0 && len(s.experiments) == 0 {
		origin := "base"
		if s.single {
			origin = "file"
		}
		if err := x.add(ctx, origin, map[string]any{}, clone(s.base)); err != nil {
			return err
		}
	}
	x.reportMissing()
	return x.finish()
}

// MaxRuns caps the number of configs a study may expand to.
const MaxRuns = 200_000

func satMul(a, b int) int {
	if a != 0 && b > (1<<50)/a {
		return 1 << 50
	}
	return a * b
}

func satAdd(a, b int) int { return min(a+b, 1<<50) }

// p0 is the position of the first grid dimension, for whole-grid errors.
func p0(s *spec) token.Pos {
	if len(s.dims) > 0 {
		return s.dims[0].pos
	}
	return token.NoPos
}

type expander struct {
	l            *loader
	p            *Plan
	s            *spec
	seen         map[string]int // run hash → index in p.Runs
	invalid      int
	total        int
	multiBackend bool
	n            int
	missing      map[string]*reqMiss // required fields missing, see required.go
	name         string              // name of the experiments entry being added
	// gridDiags are the cross-field reasons of skipped grid points, at
	// the field that triggered them: the errors when nothing runs.
	gridDiags []Diagnostic
}

// product walks the Cartesian product of dims (first dimension slowest)
// for one backend.
func (x *expander) product(ctx context.Context, backend string, all []string, dims []dim, backendIsDim bool) error {
	idx := make([]int, len(dims))
	// The config is rebuilt in place for every grid point: add keeps
	// nothing of it (runs keep the canonical JSON and typed config), so
	// one top-level map and one map per struct on a dimension's path serve
	// every point, instead of a deep copy of base each time.
	base := x.s.base
	cfg := make(map[string]any, len(base)+2)
	type scratch struct {
		m   map[string]any
		gen int
	}
	nested := map[string]*scratch{}
	prefixes := make([][]string, len(dims))
	for i, d := range dims {
		for j := 1; j < len(d.path); j++ {
			prefixes[i] = append(prefixes[i], strings.Join(d.path[:j], "."))
		}
	}
	for gen := 1; ; gen++ {
		clear(cfg)
		for k, v := range base {
			cfg[k] = v
		}
		// Sections of the study's other backends are scoped: drop them.
		for _, b := range all {
			if b != backend && b != "" {
				delete(cfg, b)
			}
		}
		coords := make(map[string]any, len(dims)+1)
		if backend != "" {
			cfg["backend"] = backend
			if backendIsDim || x.multiBackend {
				coords["backend"] = backend
			}
		}
		for i, d := range dims {
			v := d.values[idx[i]]
			m := cfg
			for j, seg := range d.path[:len(d.path)-1] {
				sc := nested[prefixes[i][j]]
				if sc == nil {
					sc = &scratch{m: map[string]any{}}
					nested[prefixes[i][j]] = sc
				}
				if sc.gen != gen {
					// First use this point: a copy of what base has there.
					clear(sc.m)
					if from, ok := m[seg].(map[string]any); ok {
						for k, fv := range from {
							sc.m[k] = fv
						}
					}
					sc.gen = gen
					m[seg] = sc.m
				}
				m = sc.m
			}
			m[d.path[len(d.path)-1]] = v
			coords[d.key] = v
		}
		if err := x.add(ctx, "grid", coords, cfg); err != nil {
			return err
		}
		// Odometer: advance the last dimension first.
		k := len(dims) - 1
		for ; k >= 0; k-- {
			idx[k]++
			if idx[k] < len(dims[k].values) {
				break
			}
			idx[k] = 0
		}
		if k < 0 {
			return nil
		}
	}
}

// baseFor is base as an experiments entry inherits it: base's sections
// of other backends than the entry's are scoped away, as for grid runs
// (base: {backend: "pytorch", pytorch: {...}} with an entry {backend:
// "vllm"}). The entry's own sections are kept, so a section of another
// backend written in the entry is still an error at its position.
func (x *expander) baseFor(base, entry map[string]any) map[string]any {
	cfg := clone(base)
	backend, ok := entry["backend"].(string)
	if !ok {
		if backend, ok = base["backend"].(string); !ok {
			return cfg // the schema's default backend decides; nothing to scope
		}
	}
	for _, b := range x.l.backends {
		if b != backend {
			delete(cfg, b)
		}
	}
	return cfg
}

// add validates one generated config and files it as a run, a skip or,
// for a run the file asks for explicitly (an experiments entry, base
// alone, a single-experiment file), an error at the field that triggered
// it: only grid points, which the file does not list one by one, are
// skipped for a cross-field rule.
func (x *expander) add(ctx context.Context, origin string, coords map[string]any, cfg map[string]any) error {
	x.n++
	if x.n%256 == 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("expand study: %w", err)
		}
	}
	x.total++
	canon, cfg1, reasons := x.l.validateRun(cfg)
	if reasons == nil {
		reasons = x.l.tokenizerReasons(cfg1)
	}
	if reasons != nil {
		if r := x.excludedBy(cfg); r >= 0 {
			x.skip(origin, coords, "excluded", fmt.Sprintf("matches exclude[%d]", r))
			return nil
		}
		if missing := x.l.missingRequired(cfg); len(missing) > 0 {
			root, user := origin, x.l.user
			switch origin {
			case "grid", "base":
				root = "base"
				user = x.l.user.LookupPath(cue.ParsePath("base"))
			case "file":
				root = ""
			default: // experiments[i]
				user = x.l.user.LookupPath(cue.ParsePath(origin))
			}
			x.noteMissing(root, user, missing, cfg)
			return nil
		}
		if origin != "grid" {
			for _, r := range reasons {
				pos, where := x.fieldPos(origin, coords, r.Path)
				d := diagAt(pos, where, r.Msg)
				d.own = true
				x.l.diags = append(x.l.diags, d)
			}
			return nil
		}
		x.invalid++
		x.skip(origin, coords, "invalid", reasonStrings(reasons)...)
		for _, r := range reasons {
			pos, where := x.fieldPos(origin, coords, r.Path)
			d := diagAt(pos, where, r.Msg)
			d.own = true
			x.gridDiags = append(x.gridDiags, d)
		}
		return nil
	}
	if len(x.s.exclude) > 0 {
		var eff map[string]any
		if err := json.Unmarshal(canon, &eff); err == nil {
			if r := x.excludedBy(eff); r >= 0 {
				x.skip(origin, coords, "excluded", fmt.Sprintf("matches exclude[%d]", r))
				return nil
			}
		}
	}
	hash := hashHex(canon)
	if j, dup := x.seen[hash]; dup {
		first := x.p.Runs[j]
		x.skip(origin, coords, "duplicate", fmt.Sprintf("same effective config as run %s (%s %s)", first.ID, first.Origin, formatCoords(first.Coordinates, x.p.Dims)))
		return nil
	}
	r := Run{ID: hash[:12], Hash: hash, Name: x.name, Origin: origin, Coordinates: coords, ConfigJSON: canon, Config: cfg1}
	r.Backend, r.Model = r.Config.Backend, r.Config.Model
	x.seen[hash] = len(x.p.Runs)
	x.p.Runs = append(x.p.Runs, r)
	return nil
}

func (x *expander) skip(origin string, coords map[string]any, kind string, reasons ...string) {
	x.p.Skipped = append(x.p.Skipped, Skipped{Origin: origin, Name: x.name, Coordinates: coords, Kind: kind, Reasons: reasons})
}

// excludedBy returns the index of the first exclude rule cfg matches, or -1.
func (x *expander) excludedBy(cfg map[string]any) int {
	for _, r := range x.s.exclude {
		if len(r.leaves) == 0 {
			continue
		}
		match := true
		for _, leaf := range r.leaves {
			v, ok := getPath(cfg, leaf.path)
			if !ok || !contains(leaf.canon, canonValue(v)) {
				match = false
				break
			}
		}
		if match {
			return r.index
		}
	}
	return -1
}

// finish checks that something runs, warns about mostly-invalid grids and
// fills the execution order.
func (x *expander) finish() error {
	p := x.p
	x.l.checkFiles(x)
	if len(p.Runs) == 0 {
		// Every grid point broke a cross-field rule: those are the errors,
		// each at the field that triggered it.
		x.l.diags = append(x.l.diags, x.gridDiags...)
		if len(x.l.diags) > 0 {
			return nil
		}
		if len(p.Skipped) > 0 {
			pos := token.NoPos
			if v := x.l.user.LookupPath(cue.ParsePath("exclude")); v.Exists() {
				pos = v.Pos()
			}
			d := diagAt(pos, "", fmt.Sprintf("nothing to run: all %d generated configs were skipped (excluded or duplicates)", x.total))
			if pos.IsValid() {
				d.Path = "exclude"
			}
			x.l.diags = append(x.l.diags, d)
			return nil
		}
		x.l.diags = append(x.l.diags, Diagnostic{Msg: "the study produced no runs; give base a model, or add grid or experiments"})
		return nil
	}
	if len(x.l.diags) > 0 {
		return nil
	}
	if c := p.Execution.Cycles; satMul(len(p.Runs), c) > MaxExecutions {
		pos := token.NoPos
		if v := x.l.user.LookupPath(cue.ParsePath("execution.cycles")); v.Exists() {
			pos = v.Pos()
		}
		x.l.errorf(pos, "execution.cycles", "%d runs × %d cycles is more than the limit of %d executions; use fewer cycles or split the study", len(p.Runs), c, MaxExecutions)
		return nil
	}
	if x.invalid*2 > x.total {
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d of %d generated configs are invalid and skipped; check the grid (see skipped reasons)", x.invalid, x.total))
	}
	hashes := make([]string, len(p.Runs))
	for i, r := range p.Runs {
		hashes[i] = r.Hash
	}
	p.DesignHash = hashHex([]byte(strings.Join(hashes, "\n")))[:16]
	p.Runners = map[string]Runner{}
	for _, r := range p.Runs {
		if _, ok := p.Runners[r.Backend]; ok {
			continue
		}
		rr, ok := x.s.runners[r.Backend]
		if !ok {
			rr = Runner{Kind: "auto"}
		}
		p.Runners[r.Backend] = rr
	}
	if p.Skipped == nil {
		p.Skipped = []Skipped{}
	}
	p.computeOrder()
	return nil
}

func (l *loader) runReasons(err error, cfg map[string]any, prefix string) []reason {
	l.perRun, l.runCfg = true, cfg
	defer func() { l.perRun, l.runCfg = false, nil }()
	ds := l.cueDiags(err, prefix, false)
	out := make([]reason, 0, len(ds))
	seen := map[reason]bool{}
	for _, d := range ds {
		r := reason{Path: d.Path, Msg: d.Msg}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		out = append(out, reason{Path: prefix, Msg: err.Error()})
	}
	return out
}

// formatCoords prints coordinates in dimension order: "precision=fp16 ...".
func formatCoords(c map[string]any, dims []string) string {
	var parts []string
	done := map[string]bool{}
	for _, d := range dims {
		if v, ok := c[d]; ok {
			parts = append(parts, d+"="+canonValue(v))
			done[d] = true
		}
	}
	var rest []string
	for k := range c {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, k+"="+canonValue(c[k]))
	}
	return strings.Join(parts, " ")
}

// FormatCoords prints a run's coordinates in the plan's dimension order.
func (p *Plan) FormatCoords(c map[string]any) string { return formatCoords(c, p.Dims) }

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// clone deep-copies maps (lists and scalars are never mutated, so shared).
func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+2)
	for k, v := range m {
		if mm, ok := v.(map[string]any); ok {
			v = clone(mm)
		}
		out[k] = v
	}
	return out
}

// merge deep-merges src over dst (src wins at the leaves) and returns dst.
func merge(dst, src map[string]any) map[string]any {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = merge(dm, sm)
				continue
			}
			sv = clone(sm)
		}
		dst[k] = sv
	}
	return dst
}

func setPath(m map[string]any, path []string, v any) {
	for _, seg := range path[:len(path)-1] {
		next, ok := m[seg].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[seg] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

func getPath(m map[string]any, path []string) (any, bool) {
	var cur any = m
	for _, seg := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[seg]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}
