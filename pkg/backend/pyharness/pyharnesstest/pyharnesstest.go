// Package pyharnesstest holds test helpers shared by the Python backend
// packages' tests (kept out of pyharness so the llem binary does not link
// the testing package).
package pyharnesstest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Python3 returns the system python3, or skips the test when there is none
// (the Python tests need no GPU library, only the interpreter); under CI
// (CI set, as .ci/run does) a missing python3 fails the test instead.
func Python3(t testing.TB) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 not on PATH in CI (.ci/run installs it): %v", err)
		}
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
func RunJob(t testing.TB, job runner.Job) ([]protocol.Event, runner.Outcome) {
	t.Helper()
	var events []protocol.Event
	out, err := runner.NewLocal().Run(context.Background(), job, func(ev protocol.Event) {
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

// HarnessKwargs loads a one-experiment study source with pkg/study, builds
// its RunSpec with pyharness.SpecFor (so params.BackendArgs maps the
// section), then runs code in python with the harness directory and
// pyharness on sys.path; code reads the spec as JSON from stdin (variable
// `spec`) and must print one JSON value, which is returned decoded.
func HarnessKwargs(t *testing.T, harnessDir, pyharnessDir, studySrc, code string) any {
	t.Helper()
	py := Python3(t)
	plan, err := study.LoadSource(context.Background(), "t.cue", []byte(studySrc))
	if err != nil {
		t.Fatalf("load study: %v", err)
	}
	if len(plan.Runs) != 1 {
		t.Fatalf("study has %d runs (skipped: %+v), want 1", len(plan.Runs), plan.Skipped)
	}
	spec, err := pyharness.SpecFor(plan.Runs[0], 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	hd, _ := filepath.Abs(harnessDir)
	pd, _ := filepath.Abs(pyharnessDir)
	prog := "import json, sys\nsys.path[:0] = [" + strconv.Quote(hd) + ", " + strconv.Quote(pd) + "]\n" +
		"spec = json.load(sys.stdin)\n" + code
	cmd := exec.Command(py, "-c", prog)
	cmd.Stdin = bytes.NewReader(in)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("python: %v\n%s\nspec: %s", err, stderr, in)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("python printed %q: %v", out, err)
	}
	return v
}
