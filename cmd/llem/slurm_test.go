package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/slurmtest"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/slurm"
)

// slurmStudy is 3 native runs × 2 cycles; gap makes each task last a few
// seconds so a test can kill it mid-run.
func slurmStudy(t *testing.T, gap float64) string {
	p := filepath.Join(t.TempDir(), "study.cue")
	src := fmt.Sprintf(`name: "slurm"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 2}
	max_output_tokens: 2
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
grid: native: batch_size: [1, 2, 4]
execution: {cycles: 2, gap_seconds: %g}
`, gap)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func slurmEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LLEM_CMD_TEST_AS_LLEM", "1") // array tasks run this binary as llem
	t.Setenv("LLEM_CONFIG", filepath.Join(dir, "none.yaml"))
	t.Setenv("LLEM_CACHE_DIR", filepath.Join(dir, "cache"))
}

func llem(t *testing.T, ctx context.Context, args ...string) (int, string) {
	var out, errb bytes.Buffer
	code := Main(ctx, args, IO{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb})
	return code, out.String() + errb.String()
}

type slotView struct {
	Run    string
	Cycle  int
	Status string
	In     int
	Out    int
}

// slots is every record of a study directory, verified, keyed by slot.
func slots(t *testing.T, dir string) []slotView {
	t.Helper()
	recs, err := result.ReadRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	var v []slotView
	for _, r := range recs {
		v = append(v, slotView{r.RunID, r.Cycle, string(r.Status), r.Throughput.InputTokens, r.Throughput.OutputTokens})
	}
	sort.Slice(v, func(i, j int) bool { return v[i].Run+fmt.Sprint(v[i].Cycle) < v[j].Run+fmt.Sprint(v[j].Cycle) })
	return v
}

func onlyStudy(t *testing.T, root string) string {
	t.Helper()
	list, err := result.ListStudies(root)
	if err != nil || len(list) != 1 {
		t.Fatalf("studies under %s: %v %v", root, list, err)
	}
	return list[0].Dir
}

// summaryRuns is the part of summary.json that does not depend on when
// or how fast the slots ran.
func summaryRuns(t *testing.T, dir string) string {
	sum, err := result.ReadSummary(dir)
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		ID, Label, Hash string
		Cycles, Done    int
		Failed          int
		Records         []string
	}
	var rs []run
	for _, r := range sum.Runs {
		rs = append(rs, run{r.RunID, r.Label, r.ConfigHash, r.Cycles, r.Done, r.Failed, r.Records})
	}
	b, _ := json.Marshal(struct {
		Status string
		Counts result.Counts
		Runs   []run
	}{string(sum.Status), sum.Counts, rs})
	return string(b)
}

func TestSlurmArrayMatchesLocal(t *testing.T) {
	c := slurmtest.Start(t, slurmtest.Options{Nodes: 2})
	slurmEnv(t)
	study := slurmStudy(t, 0)
	ctx := context.Background()
	local, onSlurm := t.TempDir(), t.TempDir()
	if code, out := llem(t, ctx, "eval", study, "--out", local, "-q"); code != 0 {
		t.Fatalf("local eval: %d\n%s", code, out)
	}
	code, out := llem(t, ctx, "eval", study, "--on", "slurm", "--out", onSlurm)
	if code != 0 {
		t.Fatalf("slurm eval: %d\n%s\n%s", code, out, c.Logs())
	}
	ld, sd := onlyStudy(t, local), onlyStudy(t, onSlurm)
	if a, b := fmt.Sprint(slots(t, ld)), fmt.Sprint(slots(t, sd)); a != b || len(slots(t, sd)) != 6 {
		t.Errorf("records differ:\nlocal %s\nslurm %s", a, b)
	}
	if a, b := summaryRuns(t, ld), summaryRuns(t, sd); a != b {
		t.Errorf("summaries differ:\nlocal %s\nslurm %s", a, b)
	}
	// Each record names its node and array task; the runs spread over both nodes.
	nodes := map[string]bool{}
	recs, _ := result.ReadRecords(sd)
	for _, r := range recs {
		var env struct{ Slurm slurm.Alloc }
		json.Unmarshal(r.Environment, &env)
		if env.Slurm.ArrayJobID == "" || env.Slurm.Node == "" {
			t.Fatalf("record %s/%d has no slurm allocation: %s", r.RunID, r.Cycle, r.Environment)
		}
		nodes[env.Slurm.Node] = true
	}
	if len(nodes) < 2 {
		t.Errorf("tasks ran on %v, want both nodes", nodes)
	}
	if ents, _ := os.ReadDir(filepath.Join(sd, slurm.Folder, slurm.TasksDir)); len(ents) != 0 {
		t.Errorf("task directories left after the merge: %v", ents)
	}
	// The merge is the single-machine summary: merging again gives the
	// same summary, but for when it was written.
	before := summaryRuns(t, sd)
	if code, out := llem(t, ctx, "slurm", "merge", sd); code != 0 || summaryRuns(t, sd) != before {
		t.Errorf("re-merge: %d %s", code, out)
	}
	// --dry-run shows the exact script, %N from --max-parallel.
	code, out = llem(t, ctx, "eval", study, "--on", "slurm", "--dry-run", "--max-parallel", "2", "--out", onSlurm)
	if code != 0 || !strings.Contains(out, "#SBATCH --array=0-2%2") || !strings.Contains(out, "slurm-task") || !strings.Contains(out, "--dependency=afterany:") {
		t.Errorf("dry run: %d\n%s", code, out)
	}
}

