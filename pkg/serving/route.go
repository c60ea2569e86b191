package serving

import (
	"fmt"
	"os"

	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/params"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Router sends serving runs (a serving: section) to the serving worker,
// `llem serving-worker`, on the local runner, with Finish to fill their
// records; every other run goes where Inner routes it. The serving worker
// is llem itself whatever the backend: it starts the backend's server.
type Router struct {
	Inner execute.Router
	// Executable is the llem binary (default: this executable).
	Executable string
	local      runner.Runner
}

// NewRouter wraps inner.
func NewRouter(inner execute.Router, exe string) *Router {
	return &Router{Inner: inner, Executable: exe, local: runner.NewLocal()}
}

// Route implements execute.Router.
func (r *Router) Route(run study.Run) (execute.Route, error) {
	if run.Config.Serving == nil {
		return r.Inner.Route(run)
	}
	return execute.Route{Runner: r.local, Job: r.job, Finish: Finish}, nil
}

func (r *Router) job(req execute.JobRequest) (runner.Job, error) {
	exe := r.Executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return runner.Job{}, fmt.Errorf("find the llem executable for the serving worker: %w", err)
		}
	}
	spec := req.Spec()
	if sec := req.Run.Config.Section(); len(sec) > 0 && req.Run.Backend != "native" {
		args, err := params.BackendArgs(req.Run.Backend, sec)
		if err != nil {
			return runner.Job{}, err
		}
		spec.BackendArgs = args
	}
	if err := os.MkdirAll(req.Dir, 0o755); err != nil {
		return runner.Job{}, err
	}
	return runner.Job{Backend: req.Run.Backend, Spec: spec, Command: []string{exe, "serving-worker", "--dir", req.Dir},
		Dir: req.Dir, Timeout: req.Timeout, Grace: req.Grace}, nil
}
