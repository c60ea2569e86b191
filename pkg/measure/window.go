// Package measure turns a sampler Timeline plus worker timestamps into window
// energies: totals per device and summed, named phases that add up to the
// total, raw and idle-baseline-adjusted numbers side by side, and validity
// flags as data. docs/methodology.md explains every method and flag.
package measure

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/pkg/energy"
)

// Interval is a span of CLOCK_MONOTONIC time reported by a worker.
type Interval struct {
	StartNs int64 `json:"start_ns"`
	EndNs   int64 `json:"end_ns"`
}

// Phase is a named set of intervals inside a window (a worker reports one
// prefill and one decode interval per batch).
type Phase struct {
	Name      string     `json:"name"`
	Intervals []Interval `json:"intervals"`
}

// HostPhase receives the window energy no named phase covers: the time
// between batches and around them (tokenisation, scheduling, host-side
// work, gaps). With it every window's energy is fully attributed: the
// phases sum to the window energy (PhaseSumTolerance).
const HostPhase = "host"

// OtherPhase is the name HostPhase had before it was made explicit.
//
// Deprecated: use HostPhase.
const OtherPhase = HostPhase

// PhaseSumTolerance: a window whose phases sum to more than this relative
// difference from its energy is flagged phase_sum_mismatch (0.1 %).
const PhaseSumTolerance = 0.001

// Options tune window computation and the validity checks; zero values take
// the defaults documented on each field.
type Options struct {
	// MinWindow: shorter windows are flagged window_too_short (10 s, as the
	// Python original; ML.ENERGY wants 30 s of steady state).
	MinWindow time.Duration
	// CounterMinPeriods: the counter is used only when the sampled span inside
	// the window covers at least this many counter update periods (2);
	// shorter windows are integrated from instant power and flagged.
	CounterMinPeriods float64
	// DisagreeThreshold: |power integral − counter| / counter above this (0.05)
	// is flagged; checked only on spans of at least CrossCheckMin (5 s),
	// because shorter ones are dominated by counter quantisation (h100-facts:
	// −5.7 % at 1.15 s, −0.3 % at 21 s).
	DisagreeThreshold float64
	CrossCheckMin     time.Duration
	// GapFactor: a gap between samples above GapFactor × interval is flagged (3).
	GapFactor float64
	// TempMinC, TempMaxC: GPU temperature sanity range (20–95 °C, ML.ENERGY).
	TempMinC, TempMaxC float64
	// DriftMaxC: temperature change across the window above this is flagged (10 °C).
	DriftMaxC float64
	// Baseline, when set, adds idle-adjusted energies and the idle power check.
	Baseline *Baseline
}

func (o *Options) defaults() {
	if o.MinWindow == 0 {
		o.MinWindow = 10 * time.Second
	}
	if o.CounterMinPeriods == 0 {
		o.CounterMinPeriods = 2
	}
	if o.DisagreeThreshold == 0 {
		o.DisagreeThreshold = 0.05
	}
	if o.CrossCheckMin == 0 {
		o.CrossCheckMin = 5 * time.Second
	}
	if o.GapFactor == 0 {
		o.GapFactor = 3
	}
	if o.TempMinC == 0 && o.TempMaxC == 0 {
		o.TempMinC, o.TempMaxC = 20, 95
	}
	if o.DriftMaxC == 0 {
		o.DriftMaxC = 10
	}
}