func TestSlurmKillCancelResume(t *testing.T) {
	c := slurmtest.Start(t, slurmtest.Options{Nodes: 2})
	slurmEnv(t)
	study := slurmStudy(t, 3)
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	type res struct {
		code int
		out  string
	}
	done := make(chan res, 1)
	go func() {
		code, out := llem(t, ctx, "eval", study, "--on", "slurm", "--out", root)
		done <- res{code, out}
	}()
	// Kill one running task (scancel of that task), then Ctrl-C the
	// submitter, which cancels the array.
	var sub *slurm.Submission
	deadline := time.Now().Add(60 * time.Second)
	for killed := false; !killed; {
		if time.Now().After(deadline) {
			t.Fatalf("no running task\n%s", c.Logs())
		}
		time.Sleep(300 * time.Millisecond)
		list, _ := result.ListStudies(root)
		if len(list) != 1 {
			continue
		}
		s, ok, _ := slurm.ReadSubmission(list[0].Dir)
		if !ok || s.JobID == "" {
			continue
		}
		sub = s
		tasks, _ := slurm.Queue(context.Background(), s.JobID)
		for _, tk := range tasks {
			if tk.State == "RUNNING" {
				if out, err := exec.Command("scancel", fmt.Sprintf("%s_%d", s.JobID, tk.Index)).CombinedOutput(); err != nil {
					t.Fatalf("scancel: %v %s", err, out)
				}
				killed = true
				break
			}
		}
	}
	time.Sleep(time.Second)
	cancel()
	r := <-done
	if r.code != errs.ExitInterrupted {
		t.Fatalf("interrupted submitter: exit %d, want %d\n%s", r.code, errs.ExitInterrupted, r.out)
	}
	// The merge job still runs: wait for it.
	for end := time.Now().Add(60 * time.Second); ; {
		if tasks, _ := slurm.Queue(context.Background(), sub.JobID, sub.MergeJobID); len(tasks) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("merge job still queued\n%s", c.Logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
	m, err := result.ReadManifest(sub.Dir)
	if err != nil || m.Status != result.StudyInterrupted || m.Counts.Done == 6 {
		t.Fatalf("after cancel: %v %+v %v", m.Status, m.Counts, err)
	}
	// Resume resubmits only the missing runs; every slot ends done once.
	code, out := llem(t, context.Background(), "eval", study, "--on", "slurm", "--resume", sub.Dir)
	if code != 0 {
		t.Fatalf("resume: %d\n%s\n%s", code, out, c.Logs())
	}
	sub2, _, _ := slurm.ReadSubmission(sub.Dir)
	if len(sub2.Runs) == 0 || len(sub2.Runs) > 3 {
		t.Errorf("resubmitted %v", sub2.Runs)
	}
	v := slots(t, sub.Dir)
	if len(v) != 6 {
		t.Fatalf("slots %v", v)
	}
	for _, s := range v {
		if s.Status != "ok" {
			t.Errorf("slot %+v", s)
		}
	}
	files, _ := filepath.Glob(filepath.Join(sub.Dir, "records", "*", "*"))
	if len(files) != 6 {
		t.Errorf("record files %v", files)
	}
	m, _ = result.ReadManifest(sub.Dir)
	if m.Status != result.StudyCompleted || m.Counts.Done != 6 {
		t.Errorf("final %s %+v", m.Status, m.Counts)
	}
}
