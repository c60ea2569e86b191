// Package vllm starts llem's vllm worker: the Python harness harness_vllm.py
// (embedded here) with llem_common.py from pkg/backend/pyharness. See
// docs/backends/vllm.md for what the harness measures and how.
package vllm

import (
	_ "embed"

	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// Name is the backend's name in studies.
const Name = "vllm"

//go:embed harness_vllm.py
var source []byte

// Harness is the vllm harness: its entry point and content.
var Harness = pyharness.Harness{Backend: Name, Script: "harness_vllm.py", Source: source}

// Info describes the vllm backend to llem (see pkg/backend.Backend).
var Info = backend.Backend{
	Name: Name, Section: "#VLLM", Worker: backend.WorkerPython, Jobs: Harness.Jobs,
	PythonPackage: "vllm", ReleaseImage: true, PhaseSplit: protocol.PhaseSplitPrefillPass, RandomPresets: true,
	Doc: "docs/backends/vllm.md",
}

func init() { backend.Register(Info) }

// Job builds the runner.Job that runs spec with the vllm harness under
// python (an interpreter that imports the backend; see pkg/pyenv).
// spec.BackendArgs must already hold the mapped arguments
// (params.BackendArgs of the run's vllm section); the harness applies them
// untouched.
func Job(spec protocol.RunSpec, python string, o pyharness.JobOptions) (runner.Job, error) {
	return pyharness.Job(Harness, spec, python, o)
}
