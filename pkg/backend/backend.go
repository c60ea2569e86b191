// Package backend is what every inference backend shares: the registry that
// describes each backend once (Backend: name, schema section, worker kind,
// job builder, runner preference, capabilities) and the request a backend
// turns into a worker job for one (run, cycle) slot. The backends
// themselves live in pkg/backend/<name>; pkg/execute sees only JobFunc.
//
// Registration follows node_exporter's collectors: each backend package
// calls Register from its own init (one line), and the wiring root
// pkg/pipeline imports the set in one file, pkg/pipeline/backends.go, with
// blank imports. Nothing else names the backends: runner selection, job
// building and `llem env` look them up here, and pkg/study and pkg/params
// (which must not import backends) read the same list from the schema's
// #Backends, which each schema/<name>.cue extends. A test in pkg/pipeline
// fails when the two (and the Dockerfiles, docs and pyenv) disagree.
package backend

import (
	"time"

	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// JobRequest is what a backend needs to build the job of one slot.
type JobRequest struct {
	Run     study.Run
	Cycle   int
	Dir     string // the slot's exchange directory
	Timeout time.Duration
	Grace   time.Duration
	// Prompts are the run's prompts when the parent resolved them (file
	// datasets: JSONL paths relative to the study, the AI Energy Score set
	// from the cache), sent in the RunSpec so workers — also in containers —
	// never look for the study's files; nil for synthetic datasets, which
	// the worker builds with the model's tokenizer.
	Prompts []protocol.Prompt
}

// Spec is the protocol RunSpec of the slot r describes.
func (r JobRequest) Spec() protocol.RunSpec {
	return protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: r.Run.ID, Cycle: r.Cycle, Config: r.Run.ConfigJSON, Prompts: r.Prompts}
}

// JobFunc builds the runner.Job of one slot for a backend.
type JobFunc func(JobRequest) (runner.Job, error)
