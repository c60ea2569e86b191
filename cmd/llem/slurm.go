package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/pipeline"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/slurm"
	"github.com/llenergymeasure/llem/pkg/stats"
	"github.com/llenergymeasure/llem/pkg/study"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

// slurmCmd groups the Slurm commands a person runs.
type slurmCmd struct {
	Cancel slurmCancelCmd `cmd:"" help:"Cancel a study's Slurm array (scancel); its merge job still records what ran."`
	Merge  slurmMergeCmd  `cmd:"" help:"Merge a study's finished array tasks and write summary.json (the array's afterany job runs it)."`
}

type slurmCancelCmd struct {
	Dir string `arg:"" name:"DIR" help:"Study directory submitted with --on slurm." type:"path" predictor:"dir"`
}

func (c *slurmCancelCmd) Run(ctx context.Context, stdio *IO) error {
	sub, ok, err := slurm.ReadSubmission(c.Dir)
	if err != nil {
		return err
	}
	if !ok {
		return errs.BadInput(fmt.Errorf("%s: not a study submitted to Slurm", c.Dir), "llem results ls lists study directories; only eval --on slurm ones have an array to cancel")
	}
	if err := slurm.Cancel(ctx, sub.JobID); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stderr, "llem: cancelled Slurm array %s; its merge job %s records what ran (resume: llem eval %s --on slurm --resume %s)\n", sub.JobID, sub.MergeJobID, sub.Study, c.Dir)
	return nil
}

type slurmMergeCmd struct {
	Dir string `arg:"" name:"DIR" help:"Study directory submitted with --on slurm." type:"path" predictor:"dir"`
}

func (c *slurmMergeCmd) Run(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	sub, ok, err := slurm.ReadSubmission(c.Dir)
	if err != nil {
		return err
	}
	if !ok {
		return errs.BadInput(fmt.Errorf("%s: not a study submitted to Slurm", c.Dir), "")
	}
	p, err := pipeline.Prepare(ctx, pipeline.Request{Study: sub.Study, Cycles: sub.Cycles, Runner: sub.Runner, Python: sub.Python, DryRun: true, UserConfig: cfg.Load})
	if err != nil {
		return err
	}
	rep, err := slurm.Merge(ctx, c.Dir, p.Resolution.ResolvedPlan())
	if err != nil {
		return pipeline.ExplainExecuteError(err, c.Dir)
	}
	m := rep.Manifest
	fmt.Fprintf(stdio.Stderr, "llem: merged %s: %s, %d/%d done, %d failed\n", c.Dir, m.Status, m.Counts.Done, m.Counts.Total, m.Counts.Failed)
	return nil
}

// slurmTaskCmd is what each array task runs (hidden): one run's cycles on
// this node, into the run's task directory.
type slurmTaskCmd struct {
	Submission string `arg:"" name:"SUBMISSION" help:"The study's slurm/submission.json." type:"path" predictor:"path"`
}

func (c *slurmTaskCmd) Run(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	b, err := os.ReadFile(c.Submission)
	if err != nil {
		return err
	}
	var sub slurm.Submission
	if err := json.Unmarshal(b, &sub); err != nil {
		return fmt.Errorf("read %s: %w", c.Submission, err)
	}
	alloc, err := slurm.AllocFromEnv()
	if err != nil {
		return errs.BadInput(err, "llem eval --on slurm submits the array that runs this")
	}
	p, err := pipeline.Prepare(ctx, pipeline.Request{Study: sub.Study, Cycles: sub.Cycles, Runner: sub.Runner, Python: sub.Python, UserConfig: cfg.Load, Progress: stdio.Stderr})
	if err != nil {
		return err
	}
	defer p.Close()
	opt, err := p.Options(pipeline.RunOptions{OnEvent: (&lineDisplay{w: stdio.Stderr}).event})
	if err != nil {
		return err
	}
	rep, err := slurm.RunTask(ctx, &sub, alloc, opt, stdio.Stderr)
	if errors.Is(err, slurm.ErrClaimed) {
		fmt.Fprintln(stdio.Stderr, "llem:", err)
		return nil
	}
	if err != nil {
		return err
	}
	if rep.Interrupted {
		return errs.WithExitCode(errors.New("interrupted"), errs.ExitInterrupted)
	}
	return nil // failed runs are recorded; the study goes on
}

