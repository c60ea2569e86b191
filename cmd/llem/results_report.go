package main

import (
	"bytes"
	"fmt"

	"github.com/llenergymeasure/llem/internal/version"
	studyreport "github.com/llenergymeasure/llem/pkg/report"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

type resultsReportCmd struct {
	Dirs      []string `arg:"" name:"dir" help:"Study directories (made by llem eval); several make a comparison." type:"existingdir" predictor:"dir"`
	Out       string   `short:"o" help:"HTML file to write ('-' for stdout)." default:"report.html" type:"path" predictor:"path"`
	Figures   string   `help:"Also write each figure as SVG (fonts embedded) and PNG (print size, 300 dpi) into this directory." type:"path"`
	Timelines int      `help:"Power timelines to draw, in executed order (-1: all)." default:"24"`
	statsFlags
}

func (c *resultsReportCmd) Help() string {
	return "Writes one self-contained HTML page (inline CSS and SVG, no scripts, no network fetches): study summary, per-configuration table with confidence intervals, and figures. See docs/results.md."
}

func (c *resultsReportCmd) Run(stdio *IO) error {
	o := stats.Options{Resamples: c.Resamples, Seed: c.Seed, Level: c.Level}
	var studies []*studyreport.Study
	for _, d := range c.Dirs {
		s, err := studyreport.Load(d, o)
		if err != nil {
			return err
		}
		studies = append(studies, s)
	}
	r, err := studyreport.Build(studies, studyreport.Options{MaxTimelines: c.Timelines, Level: c.Level})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf, version.String()); err != nil {
		return err
	}
	if c.Out == "-" {
		_, err = stdio.Stdout.Write(buf.Bytes())
		return err
	}
	if err := result.WriteFileAtomic(c.Out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stderr, "report: %s (%d figures, %d power timelines)\n", c.Out, len(r.Figures), len(r.Timelines))
	for name, probs := range r.Problems {
		for _, p := range probs {
			fmt.Fprintf(stdio.Stderr, "warning: figure %s: %s\n", name, p)
		}
	}
	if c.Figures != "" {
		paths, err := r.WriteFigures(c.Figures)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdio.Stderr, "figures: %d files in %s\n", len(paths), c.Figures)
	}
	return nil
}
