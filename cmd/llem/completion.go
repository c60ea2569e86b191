package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/posener/complete"
	"github.com/willabides/kongplete"

	"github.com/llenergymeasure/llem/pkg/params"
)

// completionCmd prints the shell hook that makes the shell ask llem itself
// for completions (kongplete: the shell sets COMP_LINE and runs llem, which
// answers from its own command tree), or installs it for the login shell.
type completionCmd struct {
	Bash    shellHook                    `cmd:"" help:"Print the bash hook: llem completion bash >> ~/.bashrc."`
	Zsh     shellHook                    `cmd:"" help:"Print the zsh hook: llem completion zsh >> ~/.zshrc."`
	Fish    shellHook                    `cmd:"" help:"Print the fish hook: llem completion fish > ~/.config/fish/completions/llem.fish."`
	Install kongplete.InstallCompletions `cmd:"" help:"Print the hook for your login shell (kongplete's install flow): eval \"$(llem completion install)\"."`
}

// shellHook prints the hook of the shell its command is named after.
type shellHook struct{}

// hooks are kongplete's per-shell hooks (its install flow picks one by the
// login shell; these print the one asked for). zsh uses bash's completion
// protocol through bashcompinit.
var hooks = map[string]string{
	"bash": "complete -C ${bin} ${cmd}\n",
	"zsh":  "autoload -U +X bashcompinit && bashcompinit\ncomplete -C ${bin} ${cmd}\n",
	"fish": `function __complete_${cmd}
    set -lx COMP_LINE (commandline -cp)
    test -z (commandline -ct)
    and set COMP_LINE "$COMP_LINE "
    ${bin}
end
complete -f -c ${cmd} -a "(__complete_${cmd})"
`,
}

func (shellHook) Run(kctx *kong.Context, stdio *IO) error {
	shell := kctx.Selected().Name
	bin, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find llem's own path: %w", err)
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	vars := map[string]string{"cmd": "llem", "bin": bin}
	_, err = fmt.Fprint(stdio.Stdout, os.Expand(hooks[shell], func(k string) string { return vars[k] }))
	return err
}

// answerCompletion answers a shell's completion query (COMP_LINE is set) and
// returns the exit code.
func answerCompletion(parser *kong.Kong, exited *int) (code int) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(exitPanic); ok {
				code = *exited
				return
			}
			panic(r)
		}
	}()
	kongplete.Complete(parser,
		kongplete.WithPredictors(predictors()),
		kongplete.WithExitFunc(func(c int) { *exited = c; panic(exitPanic{}) }),
	)
	return 0
}

// predictors complete the values kongplete cannot know from types alone:
// study files, backends, datasets and --set paths from the schema.
func predictors() map[string]complete.Predictor {
	backends := complete.PredictFunc(func(complete.Args) []string { return params.BackendNames() })
	return map[string]complete.Predictor{
		"study":   complete.PredictFiles("*.cue"),
		"backend": backends,
		"dataset": complete.PredictOr(complete.PredictSet("synthetic", "aienergyscore"), complete.PredictFiles("*.jsonl")),
		"setpath": complete.PredictFunc(func(a complete.Args) []string { return setPaths("base.") }),
		"runset":  complete.PredictFunc(func(a complete.Args) []string { return setPaths("") }),
	}
}

// setPaths are `--set` paths with "=": the experiment's own fields and
// every backend param, under prefix (base. for a study), and the study's
// execution fields.
func setPaths(prefix string) []string {
	var out []string
	for _, f := range []string{"model", "backend", "precision", "n", "dataset.source", "dataset.path",
		"dataset.input_len", "dataset.output_len", "max_input_tokens", "max_output_tokens",
		"warmup.n_warmup", "warmup.thermal_floor_seconds", "baseline.enabled", "baseline.duration_seconds",
		"energy.sensor", "random_seed", "decoder.preset", "decoder.temperature"} {
		out = append(out, prefix+f+"=")
	}
	reports, err := params.Reports()
	if err == nil {
		for _, r := range reports {
			for _, p := range r.Params {
				out = append(out, prefix+p.Path+"=")
			}
		}
	}
	for _, f := range []string{"execution.cycles", "execution.order", "name"} {
		out = append(out, f+"=")
	}
	return dedupe(out)
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] && !strings.HasSuffix(x, ".=") {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
