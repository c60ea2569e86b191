package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/llenergymeasure/llem/internal/completion"
	"github.com/llenergymeasure/llem/pkg/params"
)

var updateTree = flag.Bool("update", false, "rewrite internal/completion/tree.json from the CLI")

// TestCompletionTreeIsCurrent: internal/completion/tree.json, from which
// both llem and the start-up front answer completions, is what the CLI's
// kong model and the schema's backends and params give (go generate
// ./cmd/llem rewrites it).
func TestCompletionTreeIsCurrent(t *testing.T) {
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("llem"))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := commandTree(parser.Model.Node, predictors())
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(tree, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, '\n')
	const path = "../../internal/completion/tree.json"
	if *updateTree {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("internal/completion/tree.json is stale (a command, flag or schema param changed): run go generate ./pkg/params ./cmd/llem")
	}
	if _, err := completion.Tree(); err != nil {
		t.Fatal(err)
	}
	for _, hidden := range []string{"worker", "serving-worker", "slurm-task"} {
		if _, ok := tree.Sub[hidden]; ok {
			t.Errorf("hidden command %s completes", hidden)
		}
	}
}

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