// slurmResources merges the sbatch options: the user config's slurm block,
// then the study's (plan.Slurm) field by field over it; --max-parallel wins
// over both (the caller applies it). Extra lines add up, the user
// config's first.
func slurmResources(uc *userconfig.Loaded, st *study.Slurm) (r slurm.Resources, maxParallel int) {
	s := uc.Slurm
	r = slurm.Resources{Partition: s.Partition, Account: s.Account, QOS: s.QOS, GPUs: s.GPUs, CPUs: s.CPUs,
		Mem: s.Mem, Time: s.Time, Constraint: s.Constraint, Extra: slices.Clone(s.Extra)}
	maxParallel = s.MaxParallel
	if st == nil {
		return r, maxParallel
	}
	over := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	over(&r.Partition, st.Partition)
	over(&r.Account, st.Account)
	over(&r.QOS, st.QOS)
	over(&r.GPUs, st.GPUs)
	over(&r.Mem, st.Mem)
	over(&r.Time, st.Time)
	over(&r.Constraint, st.Constraint)
	if st.CPUs != 0 {
		r.CPUs = st.CPUs
	}
	r.Extra = append(r.Extra, st.Extra...)
	if st.MaxParallel != 0 {
		maxParallel = st.MaxParallel
	}
	return r, maxParallel
}

