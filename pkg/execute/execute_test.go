package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/backend/native"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	studypkg "github.com/llenergymeasure/llem/pkg/study"
)

const fakeBase = `name: "fake"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 1
	dataset: {source: "synthetic", input_len: 4, output_len: 3}
	energy: {sensor: "estimate", sample_interval_ms: 50}
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
`

func TestFailuresAreRecordedAndTheStudyGoesOn(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`grid: n: [1, 2, 3, 4, 5]
execution: {cycles: 1, order: "sequential", run_timeout_seconds: 4}
`)
	var kinds []string
	rep, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(),
		Routes:  LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)}),
		OnEvent: func(ev Event) { kinds = append(kinds, ev.Kind) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 4 || rep.Manifest.Status != result.StudyFailed || rep.Interrupted {
		for _, e := range rep.Manifest.Entries {
			t.Log(e.RunID, e.Status, e.Error)
		}
		t.Fatalf("failed = %d, status = %s", rep.Failed, rep.Manifest.Status)
	}
	byN := map[int]*result.Record{}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		var c struct{ N int }
		json.Unmarshal(r.Config, &c)
		byN[c.N] = r
	}
	if r := byN[fakeOK]; r == nil || r.Status != result.StatusOK || r.Energy.RawJ == nil || r.Timeseries == "" {
		t.Fatalf("ok run: %+v", r)
	}
	for _, tc := range []struct {
		n                 int
		kind, inMsg, tail string
	}{
		{fakeCrash, "crash", "status 139", "simulated segfault"},
		{fakeHang, "timeout", "timeout of 4s", ""},
		{fakeGarbage, "protocol", "Loading checkpoint shards", ""},
		{fakeErrEvent, "oom", "KV cache", ""},
	} {
		r := byN[tc.n]
		if r == nil || r.Status != result.StatusFailed || r.Error == nil {
			t.Fatalf("n=%d: record %+v", tc.n, r)
		}
		if r.Error.Kind != tc.kind || !strings.Contains(r.Error.Message, tc.inMsg) || !strings.Contains(r.Error.StderrTail, tc.tail) {
			t.Errorf("n=%d: error = %+v", tc.n, r.Error)
		}
	}
	if byN[fakeErrEvent].Error.Hint != "use a smaller batch_size" {
		t.Errorf("worker hint lost: %+v", byN[fakeErrEvent].Error)
	}
	if kinds[0] != EventStart || kinds[len(kinds)-1] != EventEnd || !slices.Contains(kinds, EventPower) {
		t.Errorf("events = %v", kinds)
	}
	if _, err := result.ReadSummary(rep.Dir); err != nil {
		t.Fatal(err)
	}
}

