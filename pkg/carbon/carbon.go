// Package carbon turns measured energy into an estimate of CO2-equivalent
// emissions: grams = kWh × PUE × grid intensity (gCO2e/kWh).
//
// It is a derived number, kept apart from the measurement and labelled with
// how it was obtained. It is never invented: with neither an explicit
// intensity nor a known region the estimate is absent, with the reason.
package carbon

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/internal/errs"
)

// Estimation methods recorded in Estimate.Method.
const (
	MethodUserIntensity   = "user_intensity"   // intensity_g_per_kwh given by the study, user config or env
	MethodRegionalAverage = "regional_average" // built-in annual country average
)

// Config is the `carbon` block of a study and of the user config. Every
// field is optional; pointers tell "unset" from zero.
type Config struct {
	// IntensityGPerKWh is the grid carbon intensity to use, gCO2e/kWh.
	IntensityGPerKWh *float64 `json:"intensity_g_per_kwh,omitempty" yaml:"intensity_g_per_kwh,omitempty"`
	// Region selects a built-in annual average: ISO 3166 alpha-3 or alpha-2
	// code, or country name ("FRA", "fr", "France").
	Region string `json:"region,omitempty" yaml:"region,omitempty"`
	// PUE is the data centre's power usage effectiveness (≥ 1); 1 if unset.
	PUE *float64 `json:"pue,omitempty" yaml:"pue,omitempty"`
	// Source names where IntensityGPerKWh came from, for the record.
	Source string `json:"source,omitempty" yaml:"source,omitempty"`
}

// Merge returns c with each unset field taken from fallback: a study's
// carbon block wins over the user config, field by field. An explicit
// intensity in c also shadows a region from fallback (and vice versa), so
// that a study's choice of one kind is not mixed with the other.
func (c Config) Merge(fallback Config) Config {
	out := c
	if out.IntensityGPerKWh == nil && out.Region == "" {
		out.IntensityGPerKWh = fallback.IntensityGPerKWh
		out.Region = fallback.Region
		if out.Source == "" {
			out.Source = fallback.Source
		}
	}
	if out.PUE == nil {
		out.PUE = fallback.PUE
	}
	return out
}

// Validate reports values that cannot be right, with a fix.
func (c Config) Validate() error {
	if c.IntensityGPerKWh != nil && (*c.IntensityGPerKWh < 0 || *c.IntensityGPerKWh > 2000) {
		return errs.BadInput(fmt.Errorf("carbon.intensity_g_per_kwh = %g is outside 0..2000 gCO2e/kWh", *c.IntensityGPerKWh),
			"grid intensities range from ~10 (hydro/nuclear) to ~1000 (coal); check the units are gCO2e per kWh")
	}
	if c.PUE != nil && (*c.PUE < 1 || *c.PUE > 5) {
		return errs.BadInput(fmt.Errorf("carbon.pue = %g must be between 1 and 5", *c.PUE),
			"PUE is facility energy / IT energy: 1.0 for none, ~1.1-1.6 for data centres")
	}
	if c.Region != "" {
		if _, err := Lookup(c.Region); err != nil {
			return err
		}
	}
	return nil
}

// Region is one built-in table entry.
type Region struct {
	ISO3             string  `json:"iso3"`
	ISO2             string  `json:"iso2"`
	Name             string  `json:"name"`
	IntensityGPerKWh float64 `json:"intensity_g_per_kwh"`
	Year             int     `json:"year"`
}

// Regions lists the built-in table, sorted by ISO3 code.
func Regions() []Region {
	out := make([]Region, len(table))
	for i, e := range table {
		out[i] = Region{e.iso3, e.iso2, e.name, e.g, TableYear}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ISO3 < out[j].ISO3 })
	return out
}

// ErrUnknownRegion is returned by Lookup for a region not in the table.
var ErrUnknownRegion = errors.New("unknown carbon region")

// Lookup finds a region by ISO3, ISO2 or name, case-insensitively.
func Lookup(region string) (Region, error) {
	r := strings.TrimSpace(region)
	for _, e := range table {
		if strings.EqualFold(r, e.iso3) || strings.EqualFold(r, e.iso2) || strings.EqualFold(r, e.name) {
			return Region{e.iso3, e.iso2, e.name, e.g, TableYear}, nil
		}
	}
	return Region{}, errs.BadInput(fmt.Errorf("%w %q", ErrUnknownRegion, region),
		"use an ISO country code such as FRA, DEU or USA (llem has a table of 60 countries), or set carbon.intensity_g_per_kwh")
}

// Estimate is the derived CO2 figure for one amount of energy.
type Estimate struct {
	// CO2Grams is absent (nil) when no intensity is known; Absent says why.
	CO2Grams         *float64 `json:"co2_g"`
	EnergyJ          float64  `json:"energy_j"`
	IntensityGPerKWh *float64 `json:"intensity_g_per_kwh"`
	PUE              float64  `json:"pue"`
	Region           string   `json:"region,omitempty"`
	Method           string   `json:"estimation_method,omitempty"`
	Source           string   `json:"source,omitempty"`
	Absent           string   `json:"absent_reason,omitempty"`
}

// JoulesPerKWh converts energy units.
const JoulesPerKWh = 3.6e6

// Compute estimates the emissions of energyJ under c. An invalid config
// (unknown region) yields an absent estimate whose reason is the error.
func Compute(energyJ float64, c Config) Estimate {
	e := Estimate{EnergyJ: energyJ, PUE: 1}
	if c.PUE != nil {
		e.PUE = *c.PUE
	}
	var intensity float64
	switch {
	case c.IntensityGPerKWh != nil:
		intensity = *c.IntensityGPerKWh
		e.Method = MethodUserIntensity
		e.Region = c.Region
		e.Source = c.Source
		if e.Source == "" {
			e.Source = "user-specified intensity_g_per_kwh"
		}
	case c.Region != "":
		r, err := Lookup(c.Region)
		if err != nil {
			e.Absent = err.Error()
			return e
		}
		intensity = r.IntensityGPerKWh
		e.Method = MethodRegionalAverage
		e.Region = r.ISO3
		e.Source = fmt.Sprintf("%s, %d annual average for %s", TableSource, TableYear, r.Name)
	default:
		e.Absent = "no carbon intensity: set carbon.region or carbon.intensity_g_per_kwh in the study or the user config (or LLEM_CARBON_REGION / LLEM_CARBON_INTENSITY)"
		return e
	}
	g := energyJ / JoulesPerKWh * e.PUE * intensity
	e.CO2Grams = &g
	e.IntensityGPerKWh = &intensity
	return e
}

// Scale returns the estimate for energyJ given the estimate for 1 J under
// the same config: callers exporting many rows resolve the config once.
func (e Estimate) Scale(energyJ float64) Estimate {
	out := e
	out.EnergyJ = energyJ
	if e.CO2Grams != nil {
		g := *e.CO2Grams / e.EnergyJ * energyJ
		out.CO2Grams = &g
	}
	return out
}
