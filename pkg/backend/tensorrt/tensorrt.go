// Package tensorrt starts llem's tensorrt worker: the Python harness harness_tensorrt.py
// (embedded here) with llem_common.py from pkg/backend/pyharness. See
// docs/backends/tensorrt.md for what the harness measures and how.
package tensorrt

import (
	_ "embed"

	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/tools/upstream"
)

// Name is the backend's name in studies.
const Name = "tensorrt"

//go:embed harness_tensorrt.py
var source []byte

// Harness is the tensorrt harness: its entry point and content.
var Harness = pyharness.Harness{Backend: Name, Script: "harness_tensorrt.py", Source: source}

// Info describes the tensorrt backend to llem (see pkg/backend.Backend).
var Info = backend.Backend{
	Name: Name, Section: "#TensorRT", Worker: backend.WorkerPython, Jobs: Harness.Jobs,
	PythonPackage: "tensorrt_llm", ReleaseImage: true, PhaseSplit: protocol.PhaseSplitPrefillPass, RandomPresets: true,
	Doc: "docs/backends/tensorrt.md",
}

func init() { backend.Register(Info) }

// Job builds the runner.Job that runs spec with the tensorrt harness under
// python (an interpreter that imports the backend; see pkg/pyenv).
// spec.BackendArgs must already hold the mapped arguments
// (params.BackendArgs of the run's tensorrt section); the harness applies them
// untouched.
//
// LLEM_TENSORRT_LLM_TARGET tells the harness the pinned TensorRT-LLM
// version (tools/upstream/targets.json), so that a run on another version
// says so in its log.
func Job(spec protocol.RunSpec, python string, o pyharness.JobOptions) (runner.Job, error) {
	job, err := pyharness.Job(Harness, spec, python, o)
	if err != nil {
		return job, err
	}
	ts, err := upstream.Targets()
	if err != nil {
		return job, err
	}
	if job.Env == nil {
		job.Env = map[string]string{}
	}
	job.Env["LLEM_TENSORRT_LLM_TARGET"] = ts[Name].Version
	return job, nil
}
