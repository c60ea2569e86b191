package compute

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"testing"
)

// TestHarnessPresetsMatchPython: harness_presets.json is the Python
// harnesses' ARCHITECTURES (pkg/backend/pyharness/llem_common.py), so the
// dry run's estimate describes the model the worker builds. Regenerate
// with the command in the failure message.
func TestHarnessPresetsMatchPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	cmd := exec.Command(py, "-c", "import json, llem_common as lc; print(json.dumps(lc.ARCHITECTURES, indent=1, sort_keys=True))")
	cmd.Dir = "../backend/pyharness"
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var want, got any
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(harnessPresetsJSON, &got); err != nil {
		t.Fatal(err)
	}
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if !bytes.Equal(w, g) {
		t.Errorf("pkg/compute/harness_presets.json differs from llem_common.ARCHITECTURES; regenerate: (cd pkg/backend/pyharness && python3 -c '%s') > pkg/compute/harness_presets.json", "import json, llem_common as lc; print(json.dumps(lc.ARCHITECTURES, indent=1, sort_keys=True))")
	}
}

// TestForModelHarnessPresets: the Python harnesses' presets get an Arch,
// with the parameter counts test_llem_common.py checks for the same shapes
// (and the public checkpoints report).
func TestForModelHarnessPresets(t *testing.T) {
	for name, want := range map[string]float64{"llama-3.1-8b": 8.03e9, "llama-3.2-1b": 1.236e9, "qwen2.5-0.5b": 0.494e9} {
		a, ok := ForModel("random:" + name)
		if !ok {
			t.Errorf("%s: no Arch", name)
			continue
		}
		if rel := math.Abs(float64(a.Params)-want) / want; rel > 0.01 {
			t.Errorf("%s: %d params, want ≈ %.4g", name, a.Params, want)
		}
	}
	if _, ok := ForModel("random:no-such-preset"); ok {
		t.Error("an unknown preset got an Arch")
	}
}