// TestEndToEndNative runs the real native engine (this test binary as
// `llem worker`) on a 2×2 grid, 3 cycles shuffled: 12 records in the
// planned order, the right fields, summaries, and timeseries Parquet files
// that an independent reader (hyparquet under node) reads back.
func TestEndToEndNative(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the native engine 12 times")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, plan := writeStudy(t, `name: "e2e"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 4}
	energy: {sensor: "estimate", sample_interval_ms: 20}
	baseline: {enabled: true, duration_seconds: 1, cache_ttl_seconds: 3600}
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
grid: {native: batch_size: [1, 2], max_output_tokens: [2, 4]}
execution: {cycles: 3, order: "shuffled", seed: 7}
`)
	if len(plan.Runs) != 4 || len(plan.Schedule) != 12 {
		t.Fatalf("plan: %d runs, %d slots", len(plan.Runs), len(plan.Schedule))
	}
	snap := envinfo.Collect(envinfo.Options{})
	envJSON, _ := json.Marshal(snap)
	rep, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(), Environment: envJSON, Fingerprint: snap.Fingerprint,
		Routes:        LocalRoutes(map[string]JobFunc{"native": native.JobFunc(exe)}),
		BaselineCache: measure.Cache{Dir: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Manifest.Status != result.StudyCompleted || rep.Manifest.Counts.Done != 12 {
		for _, e := range rep.Manifest.Entries {
			t.Log(e.RunID, e.Cycle, e.Status, e.Error)
		}
		t.Fatalf("status %s, %+v", rep.Manifest.Status, rep.Manifest.Counts)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 12 {
		t.Fatalf("%d records, want 12", len(recs))
	}
	readers := parquetReaders(t)
	freshBaselines := 0
	for i, r := range recs {
		slot := plan.Schedule[i]
		want := plan.Runs[slot.Run]
		if r.Position != i || r.RunID != want.ID || r.Cycle != slot.Cycle || r.ConfigHash != want.Hash {
			t.Fatalf("record %d = %s cycle %d, plan says %s cycle %d", i, r.RunID, r.Cycle, want.ID, slot.Cycle)
		}
		var coords map[string]any
		if err := json.Unmarshal(r.Coordinates, &coords); err != nil || len(coords) != 2 {
			t.Fatalf("record %d coordinates %s", i, r.Coordinates)
		}
		if r.Status != result.StatusOK || r.SchemaVersion != result.SchemaVersion || r.Llem.Version == "" || len(r.Environment) == 0 {
			t.Fatalf("record %d: %+v", i, r)
		}
		if r.Energy.Sensor != "estimate" || r.Energy.Method != "estimate-tdp" || r.Energy.RawJ == nil || !slices.Contains(r.Flags, measure.FlagEstimateUsed) {
			t.Fatalf("record %d energy: %+v flags %v", i, r.Energy, r.Flags)
		}
		if r.Energy.Baseline == nil || r.Energy.BaselineAdjustedJ == nil || r.Efficiency.Basis != "raw" || r.Efficiency.AdjustedEnergyPerOutputTokenJ == nil {
			t.Fatalf("record %d baseline: %+v", i, r.Energy.Baseline)
		}
		if r.Energy.Baseline.Method == "fresh" {
			freshBaselines++
		}
		var cfg struct {
			N               int `json:"n"`
			MaxOutputTokens int `json:"max_output_tokens"`
		}
		json.Unmarshal(r.Config, &cfg)
		if r.Throughput.Requests != 2 || r.Throughput.InputTokens != 16 || r.Throughput.OutputTokens != 2*cfg.MaxOutputTokens {
			t.Fatalf("record %d throughput %+v (max_output_tokens %d)", i, r.Throughput, cfg.MaxOutputTokens)
		}
		if r.Prefill == nil || r.Decode == nil || r.Prefill.Tokens != 16 || r.Decode.Tokens != 2*(cfg.MaxOutputTokens-1) || r.Prefill.EnergyJ == nil {
			t.Fatalf("record %d phases %+v %+v", i, r.Prefill, r.Decode)
		}
		if r.Latency.TTFT.N != 2 || r.Latency.E2E.P50Ms <= 0 || r.Timing.WindowS <= 0 {
			t.Fatalf("record %d latency %+v", i, r.Latency)
		}
		if i%4 == 0 && readers != "" { // a third of the files, to keep the test short
			got := readParquet(t, readers, filepath.Join(rep.Dir, r.Timeseries))
			if len(got.Rows) == 0 || got.Llem["run_id"] != r.RunID || !slices.Contains(got.Columns, "power_w") {
				t.Fatalf("timeseries %s: %d rows, meta %v", r.Timeseries, len(got.Rows), got.Llem)
			}
		}
	}
	if freshBaselines != 1 {
		t.Errorf("%d fresh baselines, want 1 (the rest cached)", freshBaselines)
	}
	sum, err := result.ReadSummary(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Runs) != 4 || len(sum.Stats) == 0 || sum.TotalEnergyJ == nil {
		t.Fatalf("summary: %+v", sum)
	}
	for _, rs := range sum.Runs {
		if rs.Done != 3 || len(rs.Records) != 3 || rs.SteadyState.StoppedBy != "cycles_exhausted" {
			t.Fatalf("run summary %+v", rs)
		}
	}
	if rep.Stats == nil || len(rep.Stats.Runs) != 4 || rep.Stats.Runs[0].Metric("energy_per_output_token_j").CI == nil {
		t.Fatalf("stats: %+v", rep.Stats)
	}
}

func TestResumeRejectsAChangedPlan(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`grid: n: [1]
execution: {cycles: 1}
`)
	rep, err := Run(context.Background(), Options{Plan: plan, OutRoot: t.TempDir(), Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)})})
	if err != nil {
		t.Fatal(err)
	}
	_, other := writeStudy(t, fakeBase+`grid: n: [1, 2]
execution: {cycles: 1}
`)
	_, err = Resume(context.Background(), rep.Dir, Options{Plan: other})
	if err == nil || !strings.Contains(err.Error(), "runs changed") {
		t.Fatalf("resume with another plan: %v", err)
	}
	var re *ResumeError
	if !errors.As(err, &re) || re.Study != "fake" || !strings.HasPrefix(err.Error(), "resume fake: the study's runs changed") {
		t.Fatalf("resume with another plan: %T %v, want a *ResumeError", err, err)
	}
	// Resuming a finished study runs nothing and keeps its records.
	again, err := Resume(context.Background(), rep.Dir, Options{Plan: plan, Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)})})
	if err != nil {
		t.Fatal(err)
	}
	if again.Manifest.Counts.Done != 1 || again.Manifest.Entries[0].Attempts != 1 || again.Manifest.Sessions != 2 {
		t.Fatalf("manifest after a no-op resume: %+v", again.Manifest)
	}
}

func TestSteadyStateStopsCycling(t *testing.T) {
	t.Parallel()
	// The fake worker is steady, and the estimate sensor near-constant:
	// with steady_state on, cycles 4..6 are skipped after 3 steady ones.
	_, plan := writeStudy(t, fakeBase+`grid: n: [1]
execution: {cycles: 6, order: "sequential", steady_state: 0.5}
`)
	rep, err := Run(context.Background(), Options{Plan: plan, OutRoot: t.TempDir(), Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(20)})})
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Manifest.Counts
	if c.Done != 3 || c.Skipped != 3 || rep.Manifest.Status != result.StudyCompleted {
		t.Fatalf("counts %+v status %s", c, rep.Manifest.Status)
	}
	ss := rep.Summary.Runs[0].SteadyState
	if !ss.Reached || ss.AtCycle != 3 || ss.StoppedBy != "steady_state" || ss.CV == nil {
		t.Fatalf("steady state %+v", ss)
	}
}

func TestGapIsSkippable(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`grid: n: [1]
execution: {cycles: 2, gap_seconds: 3600}
`)
	// Hang guard only: a gap that ignores the skip would run into it.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	skip := make(chan struct{}, 1)
	var gaps []time.Duration
	type slept struct {
		asked, took time.Duration
		err         error
	}
	var sleeps []slept
	rep, err := Run(ctx, Options{Plan: plan, OutRoot: t.TempDir(), Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)}),
		Skip: skip,
		Sleep: func(ctx context.Context, d time.Duration, s <-chan struct{}) error {
			t0 := time.Now()
			err := sleep(ctx, d, s) // the real one
			sleeps = append(sleeps, slept{d, time.Since(t0), err})
			return err
		},
		OnEvent: func(ev Event) {
			if ev.Kind == EventGap {
				gaps = append(gaps, ev.Gap)
				skip <- struct{}{}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("hang guard: the study ran %v and was cut off", 5*time.Minute)
	}
	if len(gaps) != 1 || gaps[0] != time.Hour || rep.Manifest.Counts.Done != 2 || rep.Manifest.Status != result.StudyCompleted {
		t.Fatalf("gaps %v, counts %+v, status %s", gaps, rep.Manifest.Counts, rep.Manifest.Status)
	}
	// The gap slept once, for its configured hour, and the skip (not the
	// timer or ctx) ended it early.
	if len(sleeps) != 1 || sleeps[0].asked != time.Hour || sleeps[0].err != nil || sleeps[0].took >= time.Hour || len(skip) != 0 {
		t.Fatalf("gap sleeps %+v, skip left unread: %d", sleeps, len(skip))
	}
}

// NodeParquet is what pkg/result/testdata/read_parquet.mjs prints.
type nodeParquet struct {
	Columns []string         `json:"columns"`
	Rows    []map[string]any `json:"rows"`
	Llem    map[string]any   `json:"llem"`
}

// parquetReaders finds tools/parquet-readers; it skips the Parquet checks
// (returns "") when node or node_modules are missing outside CI.
func parquetReaders(t *testing.T) string {
	dir := os.Getenv("LLEM_PARQUET_READERS")
	if dir == "" {
		dir, _ = filepath.Abs("../../tools/parquet-readers")
	}
	_, err := os.Stat(filepath.Join(dir, "node_modules", "hyparquet"))
	_, nodeErr := exec.LookPath("node")
	if err != nil || nodeErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("independent Parquet reader unavailable: run make deps")
		}
		t.Log("independent Parquet reader unavailable (need node and tools/parquet-readers/node_modules: make deps); Parquet checks skipped")
		return ""
	}
	return dir
}

func readParquet(t *testing.T, readers, file string) nodeParquet {
	t.Helper()
	script, _ := filepath.Abs("../result/testdata/read_parquet.mjs")
	out, err := exec.Command("node", script, readers, file).Output()
	if err != nil {
		t.Fatalf("node reader on %s: %v", file, err)
	}
	var got nodeParquet
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// countingRunner wraps the local runner and counts its runs.
type countingRunner struct {
	runner.Runner
	n int
}

func (c *countingRunner) Run(ctx context.Context, job runner.Job, on func(protocol.Event)) (runner.Outcome, error) {
	c.n++
	return c.Runner.Run(ctx, job, on)
}

// TestRunUsesItsBackendsRoute: every slot of a run goes through its
// backend's route, never another backend's runner.
func TestRunUsesItsBackendsRoute(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`grid: n: [1]
execution: {cycles: 2}
`)
	other, own := &countingRunner{Runner: runner.NewLocal()}, &countingRunner{Runner: runner.NewLocal()}
	rep, err := Run(context.Background(), Options{Plan: plan, OutRoot: t.TempDir(), Routes: Routes{
		"native":  {Runner: own, Job: fakeWorkerJob(0)},
		"pytorch": {Runner: other, Job: fakeWorkerJob(0)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Manifest.Counts.Done != 2 || own.n != 2 || other.n != 0 {
		t.Fatalf("done %d, the backend's runner ran %d, another backend's %d", rep.Manifest.Counts.Done, own.n, other.n)
	}
}

// TestRunWithoutRoute: a run whose backend has no route, or a route with
// no runner, fails with the route's error and the study goes on.
func TestRunWithoutRoute(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`execution: {cycles: 1}
`)
	for _, tc := range []struct {
		routes         Routes
		kind, fragment string
	}{
		{Routes{"pytorch": {Runner: runner.NewLocal(), Job: fakeWorkerJob(0)}}, "unsupported", "no worker for backend native"},
		{Routes{"native": {Job: fakeWorkerJob(0)}}, "runner", "no runner is available for backend native"},
	} {
		rep, err := Run(context.Background(), Options{Plan: plan, OutRoot: t.TempDir(), Routes: tc.routes})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := result.ReadRecords(rep.Dir)
		if err != nil || len(recs) == 0 {
			t.Fatalf("records: %v %d", err, len(recs))
		}
		for _, r := range recs {
			if r.Status != result.StatusFailed || r.Error.Kind != tc.kind || !strings.Contains(r.Error.Message, tc.fragment) || r.Error.ExitCode != -1 {
				t.Errorf("record %s: %s %+v, want %s: %q", r.RunID, r.Status, r.Error, tc.kind, tc.fragment)
			}
		}
		if rep.Failed != len(recs) {
			t.Errorf("%d failed, %d records", rep.Failed, len(recs))
		}
	}
}

// TestThermalFloorOutsideWindow: the worker sleeps warmup.thermal_floor_seconds
// after warmup_done; that pause must not be measured (it would add idle
// energy and time to every run: on an H200 a 10 s floor doubled a 10 s
// window before this was fixed).
func TestThermalFloorOutsideWindow(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	_, plan := writeStudy(t, `name: "floor"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 1
	dataset: {source: "synthetic", input_len: 4, output_len: 2}
	max_output_tokens: 2
	energy: {sensor: "estimate", sample_interval_ms: 20}
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 1.5}
}
execution: cycles: 1
`)
	rep, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(), Environment: json.RawMessage(`{}`),
		Routes:        LocalRoutes(map[string]JobFunc{"native": native.JobFunc(exe)}),
		BaselineCache: measure.Cache{Dir: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil || len(recs) == 0 || recs[0].Status != result.StatusOK {
		t.Fatalf("records %+v, %v", recs, err)
	}
	r := recs[0]
	if r.Warmup == nil || r.Warmup.ThermalFloorS != 1.5 {
		t.Fatalf("warmup %+v", r.Warmup)
	}
	// Two tokens of a 15M model take milliseconds; the floor is 1.5 s.
	if r.Timing.WindowS >= 1 {
		t.Fatalf("window %.3f s includes the 1.5 s thermal floor", r.Timing.WindowS)
	}
	if got := r.Prefill.TimeS + r.Decode.TimeS; got > r.Timing.WindowS {
		t.Fatalf("phases %.3f s longer than the window %.3f s", got, r.Timing.WindowS)
	}
}

// TestPrefillPassSplit: a worker that measures prefill as a separate
// max_tokens=1 pass (vLLM, TensorRT-LLM) gets a window that is the full
// generation only, prefill time and energy from the pass, and decode = the
// full generation minus the pass.
func TestPrefillPassSplit(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`grid: n: [6]
execution: cycles: 1
`)
	rep, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(),
		Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(150)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil || len(recs) != 1 || recs[0].Status != result.StatusOK {
		t.Fatalf("records %+v, %v", recs, err)
	}
	r := recs[0]
	if r.PhaseSplitMethod != "prefill-pass" {
		t.Fatalf("phase_split_method = %q", r.PhaseSplitMethod)
	}
	// The pass is one pause (150 ms), the full generation three.
	if r.Timing.WindowS < 0.4 || r.Timing.WindowS > 0.6+0.3 {
		t.Errorf("window %.3f s: want the full generation (~0.45 s), not the pass too", r.Timing.WindowS)
	}
	if r.Prefill.TimeS < 0.14 || r.Prefill.TimeS > 0.3 || r.Decode.TimeS < 0.2 || r.Prefill.TimeS+r.Decode.TimeS > r.Timing.WindowS+1e-9 {
		t.Errorf("prefill %.3f s, decode %.3f s, window %.3f s", r.Prefill.TimeS, r.Decode.TimeS, r.Timing.WindowS)
	}
	if r.Prefill.EnergyJ == nil || r.Decode.EnergyJ == nil || *r.Prefill.EnergyJ <= 0 || *r.Decode.EnergyJ <= 0 {
		t.Fatalf("phase energies %v %v", r.Prefill.EnergyJ, r.Decode.EnergyJ)
	}
	// Prefill + decode = the decode event's interval (the full generation),
	// which is the window up to the short tail before done.
	if sum := *r.Prefill.EnergyJ + *r.Decode.EnergyJ; sum > *r.Energy.RawJ*1.0001 || sum < *r.Energy.RawJ*0.8 {
		t.Errorf("phases sum to %.4g J, window raw %.4g J", sum, *r.Energy.RawJ)
	}
}

// TestFileDatasetPromptsResolvedByParent: a JSONL path is relative to the
// study file, not to where llem runs, and the parent sends the prompts in
// the RunSpec (a worker in a container could not read the study's files).
// A missing file fails that run with a dataset error and the study goes on.
func TestFileDatasetPromptsResolvedByParent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var lines []string
	for i := range 8 {
		lines = append(lines, fmt.Sprintf(`{"prompt": "p%d"}`, i))
	}
	if err := os.WriteFile(filepath.Join(dir, "prompts.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	study := `name: "fake"
