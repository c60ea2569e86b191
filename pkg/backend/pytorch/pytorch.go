// Package pytorch starts llem's pytorch worker: the Python harness harness_pytorch.py
// (embedded here) with llem_common.py from pkg/backend/pyharness. See
// docs/backends/pytorch.md for what the harness measures and how.
package pytorch

import (
	_ "embed"

	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// Name is the backend's name in studies.
const Name = "pytorch"

//go:embed harness_pytorch.py
var source []byte

// Harness is the pytorch harness: its entry point and content.
var Harness = pyharness.Harness{Backend: Name, Script: "harness_pytorch.py", Source: source}

// Info describes the pytorch backend to llem (see pkg/backend.Backend).
var Info = backend.Backend{
	Name: Name, Section: "#PyTorch", Worker: backend.WorkerPython, Jobs: Harness.Jobs,
	PythonPackage: "torch", ReleaseImage: true, PhaseSplit: protocol.PhaseSplitTimestamps, RandomPresets: true,
	Doc: "docs/backends/pytorch.md",
}

func init() { backend.Register(Info) }

// Job builds the runner.Job that runs spec with the pytorch harness under
// python (an interpreter that imports the backend; see pkg/pyenv).
// spec.BackendArgs must already hold the mapped arguments
// (params.BackendArgs of the run's pytorch section); the harness applies them
// untouched.
func Job(spec protocol.RunSpec, python string, o pyharness.JobOptions) (runner.Job, error) {
	return pyharness.Job(Harness, spec, python, o)
}
