package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llenergymeasure/llem/internal/cueset"
	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/pipeline"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// evalCmd plans a study and, without --dry-run, executes it (eval_run.go).
// The flags are shared with the execution code: add, don't rename.
type evalCmd struct {
	Studies []string `arg:"" name:"STUDY" help:"Study or experiment files (.cue). Several run one after another, each in its own study directory; the exit status is the worst of them." type:"path" predictor:"study"`
	Set     []string `name:"set" help:"Override a field of the study: path=value (e.g. base.n=10, base.native.batch_size=4, execution.cycles=3); repeatable. The file is validated with the override, by the same schema." sep:"none" placeholder:"PATH=VALUE" predictor:"setpath"`
	// Study is the file being evaluated (one of Studies); the execution
	// code reads it.
	Study  string `kong:"-"`
	source []byte // Study's text with the --set overrides, nil without
	DryRun bool   `name:"dry-run" help:"Print the plan (runs, skipped combinations, order, where each backend runs) and exit."`
	JSON   bool   `name:"json" help:"Print the plan (with --dry-run) or results as JSON on stdout."`
	Out    string `name:"out" short:"o" help:"Directory for study results (default: the user config's results_dir, else ./results)." type:"path" predictor:"dir"`
	Resume string `name:"resume" help:"Continue an interrupted study from its results directory." type:"path"`
	Quiet  bool   `name:"quiet" short:"q" help:"Only print errors and the final summary."`
	Runner string `name:"runner" help:"Where workers run: local or docker for every backend (overrides LLEM_RUNNER_<BACKEND>, the study and the user config); auto defers to them." placeholder:"KIND"`
	Python string `name:"python" help:"Python interpreter for the pytorch/vllm/tensorrt workers (a path, or a name looked up on PATH)."`
	Cycles int    `name:"cycles" help:"Override execution.cycles." default:"0"`
	// Slurm (slurm.go, docs/slurm.md).
	On          string `name:"on" enum:"local,slurm" default:"local" help:"Where the study runs: local (this machine) or slurm (a job array, one task per run; sbatch options from the user config's slurm block)."`
	MaxParallel int    `name:"max-parallel" help:"With --on slurm: at most N array tasks at once (sbatch --array=…%N)." default:"0"`
}

// Run evaluates each study file in turn. A study that fails does not stop
// the next (each is its own study directory), but bad input in any file —
// checked for all files before anything runs — does, and Ctrl-C stops them
// all. The returned error is the worst: interrupted, bad input, failure.
func (c *evalCmd) Run(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	if c.Resume != "" && len(c.Studies) > 1 {
		return errs.BadInput(errors.New("--resume takes one study file"), "resume one study at a time: llem eval STUDY --resume DIR")
	}
	sets := make([]cueset.Set, len(c.Set))
	for i, a := range c.Set {
		s, err := cueset.Parse(a)
		if err != nil {
			return err
		}
		sets[i] = s
	}
	srcs := make([][]byte, len(c.Studies))
	if len(sets) > 0 {
		for i, path := range c.Studies {
			src, err := os.ReadFile(path)
			if err != nil {
				return errs.BadInput(fmt.Errorf("read study: %w", err), "check the path of the study file")
			}
			if srcs[i], err = cueset.Apply(path, src, sets); err != nil {
				return err
			}
		}
	}
	if len(c.Studies) == 1 {
		c.Study, c.source = c.Studies[0], srcs[0]
		return c.one(ctx, stdio, cfg)
	}
	if !c.DryRun {
		// Every file's mistakes before the first study runs for an hour.
		for i, path := range c.Studies {
			var err error
			if srcs[i] != nil {
				_, err = study.LoadSource(ctx, path, srcs[i])
			} else {
				_, err = study.Load(ctx, path)
			}
			if err != nil {
				return err
			}
		}
	}
	var worst error
	for i, path := range c.Studies {
		if ctx.Err() != nil {
			break
		}
		if !c.Quiet || c.DryRun {
			fmt.Fprintf(stdio.Stderr, "== %s (%d/%d)\n", path, i+1, len(c.Studies))
		}
		c.Study, c.source = path, srcs[i]
		err := c.one(ctx, stdio, cfg)
		if err == nil {
			continue
		}
		if errs.ExitCode(err) == errs.ExitBadInput && !c.DryRun {
			return err // a mistake in a later file: stop before running more
		}
		var printed *printedError
		if !errors.As(err, &printed) {
			report(stdio.Stderr, err)
			err = &printedError{err}
		}
		if worst == nil || rank(err) > rank(worst) {
			worst = err
		}
	}
	return worst
}

