package main

import (
	"encoding/json"
	"fmt"

	"github.com/llenergymeasure/llem/pkg/carbon"
	studyreport "github.com/llenergymeasure/llem/pkg/report"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

type resultsShowCmd struct {
	Dir  string `arg:"" help:"Study directory (made by llem eval)." type:"existingdir"`
	JSON bool   `help:"Print the summary as JSON on stdout."`
	statsFlags
	carbonFlags
}

// showJSON is llem results show --json.
type showJSON struct {
	Dir    string              `json:"dir"`
	Study  string              `json:"study"`
	Status string              `json:"status"`
	Stats  *stats.StudySummary `json:"stats"`
	CO2    carbon.Estimate     `json:"co2" doc:"whole study, valid cycles"`
}

func (c *resultsShowCmd) Run(stdio *IO, cfg *UserConfig) error {
	uc, err := cfg.Load()
	if err != nil {
		return err
	}
	s, sum, err := summarise(stdio.Stderr, c.Dir, c.statsFlags)
	if err != nil {
		return err
	}
	cc, err := c.resolve(s.Carbon, uc)
	if err != nil {
		return err
	}
	co2 := result.StudyCO2(s.Records, cc)
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(showJSON{Dir: c.Dir, Study: s.Name(), Status: s.Manifest.Status, Stats: sum, CO2: co2})
	}
	fmt.Fprintf(stdio.Stdout, "study %s (%s): %d runs, %d records, %s\n\n", s.Name(), s.Manifest.Status, len(sum.Runs), len(s.Records), c.Dir)
	if err := stats.NewTextReporter(sum)(stdio.Stdout); err != nil {
		return err
	}
	studyreport.TerminalBars(stdio.Stdout, sum)
	if co2.CO2Grams != nil {
		fmt.Fprintf(stdio.Stdout, "CO2 (raw energy %.4g J, valid cycles): %.4g g (%s, %.4g g/kWh, PUE %.3g; %s)\n",
			co2.EnergyJ, *co2.CO2Grams, co2.Method, *co2.IntensityGPerKWh, co2.PUE, co2.Source)
	} else {
		fmt.Fprintf(stdio.Stdout, "CO2: not estimated (%s)\n", co2.Absent)
	}
	return nil
}
