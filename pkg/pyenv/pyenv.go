// Package pyenv finds the Python interpreter that runs a backend's harness
// and reports what it has installed.
//
// Precedence, highest first: the --python flag, the user config's python
// setting, the LLEM_PYTHON environment variable, then discovery: the
// active virtual environment ($VIRTUAL_ENV, $CONDA_PREFIX) and python3 /
// python on PATH, taking the first that has the backend's packages. An
// interpreter named explicitly (flag, config, env) is used or rejected,
// never silently replaced: if it lacks the backend, the error says so and
// names the install command.
//
// A probe runs the interpreter once with a short script that checks
// importlib.util.find_spec for the backend's modules and reads package
// versions from metadata. It does not import torch or vLLM (seconds, and
// CUDA initialisation); a package that is installed but broken is
// reported by the harness itself as an error event.
package pyenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
)

// Backend describes what a backend needs from Python.
type Backend struct {
	Name string
	// Modules must all be importable (find_spec) for the backend to run.
	Modules []string
	// Packages are reported with their versions when installed.
	Packages []string
	// Pip is what `pip install` needs for the backend.
	Pip string
	// Note is said after the install command (platform limits, Docker).
	Note string
}

// Install is the full install command, for hints.
func (b Backend) Install() string { return "pip install " + b.Pip + b.Note }

// Backends lists the Python backends.
var Backends = []Backend{
	{Name: "pytorch", Modules: []string{"torch", "transformers"},
		Packages: []string{"torch", "transformers", "accelerate", "bitsandbytes", "flash-attn"},
		Pip:      "torch transformers accelerate"},
	{Name: "vllm", Modules: []string{"vllm"},
		Packages: []string{"vllm", "torch", "transformers"},
		Pip:      "vllm", Note: " (Linux + NVIDIA GPU; or use the Docker runner)"},
	{Name: "tensorrt", Modules: []string{"tensorrt_llm"},
		Packages: []string{"tensorrt_llm", "tensorrt", "torch"},
		Pip:      "tensorrt-llm==1.2.0 --extra-index-url https://pypi.nvidia.com", Note: " (Linux + NVIDIA GPU; or use the Docker runner)"},
}

// LMEval is lm-evaluation-harness, which scores quality (pkg/quality): not a
// backend, but found the same way (FindTool) — --python, the user config,
// LLEM_PYTHON, the active environment, PATH.
var LMEval = Backend{Name: "lm-eval", Modules: []string{"lm_eval"},
	Packages: []string{"lm_eval", "datasets", "transformers", "torch", "vllm"}, Pip: "lm-eval"}

// FindTool is Find for a Python tool that is not a backend (LMEval).
func FindTool(ctx context.Context, b Backend, o Options) (Python, error) {
	return find(b, Candidates(o), func(c Candidate) (Python, error) { return Probe(ctx, c.Path, b, o.timeout()) })
}

// Lookup returns the Backend named name.
func Lookup(name string) (Backend, error) {
	for _, b := range Backends {
		if b.Name == name {
			return b, nil
		}
	}
	return Backend{}, fmt.Errorf("pyenv: %q is not a Python backend", name)
}

// Options say where to look. Zero values mean "not set"; Getenv and
// LookPath default to the process's own.
type Options struct {
	Flag     string // --python
	Config   string // user config "python" (or "python.<backend>")
	Getenv   func(string) string
	LookPath func(string) (string, error)
	// Timeout bounds one probe (default 20 s: a cold conda env can be slow).
	Timeout time.Duration
}

// Source says where an interpreter came from.
const (
	SourceFlag   = "--python"
	SourceConfig = "user config"
	SourceEnv    = "LLEM_PYTHON"
	SourceVenv   = "active environment"
	SourcePath   = "PATH"
)

// Python is a probed interpreter.
type Python struct {
	Path    string `json:"path"`
	Source  string `json:"source"`
	Version string `json:"version"` // e.g. "3.11.7"
	// Packages maps installed package names to versions.
	Packages map[string]string `json:"packages"`
	// Missing lists the backend's modules this interpreter cannot import.
	Missing []string `json:"missing,omitempty"`
}

// OK reports whether the interpreter has everything the backend needs.
func (p Python) OK() bool { return len(p.Missing) == 0 }

// Candidate is an interpreter to try, with its source.
type Candidate struct {
	Path   string
	Source string
}

