package serving

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/params"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/runner/docker"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Router sends serving runs (a serving: section) to the serving worker,
// `llem serving-worker`, on the local runner, with Finish to fill their
// records; every other run goes where Inner routes it. The serving worker
// is llem itself whatever the backend: it starts the backend's server —
// as a child process, or, for a backend in Docker, as a container of the
// backend's image (Docker).
type Router struct {
	Inner execute.Router
	// Executable is the llem binary (default: this executable).
	Executable string
	// Docker places the server of a backend (key) in a container of its
	// image; a backend not in it serves from a local process.
	Docker map[string]DockerServer
	local  runner.Runner
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
	var rn runner.Runner = r.local
	if d, ok := r.Docker[run.Backend]; ok && run.Config.Serving.Server.URL == "" {
		rn = sweeper{Runner: r.local, host: d.Host}
	}
	return execute.Route{Runner: rn, Job: r.job, Finish: Finish}, nil
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
	cmd := []string{exe, "serving-worker", "--dir", req.Dir}
	var env map[string]string
	if d, ok := r.Docker[req.Run.Backend]; ok && req.Run.Config.Serving.Server.URL == "" {
		cmd = append(cmd, "--server-image", d.Image, "--server-container", ContainerName(req.Dir))
		if len(d.GPUs) > 0 {
			cmd = append(cmd, "--server-gpus", strings.Join(d.GPUs, ","))
		}
		if d.ShmSize > 0 {
			cmd = append(cmd, "--server-shm-size", strconv.FormatInt(d.ShmSize, 10))
		}
		if d.HubCache != "" {
			cmd = append(cmd, "--server-hub-cache", d.HubCache)
		}
		if d.Host != "" {
			// The daemon address may hold credentials: environment, not argv.
			env = map[string]string{"DOCKER_HOST": d.Host}
		}
	}
	return runner.Job{Backend: req.Run.Backend, Spec: spec, Command: cmd, Env: env,
		Dir: req.Dir, Timeout: req.Timeout, Grace: req.Grace}, nil
}

// ContainerName is the server container's name for a slot's work
// directory: one name per slot, so the parent can remove what a killed
// worker left, and a rerun of the slot replaces its leftover.
func ContainerName(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	h := sha256.Sum256([]byte(dir))
	return "llem-server-" + hex.EncodeToString(h[:8])
}

// sweeper runs the serving worker, then removes the slot's server
// container if the worker could not (killed after its grace, kill -9):
// the container is not in the worker's process group.
type sweeper struct {
	runner.Runner
	host string
}

func (s sweeper) Run(ctx context.Context, job runner.Job, onEvent func(protocol.Event)) (runner.Outcome, error) {
	out, err := s.Runner.Run(ctx, job, onEvent)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = docker.RemoveService(rctx, s.host, ContainerName(job.Dir))
	return out, err
}
