// Package pyharnesstest holds test helpers shared by the Python backend
// packages' tests (kept out of pyharness so the llem binary does not link
// the testing package).
package pyharnesstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/worker"
)

// Python3 returns the system python3, or skips the test when there is none
// (the Python tests need no GPU library, only the interpreter).
func Python3(t testing.TB) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH: Python harness tests skipped")
	}
	return py
}

// RunPythonUnitTests runs `python3 -m unittest discover` in dir (relative
// to the calling test's package), with the pyharness directory on
// PYTHONPATH so the harnesses import llem_common.
func RunPythonUnitTests(t *testing.T, dir, pyharnessDir string) {
	t.Helper()
	py := Python3(t)
	abs, err := filepath.Abs(pyharnessDir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-m", "unittest", "discover", "-s", ".", "-p", "test_*.py", "-v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+abs, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python unit tests failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// RunJob runs job with the local runner and returns every event.
func RunJob(t testing.TB, job runner.Job) ([]worker.Event, runner.Outcome) {
	t.Helper()
	var events []worker.Event
	out, err := runner.NewLocal().Run(context.Background(), job, func(ev worker.Event) {
		events = append(events, ev)
	})
	if err != nil {
		t.Fatalf("run worker: %v", err)
	}
	for _, e := range out.ProtocolErrs {
		t.Errorf("protocol error: %v", e)
	}
	return events, out
}
