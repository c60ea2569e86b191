package main

import (
	"encoding/json"
	"errors"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/stats"
)

type resultsCompareCmd struct {
	Dirs []string `arg:"" name:"dir" help:"Study directories; each is compared with the first." type:"existingdir" predictor:"dir"`
	JSON bool     `help:"Print the comparisons as JSON on stdout."`
	statsFlags
}

func (c *resultsCompareCmd) Run(stdio *IO) error {
	if len(c.Dirs) < 2 {
		return errs.BadInput(errors.New("compare needs at least two study directories"), "llem results compare results/study-a results/study-b")
	}
	_, base, err := summarise(stdio.Stderr, c.Dirs[0], c.statsFlags)
	if err != nil {
		return err
	}
	var out []stats.Comparison
	for _, d := range c.Dirs[1:] {
		_, other, err := summarise(stdio.Stderr, d, c.statsFlags)
		if err != nil {
			return err
		}
		out = append(out, stats.Compare(c.Dirs[0], base, d, other))
	}
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for i, cmp := range out {
		if i > 0 {
			stdio.Stdout.Write([]byte("\n"))
		}
		if err := stats.WriteComparison(stdio.Stdout, cmp); err != nil {
			return err
		}
	}
	return nil
}
