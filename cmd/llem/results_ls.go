package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/slurm"
)

type resultsLsCmd struct {
	Root string `help:"Results root (default: results_dir from the user config or LLEM_RESULTS_DIR, else ./results)." type:"path"`
	JSON bool   `help:"Print the list as JSON on stdout."`
}

func (c *resultsLsCmd) Run(stdio *IO, cfg *UserConfig) error {
	root := c.Root
	if root == "" {
		uc, err := cfg.Load()
		if err != nil {
			return err
		}
		root = uc.ResultsDir
	}
	list, err := result.ListStudies(root)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		if list == nil {
			list = []result.StudyInfo{}
		}
		return enc.Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintf(stdio.Stdout, "no studies under %s\n", root)
		return nil
	}
	tw := tabwriter.NewWriter(stdio.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STARTED (UTC)\tSTUDY\tSTATUS\tRUNS\tDONE/TOTAL\tFAILED\tDIR")
	for _, in := range list {
		started := "-"
		if !in.StartedAt.IsZero() {
			started = in.StartedAt.UTC().Format(time.DateTime)
		}
		status := in.Status
		if in.Error != "" {
			status += ": " + in.Error
		}
		if pr, err := slurm.Watch(context.Background(), in.Dir); err == nil && pr.Live {
			status += fmt.Sprintf(" (slurm: %d queued, %d running)", pr.Queued, pr.Running)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d/%d\t%d\t%s\n", started, in.Study, status, in.Runs, in.Counts.Done, in.Counts.Total, in.Counts.Failed, in.Dir)
	}
	return tw.Flush()
}
