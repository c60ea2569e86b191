package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"cuelang.org/go/cue/literal"

	"github.com/llenergymeasure/llem/internal/cueset"
	"github.com/llenergymeasure/llem/internal/errs"
)

// runCmd is a one-line study: its flags become the text of a study file
// (printed by --dry-run), which then goes through eval exactly as a file
// written by hand would, so the same schema checks it.
type runCmd struct {
	Model     string   `name:"model" short:"m" required:"" help:"Model: a Hugging Face id, a local directory or random:<preset>."`
	Backend   string   `name:"backend" short:"b" required:"" help:"Backend: pytorch, vllm, tensorrt or native." predictor:"backend"`
	Precision string   `name:"precision" short:"p" help:"Precision: bf16, fp16 or fp32 (default: the schema's)." enum:"bf16,fp16,fp32," default:""`
	N         int      `name:"n" short:"n" help:"Number of prompts in the measured window (default: the schema's)."`
	BatchSize int      `name:"batch-size" help:"Batch size (<backend>.batch_size)."`
	Dataset   string   `name:"dataset" help:"Prompts: synthetic, aienergyscore, or a .jsonl file." predictor:"dataset"`
	Set       []string `name:"set" help:"Set an experiment field: path=value (e.g. warmup.thermal_floor_seconds=0, native.batch_size=4); execution.*, runners.*, carbon.* and name set the study's. Repeatable." sep:"none" placeholder:"PATH=VALUE" predictor:"runset"`
	Cycles    int      `name:"cycles" help:"Repeat the run this many times (execution.cycles)."`
	DryRun    bool     `name:"dry-run" help:"Print the equivalent study file (CUE) and its plan, and exit."`
	JSON      bool     `name:"json" help:"Print results (or with --dry-run the plan) as JSON on stdout."`
	Out       string   `name:"out" short:"o" help:"Directory for study results (default: the user config's results_dir, else ./results)." type:"path" predictor:"dir"`
	Quiet     bool     `name:"quiet" short:"q" help:"Only print errors and the final summary."`
	Runner    string   `name:"runner" help:"Where workers run: local, docker or auto." placeholder:"KIND"`
	Python    string   `name:"python" help:"Python interpreter for the pytorch/vllm/tensorrt workers."`
}

// runStudyName is the virtual file name of the generated study: it names
// the study and anchors relative dataset paths at the working directory.
const runStudyName = "llem-run.cue"

func (c *runCmd) Run(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	src, err := c.source()
	if err != nil {
		return err
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	if c.DryRun && !c.JSON {
		fmt.Fprintf(stdio.Stdout, "// llem run as a study file (save it as a .cue file for llem eval):\n%s\n", src)
	}
	e := &evalCmd{
		Study: filepath.Join(wd, runStudyName), source: src,
		DryRun: c.DryRun, JSON: c.JSON, Out: c.Out, Quiet: c.Quiet, Runner: c.Runner, Python: c.Python,
	}
	err = e.one(ctx, stdio, cfg)
	if err != nil && !c.DryRun && errs.ExitCode(err) == errs.ExitBadInput {
		// The positions are in a file that exists only in memory.
		fmt.Fprintf(stdio.Stderr, "note: %s is the study these flags make; add --dry-run to print it with its line numbers\n", runStudyName)
	}
	return err
}

// studyFields are the top-level fields of a study other than base: a --set
// path starting with one of them is the study's, every other path is the
// experiment's (under base).
var studyFields = []string{"name", "execution", "runners", "carbon", "grid", "experiments", "exclude"}

// source builds the study text from the flags, then applies --set.
func (c *runCmd) source() ([]byte, error) {
	q := literal.String.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n\nbase: {\n", q(runName(c.Model, c.Backend)))
	fmt.Fprintf(&b, "\tmodel:   %s\n", q(c.Model))
	fmt.Fprintf(&b, "\tbackend: %s\n", q(c.Backend))
	if c.Precision != "" {
		fmt.Fprintf(&b, "\tprecision: %s\n", q(c.Precision))
	}
	if c.N != 0 {
		fmt.Fprintf(&b, "\tn: %d\n", c.N)
	}
	switch d := c.Dataset; {
	case d == "":
	case d == "synthetic" || d == "aienergyscore":
		fmt.Fprintf(&b, "\tdataset: source: %q\n", d)
	default:
		fmt.Fprintf(&b, "\tdataset: {source: \"jsonl\", path: %s}\n", q(d))
	}
	if c.BatchSize != 0 {
		fmt.Fprintf(&b, "\t%s: batch_size: %d\n", sectionLabel(c.Backend), c.BatchSize)
	}
	b.WriteString("}\n")
	if c.Cycles != 0 {
		fmt.Fprintf(&b, "\nexecution: cycles: %d\n", c.Cycles)
	}
	src := []byte(b.String())
	sets := make([]cueset.Set, len(c.Set))
	for i, a := range c.Set {
		s, err := cueset.Parse(a)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(studyFields, s.Path[0]) && s.Path[0] != "base" {
			s.Path = append([]string{"base"}, s.Path...)
		}
		sets[i] = s
	}
	return cueset.Apply(runStudyName, src, sets)
}

// sectionLabel is the backend's section name as a CUE label (quoted when
// it is not an identifier, so a bad backend is the schema's error, not a
// syntax error).
func sectionLabel(backend string) string {
	if backend != "" && strings.IndexFunc(backend, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0 && (backend[0] < '0' || backend[0] > '9') {
		return backend
	}
	return literal.Label.Quote(backend)
}

// runName is the study name: "run-<model>-<backend>", with the model's
// path separators and colons made safe for a directory name.
func runName(model, backend string) string {
	r := strings.NewReplacer("/", "_", ":", "_", "\\", "_", " ", "_")
	return "run-" + r.Replace(model) + "-" + r.Replace(backend)
}
