package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/alecthomas/kong"

	"github.com/llenergymeasure/llem/internal/completion"
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
