package carbon

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func fp(v float64) *float64 { return &v }

func TestCompute(t *testing.T) {
	cases := []struct {
		name       string
		energyJ    float64
		cfg        Config
		wantG      float64 // -1: absent
		wantMethod string
		absentPart string
	}{
		// 3.6 MJ = 1 kWh; 1 kWh × 400 g/kWh = 400 g.
		{"explicit intensity", 3.6e6, Config{IntensityGPerKWh: fp(400)}, 400, MethodUserIntensity, ""},
		{"explicit with PUE", 3.6e6, Config{IntensityGPerKWh: fp(400), PUE: fp(1.5)}, 600, MethodUserIntensity, ""},
		// France 2021: 67.39 g/kWh; 7.2 MJ = 2 kWh -> 134.78 g.
		{"region iso3", 7.2e6, Config{Region: "FRA"}, 134.78, MethodRegionalAverage, ""},
		{"region iso2 lower", 7.2e6, Config{Region: "fr"}, 134.78, MethodRegionalAverage, ""},
		{"region name", 3.6e6, Config{Region: "united states"}, 379.26, MethodRegionalAverage, ""},
		{"intensity beats region", 3.6e6, Config{Region: "POL", IntensityGPerKWh: fp(10)}, 10, MethodUserIntensity, ""},
		{"nothing set", 3.6e6, Config{}, -1, "", "no carbon intensity"},
		{"unknown region", 3.6e6, Config{Region: "Atlantis"}, -1, "", "unknown carbon region"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := Compute(c.energyJ, c.cfg)
			if c.wantG < 0 {
				if e.CO2Grams != nil || !strings.Contains(e.Absent, c.absentPart) {
					t.Fatalf("want absent (%q), got %+v", c.absentPart, e)
				}
				return
			}
			if e.CO2Grams == nil || math.Abs(*e.CO2Grams-c.wantG) > 1e-9 || e.Method != c.wantMethod || e.Source == "" {
				t.Fatalf("got %+v (co2 %v), want %v g via %s", e, e.CO2Grams, c.wantG, c.wantMethod)
			}
		})
	}
}

func TestMergeStudyOverUser(t *testing.T) {
	user := Config{Region: "DEU", PUE: fp(1.2)}
	study := Config{IntensityGPerKWh: fp(50)}
	m := study.Merge(user)
	if m.Region != "" || *m.IntensityGPerKWh != 50 || *m.PUE != 1.2 {
		t.Errorf("merge = %+v", m)
	}
	m = Config{}.Merge(user)
	if m.Region != "DEU" || *m.PUE != 1.2 {
		t.Errorf("empty study should inherit user config, got %+v", m)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{PUE: fp(0.9)}, {IntensityGPerKWh: fp(-1)}, {Region: "Narnia"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: want error", c)
		}
	}
	if err := (Config{Region: "SWE", PUE: fp(1.1), IntensityGPerKWh: fp(45)}).Validate(); err != nil {
		t.Error(err)
	}
	_, err := Lookup("xx")
	if !errors.Is(err, ErrUnknownRegion) {
		t.Errorf("Lookup error %v is not ErrUnknownRegion", err)
	}
}

func TestTableSane(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Regions() {
		if len(r.ISO3) != 3 || len(r.ISO2) != 2 || r.IntensityGPerKWh <= 0 || r.IntensityGPerKWh > 1200 {
			t.Errorf("bad entry %+v", r)
		}
		for _, k := range []string{r.ISO3, r.ISO2, strings.ToLower(r.Name)} {
			if seen[k] {
				t.Errorf("duplicate key %q", k)
			}
			seen[k] = true
		}
	}
}

func TestScaleMatchesCompute(t *testing.T) {
	for _, c := range []Config{{Region: "GBR", PUE: fp(1.4)}, {IntensityGPerKWh: fp(123)}, {}} {
		want := Compute(5e5, c)
		got := Compute(1, c).Scale(5e5)
		if (want.CO2Grams == nil) != (got.CO2Grams == nil) || (want.CO2Grams != nil && math.Abs(*want.CO2Grams-*got.CO2Grams) > 1e-9) ||
			want.Method != got.Method || want.Absent != got.Absent || got.EnergyJ != 5e5 {
			t.Errorf("%+v: Scale %+v, Compute %+v", c, got, want)
		}
	}
}
