// Command llem-front is llem's start-up front: `make build` installs it as
// llem and the full program (cmd/llem) as llem-core beside it. It answers
// what a user waits for at the prompt — --version, `llem params [BACKEND]
// [--json]` and the shell's completion queries — from data generated at
// build time, and execs llem-core for everything else.
//
// It exists for start-up time. Go runs every linked package's init before
// main, and the full program links CUE, Arrow/Parquet (with gRPC and
// protobuf), the Docker client, gonum/plot and SQL drivers: 23–28 ms of
// init on a 2-core VM (GODEBUG=inittrace=1), on every command. The front
// links none of them.
// What it prints is byte for byte what llem-core prints
// (cmd/llem TestFrontMatchesCore); where it cannot be sure (a schema its
// precomputed data was not made for, a flag it does not know, a backend
// name to correct) it leaves the answer to llem-core.
//
// `go install ./cmd/llem` gives the single full binary as llem instead:
// the same tool, with the longer start-up.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/llenergymeasure/llem/internal/completion"
	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/params/precomputed"
)

// coreName is the full program's file name, beside the front.
const coreName = "llem-core"

func main() {
	args := os.Args[1:]
	if os.Getenv("COMP_LINE") != "" {
		if answerCompletion() {
			os.Exit(0)
		}
	} else if out, ok := answer(args); ok {
		if _, err := os.Stdout.Write(out); err != nil {
			os.Exit(1) // the reader went away (llem params | head): quiet, as llem-core
		}
		os.Exit(0)
	}
	os.Exit(execCore(args))
}

// answer is the front's output for args, false when llem-core must answer.
func answer(args []string) ([]byte, bool) {
	switch {
	case len(args) == 1 && (args[0] == "--version" || args[0] == "version"):
		return []byte(version.String() + "\n"), true
	case len(args) > 0 && args[0] == "params":
		return paramsOutput(args[1:])
	}
	return nil, false
}

// paramsOutput is `llem params [BACKEND] [--json]` as precomputed. Any
// other form (--markdown, -v, a misspelt backend that llem-core corrects)
// goes to llem-core.
func paramsOutput(args []string) ([]byte, bool) {
	backend, asJSON := "", false
	for _, a := range args {
		switch {
		case a == "--json":
			if asJSON {
				return nil, false
			}
			asJSON = true
		case a == "" || strings.HasPrefix(a, "-") || backend != "":
			return nil, false
		default:
			backend = strings.ToLower(a) // as llem-core reads it
		}
	}
	return precomputed.Rendered(backend, asJSON)
}

// answerCompletion answers a completion query from the command tree
// llem-core answers from; false when it cannot (llem-core then answers).
func answerCompletion() bool {
	done, err := completion.Answer("llem", os.Stdout)
	return err == nil && done
}

// execCore replaces this process with llem-core, same arguments,
// environment, streams, signals and exit status; LLEM_FRONT tells it the
// front's path (for the completion hooks it prints). A front not named
// llem (go install ./cmd/... installs it as llem-front beside the full
// binary, llem) falls back to a sibling llem. It returns only when no
// full program can be started.
func execCore(args []string) int {
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "llem: find llem's own path:", err)
		return 1
	}
	dir := filepath.Dir(self)
	candidates := []string{filepath.Join(dir, coreName)}
	if filepath.Base(self) != "llem" {
		candidates = append(candidates, filepath.Join(dir, "llem"))
	}
	env := append(os.Environ(), "LLEM_FRONT="+self)
	for _, core := range candidates {
		err = syscall.Exec(core, append([]string{"llem"}, args...), env)
		if !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(os.Stderr, "llem: start %s: %v\n", core, err)
			return 1
		}
	}
	fmt.Fprintf(os.Stderr, "llem: start %s: %v\n", candidates[0], err)
	fmt.Fprintf(os.Stderr, "hint: %s is llem's start-up front; the rest of llem is %s, installed beside it: run make build (or go install ./cmd/llem for the single full binary)\n", self, coreName)
	return 1
}
