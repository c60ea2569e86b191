package pytorch

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness/pyharnesstest"
	"github.com/llenergymeasure/llem/pkg/protocol"
)

// TestPythonUnit runs test_harness_pytorch.py (pure parts, no torch).
func TestPythonUnit(t *testing.T) {
	pyharnesstest.RunPythonUnitTests(t, ".", "../pyharness")
}

// TestMissingTorch runs the real harness with a python3 that has no torch:
// the stream must be hello, then error missing_package with the install
// command, and the exit status 1. This is what a user with the wrong
// interpreter sees.
func TestMissingTorch(t *testing.T) {
	py := pyharnesstest.Python3(t)
	if exec.Command(py, "-c", "import torch").Run() == nil {
		t.Skip("torch is installed here; the missing-package path cannot be exercised")
	}
	spec := protocol.RunSpec{RunID: "r1", Config: json.RawMessage(`{"model":"random:llama-15m","backend":"pytorch","n":2}`)}
	job, err := Job(spec, py, pyharness.JobOptions{CacheRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	events, out := pyharnesstest.RunJob(t, job)
	if out.ExitCode != 1 {
		t.Errorf("exit = %d, want 1", out.ExitCode)
	}
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Hello.Backend != "pytorch" || sum.Hello.Versions["python"] == "" {
		t.Errorf("hello = %+v", sum.Hello)
	}
	if sum.Error == nil || sum.Error.Kind != protocol.ErrKindMissingPackage || !strings.Contains(sum.Error.Hint, "pip install torch") {
		t.Fatalf("error = %+v", sum.Error)
	}
}

func TestHarnessEmbedded(t *testing.T) {
	if !strings.Contains(string(Harness.Source), "def main(spec, em)") || Harness.Script != "harness_pytorch.py" {
		t.Fatal("harness_pytorch.py not embedded")
	}
}

// TestOverheadReferenceSelfTest runs scripts/bare_generate_reference.py
// --self-test (its pure helpers; the GPU part runs on the lead's H100).
func TestOverheadReferenceSelfTest(t *testing.T) {
	py := pyharnesstest.Python3(t)
	out, err := exec.Command(py, "../../../scripts/bare_generate_reference.py", "--self-test").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "self-test ok") {
		t.Fatalf("self-test: %v\n%s", err, out)
	}
}

// TestRecordedStreams validates worker streams recorded elsewhere (e.g. by
// scripts/gpu-validate-pytorch.sh on a GPU machine without Go) with llem's
// own protocol checker. LLEM_VALIDATE_STREAMS lists files or globs,
// space-separated; without it the test is skipped.
func TestRecordedStreams(t *testing.T) {
	spec := os.Getenv("LLEM_VALIDATE_STREAMS")
	if spec == "" {
		t.Skip("set LLEM_VALIDATE_STREAMS to recorded .jsonl streams to validate them")
	}
	var files []string
	for _, pat := range strings.Fields(spec) {
		m, err := filepath.Glob(pat)
		if err != nil || len(m) == 0 {
			t.Fatalf("%s: no such files", pat)
		}
		files = append(files, m...)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			fh, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			dec := protocol.NewDecoder(fh)
			var events []protocol.Event
			for {
				ev, err := dec.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				events = append(events, ev)
			}
			sum, err := protocol.Validate(events)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Error != nil {
				t.Fatalf("run failed: %+v", sum.Error)
			}
			t.Logf("%d requests, %d batches, %d in / %d out tokens, versions %v",
				sum.Done.Requests, len(sum.Batches), sum.Done.InputTokens, sum.Done.OutputTokens, sum.Hello.Versions)
		})
	}
}

func TestSummarizeSelfTest(t *testing.T) {
	py := pyharnesstest.Python3(t)
	out, err := exec.Command(py, "../../../scripts/summarize_worker_stream.py", "--self-test").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "self-test ok") {
		t.Fatalf("self-test: %v\n%s", err, out)
	}
}
