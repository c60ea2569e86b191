package pipeline

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

func writeSynthStudy(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "study.cue")
	if err := os.WriteFile(p, []byte(synthStudy), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func noUserConfig() (*userconfig.Loaded, error) { return &userconfig.Loaded{}, nil }

// TestPrepareDryRun: a dry run plans and resolves, builds nothing, and
// cannot be executed; the loaded plan keeps the study's runners.
func TestPrepareDryRun(t *testing.T) {
	t.Setenv("LLEM_RUNNER_NATIVE", "")
	p, err := Prepare(context.Background(), Request{Study: writeSynthStudy(t), Cycles: 3, DryRun: true, UserConfig: noUserConfig})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if len(p.Plan.Runs) != 1 || p.Plan.Execution.Cycles != 3 || len(p.Plan.Schedule) != 3 {
		t.Errorf("plan: %d runs, %d cycles, %d slots", len(p.Plan.Runs), p.Plan.Execution.Cycles, len(p.Plan.Schedule))
	}
	if b := p.Resolution.Backend("native"); b == nil || b.Kind != runner.KindLocal {
		t.Fatalf("resolution: %+v", p.Resolution.Backends)
	}
	if r := p.Plan.Runners["native"]; r.Kind != "auto" {
		t.Errorf("the loaded plan's runner changed: %+v", r)
	}
	if _, err := p.Execute(context.Background(), RunOptions{Out: t.TempDir()}); err == nil {
		t.Error("Execute of a dry run: no error")
	}
}

// TestPrepareBadCycles: --cycles out of range is bad input (exit 2),
// before the user config is read.
func TestPrepareBadCycles(t *testing.T) {
	path := writeSynthStudy(t)
	for _, cycles := range []int{-1, study.MaxCycles + 1} {
		_, err := Prepare(context.Background(), Request{Study: path, Cycles: cycles, DryRun: true,
			UserConfig: func() (*userconfig.Loaded, error) { return nil, errors.New("user config read") }})
		if errs.ExitCode(err) != errs.ExitBadInput || !strings.Contains(err.Error(), "cycles") || errs.Hint(err) == "" {
			t.Errorf("--cycles %d: exit %d, %v (hint %q)", cycles, errs.ExitCode(err), err, errs.Hint(err))
		}
	}
}

// TestExecuteResumeMismatch: resuming a directory another plan started is
// bad input wrapping *execute.ResumeError (no message matching needed).
func TestExecuteResumeMismatch(t *testing.T) {
	t.Setenv("LLEM_RUNNER_NATIVE", "")
	p, err := Prepare(context.Background(), Request{Study: writeSynthStudy(t), DryRun: true, UserConfig: noUserConfig})
	if err != nil {
		t.Fatal(err)
	}
	p.routes = execute.Routes{} // as Build leaves it; nothing runs before the check
	now := time.Now().UTC()
	st, err := result.Create(t.TempDir(), result.Manifest{Study: "synth", StudyHash: "another-design", StartedAt: now, UpdatedAt: now}, now)
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // its writer is gone: the directory is free to resume
	for _, o := range []RunOptions{{Resume: st.Dir}, {Out: st.Dir}} {
		_, err = p.Execute(context.Background(), o)
		var re *execute.ResumeError
		if !errors.As(err, &re) || re.Study != "synth" || errs.ExitCode(err) != errs.ExitBadInput || !strings.Contains(errs.Hint(err), "same study file") {
			t.Errorf("%+v: %T %v (exit %d, hint %q)", o, err, err, errs.ExitCode(err), errs.Hint(err))
		}
	}
}

// TestResolvedPlan: the plan a study directory keeps says where each
// backend ran; the plan Resolve was given is unchanged.
func TestResolvedPlan(t *testing.T) {
	for _, b := range []string{"NATIVE", "PYTORCH"} {
		t.Setenv("LLEM_RUNNER_"+b, "")
	}
	plan := planWith(map[string]study.Runner{"native": auto(), "pytorch": {Kind: "docker", ShmSize: "1g"}})
	res, err := Resolve(context.Background(), (&probes{}).apply(Input{
		Plan: plan, UserImages: map[string]string{"pytorch": "example/pytorch:1"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := res.ResolvedPlan().Runners
	if got["native"] != (study.Runner{Kind: "local"}) || got["pytorch"] != (study.Runner{Kind: "docker", Image: "example/pytorch:1", ShmSize: "1g"}) {
		t.Errorf("resolved runners %+v", got)
	}
	if plan.Runners["native"] != auto() || plan.Runners["pytorch"].Image != "" {
		t.Errorf("the given plan changed: %+v", plan.Runners)
	}
}
