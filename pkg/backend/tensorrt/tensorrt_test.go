package tensorrt

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness/pyharnesstest"
	"github.com/llenergymeasure/llem/pkg/protocol"
)

// TestPythonUnit runs test_harness_tensorrt.py (pure parts: argument
// mapping, engine cache key and directory; TensorRT-LLM is not installable
// on the machines that run llem's tests).
func TestPythonUnit(t *testing.T) {
	pyharnesstest.RunPythonUnitTests(t, ".", "../pyharness")
}

// TestMissingPackage: without tensorrt_llm the harness reports
// missing_package with NVIDIA's install command.
func TestMissingPackage(t *testing.T) {
	py := pyharnesstest.Python3(t)
	if exec.Command(py, "-c", "import tensorrt_llm").Run() == nil {
		t.Skip("tensorrt_llm is installed here")
	}
	spec := protocol.RunSpec{RunID: "r1", Config: json.RawMessage(`{"model":"random:llama-15m","backend":"tensorrt","n":2}`)}
	job, err := Job(spec, py, pyharness.JobOptions{CacheRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	events, out := pyharnesstest.RunJob(t, job)
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatal(err)
	}
	if out.ExitCode != 1 || sum.Error == nil || sum.Error.Kind != protocol.ErrKindMissingPackage ||
		!strings.Contains(sum.Error.Hint, "pypi.nvidia.com") {
		t.Fatalf("exit %d, error %+v", out.ExitCode, sum.Error)
	}
}
