package result

import "github.com/llenergymeasure/llem/pkg/carbon"

// TotalEnergyJ is a study's measured energy: the raw window energy summed
// over its records with status ok. ok is false when none of them has a
// measured energy. summary.json's total_energy_j and the study-wide CO2
// (StudyCO2) both use it, so eval and llem results show agree.
func TotalEnergyJ(recs []*Record) (joules float64, ok bool) {
	for _, r := range recs {
		if r.Status == StatusOK && r.Energy.RawJ != nil {
			joules += *r.Energy.RawJ
			ok = true
		}
	}
	return joules, ok
}

// StudyCO2 is the one study-wide CO2 total: the estimate for TotalEnergyJ
// under cc (absent, with the reason, when cc gives no intensity).
func StudyCO2(recs []*Record, cc carbon.Config) carbon.Estimate {
	joules, _ := TotalEnergyJ(recs)
	return carbon.Compute(joules, cc)
}

// CarbonEnergyJ is the energy one record's CO2 estimate uses (the
// exporters' per-row co2_g): the same basis as its efficiency ratios,
// baseline-adjusted when that is the basis, else raw; 0 when unmeasured.
func CarbonEnergyJ(r *Record) float64 {
	if r.Energy.BaselineAdjustedJ != nil && r.Efficiency.Basis == "baseline_adjusted" {
		return *r.Energy.BaselineAdjustedJ
	}
	if r.Energy.RawJ != nil {
		return *r.Energy.RawJ
	}
	return 0
}

// FillCO2 sets r.CO2 to the estimate under cc of the energy CarbonEnergyJ
// names (the exporters' per-row co2_g is the same number); nil when r has
// no measured energy.
func (r *Record) FillCO2(cc carbon.Config) {
	r.CO2 = RecordCO2(r, cc)
}

// RecordCO2 is r's CO2 estimate under cc, computed as carbon.Estimate.Scale
// of the one-joule estimate (as the Parquet writer does per row); nil when
// r has no measured energy.
func RecordCO2(r *Record, cc carbon.Config) *carbon.Estimate {
	if r.Energy.RawJ == nil {
		return nil
	}
	e := carbon.Compute(1, cc).Scale(CarbonEnergyJ(r))
	return &e
}
