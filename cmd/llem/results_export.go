package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/llenergymeasure/llem/exporters"
	_ "github.com/llenergymeasure/llem/exporters/csv"     // registers csv
	_ "github.com/llenergymeasure/llem/exporters/hf"      // registers hf-datasets
	_ "github.com/llenergymeasure/llem/exporters/json"    // registers json
	_ "github.com/llenergymeasure/llem/exporters/parquet" // registers parquet
	"github.com/llenergymeasure/llem/pkg/result"
)

type resultsExportCmd struct {
	Dirs    []string `arg:"" name:"dir" help:"Study directories (made by llem eval); several are exported as one dataset, rows keeping their study." type:"existingdir" predictor:"dir"`
	Format  string   `help:"json, csv, parquet or hf-datasets." enum:"json,csv,parquet,hf-datasets" default:"json"`
	Out     string   `short:"o" help:"Output file (json, csv, parquet: the per-run statistics go beside it, x.runs.csv / x.runs.parquet) or directory (hf-datasets). Default: stdout for json, <study>.csv, <study>.parquet, <study>-hf/." type:"path" predictor:"path"`
	JSONL   bool     `name:"jsonl" help:"json: one record per line instead of one object with records and per-run statistics."`
	License string   `help:"hf-datasets: licence identifier for the dataset card." default:"cc-by-4.0"`
	Force   bool     `help:"Replace an existing export at the destination (it is replaced whole, only once the new one is complete)."`
	carbonFlags
}

func (c *resultsExportCmd) Run(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	uc, err := cfg.Load()
	if err != nil {
		return err
	}
	studies := make([]*result.Study, 0, len(c.Dirs))
	for _, dir := range c.Dirs {
		s, err := loadStudy(stdio.Stderr, dir)
		if err != nil {
			return err
		}
		studies = append(studies, s)
	}
	// The first study's carbon block, overridden by the flags, applies to
	// every study of the export: one intensity for one dataset.
	cc, err := c.resolve(studies[0].Carbon, uc)
	if err != nil {
		return err
	}
	format, err := exporters.Lookup(c.Format)
	if err != nil {
		return err
	}
	set := exporters.NewSet(studies...)
	out := c.Out
	if out == "" {
		out = format.DefaultDest(result.Slug(set.Name()))
	}
	dests := []string{out}
	if format.Beside != nil {
		dests = append(dests, format.Beside(out)...)
	}
	for _, d := range dests {
		if err := exporters.CheckDest(d, c.Force); err != nil {
			return err
		}
	}
	e, err := format.New(exporters.Params{Dest: out, Stdout: stdio.Stdout, JSONL: c.JSONL, License: c.License, Carbon: cc})
	if err != nil {
		return err
	}
	if err := e.Export(ctx, set); err != nil {
		return err
	}
	if out != "" && out != "-" {
		abs, _ := filepath.Abs(out)
		fmt.Fprintf(stdio.Stderr, "wrote %d records: %s\n", len(set.Records()), strings.Replace(e.Description(), out, abs, 1))
	}
	return nil
}
