package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
	"github.com/riywo/loginshell"

	"github.com/llenergymeasure/llem/internal/completion"
	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/params"
)

// completionCmd prints the shell hook that makes the shell ask llem itself
// for completions (the shell sets COMP_LINE and runs llem, which answers
// from its command tree), or the hook of the login shell.
type completionCmd struct {
	Bash    shellHook   `cmd:"" help:"Print the bash hook: llem completion bash >> ~/.bashrc."`
	Zsh     shellHook   `cmd:"" help:"Print the zsh hook: llem completion zsh >> ~/.zshrc."`
	Fish    shellHook   `cmd:"" help:"Print the fish hook: llem completion fish > ~/.config/fish/completions/llem.fish."`
	Install installHook `cmd:"" help:"Print the hook for your login shell: eval \"$(llem completion install)\"."`
}

// installHook prints the hook of the user's login shell (kongplete's
// install flow, which asked for the running binary's own path: through the
// start-up front that is llem-core, and completions would skip the front).
type installHook struct{}

func (installHook) Run(stdio *IO) error {
	shell, err := loginshell.Shell()
	if err != nil {
		return errs.BadInput(fmt.Errorf("find your login shell: %w", err), "name it: llem completion bash (or zsh, fish)")
	}
	return printHook(stdio.Stdout, filepath.Base(shell))
}

// shellHook prints the hook of the shell its command is named after.
type shellHook struct{}

// hooks are the per-shell hooks (kongplete's). zsh uses bash's completion
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
	return printHook(stdio.Stdout, kctx.Selected().Name)
}

// printHook prints shell's hook. The shell runs the binary it names for
// every completion: the start-up front when llem was started through it
// (it says so in LLEM_FRONT before it execs llem-core), else this binary.
func printHook(w io.Writer, shell string) error {
	hook, ok := hooks[shell]
	if !ok {
		return errs.BadInput(fmt.Errorf("no completion for shell %q", shell), "llem completes in bash, zsh and fish: llem completion bash")
	}
	bin := os.Getenv("LLEM_FRONT")
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("find llem's own path: %w", err)
		}
	}
	if abs, err := filepath.Abs(bin); err == nil {
		bin = abs
	}
	vars := map[string]string{"cmd": "llem", "bin": bin}
	_, err := fmt.Fprint(w, os.Expand(hook, func(k string) string { return vars[k] }))
	return err
}

// answerCompletion answers a shell's completion query (COMP_LINE is set)
// from the generated command tree (internal/completion; the start-up front
// answers from the same tree) and returns the exit code.
func answerCompletion(stdout, stderr io.Writer) int {
	tree, err := completion.Tree()
	if err == nil {
		_, err = completion.Answer("llem", tree, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "llem: completion:", err)
		return errs.ExitFailure
	}
	return errs.ExitOK
}

//go:generate go test -run TestCompletionTreeIsCurrent -update .

// commandTree is the completion tree of the CLI's kong model (what
// internal/completion/tree.json must hold), derived as kongplete derives
// its completion command: hidden commands and flags left out, a value's
// predictor from its predictor tag, else its enum, else nothing for a
// bool and anything otherwise.
func commandTree(node *kong.Node, predictors map[string]completion.Predictor) (*completion.Node, error) {
	out := &completion.Node{}
	for _, child := range node.Children {
		if child == nil || child.Hidden {
			continue
		}
		c, err := commandTree(child, predictors)
		if err != nil {
			return nil, err
		}
		if out.Sub == nil {
			out.Sub = map[string]*completion.Node{}
		}
		out.Sub[child.Name] = c
	}
	for _, f := range node.Flags {
		if f == nil || f.Hidden {
			continue
		}
		p, err := valuePredictor(f.Value, predictors)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", f.Name, err)
		}
		names := []string{"--" + f.Name}
		if f.Short != 0 {
			names = append(names, "-"+string(f.Short))
		}
		out.Flags = append(out.Flags, completion.Flag{Names: names, Bool: f.Value.IsBool(), Predict: p})
	}
	for _, a := range node.Positional {
		p, err := valuePredictor(a, predictors)
		if err != nil {
			return nil, fmt.Errorf("<%s>: %w", a.Name, err)
		}
		out.Args = append(out.Args, p)
	}
	if n := len(node.Positional); n > 0 && node.Positional[n-1].IsCumulative() {
		out.Cumulative = true
	}
	return out, nil
}

func valuePredictor(v *kong.Value, predictors map[string]completion.Predictor) (completion.Predictor, error) {
	if v.Tag != nil && v.Tag.Has("predictor") {
		name := v.Tag.Get("predictor")
		p, ok := predictors[name]
		if !ok {
			return p, fmt.Errorf("no predictor named %q", name)
		}
		return p, nil
	}
	switch {
	case v.IsBool():
		return completion.Predictor{Kind: "nothing"}, nil
	case v.Enum != "":
		var vals []string
		for e := range v.EnumMap() {
			vals = append(vals, e)
		}
		sort.Strings(vals)
		return completion.Predictor{Kind: "set", Values: vals}, nil
	}
	return completion.Predictor{Kind: "anything"}, nil
}

// predictors complete the values kong cannot know from types alone: study
// files, directories (study and output directories), any path, backends,
// datasets and --set paths from the schema (the static ones are part of
// the generated tree).
func predictors() map[string]completion.Predictor {
	return map[string]completion.Predictor{
		"study":   {Kind: "files", Pattern: "*.cue"},
		"dir":     {Kind: "dirs", Pattern: "*"},
		"path":    {Kind: "files", Pattern: "*"},
		"backend": {Kind: "set", Values: params.BackendNames()},
		"dataset": {Kind: "or", Or: []completion.Predictor{
			{Kind: "set", Values: []string{"synthetic", "aienergyscore"}},
			{Kind: "files", Pattern: "*.jsonl"}}},
		"setpath": {Kind: "set", Values: setPaths("base.")},
		"runset":  {Kind: "set", Values: setPaths("")},
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
