package slurmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartRunsArrayOnTwoNodes: the cluster Start brings up runs an array
// of 4 tasks to completion across both slurmd nodes.
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
	// Every task ran, and the array really spread over both fake nodes.
	files, _ := filepath.Glob(out + "/*")
	nodes := map[string]bool{}
	for _, f := range files {
		d, _ := os.ReadFile(f)
		if fields := strings.Fields(string(d)); len(fields) == 2 {
			nodes[fields[0]] = true
		}
	}
	if len(files) != 4 || !nodes["n1"] || !nodes["n2"] {
		t.Fatalf("%d task outputs on nodes %v, want 4 on n1 and n2\n%s", len(files), nodes, c.Logs())
	}
}
