package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/exporters/hf"
	jsonexp "github.com/llenergymeasure/llem/exporters/json"
	pqexp "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

// exportFormats maps --format names to exporter constructors.
var exportFormats = map[string]exporters.Constructor{
	"json":        jsonexp.New,
	"parquet":     pqexp.New,
	"hf-datasets": hf.New,
}

type resultsExportCmd struct {
	Dir     string `arg:"" help:"Study directory (made by llem eval)." type:"existingdir"`
	Format  string `help:"json, parquet or hf-datasets." enum:"json,parquet,hf-datasets" default:"json"`
	Out     string `help:"Output file (json, parquet) or directory (hf-datasets). Default: stdout for json, <study>.parquet, <study>-hf/." type:"path"`
	JSONL   bool   `name:"jsonl" help:"json: one record per line instead of an array."`
	License string `help:"hf-datasets: licence identifier for the dataset card." default:"cc-by-4.0"`
	carbonFlags
}

func (c *resultsExportCmd) Run(ctx context.Context, stdio *IO) error {
	uc, err := userconfig.Load()
	if err != nil {
		return err
	}
	s, err := exporters.Load(c.Dir)
	if err != nil {
		return err
	}
	cc, err := c.resolve(s.Carbon, uc)
	if err != nil {
		return err
	}
	out := c.Out
	if out == "" {
		name := result.Slug(s.Name())
		switch c.Format {
		case "parquet":
			out = name + ".parquet"
		case "hf-datasets":
			out = name + "-hf"
		}
	}
	ctor, ok := exportFormats[c.Format]
	if !ok {
		names := make([]string, 0, len(exportFormats))
		for n := range exportFormats {
			names = append(names, n)
		}
		sort.Strings(names)
		return errs.BadInput(fmt.Errorf("unknown export format %q", c.Format), "use one of "+strings.Join(names, ", "))
	}
	e, err := ctor(exporters.Params{Dest: out, Stdout: stdio.Stdout, JSONL: c.JSONL, Carbon: cc})
	if err != nil {
		return err
	}
	if h, ok := e.(*hf.Exporter); ok {
		h.WithLicense(c.License)
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
