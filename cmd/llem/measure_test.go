package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"testing"
)

func TestMeasureCommandWindows(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not on PATH")
	}
	script := `import time, json
t0 = time.monotonic_ns(); time.sleep(0.3); t1 = time.monotonic_ns()
print("hello")
print("LLEM_WINDOW " + json.dumps({"name": "nap", "start_ns": t0, "end_ns": t1, "reference_j": 1.0}))`
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"measure", "--sensor", "estimate", "--interval", "20ms", "--json", "--", py, "-c", script}, IO{Stdout: &out, Stderr: &errb})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res measureResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("decode: %v\n%s", err, out.String())
	}
	if len(res.Windows) != 2 || res.Windows[0].Name != "process" || res.Windows[1].Name != "nap" {
		t.Fatalf("windows = %+v", res.Windows)
	}
	nap := res.Windows[1]
	if nap.DurationS < 0.29 || nap.DurationS > 0.5 || nap.ReferenceJ == nil || nap.DiffPct == nil || nap.EnergyJ <= 0 {
		t.Errorf("nap = %+v", nap)
	}
	if res.Selection.Sensor != "estimate" || res.Sampler.Samples < 5 || res.Sampler.IntervalMs != 20 {
		t.Errorf("selection %+v sampler %+v", res.Selection, res.Sampler)
	}
	if !bytes.Contains(errb.Bytes(), []byte("hello")) {
		t.Errorf("child stdout not passed to stderr under --json: %q", errb.String())
	}

	code = Main(context.Background(), []string{"measure", "--sensor", "estimate", "--", py, "-c", "raise SystemExit(3)"}, IO{Stdout: &out, Stderr: &errb})
	if code != 1 {
		t.Errorf("failing command: exit %d, want 1", code)
	}
	if code := Main(context.Background(), []string{"measure", "--sensor", "bogus", "--", "true"}, IO{Stdout: &out, Stderr: &errb}); code != 2 {
		t.Errorf("unknown sensor: exit %d, want 2", code)
	}
}