// rank orders exit statuses for several studies: interrupted beats bad
// input beats failure.
func rank(err error) int {
	switch errs.ExitCode(err) {
	case errs.ExitInterrupted:
		return 3
	case errs.ExitBadInput:
		return 2
	}
	return 1
}

// one prepares one study through pkg/pipeline, then prints its plan
// (--dry-run) or executes it (eval_run.go).
func (c *evalCmd) one(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	if c.On == "slurm" {
		return c.runSlurm(ctx, stdio, cfg)
	}
	req := pipeline.Request{Study: c.Study, Source: c.source, Cycles: c.Cycles, Runner: c.Runner, Python: c.Python, DryRun: c.DryRun, UserConfig: cfg.Load}
	if !c.Quiet {
		req.Progress = stdio.Stderr
	}
	if notes, err := pipeline.RecoverGPUs(); err != nil {
		fmt.Fprintln(stdio.Stderr, "warning: restoring GPU settings a killed llem left changed:", err)
	} else {
		for _, n := range notes {
			fmt.Fprintln(stdio.Stderr, n)
		}
	}
	p, err := pipeline.Prepare(ctx, req)
	if err != nil {
		return err
	}
	if !c.DryRun {
		defer p.Close()
		return c.execute(ctx, stdio, p)
	}
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*study.Plan
			ResolvedRunners []*pipeline.Backend `json:"resolved_runners"`
		}{p.Plan, p.Resolution.Backends})
	}
	if err := printPlan(stdio.Stdout, p.Plan); err != nil {
		return err
	}
	if ests := p.MemoryEstimates(); len(ests) > 0 {
		fmt.Fprintln(stdio.Stdout, "\npeak memory estimate per run (weights + KV cache + activations; pkg/compute):")
		for _, e := range ests {
			fmt.Fprintln(stdio.Stdout, "  "+e.String())
		}
	}
	pipeline.DescribeGPUs(stdio.Stdout, p.Plan)
	return printRunners(stdio.Stdout, p.Resolution)
}

// printRunners writes where each backend's workers will run, what chose
// that, and the image (docker) or interpreter (local Python).
func printRunners(w io.Writer, res *pipeline.Resolution) error {
	ew := &errWriter{w: w}
	fmt.Fprintln(ew, "\nrunners:")
	for _, b := range res.Backends {
		why := b.Reason
		if b.Source == runner.SourceAuto {
			why = "auto: " + why
		}
		fmt.Fprintf(ew, "  %-9s %-7s %s\n", b.Backend, b.Kind, why)
		if b.Image != "" {
			fmt.Fprintf(ew, "            image %s (%s)\n", b.Image, b.ImageSource)
		}
		if b.Python != "" {
			fmt.Fprintf(ew, "            python %s (%s)\n", b.Python, b.PythonSource)
		}
		if b.Server != "" {
			fmt.Fprintf(ew, "            server: %s\n", b.Server)
		}
		if b.Problem != "" {
			fmt.Fprintf(ew, "            will not run: %s\n", b.Problem)
			if b.Hint != "" {
				fmt.Fprintf(ew, "            fix: %s\n", b.Hint)
			}
		}
	}
	return ew.err
}

