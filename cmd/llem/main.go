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
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
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
	Verbose int              `short:"v" type:"counter" help:"Log what llem does to stderr (-v info, -vv debug); LLEM_LOG_LEVEL sets the same."`

	Eval          evalCmd          `cmd:"" help:"Run (or with --dry-run, plan) every experiment in one or more studies."`
	Run           runCmd           `cmd:"" help:"Run one experiment given by flags (a one-line study; --dry-run prints it as CUE)."`
	Params        paramsCmd        `cmd:"" help:"List backend parameters from the schema, with coverage."`
	Env           envCmd           `cmd:"" help:"Show GPUs, sensors, backends and config llem would use."`
	Results       resultsCmd       `cmd:"" help:"Show, compare and export results."`
	Serve         serveCmd         `cmd:"" help:"Serve a native-engine model over an OpenAI-compatible HTTP API."`
	Archive       archiveCmd       `cmd:"" help:"Run a results archive: llem archive serve, token, migrate (docs/sharing.md)."`
	Measure       measureCmd       `cmd:"" help:"Measure the energy of any command: llem measure -- CMD ARGS (like codecarbon monitor)."`
	Slurm         slurmCmd         `cmd:"" help:"Cancel or merge a study submitted with eval --on slurm."`
	Init          initCmd          `cmd:"" help:"Write a commented user config (~/.config/llenergymeasure/config.yaml)."`
	Completion    completionCmd    `cmd:"" help:"Print or install shell completion (bash, zsh, fish)."`
	Help          helpCmd          `cmd:"" help:"Show help for a command: llem help eval."`
	Worker        workerCmd        `cmd:"" hidden:"" help:"Run the native backend worker (speaks the worker protocol)."`
	ServingWorker servingWorkerCmd `cmd:"" name:"serving-worker" hidden:"" help:"Run serving mode's worker: start the server, send the load (speaks the worker protocol)."`
	SlurmTask     slurmTaskCmd     `cmd:"" name:"slurm-task" hidden:"" help:"Run one Slurm array task of a study (what eval --on slurm submits)."`
	Ver           versionCmd       `cmd:"" name:"version" help:"Print the version."`
}

// description is the root help text; it lists the environment variables
// llem reads (grep os.Getenv to keep it true).
const description = `Measure the energy and efficiency of LLM inference.

Start with:
  llem eval examples/quickstart.cue
  llem run --model random:llama-15m --backend native --dataset synthetic

Environment variables:
  LLEM_CONFIG              user config file (default ~/.config/llenergymeasure/config.yaml)
  LLEM_RESULTS_DIR         results directory (results_dir)
  LLEM_ENERGY_SENSOR       energy sensor: auto, nvml, rapl, estimate, none (energy.sensor)
  LLEM_CPU_TDP_WATTS       CPU TDP for the estimate sensor (energy.cpu_tdp_watts)
  LLEM_CARBON_REGION       carbon region (carbon.region)
  LLEM_CARBON_INTENSITY    grid intensity, gCO2e/kWh (carbon.intensity_g_per_kwh)
  LLEM_PUE                 datacentre PUE (carbon.pue; LLEM_DATACENTER_PUE too)
  LLEM_PYTHON              Python interpreter for pytorch/vllm/tensorrt (python)
  LLEM_RUNNER_<BACKEND>    local or docker for one backend (runners.<backend>)
  LLEM_IMAGE_<BACKEND>     Docker image for one backend (images.<backend>)
  LLEM_API_KEY             archive token for llem results push (sharing.api_key; never printed)
  LLEM_CACHE_DIR           llem's cache (baselines, harnesses; default ~/.cache/llem)
  LLEM_LOG_LEVEL           debug, info, warn or error (as -v/-vv)
  HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE   Hugging Face Hub access and cache
  CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER   which GPUs are measured
  DOCKER_HOST              Docker daemon for the docker runner
  LLEM_ARCHIVE_DB          llem archive's database (--db): SQLite path or postgres:// URL
  NO_COLOR                 plain progress output`

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
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE}
	if len(os.Args) > 1 && (os.Args[1] == "serve" || os.Args[1] == "serving-worker") {
		// With SIGPIPE notified, a write to a socket whose peer hung up (a
		// client that timed out, a server that crashed) raises it: a server
		// and a load generator must take that as one failed request.
		sigs = sigs[:3]
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	code := Main(ctx, os.Args[1:], IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	stop()
	os.Exit(code)
}

// Main runs llem with args and returns the exit code; tests call it in-process.
func Main(ctx context.Context, args []string, stdio IO) int {
	if os.Getenv("COMP_LINE") != "" { // a shell asks for completions
		return answerCompletion(stdio.Stdout, stdio.Stderr)
	}
	var cli CLI
	exited := -1
	parser, err := kong.New(&cli,
		kong.Name("llem"),
		kong.Description(description),
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
	switch {
	case len(args) == 0: // bare llem: the help, not an error
		args = []string{"--help"}
	case args[0] == "help": // llem help CMD...
		args = append(slices.Clone(args[1:]), "--help")
	}
	return parse(parser, &cli, args, &exited)
}

type exitPanic struct{}

// parse runs the parser and the selected command, turning kong's exit calls
// (--help, --version, usage errors) into return values.
func parse(parser *kong.Kong, cli *CLI, args []string, exited *int) (code int) {
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
	if err := setupLogging(parser.Stderr, cli.Verbose, os.Getenv("LLEM_LOG_LEVEL")); err != nil {
		return report(parser.Stderr, err)
	}
	slog.Debug("command", "name", kctx.Command(), "args", args)
	if err := kctx.Run(); err != nil {
		return report(parser.Stderr, err)
	}
	return errs.ExitOK
}

// report prints err once, with its hint, and returns the exit code.
func report(w io.Writer, err error) int {
	if errors.Is(err, syscall.EPIPE) {
		// The reader went away (`llem params | head`): what it wanted was
		// written; no message on top of its output.
		return errs.ExitFailure
	}
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

// setupLogging sends log/slog to stderr at the level of -v (info), -vv
// (debug) or LLEM_LOG_LEVEL, whichever is more verbose; by default only
// warnings and errors.
func setupLogging(w io.Writer, verbose int, env string) error {
	level := slog.LevelWarn
	if env != "" {
		if err := level.UnmarshalText([]byte(strings.TrimSpace(env))); err != nil {
			return errs.BadInput(fmt.Errorf("LLEM_LOG_LEVEL=%q: %w", env, err), "use debug, info, warn or error")
		}
	}
	switch {
	case verbose >= 2:
		level = min(level, slog.LevelDebug)
	case verbose == 1:
		level = min(level, slog.LevelInfo)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})))
	return nil
}

// helpCmd documents `llem help CMD`; Main rewrites it to `CMD --help`
// before parsing, so Run is reached only by `llem help` alone.
type helpCmd struct {
	Command []string `arg:"" optional:"" help:"The command to explain, e.g. eval or results show."`
}

func (h *helpCmd) Run(kctx *kong.Context) error {
	_, err := kctx.Kong.Parse(append(slices.Clone(h.Command), "--help"))
	return err
}
