package execute

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/pkg/quality"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// fakeLMEvalQuality scores through the FAKE lm-eval in internal/fakelmeval
// (lm-eval's argparse and results-file layout; see its README) with its hf
// model, through llem's real wrapper and the local runner.
func fakeLMEvalQuality(t *testing.T) QualityFunc {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 for the lm-eval wrapper")
	}
	fake, err := filepath.Abs("../../internal/fakelmeval")
	if err != nil {
		t.Fatal(err)
	}
	return func(req QualityRequest) (QualityJob, error) {
		out := quality.OutputDir(req.Dir)
		args, err := quality.Args(quality.ModelHF, &req.Run.Config, out)
		if err != nil {
			return QualityJob{}, err
		}
		job, err := quality.Job(req.Run.Backend, args, quality.JobOptions{Python: py, Dir: req.Dir, Timeout: req.Timeout, Grace: req.Grace})
		if err != nil {
			return QualityJob{}, err
		}
		job.Env["PYTHONPATH"] = fake
		return QualityJob{Job: job, Source: quality.ModelHF, Command: quality.Command(py, args), OutputDir: out}, nil
	}
}

func lines(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	for s := bufio.NewScanner(f); s.Scan(); {
		n++
	}
	return n
}

// TestQualityPerCycle: quality.scope "cycle" scores the run after each of
// its 3 cycles (3 lm-eval calls, each with its own record and energy); a
// session interrupted inside cycle 2's scoring leaves cycle 1's scoring
// done, and --resume runs only cycle 3's slot and the scorings of cycles 2
// and 3; the summary's quality is the mean over cycles with a BCa CI.
func TestQualityPerCycle(t *testing.T) {
	log := filepath.Join(t.TempDir(), "lmeval.jsonl")
	t.Setenv("FAKE_LMEVAL_LOG", log)
	t.Setenv("FAKE_LMEVAL_VARY", "1")
	_, plan := writeStudy(t, fakeBase+`base: quality: {tasks: ["hellaswag"], limit: 10, source: "auto", scope: "cycle"}
execution: {cycles: 3, gap_seconds: 0}
`)
	if len(plan.Runs) != 1 || !plan.Runs[0].Config.Quality.PerCycle() {
		t.Fatalf("plan: %d runs, quality %+v", len(plan.Runs), plan.Runs[0].Config.Quality)
	}
	run := plan.Runs[0]
	routes := Routes{"native": {Runner: runner.NewLocal(), Job: fakeWorkerJob(0), Quality: fakeLMEvalQuality(t)}}

	// Session 1: interrupted when cycle 2's scoring starts.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var order []string
	rep, err := Run(ctx, Options{Plan: plan, OutRoot: t.TempDir(), Routes: routes, OnEvent: func(ev Event) {
		switch ev.Kind {
		case EventRun:
			order = append(order, "slot")
		case EventQuality:
			order = append(order, "score")
			if ev.Entry.Cycle == 2 {
				cancel()
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted {
		t.Fatalf("session 1 not interrupted: %s", rep.Manifest.Status)
	}
	m := rep.Manifest
	if got := len(m.Quality); got != 3 {
		t.Fatalf("quality entries %+v, want one per cycle", m.Quality)
	}
	for c, want := range map[int]result.EntryStatus{1: result.EntryDone, 2: result.EntryPending, 3: result.EntryPending} {
		if e, ok := m.QualityOf(run.ID, c); !ok || e.Status != want {
			t.Errorf("session 1: cycle %d scoring %+v, want %s", c, e, want)
		}
	}
	if _, ok := m.QualityOf(run.ID, 0); ok {
		t.Error("a per-cycle run has no run-level scoring entry")
	}
	// Scored right after its slot, never inside one: slot, score, slot, score.
	if want := []string{"slot", "score", "slot", "score"}; len(order) != 4 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] || order[3] != want[3] {
		t.Errorf("session 1 order %v, want %v", order, want)
	}
	firstCalls := lines(t, log)

	// Session 2: cycle 3's slot, then the two scorings not done.
	order = nil
	var scored []int
	rep, err = Resume(context.Background(), rep.Dir, Options{Plan: plan, Routes: routes, OnEvent: func(ev Event) {
		switch ev.Kind {
		case EventRun:
			order = append(order, "slot")
		case EventQuality:
			scored = append(scored, ev.Entry.Cycle)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Interrupted || rep.Manifest.Status != result.StudyCompleted || rep.QualityFailed != 0 {
		t.Fatalf("session 2: %s, quality failed %d", rep.Manifest.Status, rep.QualityFailed)
	}
	if len(order) != 1 || len(scored) != 2 || scored[0] != 3 || scored[1] != 2 {
		t.Fatalf("session 2 ran %v slots and scored cycles %v, want 1 slot and cycles [3 2]", order, scored)
	}
	if got := lines(t, log) - firstCalls; got != 2 {
		t.Fatalf("session 2 called lm-eval %d times, want 2", got)
	}
	m = rep.Manifest
	scores := map[int]float64{}
	for c := 1; c <= 3; c++ {
		e, ok := m.QualityOf(run.ID, c)
		if !ok || e.Status != result.EntryDone || e.Record != result.QualityPath(run.ID, c) {
			t.Fatalf("cycle %d entry %+v", c, e)
		}
		var q result.QualityRecord
		b, err := os.ReadFile(filepath.Join(rep.Dir, e.Record))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		if q.Cycle != c || q.Status != result.StatusOK || q.Score == nil || q.Energy.RawJ == nil || *q.Energy.RawJ <= 0 {
			t.Fatalf("cycle %d record: cycle %d %s score %v energy %+v", c, q.Cycle, q.Status, q.Score, q.Energy)
		}
		if q.ResultsFile != result.LMEvalResultsPath(run.ID, c) {
			t.Errorf("cycle %d results file %q", c, q.ResultsFile)
		}
		if _, err := os.Stat(filepath.Join(rep.Dir, q.ResultsFile)); err != nil {
			t.Error(err)
		}
		scores[c] = *q.Score
	}
	if scores[1] == scores[2] || scores[2] == scores[3] {
		t.Fatalf("FAKE_LMEVAL_VARY: the cycles' scores should differ: %v", scores)
	}
	rs := rep.Stats.Run(run.ID)
	qm, qpj, sj := rs.Metric(stats.MetricQuality), rs.Metric(stats.MetricQualityPerJoule), rs.Metric(stats.MetricQualityScoringJ)
	if qm == nil || qpj == nil || sj == nil {
		t.Fatalf("metrics %+v", rs.Metrics)
	}
	mean := (scores[1] + scores[2] + scores[3]) / 3
	if qm.N != 3 || qm.Mean < mean-1e-12 || qm.Mean > mean+1e-12 || qm.CI == nil || qm.CI.Method != stats.MethodBCa || !(qm.CI.Lower < mean && mean < qm.CI.Upper) {
		t.Fatalf("quality %+v CI %+v, want mean %v over 3 cycles with a BCa CI", qm.Description, qm.CI, mean)
	}
	if qpj.N != 3 || qpj.CI == nil || sj.N != 3 {
		t.Fatalf("quality_per_joule %+v, scoring energy %+v", qpj.Description, sj.Description)
	}
	// The summary on disk reads the same records.
	st, err := result.LoadStudy(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if qs := st.Quality[run.ID]; len(qs) != 3 || qs[0].Cycle != 1 || qs[2].Cycle != 3 {
		t.Fatalf("StudyQuality %+v", qs)
	}
	if len(st.Problems) != 0 {
		t.Fatalf("problems %+v", st.Problems)
	}
}