// Candidates lists the interpreters to try for o, in precedence order.
// Explicit ones (flag, config, env) come first and are marked by Source.
func Candidates(o Options) []Candidate {
	getenv, look := o.getenv(), o.lookPath()
	var out []Candidate
	add := func(path, src string) {
		if path == "" {
			return
		}
		for _, c := range out {
			if c.Path == path {
				return
			}
		}
		out = append(out, Candidate{path, src})
	}
	add(o.Flag, SourceFlag)
	add(o.Config, SourceConfig)
	add(getenv("LLEM_PYTHON"), SourceEnv)
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if d := getenv(env); d != "" {
			for _, name := range []string{"python3", "python"} {
				p := filepath.Join(d, "bin", name)
				if st, err := os.Stat(p); err == nil && !st.IsDir() {
					add(p, SourceVenv)
					break
				}
			}
		}
	}
	for _, name := range []string{"python3", "python"} {
		if p, err := look(name); err == nil {
			add(p, SourcePath)
		}
	}
	return out
}

func explicit(src string) bool {
	return src == SourceFlag || src == SourceConfig || src == SourceEnv
}

// ErrNotFound is wrapped by Find's error when no interpreter has the
// backend.
var ErrNotFound = errors.New("no Python with the backend installed")

// Find returns the interpreter that runs backend under o.
func Find(ctx context.Context, backend string, o Options) (Python, error) {
	b, err := Lookup(backend)
	if err != nil {
		return Python{}, err
	}
	getenv := o.getenv()
	return find(b, Candidates(o), func(c Candidate) (Python, error) {
		p, err := Probe(ctx, probeTarget(c.Path, getenv), b, o.timeout())
		p.Path = c.Path
		return p, err
	})
}

// find is Find over cands with a given probe, so ReportAll can answer every
// backend from one probe per interpreter.
func find(b Backend, cands []Candidate, probe func(Candidate) (Python, error)) (Python, error) {
	backend := b.Name
	var tried []string
	for _, c := range cands {
		p, err := probe(c)
		p.Source = c.Source
		if err != nil {
			if explicit(c.Source) {
				return p, errs.BadInput(fmt.Errorf("python from %s (%s): %w", c.Source, c.Path, err),
					"give a working interpreter: --python PATH or LLEM_PYTHON=PATH")
			}
			tried = append(tried, fmt.Sprintf("%s (%v)", c.Path, err))
			continue
		}
		if p.OK() {
			return p, nil
		}
		if explicit(c.Source) {
			return p, errs.WithHint(fmt.Errorf("python from %s (%s) cannot import %s: %w",
				c.Source, c.Path, strings.Join(p.Missing, ", "), ErrNotFound),
				"install into that interpreter: "+c.Path+" -m pip install "+b.Pip+b.Note)
		}
		tried = append(tried, fmt.Sprintf("%s (no %s)", c.Path, strings.Join(p.Missing, ", ")))
	}
	what := "no python3 or python on PATH"
	if len(tried) > 0 {
		what = "tried " + strings.Join(tried, "; ")
	}
	return Python{}, errs.WithHint(fmt.Errorf("find python for backend %s: %s: %w", backend, what, ErrNotFound),
		b.Install()+"; then point llem at it with --python PATH or LLEM_PYTHON")
}

// probeScript prints one JSON object: the Python version, which modules
// find_spec cannot locate, and package versions from metadata. Modules and
// packages arrive as argv so that nothing is interpolated into code.
const probeScript = `
import json, sys, importlib.util
from importlib import metadata
mods = sys.argv[1].split(",") if sys.argv[1] else []
pkgs = sys.argv[2].split(",") if sys.argv[2] else []
missing = []
for m in mods:
    try:
        if importlib.util.find_spec(m) is None:
            missing.append(m)
    except Exception:
        missing.append(m)
versions = {}
for p in pkgs:
    for cand in (p, p.replace("_", "-"), p.replace("-", "_")):
        try:
            versions[p] = metadata.version(cand)
            break
        except Exception:
            pass
print(json.dumps({"version": "%d.%d.%d" % sys.version_info[:3], "missing": missing, "packages": versions}))
`