// Window is the measured energy of one span of time.
type Window struct {
	Name      string  `json:"name"`
	StartNs   int64   `json:"start_ns"`
	EndNs     int64   `json:"end_ns"`
	DurationS float64 `json:"duration_s"`
	Sensor    string  `json:"sensor"`
	// Method is the weakest method any counted device used in this window.
	Method           energy.Method `json:"method"`
	SampleIntervalMs float64       `json:"sample_interval_ms"`
	// EnergyJ is the raw total over counted devices of the efficiency
	// domains (never baseline-adjusted): what efficiency ratios divide.
	EnergyJ float64 `json:"energy_j"`
	// AllDomainsJ is the raw total over every counted device, whatever its
	// domain: EnergyJ plus the domains left out of energy.domains.
	AllDomainsJ float64 `json:"all_domains_j"`
	// EfficiencyDomains are the domains EnergyJ covers (those measured
	// among energy.domains).
	EfficiencyDomains []string `json:"efficiency_domains,omitempty"`
	// Domains is the energy per domain, every counted device included.
	Domains []DomainEnergy `json:"domains,omitempty"`
	// AdjustedEnergyJ = EnergyJ − idle power × duration, when a baseline is
	// known; reported next to EnergyJ, never instead of it.
	AdjustedEnergyJ *float64      `json:"adjusted_energy_j,omitempty"`
	IdlePowerW      *float64      `json:"idle_power_w,omitempty"`
	BaselineMethod  string        `json:"baseline_method,omitempty"`
	MeanPowerW      float64       `json:"mean_power_w"`
	Devices         []Device      `json:"devices"`
	Phases          []PhaseEnergy `json:"phases,omitempty"`
	Flags           []Flag        `json:"flags,omitempty"`
}

// DomainEnergy is one domain's energy in a window.
type DomainEnergy struct {
	Domain  string   `json:"domain"`
	EnergyJ float64  `json:"energy_j"`
	Devices []string `json:"devices"`
	// InTotal: the domain is among energy.domains and counts in EnergyJ.
	InTotal bool `json:"in_total"`
}

// Device is one channel's share of a window.
type Device struct {
	ID     string        `json:"id"`
	Kind   string        `json:"kind"`
	Domain string        `json:"domain"`
	Device string        `json:"device,omitempty"`
	Sensor string        `json:"sensor"`
	Method energy.Method `json:"method"`
	// Counted is false for channels contained in another (RAPL core in
	// package); they are shown but not added into totals.
	Counted bool `json:"counted"`
	// InTotal is Counted and of a domain in energy.domains: the device's
	// energy is part of the window's EnergyJ.
	InTotal bool `json:"in_total"`
	// Available is false when the window has no usable samples for this
	// channel; then EnergyJ is 0 and Unavailable says why.
	Available   bool    `json:"available"`
	Unavailable string  `json:"unavailable,omitempty"`
	EnergyJ     float64 `json:"energy_j"`
	// CounterJ and IntegralJ are the cross-check over the span between the
	// first and last sample inside the window; Disagreement = (integral −
	// counter) / counter.
	CounterJ        *float64 `json:"counter_j,omitempty"`
	IntegralJ       *float64 `json:"integral_j,omitempty"`
	Disagreement    *float64 `json:"disagreement,omitempty"`
	AdjustedEnergyJ *float64 `json:"adjusted_energy_j,omitempty"`
	IdlePowerW      *float64 `json:"idle_power_w,omitempty"`
	MeanPowerW      float64  `json:"mean_power_w"`
	MaxPowerW       *float64 `json:"max_power_w,omitempty"`
	MaxTempC        *float64 `json:"max_temp_c,omitempty"`
	Samples         int      `json:"samples"`
	phase           []float64
}

// PhaseEnergy is a named phase's share; the phases (with "host") sum to the
// window's EnergyJ.
type PhaseEnergy struct {
	Name      string  `json:"name"`
	Intervals int     `json:"intervals"`
	DurationS float64 `json:"duration_s"`
	EnergyJ   float64 `json:"energy_j"`
	// Share is EnergyJ / the window's EnergyJ.
	Share           float64            `json:"share"`
	AdjustedEnergyJ *float64           `json:"adjusted_energy_j,omitempty"`
	Devices         map[string]float64 `json:"devices"`
}

// Severity of a flag: warnings question a number, info explains it.
const (
	SeverityWarning = "warning"
	SeverityInfo    = "info"
)