// runSlurm is eval --on slurm: plan, fetch datasets here (tasks read the
// shared cache), create or reopen the study directory, merge what earlier
// tasks left, submit the missing runs as an array plus its merge job, and
// wait for both (Ctrl-C cancels the array). --dry-run prints the scripts.
func (c *evalCmd) runSlurm(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	if c.Out != "" && c.Resume != "" && filepath.Clean(c.Out) != filepath.Clean(c.Resume) {
		return errs.BadInput(fmt.Errorf("both --resume %s and --out %s given", c.Resume, c.Out), "--resume continues that study directory in place; drop --out")
	}
	p, err := pipeline.Prepare(ctx, pipeline.Request{Study: c.Study, Cycles: c.Cycles, Runner: c.Runner, Python: c.Python, DryRun: true, UserConfig: cfg.Load})
	if err != nil {
		return err
	}
	plan := p.Resolution.ResolvedPlan()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	studyPath, _ := filepath.Abs(c.Study)
	res, maxParallel := slurmResources(p.User, p.Plan.Slurm)
	sub := &slurm.Submission{Study: studyPath, Cycles: c.Cycles, Runner: c.Runner, Python: c.Python,
		Resources: res, MaxParallel: maxParallel, Llem: exe}
	if c.MaxParallel != 0 {
		sub.MaxParallel = c.MaxParallel
	}
	if err := sub.Resources.Validate(); err != nil {
		return err
	}
	root := c.Out
	if root == "" {
		root = p.User.ResultsDir
	}
	if c.DryRun {
		for _, r := range plan.Runs {
			sub.Runs = append(sub.Runs, r.ID)
		}
		sub.Dir = filepath.Join(root, result.Slug(plan.Name)+"-<UTC time>")
		if c.Resume != "" {
			sub.Dir = c.Resume
		}
		if err := printPlan(stdio.Stdout, p.Plan); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stdout, "\nslurm: one array task per run (its cycles in order on one node); submits with sbatch --parsable:\n\n# %s\n%s\n# %s\n%s",
			filepath.Join(sub.Dir, slurm.Folder, "array.sh"), sub.ArrayScript(), filepath.Join(sub.Dir, slurm.Folder, "merge.sh"), sub.MergeScript())
		return nil
	}
	if err := pipeline.FetchDatasets(ctx, plan, stdio.Stderr); err != nil {
		return err
	}
	var st *result.Store
	if dir := pipeline.ResumeDir(c.Resume, root); dir != "" {
		if _, live, err := slurm.Live(ctx, dir); err != nil {
			return err
		} else if live {
			sub, _, _ := slurm.ReadSubmission(dir)
			return errs.WithHint(&slurm.BusyError{Dir: dir, JobID: sub.JobID}, (&slurm.BusyError{Dir: dir}).Hint())
		}
		if st, err = result.Open(dir); err != nil {
			return pipeline.ExplainExecuteError(err, dir)
		}
		if m := st.Manifest(); m.StudyHash != plan.DesignHash || len(m.Entries) != len(plan.Schedule) {
			st.Close()
			return errs.BadInput(&execute.ResumeError{Study: m.Study, Reason: "the study's runs or schedule changed since it was submitted"},
				"resume with the same study file and --cycles, or start a new execution without --resume")
		}
		if err := slurm.Fold(ctx, st, plan); err != nil {
			st.Close()
			return err
		}
	} else if st, err = execute.Create(root, plan); err != nil {
		return pipeline.ExplainExecuteError(err, "")
	}
	submitted, err := slurm.Submit(ctx, st, plan, sub)
	if !submitted && err == nil {
		rep, ferr := execute.Finish(st, plan)
		st.Close()
		if ferr != nil {
			return ferr
		}
		fmt.Fprintln(stdio.Stderr, "llem: nothing left to run")
		return c.slurmReport(stdio, rep)
	}
	st.Close()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stderr, "llem: submitted %d run(s) as Slurm array %s (merge job %s); results in %s\n", len(sub.Runs), sub.JobID, sub.MergeJobID, sub.Dir)
	werr := slurm.Wait(ctx, sub, 2*time.Second, func(pr slurm.Progress) {
		if !c.Quiet {
			fmt.Fprintf(stdio.Stderr, "llem: slurm %s: %d queued, %d running\n", sub.JobID, pr.Queued, pr.Running)
		}
	})
	if werr != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stdio.Stderr, "llem: cancelled Slurm array %s; its merge job records what ran (resume: llem eval %s --on slurm --resume %s)\n", sub.JobID, c.Study, sub.Dir)
			return &printedError{errs.WithExitCode(errors.New("interrupted"), errs.ExitInterrupted)}
		}
		return werr
	}
	m, err := result.ReadManifest(sub.Dir)
	if err != nil {
		return err
	}
	sum, err := result.ReadSummary(sub.Dir)
	if err != nil {
		return errs.WithHint(fmt.Errorf("the merge job left no summary: %w", err), "see "+filepath.Join(sub.Dir, slurm.Folder, slurm.LogsDir)+", then run llem slurm merge "+sub.Dir)
	}
	rep := &execute.Report{Dir: sub.Dir, Manifest: m, Summary: sum, Failed: m.Counts.Failed,
		Interrupted: m.Status == result.StudyInterrupted}
	var ss stats.StudySummary
	if json.Unmarshal(sum.Stats, &ss) == nil {
		rep.Stats = &ss
	}
	return c.slurmReport(stdio, rep)
}

// slurmReport prints the merged study like a local eval's end.
func (c *evalCmd) slurmReport(stdio *IO, rep *execute.Report) error {
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep.Summary); err != nil {
			return err
		}
	} else {
		printSummary(stdio.Stderr, rep, c.Study)
	}
	switch {
	case rep.Interrupted:
		return &printedError{errs.WithExitCode(errors.New("interrupted"), errs.ExitInterrupted)}
	case rep.Failed > 0:
		return &printedError{errs.WithExitCode(fmt.Errorf("%d run(s) failed", rep.Failed), errs.ExitFailure)}
	}
	return nil
}
