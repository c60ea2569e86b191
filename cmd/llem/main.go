// Command llem measures the energy and efficiency of LLM inference.
//
// This package is the CLI only: it parses flags, calls packages and prints.
// One file per command; main.go holds the root and the error/exit handling.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

// CLI is the root of the command tree.
type CLI struct {
	Version kong.VersionFlag `help:"Print the version and exit."`

	Eval      evalCmd      `cmd:"" help:"Run (or with --dry-run, plan) every experiment in a study."`
	Params    paramsCmd    `cmd:"" help:"List backend parameters from the schema, with coverage."`
	Env       envCmd       `cmd:"" help:"Show GPUs, sensors, backends and config llem would use."`
	Results   resultsCmd   `cmd:"" help:"Show, compare and export results."`
	Serve     serveCmd     `cmd:"" help:"Serve a native-engine model over an OpenAI-compatible HTTP API."`
	Worker    workerCmd    `cmd:"" hidden:"" help:"Run the native backend worker (speaks the worker protocol)."`
	Measure   measureCmd   `cmd:"" hidden:"" help:"Measure the energy of a command and of the windows it announces (validation helper)."`
	Slurm     slurmCmd     `cmd:"" help:"Cancel or merge a study submitted with eval --on slurm."`
	SlurmTask slurmTaskCmd `cmd:"" name:"slurm-task" hidden:"" help:"Run one Slurm array task of a study (what eval --on slurm submits)."`
	Ver       versionCmd   `cmd:"" name:"version" help:"Print the version."`
}

// IO carries the command's output streams, bound into every Run.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// UserConfig is the user config (pkg/userconfig), bound into every Run and
// read at most once per invocation, on first Load: commands that never ask
// (params, version) never read it, and results ls reads it only when no
// --root is given, so a broken config file does not stop what does not
// depend on it.
type UserConfig struct {
	once   sync.Once
	load   func() (*userconfig.Loaded, error)
	loaded *userconfig.Loaded
	err    error
}

// Load returns the user config with its environment overrides applied.
func (u *UserConfig) Load() (*userconfig.Loaded, error) {
	u.once.Do(func() { u.loaded, u.err = u.load() })
	return u.loaded, u.err
}

func main() {
	// A closed terminal (SIGHUP) or a reader that went away (SIGPIPE: `llem
	// eval … | head`, a pager quitting) stops llem like Ctrl-C: the study is
	// checkpointed as interrupted and resumable, instead of the process
	// dying mid-study with its manifest saying running.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	code := Main(ctx, os.Args[1:], IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// Main runs llem with args and returns the exit code; tests call it in-process.
func Main(ctx context.Context, args []string, stdio IO) int {
	var cli CLI
	exited := -1
	parser, err := kong.New(&cli,
		kong.Name("llem"),
		kong.Description("Measure the energy and efficiency of LLM inference."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": version.String()},
		kong.Writers(stdio.Stdout, stdio.Stderr),
		kong.Exit(func(code int) { exited = code; panic(exitPanic{}) }),
		kong.BindTo(ctx, (*context.Context)(nil)),
		kong.Bind(&stdio, &UserConfig{load: userconfig.Load}),
	)
	if err != nil {
		fmt.Fprintln(stdio.Stderr, "llem:", err)
		return errs.ExitFailure
	}
	return parse(parser, args, &exited)
}

type exitPanic struct{}

// parse runs the parser and the selected command, turning kong's exit calls
// (--help, --version, usage errors) into return values.
func parse(parser *kong.Kong, args []string, exited *int) (code int) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitPanic); ok {
				code = *exited
				return
			}
			panic(r)
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(parser.Stderr, "llem:", err)
		return errs.ExitBadInput
	}
	if err := kctx.Run(); err != nil {
		return report(parser.Stderr, err)
	}
	return errs.ExitOK
}

// report prints err once, with its hint, and returns the exit code.
func report(w io.Writer, err error) int {
	var printed *printedError
	if !errors.As(err, &printed) {
		fmt.Fprintln(w, "llem:", err)
	}
	if hint := errs.Hint(err); hint != "" {
		fmt.Fprintln(w, "hint:", hint)
	}
	return errs.ExitCode(err)
}

// printedError wraps an error whose details a command already printed
// (e.g. a list of study errors with positions); report only maps its code.
type printedError struct{ err error }

func (p *printedError) Error() string { return p.err.Error() }
func (p *printedError) Unwrap() error { return p.err }
