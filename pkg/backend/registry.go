package backend

import (
	"fmt"
	"regexp"
	"sort"
	"sync"

	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/schema"
)

// WorkerKind says what a backend's worker is.
type WorkerKind string

const (
	// WorkerEngine: the worker is llem itself (`llem worker`), running an
	// engine compiled into the binary.
	WorkerEngine WorkerKind = "engine"
	// WorkerPython: the worker is a Python harness started through
	// pkg/backend/pyharness under an interpreter that imports the backend.
	WorkerPython WorkerKind = "python"
)

// Backend describes one inference backend, once. Each backend package
// registers its Backend from an init function; everything else (runner
// selection, job building, `llem env`, the consistency tests) looks it up.
type Backend struct {
	// Name is the value of the study's backend: field and the name of its
	// section (native:, pytorch:, ...).
	Name string
	// Section is the CUE definition of the backend's section, e.g.
	// "#Native"; the schema's #Backends.<name>.section must be it.
	Section string
	// Worker is how the worker starts.
	Worker WorkerKind
	// Jobs returns the job builder for the backend's workers placed as w
	// says. Required.
	Jobs func(w Placement) (JobFunc, error)

	// LocalReason, when set, makes the auto runner always pick local for
	// this backend, and is the reason shown (native: "the native worker is
	// llem itself"). Empty: auto runs it locally when its Python package
	// imports, in Docker when not and a daemon is up.
	LocalReason string
	// PythonPackage is the Python package the harness imports (pyenv probes
	// it); empty for engine workers.
	PythonPackage string
	// ReleaseImage is true when llem publishes a Docker image for the
	// backend (llenergymeasure/<name>, built from docker/<name>.Dockerfile).
	ReleaseImage bool
	// PhaseSplit is how the worker splits prefill from decode
	// (protocol.PhaseSplitTimestamps or protocol.PhaseSplitPrefillPass).
	PhaseSplit string
	// RandomPresets is true when the backend builds random-weight models
	// ("random:<preset>"; the presets are the schema's #RandomPresets).
	RandomPresets bool
	// Builtin says, for engine workers, what is compiled in; `llem env`
	// prints "built in (<Builtin>)" (native: "pure Go, CPU").
	Builtin string
	// SchemaFile is the backend's CUE file (its section and #Backends
	// entry) when its package lives outside schema/; Register adds it to
	// the schema as <name>.cue (schema.Register). Backends shipped with llem
	// keep theirs in schema/<name>.cue, where the cue CLI sees it too.
	SchemaFile []byte
	// Doc is the backend's page under docs/backends ("" for none, test
	// backends only).
	Doc string
}

// Placement is where a backend's workers run, as resolved for a study.
type Placement struct {
	// Runner is runner.KindLocal or runner.KindDocker.
	Runner string
	// Executable is the llem binary for local engine workers; "" is this
	// process's executable.
	Executable string
	// Python is the interpreter of local Python workers.
	Python string
}

// InDocker reports whether the workers run in containers.
func (p Placement) InDocker() bool { return p.Runner == runner.KindDocker }

var (
	mu       sync.RWMutex
	backends = map[string]Backend{}
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Register adds b to the registry. It is called from the init function of
// the backend's package and panics on a programming error (an invalid or
// duplicate name, a missing Jobs or Section), so a broken registration
// fails every test of the binary.
func Register(b Backend) {
	switch {
	case !nameRE.MatchString(b.Name):
		panic(fmt.Sprintf("backend.Register: invalid name %q (want lower-case letters, digits, _)", b.Name))
	case b.Section == "" || b.Section[0] != '#':
		panic(fmt.Sprintf("backend.Register(%s): Section %q is not a CUE definition", b.Name, b.Section))
	case b.Jobs == nil:
		panic(fmt.Sprintf("backend.Register(%s): no Jobs", b.Name))
	case b.Worker != WorkerEngine && b.Worker != WorkerPython:
		panic(fmt.Sprintf("backend.Register(%s): unknown worker kind %q", b.Name, b.Worker))
	case b.Worker == WorkerPython && b.PythonPackage == "":
		panic(fmt.Sprintf("backend.Register(%s): a Python worker needs PythonPackage", b.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := backends[b.Name]; dup {
		panic(fmt.Sprintf("backend.Register: %s registered twice", b.Name))
	}
	backends[b.Name] = b
	if b.SchemaFile != nil {
		schema.Register(b.Name+".cue", b.SchemaFile)
	}
}

// Lookup returns the registered backend name.
func Lookup(name string) (Backend, bool) {
	mu.RLock()
	defer mu.RUnlock()
	b, ok := backends[name]
	return b, ok
}

// All returns every registered backend, sorted by name.
func All() []Backend {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Backend, 0, len(backends))
	for _, b := range backends {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the registered backend names, sorted.
func Names() []string {
	var out []string
	for _, b := range All() {
		out = append(out, b.Name)
	}
	return out
}