// Flag codes (docs/methodology.md describes each).
const (
	FlagWindowTooShort       = "window_too_short"
	FlagShortWindowIntegral  = "short_window_power_integrated"
	FlagDisagreement         = "counter_integral_disagreement"
	FlagPowerAboveLimit      = "power_above_limit"
	FlagPowerBelowIdle       = "power_below_idle"
	FlagTempOutOfRange       = "temperature_out_of_range"
	FlagThermalDrift         = "thermal_drift"
	FlagThermalThrottle      = "thermal_throttling"
	FlagPowerThrottle        = "power_throttling"
	FlagSamplerGap           = "sampler_gap"
	FlagReadErrors           = "sensor_read_errors"
	FlagOutsideTimeline      = "window_outside_timeline"
	FlagChannelUnavailable   = "channel_unavailable"
	FlagBelowBaseline        = "below_baseline"
	FlagPhaseOverlap         = "phase_overlap"
	FlagPhaseOutsideWindow   = "phase_outside_window"
	FlagNoPowerSamples       = "no_power_samples"
	FlagBaselineStale        = "baseline_missing_device"
	FlagPhaseSumMismatch     = "phase_sum_mismatch"
	FlagBaselineNotIdle      = "baseline_not_idle"
	FlagPartitionParent      = energy.CaveatPartitionParent
	FlagEstimateUsed         = energy.CaveatEstimate
	FlagMIGParent            = energy.CaveatMIGParent
	FlagAveragePowerTimeline = energy.CaveatAveragePower
)

// Flag is one validity finding, stored in the result.
type Flag struct {
	Code     string   `json:"code"`
	Severity string   `json:"severity"`
	Channel  string   `json:"channel,omitempty"`
	Message  string   `json:"message"`
	Value    *float64 `json:"value,omitempty"`
}

