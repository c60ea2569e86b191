package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/llenergymeasure/llem/exporters"
	_ "github.com/llenergymeasure/llem/exporters/hf"      // registers hf-datasets
	_ "github.com/llenergymeasure/llem/exporters/json"    // registers json
	_ "github.com/llenergymeasure/llem/exporters/parquet" // registers parquet
	"github.com/llenergymeasure/llem/pkg/result"
)

type resultsExportCmd struct {
	Dir     string `arg:"" help:"Study directory (made by llem eval)." type:"existingdir"`
	Format  string `help:"json, parquet or hf-datasets." enum:"json,parquet,hf-datasets" default:"json"`
	Out     string `help:"Output file (json, parquet) or directory (hf-datasets). Default: stdout for json, <study>.parquet, <study>-hf/." type:"path"`
	JSONL   bool   `name:"jsonl" help:"json: one record per line instead of an array."`
	License string `help:"hf-datasets: licence identifier for the dataset card." default:"cc-by-4.0"`
	Force   bool   `help:"Replace an existing export at the destination (it is replaced whole, only once the new one is complete)."`
	carbonFlags
}

func (c *resultsExportCmd) Run(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	uc, err := cfg.Load()
	if err != nil {
		return err
	}
	s, err := loadStudy(stdio.Stderr, c.Dir)
	if err != nil {
		return err
	}
	cc, err := c.resolve(s.Carbon, uc)
	if err != nil {
		return err
	}
	format, err := exporters.Lookup(c.Format)
	if err != nil {
		return err
	}
	out := c.Out
	if out == "" {
		out = format.DefaultDest(result.Slug(s.Name()))
	}
	if err := exporters.CheckDest(out, c.Force); err != nil {
		return err
	}
	e, err := format.New(exporters.Params{Dest: out, Stdout: stdio.Stdout, JSONL: c.JSONL, License: c.License, Carbon: cc})
	if err != nil {
		return err
	}
	if err := e.Export(ctx, s); err != nil {
		return err
	}
	if out != "" && out != "-" {
		abs, _ := filepath.Abs(out)
		fmt.Fprintf(stdio.Stderr, "wrote %d records: %s\n", len(s.Records), strings.Replace(e.Description(), out, abs, 1))
	}
	return nil
}