// printPlan writes the human-readable plan: the run table with the varied
// params, the skipped combinations with reasons, counts, cycles and order.
func printPlan(w io.Writer, p *study.Plan) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "study %s (%s)  design %s\n\n", p.Name, p.Source, p.DesignHash)
	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	head := []string{"#", "RUN", "BACKEND", "MODEL"}
	varied := variedDims(p)
	for _, d := range varied {
		head = append(head, strings.ToUpper(d))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for i, r := range p.Runs {
		row := []string{fmt.Sprint(i + 1), r.ID, r.Backend, r.Model}
		for _, d := range varied {
			v, ok := r.Coordinates[d]
			if d == "experiment" && r.Name != "" {
				v, ok = r.Name, true // the entry's name, as progress lines and tables show it
			}
			if !ok {
				row = append(row, "-")
				continue
			}
			b, _ := json.Marshal(v)
			row = append(row, strings.Trim(string(b), `"`))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
	counts := map[string]int{}
	for _, s := range p.Skipped {
		counts[s.Kind]++
	}
	fmt.Fprintf(ew, "\n%d runs", len(p.Runs))
	for _, k := range []string{"invalid", "excluded", "duplicate"} {
		if counts[k] > 0 {
			fmt.Fprintf(ew, ", %d %s", counts[k], k)
		}
	}
	fmt.Fprintln(ew)
	if len(p.Skipped) > 0 {
		fmt.Fprintln(ew, "\nskipped:")
		for _, s := range p.Skipped {
			where := s.Origin
			if c := p.FormatCoords(s.Coordinates); c != "" {
				where += " " + c
			}
			fmt.Fprintf(ew, "  %s [%s]: %s\n", where, s.Kind, strings.Join(s.Reasons, "; "))
		}
	}
	e := p.Execution
	fmt.Fprintf(ew, "\nexecution: %d cycle(s), order %s", e.Cycles, e.Order)
	if e.Order == "shuffled" {
		fmt.Fprintf(ew, " (seed %d)", p.Seed)
	}
	fmt.Fprintf(ew, ", %d executions\n", len(p.Schedule))
	if len(p.Runs) <= 30 {
		for c, idx := range p.Order {
			ids := make([]string, len(idx))
			for i, r := range idx {
				ids[i] = fmt.Sprint(r + 1)
			}
			fmt.Fprintf(ew, "  cycle %d: %s\n", c+1, strings.Join(ids, " "))
		}
		if e.Order == "sequential" {
			fmt.Fprintln(ew, "  (sequential: each run's cycles back to back)")
		}
	}
	if est := p.Estimate; est.TotalSeconds > 0 {
		fmt.Fprintf(ew, "\nestimated duration ~%s: thermal floors %s, idle baselines %s, gaps and cool-downs %s, runs ~%s (a rough guess per backend; the rest is exact)\n",
			roundDuration(est.TotalSeconds), roundDuration(est.ThermalFloorSeconds), roundDuration(est.BaselineSeconds),
			roundDuration(est.GapSeconds+est.CooldownSeconds), roundDuration(est.RunSeconds))
	}
	for _, warn := range p.Warnings {
		fmt.Fprintln(ew, "\nwarning:", warn)
	}
	return ew.err
}

// roundDuration prints seconds as a duration rounded for people.
func roundDuration(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// variedDims are the grid dimensions plus "experiment" when the plan has
// explicit experiments.
func variedDims(p *study.Plan) []string {
	var dims []string
	for _, d := range p.Dims {
		if d != "backend" { // already a column
			dims = append(dims, d)
		}
	}
	for _, r := range p.Runs {
		if _, ok := r.Coordinates["experiment"]; ok {
			return append(dims, "experiment")
		}
	}
	return dims
}

// errWriter keeps the first write error so printing code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(b)
	if err != nil {
		e.err = fmt.Errorf("write plan: %w", err)
	}
	return n, err
}
