package measure

import "github.com/llenergymeasure/llem/pkg/result"

// FillRecord copies what a window adds to the record's energy beyond the
// totals the study loop fills: the all-domains total, the domains the
// efficiency ratios cover, every phase with its share (prefill, decode,
// host: they sum to raw_j), per-domain energies keyed by domain, and each
// per-device entry's domain (matched by device ID, DeviceEnergy.Name).
// Call it after PerDevice is filled.
func (w *Window) FillRecord(en *result.Energy) {
	if w == nil || en == nil {
		return
	}
	en.AllDomainsJ = ptr(w.AllDomainsJ)
	en.EfficiencyDomains = append([]string(nil), w.EfficiencyDomains...)
	en.PerDomainJ = map[string]float64{}
	for _, d := range w.Domains {
		en.PerDomainJ[d.Domain] = d.EnergyJ
	}
	for i := range en.PerDevice {
		for _, d := range w.Devices {
			if d.ID == en.PerDevice[i].Name {
				en.PerDevice[i].Domain, en.PerDevice[i].Excluded = d.Domain, d.Counted && !d.InTotal
			}
		}
	}
	en.Phases = nil
	for _, p := range w.Phases {
		en.Phases = append(en.Phases, result.PhaseShare{Name: p.Name, DurationS: p.DurationS, EnergyJ: p.EnergyJ, Share: p.Share, AdjustedJ: p.AdjustedEnergyJ})
	}
}
