package toybackend_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/internal/toybackend"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/pipeline"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// The test binary doubles as the toy worker.
func TestMain(m *testing.M) {
	toybackend.RunIfWorker()
	os.Exit(m.Run())
}

const toyStudy = `name: "toy"
base: {
	model: "random:tiny", backend: "toy", precision: "fp32", n: 3
	dataset: {source: "synthetic", input_len: 4, output_len: 2}
	energy: {sensor: "estimate", sample_interval_ms: 50}
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
grid: toy: tokens: [2, 5]
execution: {cycles: 2, order: "interleaved"}
`

// TestToyBackendEndToEnd: a backend registered from its own package (its
// schema file through backend.Backend.SchemaFile) plans like a built-in one
// — its section validates grid values (tokens: 0 is an error at its
// position), grid dimensions under toy: scope to it — and runs through the real pipeline
// (Resolve → Prepare → Build) and study loop with the local runner.
func TestToyBackendEndToEnd(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "study.cue")
	if err := os.WriteFile(path, []byte(toyStudy), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.cue")
	os.WriteFile(bad, []byte(strings.Replace(toyStudy, "tokens: [2, 5]", "tokens: [2, 5, 0]", 1)), 0o644)
	if _, err := study.Load(ctx, bad); err == nil || !strings.Contains(err.Error(), "bad.cue:9:") || !strings.Contains(err.Error(), "grid.toy.tokens[2]") {
		t.Fatalf("a bad value of the toy section: %v", err)
	}
	plan, err := study.Load(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Runs) != 2 || len(plan.Skipped) != 0 {
		t.Fatalf("plan: %d runs, %d skipped (%+v); want 2", len(plan.Runs), len(plan.Skipped), plan.Skipped)
	}
	for _, r := range plan.Runs {
		if r.Backend != toybackend.Name {
			t.Fatalf("run %s: backend %q", r.ID, r.Backend)
		}
	}

	res, err := pipeline.Resolve(ctx, pipeline.Input{Plan: plan, LlemVersion: "0.0.0-test"})
	if err != nil {
		t.Fatal(err)
	}
	b := res.Backend(toybackend.Name)
	if b == nil || b.Kind != runner.KindLocal || b.Source != runner.SourceAuto || b.Reason != toybackend.Info.LocalReason {
		t.Fatalf("resolution: %+v", b)
	}
	if err := res.Prepare(ctx, nil); err != nil {
		t.Fatal(err)
	}
	routes, err := res.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	snap := envinfo.Collect(envinfo.Options{SkipNVML: true})
	envJSON, _ := json.Marshal(snap)
	rep, err := execute.Run(ctx, execute.Options{
		Plan: res.ResolvedPlan(), OutRoot: t.TempDir(), Routes: routes,
		Environment: envJSON, Fingerprint: snap.Fingerprint, Grace: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Manifest.Status != result.StudyCompleted {
		t.Fatalf("failed %d, status %s", rep.Failed, rep.Manifest.Status)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want 2 runs × 2 cycles", len(recs))
	}
	for _, r := range recs {
		var cfg struct {
			Toy struct{ Tokens int } `json:"toy"`
		}
		if err := json.Unmarshal(r.Config, &cfg); err != nil {
			t.Fatal(err)
		}
		if r.Status != result.StatusOK || r.Worker == nil || r.Worker.Backend != toybackend.Name || r.Worker.Runner != runner.KindLocal {
			t.Errorf("record %s/%d: status %s worker %+v error %+v", r.RunID, r.Cycle, r.Status, r.Worker, r.Error)
		}
		if r.Throughput.Requests != 3 || r.Throughput.OutputTokens != 3*cfg.Toy.Tokens || r.Throughput.InputTokens != 12 {
			t.Errorf("record %s/%d (tokens %d): throughput %+v", r.RunID, r.Cycle, cfg.Toy.Tokens, r.Throughput)
		}
	}
}