base: {
	// A text dataset needs a model with a tokenizer (a random: preset is
	// refused at load); the fake worker loads no model.
	model: "acme/tiny-with-tokenizer", backend: "native", precision: "fp32"
	energy: {sensor: "estimate", sample_interval_ms: 50}
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
experiments: [
	{n: 7, dataset: {source: "jsonl", path: "prompts.jsonl"}},
]
execution: {cycles: 1, order: "sequential"}
`
	path := filepath.Join(dir, "study.cue")
	if err := os.WriteFile(path, []byte(study), 0o644); err != nil {
		t.Fatal(err)
	}
	loadMu.Lock()
	plan, err := studypkg.Load(context.Background(), path)
	loadMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(),
		Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %d, %v", len(recs), err)
	}
	if recs[0].Status != result.StatusOK {
		t.Fatalf("prompts not sent to the worker: %+v", recs[0].Error)
	}
	// A missing file is now a study error at load, with its position,
	// instead of a failed run per slot.
	bad := filepath.Join(dir, "bad.cue")
	os.WriteFile(bad, []byte(strings.Replace(study, "prompts.jsonl", "missing.jsonl", 1)), 0o644)
	loadMu.Lock()
	_, err = studypkg.Load(context.Background(), bad)
	loadMu.Unlock()
	if err == nil || !strings.Contains(err.Error(), "bad.cue:") || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Fatalf("missing JSONL: %v", err)
	}
}