// Probe runs python once and reports its version, packages and which of
// b's modules are missing. An interpreter that cannot run (not found, not
// Python, Python 2, crashed) is an error.
func Probe(ctx context.Context, python string, b Backend, timeout time.Duration) (Python, error) {
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-c", probeScript,
		strings.Join(b.Modules, ","), strings.Join(b.Packages, ","))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	p := Python{Path: python}
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return p, fmt.Errorf("probe python: no answer within %s", timeout)
		}
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg != "" {
			return p, fmt.Errorf("probe python: %w: %s", err, msg)
		}
		return p, fmt.Errorf("probe python: %w", err)
	}
	var got struct {
		Version  string            `json:"version"`
		Missing  []string          `json:"missing"`
		Packages map[string]string `json:"packages"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		return p, fmt.Errorf("probe python: unexpected output %q", truncate(stdout.String(), 120))
	}
	p.Version, p.Missing, p.Packages = got.Version, got.Missing, got.Packages
	if p.Packages == nil {
		p.Packages = map[string]string{}
	}
	return p, nil
}

// Report is what `llem env` shows for one backend.
type Report struct {
	Backend string  `json:"backend"`
	Python  *Python `json:"python,omitempty"`
	Error   string  `json:"error,omitempty"`
	Hint    string  `json:"hint,omitempty"`
}

// ReportAll runs Find for every Python backend.
//
// Each interpreter is probed once, for every backend's modules and
// packages together, and the interpreters in parallel: through pyenv or
// conda shims a probe costs most of a second, and probing per backend and
// per candidate in turn took half a minute. Candidates that are the same
// interpreter (python3 and python as symlinks to one file in one directory,
// or as pyenv shims of one version: probeTarget) share one probe. The
// directory is part of the identity: a virtual environment's python3 is a
// symlink to the system's, yet has its own packages (pyvenv.cfg beside it).
func ReportAll(ctx context.Context, o Options) []Report {
	cands := Candidates(o)
	getenv := o.getenv()
	type interp struct{ dir, real string }
	var unique []interp              // distinct interpreters, in candidate order
	var run []string                 // the path each one's probe runs
	which := make([]int, len(cands)) // candidate → its interpreter in unique
	for i, c := range cands {
		t := probeTarget(c.Path, getenv)
		id := interp{dir: filepath.Dir(t), real: t}
		if real, err := filepath.EvalSymlinks(t); err == nil {
			id.real = real
		}
		which[i] = slices.Index(unique, id)
		if which[i] < 0 {
			which[i] = len(unique)
			unique, run = append(unique, id), append(run, t)
		}
	}
	var all Backend
	for _, b := range Backends {
		all.Modules = appendNew(all.Modules, b.Modules...)
		all.Packages = appendNew(all.Packages, b.Packages...)
	}
	type probed struct {
		p   Python
		err error
	}
	results := make([]probed, len(run))
	var wg sync.WaitGroup
	for i, path := range run {
		wg.Go(func() {
			p, err := Probe(ctx, path, all, o.timeout())
			results[i] = probed{p, err}
		})
	}
	wg.Wait()
	byPath := map[string]probed{}
	for i, c := range cands {
		got := results[which[i]]
		got.p.Path = c.Path
		byPath[c.Path] = got
	}
	out := make([]Report, 0, len(Backends))
	for _, b := range Backends {
		r := Report{Backend: b.Name}
		p, err := find(b, cands, func(c Candidate) (Python, error) {
			got := byPath[c.Path]
			return got.p.only(b), got.err
		})
		if err != nil {
			r.Error, r.Hint = err.Error(), errs.Hint(err)
		} else {
			r.Python = &p
		}
		out = append(out, r)
	}
	return out
}

// only is p as a probe for b alone would have found it: b's missing
// modules and b's packages.
func (p Python) only(b Backend) Python {
	q := p
	q.Missing, q.Packages = nil, map[string]string{}
	for _, m := range p.Missing {
		if slices.Contains(b.Modules, m) {
			q.Missing = append(q.Missing, m)
		}
	}
	for _, name := range b.Packages {
		if v, ok := p.Packages[name]; ok {
			q.Packages[name] = v
		}
	}
	return q
}

func appendNew(dst []string, xs ...string) []string {
	for _, x := range xs {
		if !slices.Contains(dst, x) {
			dst = append(dst, x)
		}
	}
	return dst
}

// PackageList is p's packages as "name version" strings, sorted.
func (p Python) PackageList() []string {
	out := make([]string, 0, len(p.Packages))
	for k, v := range p.Packages {
		out = append(out, k+" "+v)
	}
	sort.Strings(out)
	return out
}

func (o Options) getenv() func(string) string {
	if o.Getenv != nil {
		return o.Getenv
	}
	return os.Getenv
}

func (o Options) lookPath() func(string) (string, error) {
	if o.LookPath != nil {
		return o.LookPath
	}
	return exec.LookPath
}

func (o Options) timeout() time.Duration { return o.Timeout }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
