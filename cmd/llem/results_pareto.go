package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/pareto"
	studyreport "github.com/llenergymeasure/llem/pkg/report"
	"github.com/llenergymeasure/llem/pkg/result"
)

type resultsParetoCmd struct {
	Dirs   []string `arg:"" name:"dir" help:"Study directories, or results roots whose studies are all read." type:"existingdir" predictor:"dir"`
	X      string   `help:"Metric on the x axis (name or alias; NAME:max or NAME:min sets the direction)." default:"output_tokens_per_sec"`
	Y      string   `help:"Metric on the y axis." default:"energy_per_output_token_j"`
	JSON   bool     `help:"Print the frontier as JSON on stdout."`
	Figure string   `help:"Also draw the frontier into this file (.svg with fonts embedded, or .png at 300 dpi)." type:"path"`
	statsFlags
}

func (c *resultsParetoCmd) Help() string {
	return "Configurations of one or more studies on two metrics: which are on the Pareto frontier, which are dominated " +
		"(another is at least as good on both means and better beyond the confidence intervals on one), which only possibly " +
		"(beaten on means within noise), and by whom. Runs without one of the metrics (e.g. never scored for quality) are left out " +
		"and listed. Metrics: " + strings.Join(pareto.AcceptedNames(), "; ") + ". See docs/results.md."
}

func (c *resultsParetoCmd) Run(stdio *IO) error {
	x, err := pareto.ParseAxis(c.X)
	if err != nil {
		return errs.BadInput(fmt.Errorf("--x: %w", err), "llem results pareto DIR --x quality --y j/token")
	}
	y, err := pareto.ParseAxis(c.Y)
	if err != nil {
		return errs.BadInput(fmt.Errorf("--y: %w", err), "llem results pareto DIR --x throughput --y energy")
	}
	if x.Metric == y.Metric {
		return errs.BadInput(fmt.Errorf("--x and --y are both %s", x.Metric), "pick two different metrics, e.g. --x quality --y j/token")
	}
	ext := strings.ToLower(filepath.Ext(c.Figure))
	if c.Figure != "" && ext != ".svg" && ext != ".png" {
		return errs.BadInput(fmt.Errorf("--figure %s: unknown format %q", c.Figure, ext), "name the file .svg or .png")
	}
	dirs, err := studyDirs(c.Dirs)
	if err != nil {
		return err
	}
	var studies []pareto.Study
	for _, d := range dirs {
		s, sum, err := summarise(stdio.Stderr, d, c.statsFlags)
		if err != nil {
			return err
		}
		studies = append(studies, pareto.Study{Name: s.Name(), Dir: d, Summary: sum})
	}
	res, err := pareto.Build(studies, x, y)
	if err != nil {
		return errs.BadInput(err, "pick two different metrics")
	}
	if len(res.Entries) == 0 {
		fmt.Fprintf(stdio.Stderr, "warning: no configuration has both %s and %s\n", x.Metric, y.Metric)
	}
	if c.Figure != "" {
		if err := writeParetoFigure(c.Figure, ext, res); err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stderr, "figure: %s\n", c.Figure)
	}
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	return pareto.WriteText(stdio.Stdout, res)
}

// studyDirs expands each argument that is not a study directory (no
// manifest.json) into the studies under it (result.ListStudies), so a
// results root compares every study in it.
func studyDirs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		if _, err := os.Stat(filepath.Join(a, result.ManifestFile)); err == nil {
			out = append(out, a)
			continue
		}
		infos, err := result.ListStudies(a)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, in := range infos {
			if in.Error == "" {
				out = append(out, in.Dir)
				n++
			}
		}
		if n == 0 {
			return nil, errs.BadInput(fmt.Errorf("%s holds no readable study directory", a), "pass directories made by llem eval (they hold manifest.json)")
		}
	}
	return out, nil
}

func writeParetoFigure(path, ext string, res *pareto.Result) error {
	f := studyreport.ParetoFigure(res)
	if f == nil {
		return errs.BadInput(fmt.Errorf("--figure: no configuration has both %s and %s to draw", res.X.Metric, res.Y.Metric), "drop --figure or pick metrics the runs have")
	}
	var b []byte
	var err error
	if ext == ".png" {
		b, err = f.PNG()
	} else {
		b, err = f.SVG(true)
	}
	if err != nil {
		return err
	}
	return result.WriteFileAtomic(path, b)
}
