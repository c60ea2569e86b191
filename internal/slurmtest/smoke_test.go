package slurmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestStartRunsArrayOnTwoNodes(t *testing.T) {
	c := Start(t, Options{})
	out := filepath.Join(t.TempDir(), "o")
	os.MkdirAll(out, 0o755)
	b, err := exec.Command("sbatch", "--parsable", "--array=0-3", "-o", out+"/%A_%a.out", "--wrap", "echo $SLURMD_NODENAME $SLURM_ARRAY_TASK_ID; sleep 1").CombinedOutput()
	if err != nil {
		t.Fatalf("%v %s %s", err, b, c.Logs())
	}
	for i := 0; i < 60; i++ {
		q, _ := exec.Command("squeue", "-h").Output()
		if len(q) == 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	files, _ := filepath.Glob(out + "/*")
	for _, f := range files {
		d, _ := os.ReadFile(f)
		t.Logf("%s: %s", filepath.Base(f), d)
	}
}