// Compute measures [startNs, endNs] on tl, splitting it into phases.
func Compute(tl *energy.Timeline, name string, startNs, endNs int64, phases []Phase, opt Options) (*Window, error) {
	if tl == nil {
		return nil, fmt.Errorf("measure window %s: no timeline", name)
	}
	if endNs <= startNs {
		return nil, fmt.Errorf("measure window %s: end %d not after start %d", name, endNs, startNs)
	}
	opt.defaults()
	T := float64(endNs-startNs) / 1e9
	w := &Window{Name: name, StartNs: startNs, EndNs: endNs, DurationS: T, Sensor: tl.Sensor,
		SampleIntervalMs: float64(tl.IntervalNs) / 1e6, Method: energy.MethodNone}
	if T < opt.MinWindow.Seconds() {
		w.flag(FlagWindowTooShort, SeverityWarning, "", fmt.Sprintf("window is %.2f s, shorter than the %.0f s minimum: energy values may be unreliable; use more prompts or longer sequences", T, opt.MinWindow.Seconds()), T)
	}
	ph := clipPhases(w, phases, startNs, endNs)

	rank := map[energy.Method]int{energy.MethodNone: -1, energy.MethodCounter: 0, energy.MethodPowerIntegration: 1, energy.MethodEstimateTDP: 2}
	var idleSum float64
	haveIdle := opt.Baseline != nil
	seenCaveat := map[string]bool{}
	for i := range tl.Channels {
		c := &tl.Channels[i]
		d := computeDevice(w, c, startNs, endNs, ph, tl.IntervalNs, opt)
		for _, cv := range c.Warnings {
			// One flag per distinct caveat: the estimate's identical warning on
			// its cpu and memory channels is one finding, not two.
			if !seenCaveat[cv.Code+"\x00"+cv.Message] {
				seenCaveat[cv.Code+"\x00"+cv.Message] = true
				w.flag(cv.Code, SeverityWarning, c.ID, cv.Message, math.NaN())
			}
		}
		if opt.Baseline != nil && d.InTotal {
			if p, ok := opt.Baseline.PowerW(c.ID); ok {
				adj := d.EnergyJ - p*T
				d.IdlePowerW, d.AdjustedEnergyJ = ptr(p), ptr(adj)
				idleSum += p
				if d.Available && d.MeanPowerW < 0.9*p {
					w.flag(FlagPowerBelowIdle, SeverityWarning, c.ID, fmt.Sprintf("mean power %.1f W is below the idle baseline %.1f W: the baseline is stale or the load did not run", d.MeanPowerW, p), d.MeanPowerW)
				}
				// Rounding, not a finding: a constant channel (the estimate's
				// DRAM share) idles at exactly its load power, and p*T can
				// exceed the integral by 1e-12 J (flagged on the H200).
				if adj < -1e-9*max(1, p*T) {
					w.flag(FlagBelowBaseline, SeverityWarning, c.ID, fmt.Sprintf("baseline-adjusted energy is negative (%.1f J)", adj), adj)
				}
			} else {
				haveIdle = false
				w.flag(FlagBaselineStale, SeverityWarning, c.ID, "the idle baseline has no value for this channel; adjusted energy omitted", math.NaN())
			}
		}
		if d.Counted && d.Available {
			w.AllDomainsJ += d.EnergyJ
			k := slices.IndexFunc(w.Domains, func(x DomainEnergy) bool { return x.Domain == d.Domain })
			if k < 0 {
				w.Domains = append(w.Domains, DomainEnergy{Domain: d.Domain, Devices: []string{}, InTotal: d.InTotal})
				k = len(w.Domains) - 1
			}
			w.Domains[k].EnergyJ += d.EnergyJ
			w.Domains[k].Devices = append(w.Domains[k].Devices, d.ID)
		}
		if d.InTotal && d.Available {
			w.EnergyJ += d.EnergyJ
			if rank[d.Method] > rank[w.Method] {
				w.Method = d.Method
			}
			if !slices.Contains(w.EfficiencyDomains, d.Domain) {
				w.EfficiencyDomains = append(w.EfficiencyDomains, d.Domain)
			}
		}
		w.Devices = append(w.Devices, d)
	}
	sort.Slice(w.Domains, func(i, j int) bool { return domainRank(w.Domains[i].Domain) < domainRank(w.Domains[j].Domain) })
	sort.Slice(w.EfficiencyDomains, func(i, j int) bool {
		return domainRank(w.EfficiencyDomains[i]) < domainRank(w.EfficiencyDomains[j])
	})
	if opt.Baseline != nil && opt.Baseline.NotIdle != nil {
		w.flag(FlagBaselineNotIdle, SeverityWarning, "", "the idle baseline was measured on a machine that was not idle ("+strings.Join(opt.Baseline.NotIdle, "; ")+"): adjusted energies are understated", math.NaN())
	}
	w.MeanPowerW = w.EnergyJ / T
	if opt.Baseline != nil && haveIdle {
		w.IdlePowerW = ptr(idleSum)
		w.AdjustedEnergyJ = ptr(w.EnergyJ - idleSum*T)
		w.BaselineMethod = opt.Baseline.Method
	}
	w.Phases = sumPhases(w, ph, T, opt.Baseline != nil && haveIdle)
	if len(w.Phases) > 0 {
		var sum float64
		for _, p := range w.Phases {
			sum += p.EnergyJ
		}
		if w.EnergyJ > 0 && math.Abs(sum-w.EnergyJ) > PhaseSumTolerance*w.EnergyJ {
			w.flag(FlagPhaseSumMismatch, SeverityWarning, "", fmt.Sprintf("phase energies sum to %.3f J, the window to %.3f J (%.2f%% apart)", sum, w.EnergyJ, 100*(sum-w.EnergyJ)/w.EnergyJ), (sum-w.EnergyJ)/w.EnergyJ)
		}
	}
	return w, nil
}

