package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/llenergymeasure/llem/pkg/result"
)

const evalStudy = `name: "cmdtest"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 2}
	max_output_tokens: 2
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
execution: {cycles: 2, order: "sequential"}
`

// cancelWriter cancels when what was written so far contains trigger.
type cancelWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	trigger string
	cancel  func()
}

func (w *cancelWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.trigger != "" && strings.Contains(w.buf.String(), w.trigger) {
		w.cancel()
		w.trigger = ""
	}
	return len(p), nil
}

func (w *cancelWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestEvalRunInterruptResumeJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the native engine")
	}
	dir := t.TempDir()
	studyPath := filepath.Join(dir, "study.cue")
	if err := os.WriteFile(studyPath, []byte(evalStudy), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "results")

	// Ctrl-C after the first run: exit 130, the directory says interrupted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel on the first finished run's line ("[1/2] <id> cycle 1: 0.00xx
	// J/out-token ..."; the value reaches 1 J and more on a loaded machine).
	stderr := &cancelWriter{trigger: " J/out-token", cancel: cancel}
	code := Main(ctx, []string{"eval", studyPath, "--out", out}, IO{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: stderr})
	if code != 130 {
		t.Fatalf("exit %d after Ctrl-C, want 130\n%s", code, stderr)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "cmdtest-*"))
	if len(dirs) != 1 || !strings.Contains(stderr.String(), "--resume "+dirs[0]) {
		t.Fatalf("dirs %v; stderr:\n%s", dirs, stderr)
	}
	m, err := result.ReadManifest(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != result.StudyInterrupted || m.Counts.Done != 1 {
		t.Fatalf("manifest after Ctrl-C: %s %+v", m.Status, m.Counts)
	}

	// Resume with --json: the rest runs, summary.json on stdout.
	var stdout, errb bytes.Buffer
	code = Main(context.Background(), []string{"eval", studyPath, "--resume", dirs[0], "--json", "--quiet"}, IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &errb})
	if code != 0 {
		t.Fatalf("resume exit %d\n%s", code, errb.String())
	}
	var sum result.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	if sum.Status != result.StudyCompleted || sum.Counts.Done != 2 || len(sum.Runs) != 1 || sum.Runs[0].Done != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if errb.Len() != 0 {
		t.Fatalf("--quiet --json wrote to stderr:\n%s", errb.String())
	}

	// Without --json the table goes to stderr; --out at a study directory
	// resumes it too (nothing left to run).
	var table bytes.Buffer
	code = Main(context.Background(), []string{"eval", studyPath, "--out", dirs[0], "--quiet"}, IO{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &table})
	if code != 0 || !strings.Contains(table.String(), "J/OUT-TOKEN") || !strings.Contains(table.String(), "cmdtest: 2/2 done") {
		t.Fatalf("exit %d, table:\n%s", code, table.String())
	}
	if again, _ := filepath.Glob(filepath.Join(dirs[0], "cmdtest-*")); len(again) != 0 {
		t.Fatalf("re-running on the study directory made a new one: %v", again)
	}
}
