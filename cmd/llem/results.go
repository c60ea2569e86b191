package main

import (
	"fmt"
	"io"
	"path/filepath"

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
	Pareto  resultsParetoCmd  `cmd:"" help:"Pareto frontier of one or more studies over two metrics, CI-aware: frontier, dominated, possibly dominated."`
	Push    resultsPushCmd    `cmd:"" help:"Share a study's records with an llem archive or the Hugging Face Hub (shows what goes, asks first)."`
}

// statsFlags are the bootstrap settings shared by show and compare.
type statsFlags struct {
	Resamples int     `help:"Bootstrap resamples per CI (10000 keeps the endpoints' Monte Carlo error near 1% of the width: docs/results.md)." default:"10000"`
	Seed      uint64  `help:"Bootstrap seed." default:"42"`
	Level     float64 `help:"Confidence level of the intervals." default:"0.95"`
}

func (f statsFlags) options() stats.Options {
	return stats.Options{Resamples: f.Resamples, Seed: f.Seed, Level: f.Level}
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

// loadStudy reads dir and warns on stderr about every record file it did
// not use (missing, corrupt, another study's): the numbers shown cover the
// verified records only, and the user must know what was left out.
func loadStudy(stderr io.Writer, dir string) (*result.Study, error) {
	s, err := result.LoadStudy(dir)
	if err != nil {
		return nil, err
	}
	for _, p := range s.Problems {
		fmt.Fprintf(stderr, "warning: %s: skipped %s record: %s\n", filepath.Join(dir, filepath.FromSlash(p.Path)), p.Kind, p.Detail)
	}
	if len(s.Problems) > 0 {
		fmt.Fprintf(stderr, "warning: %d record file(s) skipped; llem eval --resume %s re-runs the slots they belong to\n", len(s.Problems), dir)
	}
	return s, nil
}

// summarise loads dir and summarises it with stats.SummariseStudy.
func summarise(stderr io.Writer, dir string, f statsFlags) (*result.Study, *stats.StudySummary, error) {
	s, err := loadStudy(stderr, dir)
	if err != nil {
		return nil, nil, err
	}
	sum, err := stats.SummariseStudy(s, f.options())
	if err != nil {
		return nil, nil, err
	}
	return s, sum, nil
}