func domainRank(d string) int {
	if i := slices.Index(energy.Domains, d); i >= 0 {
		return i
	}
	return len(energy.Domains)
}

func ptr(v float64) *float64 { return &v }

func (w *Window) flag(code, sev, ch, msg string, v float64) {
	f := Flag{Code: code, Severity: sev, Channel: ch, Message: msg}
	if !math.IsNaN(v) && !math.IsInf(v, 0) {
		f.Value = ptr(v)
	}
	w.Flags = append(w.Flags, f)
}

// HasFlag reports whether the window carries a flag with this code.
func (w *Window) HasFlag(code string) bool {
	for _, f := range w.Flags {
		if f.Code == code {
			return true
		}
	}
	return false
}

// clippedPhase is a phase's intervals clipped to the window and merged.
type clippedPhase struct {
	name      string
	n         int
	intervals []Interval
	dur       float64
}

func clipPhases(w *Window, phases []Phase, t0, t1 int64) []clippedPhase {
	var out []clippedPhase
	var all []Interval
	outside := false
	for _, p := range phases {
		cp := clippedPhase{name: p.Name, n: len(p.Intervals)}
		var iv []Interval
		for _, x := range p.Intervals {
			a, b := max(x.StartNs, t0), min(x.EndNs, t1)
			if a != x.StartNs || b != x.EndNs {
				outside = true
			}
			if b > a {
				iv = append(iv, Interval{a, b})
			}
		}
		cp.intervals = merge(iv)
		for _, x := range cp.intervals {
			cp.dur += float64(x.EndNs-x.StartNs) / 1e9
		}
		all = append(all, cp.intervals...)
		out = append(out, cp)
	}
	if outside {
		w.flag(FlagPhaseOutsideWindow, SeverityInfo, "", "some phase intervals extend past the window and were clipped to it", math.NaN())
	}
	var sum, union float64
	for _, p := range out {
		sum += p.dur
	}
	for _, x := range merge(all) {
		union += float64(x.EndNs-x.StartNs) / 1e9
	}
	if sum > union+1e-9 {
		w.flag(FlagPhaseOverlap, SeverityWarning, "", fmt.Sprintf("named phases overlap for %.3f s: their energies are scaled so that they still sum to the window total", sum-union), sum-union)
	}
	if len(out) > 0 {
		out = append(out, clippedPhase{name: OtherPhase, dur: math.Max(float64(t1-t0)/1e9-union, 0)})
	}
	return out
}

func merge(iv []Interval) []Interval {
	if len(iv) == 0 {
		return nil
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i].StartNs < iv[j].StartNs })
	out := []Interval{iv[0]}
	for _, x := range iv[1:] {
		last := &out[len(out)-1]
		if x.StartNs <= last.EndNs {
			last.EndNs = max(last.EndNs, x.EndNs)
		} else {
			out = append(out, x)
		}
	}
	return out
}

func sumPhases(w *Window, ph []clippedPhase, T float64, adjusted bool) []PhaseEnergy {
	if len(ph) == 0 {
		return nil
	}
	out := make([]PhaseEnergy, len(ph))
	for k, p := range ph {
		pe := PhaseEnergy{Name: p.name, Intervals: p.n, DurationS: p.dur, Devices: map[string]float64{}}
		var idle float64
		for _, d := range w.Devices {
			if !d.InTotal || !d.Available {
				continue
			}
			pe.Devices[d.ID] = d.phase[k]
			pe.EnergyJ += d.phase[k]
			if d.IdlePowerW != nil {
				idle += *d.IdlePowerW
			}
		}
		if adjusted {
			pe.AdjustedEnergyJ = ptr(pe.EnergyJ - idle*p.dur)
		}
		if w.EnergyJ > 0 {
			pe.Share = pe.EnergyJ / w.EnergyJ
		}
		out[k] = pe
	}
	return out
}
