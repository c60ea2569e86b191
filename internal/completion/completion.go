// Package completion answers a shell's completion query (COMP_LINE set)
// from llem's command tree as data: tree.json, generated from the CLI's
// kong model by cmd/llem (TestCompletionTreeIsCurrent; go generate
// ./cmd/llem). Both the full binary and the start-up front (cmd/llem-front)
// answer from it, so a completion never builds the kong model or links the
// packages the commands need, and the two binaries cannot answer
// differently.
//
// The tree mirrors what kongplete derives from a kong model (hidden
// commands and flags left out; a flag's values from its predictor tag, its
// enum or nothing for a bool; positional arguments counted past flags and
// their values), stored so that it needs no reflection to rebuild.
package completion

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/posener/complete"
)

//go:embed tree.json
var treeJSON []byte

// Node is one command: its subcommands, flags and positional arguments.
type Node struct {
	Sub   map[string]*Node `json:"sub,omitempty"`
	Flags []Flag           `json:"flags,omitempty"`
	Args  []Predictor      `json:"args,omitempty"`
	// Cumulative: the last positional argument repeats (llem eval a.cue b.cue).
	Cumulative bool `json:"cumulative,omitempty"`
}

// Flag is one flag under all its names (--name, -s).
type Flag struct {
	Names   []string  `json:"names"`
	Bool    bool      `json:"bool,omitempty"`
	Predict Predictor `json:"predict"`
}

// Predictor says what a value completes to.
type Predictor struct {
	// Kind is "nothing" (a bool flag), "anything", "set" (Values), "files"
	// (names matching Pattern, and directories), "dirs" (directories
	// matching Pattern) or "or" (any of Or).
	Kind    string      `json:"kind"`
	Values  []string    `json:"values,omitempty"`
	Pattern string      `json:"pattern,omitempty"`
	Or      []Predictor `json:"or,omitempty"`
}

// Tree is the embedded command tree.
func Tree() (*Node, error) {
	var n Node
	if err := json.Unmarshal(treeJSON, &n); err != nil {
		return nil, fmt.Errorf("completion tree: %w", err)
	}
	return &n, nil
}

// Answer answers the completion query in COMP_LINE/COMP_POINT for the
// command name from the embedded tree, writing one candidate per line to
// out. It returns false when no query is pending (COMP_LINE unset).
func Answer(name string, out io.Writer) (bool, error) {
	root, err := Tree()
	if err != nil {
		return false, err
	}
	return AnswerFrom(name, root, out)
}

// AnswerFrom is Answer from the tree root.
func AnswerFrom(name string, root *Node, out io.Writer) (bool, error) {
	cmd, err := root.command()
	if err != nil {
		return false, err
	}
	c := complete.New(name, cmd)
	c.Out = out
	return c.Complete(), nil
}

func (n *Node) command() (complete.Command, error) {
	cmd := complete.Command{Sub: complete.Commands{}, GlobalFlags: complete.Flags{}}
	for name, child := range n.Sub {
		c, err := child.command()
		if err != nil {
			return cmd, fmt.Errorf("%s: %w", name, err)
		}
		cmd.Sub[name] = c
	}
	pp := &positional{Cumulative: n.Cumulative}
	for _, f := range n.Flags {
		p, err := f.Predict.predictor()
		if err != nil {
			return cmd, fmt.Errorf("flag %v: %w", f.Names, err)
		}
		for _, name := range f.Names {
			cmd.GlobalFlags[name] = p
		}
		if f.Bool {
			pp.BoolFlags = append(pp.BoolFlags, f.Names...)
		} else {
			pp.ArgFlags = append(pp.ArgFlags, f.Names...)
		}
	}
	for i, a := range n.Args {
		p, err := a.predictor()
		if err != nil {
			return cmd, fmt.Errorf("argument %d: %w", i, err)
		}
		pp.Predictors = append(pp.Predictors, p)
	}
	cmd.Args = pp
	return cmd, nil
}

func (p Predictor) predictor() (complete.Predictor, error) {
	switch p.Kind {
	case "nothing":
		return complete.PredictNothing, nil
	case "anything":
		return complete.PredictAnything, nil
	case "set":
		return complete.PredictSet(p.Values...), nil
	case "files":
		return complete.PredictFiles(p.Pattern), nil
	case "dirs":
		return complete.PredictDirs(p.Pattern), nil
	case "or":
		var ps []complete.Predictor
		for _, o := range p.Or {
			q, err := o.predictor()
			if err != nil {
				return nil, err
			}
			ps = append(ps, q)
		}
		return complete.PredictOr(ps...), nil
	}
	return nil, fmt.Errorf("unknown predictor kind %q", p.Kind)
}

// positional predicts the positional argument at the cursor, counting
// arguments past flags and flag values (kongplete's positionalpredictor,
// MIT, github.com/willabides/kongplete/internal/positionalpredictor).
type positional struct {
	Predictors []complete.Predictor
	ArgFlags   []string
	BoolFlags  []string
	Cumulative bool
}

func (p *positional) Predict(a complete.Args) []string {
	pos := 0
	for i := range a.Completed {
		if !p.flagOrFlagValue(a, i) {
			pos++
		}
	}
	var pr complete.Predictor
	switch {
	case p.Cumulative && len(p.Predictors) > 0 && pos >= len(p.Predictors):
		pr = p.Predictors[len(p.Predictors)-1]
	case pos >= 0 && pos < len(p.Predictors):
		pr = p.Predictors[pos]
	}
	if pr == nil {
		return []string{}
	}
	return pr.Predict(a)
}

// flagOrFlagValue: a.All[pos] is a flag, or the value of the flag before it.
func (p *positional) flagOrFlagValue(a complete.Args, pos int) bool {
	if pos < 0 || pos >= len(a.All) {
		return false
	}
	if p.isFlag(a.All[pos]) {
		return true
	}
	if pos == 0 {
		return false
	}
	prev := a.All[pos-1]
	// A flag written --name=value carries its value.
	return !strings.Contains(prev, "=") && contains(p.ArgFlags, prev)
}

func (p *positional) isFlag(v string) bool {
	v, _, _ = strings.Cut(v, "=")
	return contains(p.BoolFlags, v) || contains(p.ArgFlags, v)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
