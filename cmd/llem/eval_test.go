package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runEval(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"eval"}, args...), IO{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestEvalDryRun(t *testing.T) {
	code, out, errOut := runEval(t, "../../studies/batch-precision-vllm-vs-pytorch.cue", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"RUN", "PRECISION", "PYTORCH.BATCH_SIZE", "VLLM.ENGINE.MAX_NUM_SEQS",
		"11 runs, 1 excluded", "matches exclude[0]", "5 cycle(s), order shuffled", "cycle 5:"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runEval(t, "../../examples/quickstart.cue", "--dry-run", "--json", "--cycles", "4")
	if code != 0 {
		t.Fatalf("--json exit %d: %s", code, errOut)
	}
	var plan struct {
		Runs []struct {
			ID     string         `json:"id"`
			Config map[string]any `json:"config"`
		} `json:"runs"`
		Execution struct {
			Cycles int `json:"cycles"`
		} `json:"execution"`
		Schedule []any `json:"schedule"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(plan.Runs) != 2 || plan.Execution.Cycles != 4 || len(plan.Schedule) != 8 {
		t.Errorf("plan: %d runs, %d cycles, %d slots", len(plan.Runs), plan.Execution.Cycles, len(plan.Schedule))
	}
	if plan.Runs[0].Config["model"] != "random:llama-15m" {
		t.Errorf("config: %v", plan.Runs[0].Config)
	}
}

func TestEvalErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cue")
	if err := os.WriteFile(bad, []byte("base: {model: \"m\", backend: \"vlm\", precison: \"fp16\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runEval(t, bad, "--dry-run")
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, errOut)
	}
	for _, want := range []string{bad + ":1:20: base.backend: \"vlm\" is not allowed", "(did you mean \"vllm\"?)",
		bad + ":1:36: base.precison: unknown field (did you mean \"precision\"?)", "hint:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	code, _, errOut = runEval(t, filepath.Join(dir, "missing.cue"), "--dry-run")
	if code != 2 {
		t.Errorf("missing file: exit %d, want 2: %s", code, errOut)
	}
}
