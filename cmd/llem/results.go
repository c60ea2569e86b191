package main

import (
	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

// resultsCmd groups the commands that read study directories.
type resultsCmd struct {
	Show    resultsShowCmd    `cmd:"" help:"Summarise a study: per-run means with bootstrap CIs and flags."`
	Compare resultsCompareCmd `cmd:"" help:"Compare studies run by run: config differences, metric differences, CI overlap."`
	Ls      resultsLsCmd      `cmd:"" help:"List studies under the results root with date, runs and status."`
	Export  resultsExportCmd  `cmd:"" help:"Export a study as JSON, Parquet or a Hugging Face dataset."`
	Report  resultsReportCmd  `cmd:"" help:"Write an HTML report with figures of one or more studies."`
}

// statsFlags are the bootstrap settings shared by show and compare.
type statsFlags struct {
	Resamples int     `help:"Bootstrap resamples per CI." default:"1000"`
	Seed      uint64  `help:"Bootstrap seed." default:"42"`
	Level     float64 `help:"Confidence level of the intervals." default:"0.95"`
}

// carbonFlags override the user config's carbon settings for one command.
type carbonFlags struct {
	CarbonRegion    string   `name:"carbon-region" help:"Grid region for CO2 (ISO country code); overrides the user config."`
	CarbonIntensity *float64 `name:"carbon-intensity" help:"Grid intensity in gCO2e/kWh for CO2; overrides region and the user config."`
	PUE             *float64 `name:"pue" help:"Data-centre PUE for CO2 (default 1)."`
}

// resolve merges, highest first: the flags, the study's carbon block, the
// user config (with its environment overrides).
func (f carbonFlags) resolve(study carbon.Config, uc *userconfig.Loaded) (carbon.Config, error) {
	c := carbon.Config{Region: f.CarbonRegion, IntensityGPerKWh: f.CarbonIntensity, PUE: f.PUE}.Merge(study)
	if uc != nil {
		c = c.Merge(uc.Carbon)
	}
	return c, c.Validate()
}

// summarise loads dir and computes its statistics. The methodology mode
// comes from the study's own summary (steady_state when any run stopped
// early on steady state).
func summarise(dir string, f statsFlags) (*exporters.Study, *stats.StudySummary, error) {
	s, err := exporters.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(s.Records) == 0 {
		return nil, nil, errs.BadInput(errNoRecords(dir), "the study has not finished a run yet; llem results ls shows its status")
	}
	mode := stats.ModeFixedCycles
	if s.Summary != nil {
		for _, r := range s.Summary.Runs {
			if r.SteadyState.StoppedBy == "steady_state" {
				mode = stats.ModeSteadyState
			}
		}
	}
	acc := stats.NewSummary(stats.SummaryOptions{Mode: mode, Bootstrap: stats.Options{Resamples: f.Resamples, Seed: f.Seed, Level: f.Level}})
	for _, r := range s.Records {
		acc.Add(r)
	}
	return s, acc.Close(), nil
}

type noRecordsError struct{ dir string }

func (e noRecordsError) Error() string { return "no records in " + e.dir + "/" + result.RecordsDir }

func errNoRecords(dir string) error { return noRecordsError{dir} }
