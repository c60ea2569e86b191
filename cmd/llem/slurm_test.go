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

// TestSlurmQualityScoring: with quality: in the study, each array task
// scores its run with lm-eval after the run's cycles, on its node, and the
// merge adopts the score like a cycle's record; a failed scoring is
// resubmitted by --resume, which then scores only it. lm-eval is the FAKE
// in internal/fakelmeval (see eval_quality.txtar); Slurm is real.
func TestSlurmQualityScoring(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 for the lm-eval wrapper")
	}
	c := slurmtest.Start(t, slurmtest.Options{Nodes: 2})
	slurmEnv(t)
	fake, err := filepath.Abs("../../internal/fakelmeval")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYTHONPATH", fake)
	t.Setenv("FAKE_LMEVAL_CRASH", "1")
	study := filepath.Join(t.TempDir(), "study.cue")
	if err := os.WriteFile(study, []byte(`name: "slurmq"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 4}
	max_output_tokens: 4
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
	quality: {tasks: ["hellaswag"], limit: 10}
}
grid: native: batch_size: [1, 2]
execution: {cycles: 1, gap_seconds: 0}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root := t.TempDir()
	code, out := llem(t, ctx, "eval", study, "--on", "slurm", "--out", root)
	dir := onlyStudy(t, root)
	if ctx.Err() != nil {
		logs, _ := exec.Command("sh", "-c", "cat "+filepath.Join(dir, slurm.Folder, slurm.LogsDir)+"/* "+filepath.Join(dir, slurm.Folder, slurm.TasksDir)+"/*/work/*/quality/worker.stderr").CombinedOutput()
		t.Fatalf("eval did not finish: %d\n%s\ntask logs:\n%s\n%s", code, out, logs, c.Logs())
	}
	quality := func() map[string]string {
		m, err := result.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, q := range m.Quality {
			got[q.RunID] = string(q.Status)
		}
		return got
	}
	q := quality()
	if len(q) != 2 {
		t.Fatalf("eval exit %d, quality entries %v\n%s\n%s", code, q, out, c.Logs())
	}
	for run, s := range q {
		if s != "failed" {
			t.Errorf("run %s: quality %s after a crashing lm-eval, want failed\n%s", run, s, out)
		}
		b, err := os.ReadFile(filepath.Join(dir, result.QualityPath(run, 0)))
		if err != nil || !strings.Contains(string(b), "FAKE_LMEVAL_CRASH") {
			t.Errorf("run %s: quality.json not merged with the crash: %v %s", run, err, b)
		}
	}
	if s := slots(t, dir); len(s) != 2 || s[0].Status != "ok" || s[1].Status != "ok" {
		t.Errorf("efficiency records %v", s)
	}
	// --resume resubmits both runs for their scoring only.
	t.Setenv("FAKE_LMEVAL_CRASH", "")
	code, out = llem(t, ctx, "eval", study, "--on", "slurm", "--resume", dir)
	if code != 0 {
		t.Fatalf("resume: %d\n%s\n%s", code, out, c.Logs())
	}
	for run, s := range quality() {
		b, _ := os.ReadFile(filepath.Join(dir, result.QualityPath(run, 0)))
		if s != "done" || !strings.Contains(string(b), `"status": "ok"`) || !strings.Contains(string(b), `"attempt": 2`) {
			t.Errorf("run %s after resume: %s\n%s", run, s, b)
		}
	}
	if s := slots(t, dir); len(s) != 2 {
		t.Errorf("resume ran efficiency slots again: %v", s)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, slurm.Folder, slurm.TasksDir)); len(ents) != 0 {
		t.Errorf("task directories left after the merge: %v", ents)
	}
}
