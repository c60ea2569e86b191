package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/slurmtest"
	"github.com/llenergymeasure/llem/pkg/result"
)

// TestSlurmTaskTimeLimit: on a real Slurm, an array task that outlives the
// study's slurm time limit (1 minute, Slurm's smallest) is recorded failed
// with Slurm's state and reason, and the study goes on: the other run's
// task completes and the merge writes the summary. Slurm enforces time
// limits on its 30 s background pass, so this takes one to two minutes:
// it runs only with LLEM_TEST_SLURM_TIMEOUT=1.
func TestSlurmTaskTimeLimit(t *testing.T) {
	if os.Getenv("LLEM_TEST_SLURM_TIMEOUT") == "" {
		t.Skip("takes 1-2 minutes (Slurm's smallest time limit is one minute); LLEM_TEST_SLURM_TIMEOUT=1 runs it")
	}
	c := slurmtest.Start(t, slurmtest.Options{Nodes: 2})
	slurmEnv(t)
	study := filepath.Join(t.TempDir(), "study.cue")
	// Two runs; the slow one waits out a 150 s thermal floor, past the
	// task's one-minute limit.
	src := `name: "timeout"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 2}
	max_output_tokens: 2
	energy: sensor: "estimate"
	baseline: enabled: false
}
experiments: [
	{name: "quick", warmup: {n_warmup: 1, thermal_floor_seconds: 0}},
	{name: "slow", warmup: {n_warmup: 1, thermal_floor_seconds: 150}},
]
execution: cycles: 1
slurm: time: "1"
`
	if err := os.WriteFile(study, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	code, out := llem(t, context.Background(), "eval", study, "--on", "slurm", "--out", root)
	dir := onlyStudy(t, root)
	recs, err := result.ReadRecords(dir)
	if err != nil || len(recs) != 2 {
		t.Fatalf("exit %d, records %v %v\n%s\n%s", code, len(recs), err, out, c.Logs())
	}
	for _, r := range recs {
		switch r.Experiment {
		case "experiments[0]": // quick
			if r.Status != result.StatusOK {
				t.Errorf("quick run: %s %+v", r.Status, r.Error)
			}
		case "experiments[1]": // slow
			if r.Status != result.StatusFailed || r.Error == nil || !strings.Contains(r.Error.Message, "TIMEOUT") || !strings.Contains(r.Error.Message, "time limit") {
				t.Errorf("slow run: %s %+v, want failed with Slurm's TIMEOUT", r.Status, r.Error)
			}
		default:
			t.Errorf("record of %q", r.Experiment)
		}
	}
	m, err := result.ReadManifest(dir)
	// Finished, one run failed: the study went on past the dead task.
	if err != nil || m.Status != result.StudyFailed || m.Counts.Done != 1 || m.Counts.Failed != 1 {
		t.Errorf("manifest %v %+v %v", m.Status, m.Counts, err)
	}
	if _, err := result.ReadSummary(dir); err != nil {
		t.Errorf("summary: %v", err)
	}
}
