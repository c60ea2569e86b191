// Package runner starts backend workers where they should run — a local
// subprocess (local.go) or a container (pkg/runner/docker) — and streams the
// worker's protocol events back to the caller. Runners never measure: the
// caller owns sensors and clocks.
package runner

import (
	"context"
	"time"

	"github.com/llenergymeasure/llem/pkg/protocol"
)

// Runner runs one worker to completion.
type Runner interface {
	// Name is "local" or "docker".
	Name() string
	// Run starts the worker described by job, sends it job.Spec, and calls
	// onEvent for every event as it arrives (from one goroutine, in order).
	// It returns when the worker has exited and its output is drained.
	// Cancelling ctx stops the worker: SIGTERM (docker stop), job.Grace,
	// then SIGKILL. Run returns a non-nil error only when the worker could
	// not be started or supervised; a worker that ran and failed is reported
	// in Outcome.
	Run(ctx context.Context, job Job, onEvent func(protocol.Event)) (Outcome, error)
}

// Job describes one worker invocation.
type Job struct {
	Backend string
	Spec    protocol.RunSpec
	// Command is the worker's argv inside its environment, e.g.
	// ["/usr/local/bin/llem", "worker"] or ["python3", "harness.py"].
	Command []string
	// Env adds variables to the worker's environment (secrets such as
	// HF_TOKEN travel here, never in Command).
	Env map[string]string
	// Dir is a per-run exchange directory (spec, harness files, logs) the
	// runner may use; kept for debugging when the run fails.
	Dir     string
	Timeout time.Duration // 0 = no limit
	Grace   time.Duration // SIGTERM → SIGKILL delay; 0 = 10 s
}

// Outcome is how a worker ended.
type Outcome struct {
	ExitCode     int
	TimedOut     bool
	Interrupted  bool   // stopped because ctx was cancelled
	StderrTail   string // last lines of the worker's stderr, for error reports
	ProtocolErrs []error
	Started      time.Time
	Ended        time.Time
}

// OK reports whether the worker exited 0 with a clean protocol stream.
func (o Outcome) OK() bool {
	return o.ExitCode == 0 && !o.TimedOut && !o.Interrupted && len(o.ProtocolErrs) == 0
}
