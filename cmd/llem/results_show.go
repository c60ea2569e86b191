package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/llenergymeasure/llem/pkg/carbon"
	studyreport "github.com/llenergymeasure/llem/pkg/report"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

type resultsShowCmd struct {
	Dir  string `arg:"" help:"Study directory (made by llem eval)." type:"existingdir" predictor:"dir"`
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
	// RunsCO2 is each run's CO2 over its valid cycles (result.RecordCO2
	// summed), in the summary's run order.
	RunsCO2 []runCO2 `json:"runs_co2"`
}

// runCO2 is one run's CO2: total and mean per valid cycle (null without an
// intensity or energy).
type runCO2 struct {
	RunID        string   `json:"run_id"`
	Cycles       int      `json:"cycles" doc:"valid cycles with measured energy"`
	CO2Grams     *float64 `json:"co2_g"`
	MeanCO2Grams *float64 `json:"mean_co2_g_per_cycle"`
}

// runsCO2 sums each run's per-record CO2 (valid cycles only, as the study
// total) under cc.
func runsCO2(recs []*result.Record, sum *stats.StudySummary, cc carbon.Config) []runCO2 {
	by := map[string]*runCO2{}
	out := make([]runCO2, len(sum.Runs))
	for i, r := range sum.Runs {
		out[i].RunID = r.RunID
		by[r.RunID] = &out[i]
	}
	for _, r := range recs {
		x := by[r.RunID]
		if x == nil || r.Status != result.StatusOK {
			continue
		}
		if e := result.RecordCO2(r, cc); e != nil && e.CO2Grams != nil {
			x.Cycles++
			g := *e.CO2Grams
			if x.CO2Grams != nil {
				g += *x.CO2Grams
			}
			x.CO2Grams = &g
		}
	}
	for i := range out {
		if out[i].CO2Grams != nil {
			m := *out[i].CO2Grams / float64(out[i].Cycles)
			out[i].MeanCO2Grams = &m
		}
	}
	return out
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
	perRun := runsCO2(s.Records, sum, cc)
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(showJSON{Dir: c.Dir, Study: s.Name(), Status: s.Manifest.Status, Stats: sum, CO2: co2, RunsCO2: perRun})
	}
	fmt.Fprintf(stdio.Stdout, "study %s (%s): %d runs, %d records, %s\n\n", s.Name(), s.Manifest.Status, len(sum.Runs), len(s.Records), c.Dir)
	if err := stats.NewTextReporter(sum)(stdio.Stdout); err != nil {
		return err
	}
	studyreport.TerminalBars(stdio.Stdout, sum)
	printFailures(stdio.Stdout, s.Records)
	if co2.CO2Grams != nil {
		for _, r := range perRun {
			if r.CO2Grams != nil {
				fmt.Fprintf(stdio.Stdout, "CO2 run %s: %.4g g over %d valid cycles (%.4g g per cycle)\n", r.RunID, *r.CO2Grams, r.Cycles, *r.MeanCO2Grams)
			}
		}
		fmt.Fprintf(stdio.Stdout, "CO2 (raw energy %.4g J, valid cycles): %.4g g (%s, %.4g g/kWh, PUE %.3g; %s)\n",
			co2.EnergyJ, *co2.CO2Grams, co2.Method, *co2.IntensityGPerKWh, co2.PUE, co2.Source)
	} else {
		fmt.Fprintf(stdio.Stdout, "CO2: not estimated (%s)\n", co2.Absent)
	}
	return nil
}

// printFailures says why each failed cycle failed: the record's error kind
// and the first line of its message (the table only counts them).
func printFailures(w io.Writer, recs []*result.Record) {
	first := true
	for _, r := range recs {
		if r.Status != result.StatusFailed || r.Error == nil {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nfailed cycles:")
			first = false
		}
		fmt.Fprintf(w, "  %s cycle %d: %s: %s\n", shortRunID(r.RunID), r.Cycle, r.Error.Kind, firstLineOf(r.Error.Message))
	}
}

func shortRunID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
