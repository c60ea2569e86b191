package completion

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/posener/complete"
)

// TestPositionalCountsPastFlags is kongplete's own table for its
// positional predictor: flags and the values of flags that take one are
// not positional arguments; --flag=value is one word.
func TestPositionalCountsPastFlags(t *testing.T) {
	p := &positional{BoolFlags: []string{"--mybool", "-b"}, ArgFlags: []string{"--myarg", "-a"}}
	for args, want := range map[string]int{
		``: 0, `foo`: 0, `foo `: 1, `-b foo `: 1, `-a foo `: 0, `-a=omg foo `: 1,
		`--myarg omg foo `: 1, `--myarg=omg foo `: 1, `foo bar`: 1, `foo bar `: 2,
	} {
		a := newArgs("cmd " + args)
		got := 0
		for i := range a.Completed {
			if !p.flagOrFlagValue(a, i) {
				got++
			}
		}
		if got != want {
			t.Errorf("%q: position %d, want %d", args, got, want)
		}
	}
}

// newArgs splits a command line as posener/complete does for COMP_LINE.
func newArgs(line string) complete.Args {
	all := strings.Split(line, " ")[1:]
	completed := all
	last := ""
	if len(all) > 0 {
		last = all[len(all)-1]
		completed = all[:len(all)-1]
	}
	return complete.Args{All: all, Completed: completed, Last: last}
}

// TestAnswerFromTree answers through posener/complete with COMP_LINE, as a
// shell asks: subcommands, a set after its flag, files by pattern, a
// cumulative last argument, nothing for an unknown predictor kind.
func TestAnswerFromTree(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.cue"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "b.txt"), nil, 0o644)
	t.Chdir(dir)
	tree := &Node{Sub: map[string]*Node{
		"eval": {
			Flags:      []Flag{{Names: []string{"--backend", "-b"}, Predict: Predictor{Kind: "set", Values: []string{"native", "vllm"}}}, {Names: []string{"--dry-run"}, Bool: true, Predict: Predictor{Kind: "nothing"}}},
			Args:       []Predictor{{Kind: "files", Pattern: "*.cue"}},
			Cumulative: true,
		},
		"params": {Args: []Predictor{{Kind: "set", Values: []string{"native", "pytorch"}}}},
	}}
	ask := func(line string) []string {
		t.Setenv("COMP_LINE", line)
		t.Setenv("COMP_POINT", strconv.Itoa(len(line)))
		var out bytes.Buffer
		done, err := AnswerFrom("llem", tree, &out)
		if err != nil || !done {
			t.Fatalf("%q: done %v, %v", line, done, err)
		}
		got := strings.Fields(out.String())
		slices.Sort(got)
		return got
	}
	for line, want := range map[string][]string{
		"llem ":                 {"eval", "params"},
		"llem par":              {"params"},
		"llem params ":          {"native", "pytorch"},
		"llem params native ":   nil,
		"llem eval --backend ":  {"native", "vllm"},
		"llem eval -b v":        {"vllm"},
		"llem eval ":            {"./", "a.cue"},
		"llem eval a.cue ":      {"./", "a.cue"},
		"llem eval --dry-run a": {"a.cue"},
	} {
		if got := ask(line); !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", line, got, want)
		}
	}
	tree.Sub["bad"] = &Node{Args: []Predictor{{Kind: "regex"}}}
	t.Setenv("COMP_LINE", "llem ")
	if _, err := AnswerFrom("llem", tree, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "regex") {
		t.Errorf("unknown predictor kind: %v", err)
	}
	if root, err := Tree(); err != nil || root.Sub["eval"] == nil {
		t.Errorf("embedded tree: %v", err)
	}
}
