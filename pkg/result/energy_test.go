package result_test

import (
	"testing"

	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

func f64(v float64) *float64 { return &v }

func TestStudyCO2(t *testing.T) {
	recs := []*result.Record{
		{Status: result.StatusOK, Energy: result.Energy{RawJ: f64(1000), BaselineAdjustedJ: f64(600)}},
		{Status: result.StatusOK, Energy: result.Energy{RawJ: f64(2600)}},
		{Status: result.StatusFailed, Energy: result.Energy{RawJ: f64(5000)}}, // failed: not counted
		{Status: result.StatusOK}, // no sensor: not counted
	}
	if j, ok := result.TotalEnergyJ(recs); !ok || j != 3600 {
		t.Fatalf("TotalEnergyJ = %g, %v; want 3600, true", j, ok)
	}
	if _, ok := result.TotalEnergyJ(recs[3:]); ok {
		t.Error("TotalEnergyJ of records without energy: want ok=false")
	}
	est := result.StudyCO2(recs, carbon.Config{IntensityGPerKWh: f64(500), PUE: f64(1.5), Source: "grid"})
	if est.CO2Grams == nil || est.EnergyJ != 3600 {
		t.Fatalf("StudyCO2 = %+v", est)
	}
	if want := 3600 / carbon.JoulesPerKWh * 1.5 * 500; *est.CO2Grams != want {
		t.Errorf("co2_g = %g, want %g", *est.CO2Grams, want)
	}
	if est := result.StudyCO2(recs, carbon.Config{}); est.CO2Grams != nil || est.Absent == "" {
		t.Errorf("no intensity: want an absent estimate with a reason, got %+v", est)
	}
}

func TestCarbonEnergyJ(t *testing.T) {
	adjusted := &result.Record{Energy: result.Energy{RawJ: f64(10), BaselineAdjustedJ: f64(4)}, Efficiency: result.Efficiency{Basis: "baseline_adjusted"}}
	raw := &result.Record{Energy: result.Energy{RawJ: f64(10), BaselineAdjustedJ: f64(4)}, Efficiency: result.Efficiency{Basis: "raw"}}
	for _, c := range []struct {
		r    *result.Record
		want float64
	}{{adjusted, 4}, {raw, 10}, {&result.Record{}, 0}} {
		if got := result.CarbonEnergyJ(c.r); got != c.want {
			t.Errorf("CarbonEnergyJ(%+v) = %g, want %g", c.r.Energy, got, c.want)
		}
	}
}
