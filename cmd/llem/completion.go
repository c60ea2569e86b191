package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/alecthomas/kong"
	"github.com/riywo/loginshell"

	"github.com/llenergymeasure/llem/internal/completion"
	"github.com/llenergymeasure/llem/internal/errs"
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
	if _, err := completion.Answer("llem", stdout); err != nil {
		fmt.Fprintln(stderr, "llem: completion:", err)
		return errs.ExitFailure
	}
	return errs.ExitOK
}

// internal/completion/tree.json is generated from this CLI by
// TestCompletionTreeIsCurrent (completion_test.go), which fails when stale.
//
//go:generate go test -run TestCompletionTreeIsCurrent -update .
