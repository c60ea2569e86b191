package native

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// JobOptions adjusts the runner.Job that Job builds.
type JobOptions struct {
	// Executable is the llem binary to run as the worker; empty means this
	// process's own executable (the usual case: the parent is llem).
	Executable string
	// Dir is the run's exchange directory, passed on to the runner.
	Dir     string
	Timeout time.Duration
	Grace   time.Duration
}

// Job builds the runner.Job that runs spec with `llem worker`. The native
// worker always runs locally (it is llem itself); the local runner passes
// the parent's environment through (HF_HOME, HF_HUB_CACHE for checkpoints).
func Job(spec protocol.RunSpec, o JobOptions) (runner.Job, error) {
	exe := o.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return runner.Job{}, fmt.Errorf("find the llem executable for the native worker: %w", err)
		}
	}
	if spec.ProtocolVersion == 0 {
		spec.ProtocolVersion = protocol.ProtocolVersion
	}
	if spec.ProtocolVersion != protocol.ProtocolVersion {
		return runner.Job{}, errors.New("native job: spec protocol version does not match this llem")
	}
	return runner.Job{
		Backend: Backend,
		Spec:    spec,
		Command: []string{exe, "worker"},
		Dir:     o.Dir,
		Timeout: o.Timeout,
		Grace:   o.Grace,
	}, nil
}

// JobFunc builds each slot's job as `llem worker` (this executable, or exe
// when set).
func JobFunc(exe string) backend.JobFunc {
	return func(r backend.JobRequest) (runner.Job, error) {
		return Job(r.Spec(), JobOptions{Executable: exe, Dir: r.Dir, Timeout: r.Timeout, Grace: r.Grace})
	}
}

// Info describes the native backend to llem (see pkg/backend.Backend).
var Info = backend.Backend{
	Name: Backend, Section: "#Native", Worker: backend.WorkerEngine, Jobs: Jobs,
	LocalReason: "the native worker is llem itself", PhaseSplit: protocol.PhaseSplitTimestamps, RandomPresets: true,
	Builtin: "pure Go, CPU", Doc: "docs/backends/native.md",
}

func init() { backend.Register(Info) }

// Jobs builds the native job builder for workers placed as p says: locally
// p.Executable (this executable when empty), in a container the llem on
// the image's PATH (there is no release image; one must be pinned).
func Jobs(p backend.Placement) (backend.JobFunc, error) {
	exe := p.Executable
	if p.InDocker() {
		exe = "llem"
	}
	return JobFunc(exe), nil
}
