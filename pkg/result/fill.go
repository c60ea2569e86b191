package result

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
)

// Filling a Record: where each fact of a measured slot goes. pkg/execute
// decides what happened (the outcome, the window, the energy); these
// methods only copy it into the record, so the record's shape is defined
// in this package.

// Fail marks the record failed with e.
func (r *Record) Fail(e RunError) {
	r.Status = StatusFailed
	r.Error = &e
}

// FillWorker records who ran the slot (the worker's hello and the runner's
// name), what it loaded, and the worker's warnings.
func (r *Record) FillWorker(sum protocol.Summary, runnerName string) {
	if sum.Hello.Backend != "" {
		r.Worker = &WorkerInfo{Backend: sum.Hello.Backend, ProtocolVersion: sum.Hello.ProtocolVersion, Versions: sum.Hello.Versions, Runner: runnerName}
	}
	if l := sum.Loaded; l != nil {
		r.ModelInfo = &ModelInfo{Parameters: l.Parameters, Layers: l.Layers, DType: l.DType, MemoryBytes: l.MemoryBytes, LoadTimeS: float64(l.LoadTimeNs) / 1e9}
	}
	for _, l := range sum.Logs {
		if l.Level == "warn" {
			r.Warnings = append(r.Warnings, "worker: "+l.Message)
		}
	}
}

// FillTiming records the measured window [w0, w1] (CLOCK_MONOTONIC ns),
// the load time, the warmup (from loadedNs, when the parent saw loaded,
// to warmup_done) and the thermal floor slept after it.
func (r *Record) FillTiming(sum protocol.Summary, w0, w1, loadedNs int64, thermalFloorS float64) {
	r.Timing.WindowStartNs, r.Timing.WindowEndNs = w0, w1
	r.Timing.WindowS = float64(w1-w0) / 1e9
	if sum.Loaded != nil {
		r.Timing.LoadS = float64(sum.Loaded.LoadTimeNs) / 1e9
		if loadedNs > 0 && sum.WarmupDoneNs > loadedNs {
			r.Timing.WarmupS = float64(sum.WarmupDoneNs-loadedNs) / 1e9
		}
	}
	if sum.WarmupDone != nil {
		r.Warmup = &Warmup{Prompts: sum.WarmupDone.Prompts, TimeS: r.Timing.WarmupS, ThermalFloorS: thermalFloorS}
	}
}

// FillWork sets throughput (over the window FillTiming recorded), latency
// and the phases' token counts and times.
func (r *Record) FillWork(sum protocol.Summary) {
	T := r.Timing.WindowS
	t := &r.Throughput
	if sum.Done != nil {
		t.Requests, t.InputTokens, t.OutputTokens = sum.Done.Requests, sum.Done.InputTokens, sum.Done.OutputTokens
		r.BackendMemory = backendMemory(sum.Done.Memory)
	}
	if T > 0 {
		t.InputTokensPerSec = float64(t.InputTokens) / T
		t.OutputTokensPerSec = float64(t.OutputTokens) / T
		t.RequestsPerSec = float64(t.Requests) / T
	}
	var ttft, itl, tpot, e2e []float64
	var per []RequestLatency
	decodeTokens := 0
	for _, q := range sum.Requests {
		ttft = append(ttft, float64(q.TTFTNs)/1e6)
		e := float64(q.EndNs-q.StartNs) / 1e6
		e2e = append(e2e, e)
		for _, g := range q.ITLNs {
			itl = append(itl, float64(g)/1e6)
		}
		rl := RequestLatency{Index: q.Index, Batch: q.Batch, InputTokens: q.InputTokens, OutputTokens: q.OutputTokens,
			TTFTMs: float64(q.TTFTNs) / 1e6, E2EMs: e, FinishReason: q.FinishReason}
		if q.OutputTokens > 1 {
			v := (e - float64(q.TTFTNs)/1e6) / float64(q.OutputTokens-1)
			tpot = append(tpot, v)
			rl.TPOTMs = &v
			decodeTokens += q.OutputTokens - 1
		}
		per = append(per, rl)
	}
	r.Latency = Latency{TTFT: latencyDist(ttft), ITL: latencyDist(itl), TPOT: latencyDist(tpot), E2E: latencyDist(e2e), PerRequest: per}
	var pre, dec float64
	for _, iv := range sum.Phases(protocol.PhasePrefill) {
		pre += float64(iv.EndNs-iv.StartNs) / 1e9
	}
	for _, iv := range sum.Phases(protocol.PhaseDecode) {
		dec += float64(iv.EndNs-iv.StartNs) / 1e9
	}
	inTok := 0
	for _, b := range sum.Batches {
		inTok += b.InputTokens
	}
	r.Prefill = &PhaseMetrics{Tokens: inTok, TimeS: pre, TokensPerSec: perSecond(inTok, pre)}
	r.Decode = &PhaseMetrics{Tokens: decodeTokens, TimeS: dec, TokensPerSec: perSecond(decodeTokens, dec)}
}

// SplitPrefillPassTimes sets the phases' times for a prefill-pass worker:
// the decode phase event bracketed the full generation (which prefills
// again), so prefill time is the separate pass and decode time the rest.
func (r *Record) SplitPrefillPassTimes(pass protocol.Interval) {
	pre := float64(pass.EndNs-pass.StartNs) / 1e9
	full := r.Decode.TimeS
	r.Prefill.TimeS = pre
	r.Prefill.TokensPerSec = perSecond(r.Prefill.Tokens, pre)
	r.Decode.TimeS = math.Max(0, full-pre)
	r.Decode.TokensPerSec = perSecond(r.Decode.Tokens, r.Decode.TimeS)
}

// SplitPrefillPassEnergy attributes the prefill pass's measured energy
// (passJ) to prefill and the rest of the full generation's to decode, so
// the phases still sum to the window's raw energy.
func (r *Record) SplitPrefillPassEnergy(passJ float64) error {
	if r.Decode == nil || r.Decode.EnergyJ == nil {
		return fmt.Errorf("no decode energy to split")
	}
	full, pre := *r.Decode.EnergyJ, passJ
	if pre > full {
		r.Warnings = append(r.Warnings, fmt.Sprintf("prefill pass (%.3g J) used more energy than the full generation (%.3g J); decode energy set to 0", pre, full))
		pre = full
	}
	r.Prefill.EnergyJ = float64Ptr(pre)
	r.Decode.EnergyJ = float64Ptr(full - pre)
	for _, pm := range []*PhaseMetrics{r.Prefill, r.Decode} {
		pm.EnergyPerTokenJ = nil
		if pm.Tokens > 0 {
			pm.EnergyPerTokenJ = float64Ptr(*pm.EnergyJ / float64(pm.Tokens))
		}
	}
	return nil
}

// MarkEnergyUnavailable records that the slot ran without energy
// measurement, and why.
func (r *Record) MarkEnergyUnavailable(reason string) {
	r.Energy.Method = "unavailable"
	r.Energy.Unavailable = reason
	r.Efficiency.Basis = "none"
	r.Flags = append(r.Flags, "energy_unavailable")
}

// FillEnergy copies the measured window w of timeline tl into the record:
// totals, per device and domain, baseline, phases, efficiency, thermal
// state, flags and warnings. Call it after FillWork (efficiency divides by
// the token counts).
func (r *Record) FillEnergy(w *measure.Window, base *measure.Baseline, tl *energy.Timeline) {
	r.fillDeviceEnergy(w, tl)
	r.fillDomains(w)
	r.fillEfficiency(w, base)
	for _, p := range w.Phases {
		var pm *PhaseMetrics
		switch p.Name {
		case protocol.PhasePrefill:
			pm = r.Prefill
		case protocol.PhaseDecode:
			pm = r.Decode
		}
		if pm == nil {
			continue
		}
		e := p.EnergyJ
		pm.EnergyJ = float64Ptr(e)
		if pm.Tokens > 0 {
			pm.EnergyPerTokenJ = float64Ptr(e / float64(pm.Tokens))
		}
	}
	r.Thermal = windowThermal(tl, w)
	r.Memory = windowMemory(tl, w)
	seen := map[string]bool{}
	for _, f := range w.Flags {
		if !seen[f.Code] {
			seen[f.Code] = true
			r.Flags = append(r.Flags, f.Code)
		}
		if f.Severity == measure.SeverityWarning {
			r.Warnings = append(r.Warnings, f.Code+": "+f.Message)
		}
	}
}

// fillDeviceEnergy sets the window's totals, its counted devices, the
// per-domain sums, the peak power and the counter/integral cross-check.
func (r *Record) fillDeviceEnergy(w *measure.Window, tl *energy.Timeline) {
	en := &r.Energy
	en.Sensor = w.Sensor
	en.Method = string(w.Method)
	en.SampleIntervalMs = w.SampleIntervalMs
	en.RawJ = float64Ptr(w.EnergyJ)
	en.MeanPowerW = float64Ptr(w.MeanPowerW)
	en.PerDomainJ = map[string]float64{}
	var peak float64
	for _, d := range w.Devices {
		en.Samples += d.Samples
		if !d.Counted {
			continue
		}
		de := DeviceEnergy{Index: deviceIndex(tl, d.ID), Name: d.ID, Kind: d.Kind, EnergyJ: d.EnergyJ, MeanPowerW: d.MeanPowerW, BaselineW: d.IdlePowerW, Method: string(d.Method)}
		en.PerDevice = append(en.PerDevice, de)
		en.PerDomainJ[d.Kind] += d.EnergyJ
		if d.MaxPowerW != nil {
			peak += *d.MaxPowerW
		}
		if en.CrossCheck == nil && d.CounterJ != nil && d.IntegralJ != nil && *d.CounterJ != 0 {
			en.CrossCheck = &CrossCheck{CounterJ: *d.CounterJ, IntegralJ: *d.IntegralJ, RelDiff: math.Abs(*d.CounterJ-*d.IntegralJ) / *d.CounterJ}
		}
	}
	if peak > 0 {
		en.PeakPowerW = float64Ptr(peak)
	}
}

// fillDomains adds what a window says beyond the totals: the all-domains
// total, the domains the efficiency ratios cover, every phase with its
// share (prefill, decode, host: they sum to raw_j), per-domain energies
// keyed by domain (accelerator, cpu, dram, platform), and each per-device
// entry's domain (matched by device ID). Call it after fillDeviceEnergy.
func (r *Record) fillDomains(w *measure.Window) {
	en := &r.Energy
	en.AllDomainsJ = float64Ptr(w.AllDomainsJ)
	en.EfficiencyDomains = append([]string(nil), w.EfficiencyDomains...)
	if len(w.Domains) > 0 {
		en.PerDomainJ = map[string]float64{}
		for _, d := range w.Domains {
			en.PerDomainJ[d.Domain] = d.EnergyJ
		}
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
		en.Phases = append(en.Phases, PhaseShare{Name: p.Name, DurationS: p.DurationS, EnergyJ: p.EnergyJ, Share: p.Share, AdjustedJ: p.AdjustedEnergyJ})
	}
}

// fillEfficiency sets the baseline-adjusted energy and the efficiency
// ratios. The ratios use raw window energy, as the Python original and
// ML.ENERGY do: it is what the hardware drew and never goes negative. The
// baseline-adjusted figures are reported beside them, never instead.
func (r *Record) fillEfficiency(w *measure.Window, base *measure.Baseline) {
	energyJ := w.EnergyJ
	r.Efficiency.Basis = "raw"
	if w.AdjustedEnergyJ != nil && base != nil {
		adj := math.Max(0, *w.AdjustedEnergyJ)
		r.Energy.BaselineAdjustedJ = float64Ptr(adj)
		method := "fresh"
		if base.Source == "cache" {
			method = "cached"
		}
		r.Energy.Baseline = &Baseline{PowerW: *w.IdlePowerW, Method: method, DurationS: base.DurationS, MeasuredAt: base.MeasuredAt,
			AgeS: math.Max(0, time.Since(base.MeasuredAt).Seconds()-r.Timing.WindowS), NotIdle: base.NotIdle}
		if r.Throughput.OutputTokens > 0 {
			r.Efficiency.AdjustedEnergyPerOutputTokenJ = float64Ptr(adj / float64(r.Throughput.OutputTokens))
		}
	}
	t := r.Throughput
	if t.OutputTokens > 0 {
		r.Efficiency.EnergyPerOutputTokenJ = float64Ptr(energyJ / float64(t.OutputTokens))
	}
	if t.InputTokens+t.OutputTokens > 0 {
		r.Efficiency.EnergyPerTokenJ = float64Ptr(energyJ / float64(t.InputTokens+t.OutputTokens))
	}
	if t.Requests > 0 {
		r.Efficiency.EnergyPerRequestJ = float64Ptr(energyJ / float64(t.Requests))
	}
	if energyJ > 0 {
		r.Efficiency.OutputTokensPerJ = float64Ptr(float64(t.OutputTokens) / energyJ)
	}
}

// PhaseSpans are the worker's batch intervals as the timeseries labels
// them: each batch's prefill and, when it decoded, its decode.
func PhaseSpans(sum protocol.Summary) []PhaseSpan {
	var spans []PhaseSpan
	for _, b := range sum.Batches {
		spans = append(spans, PhaseSpan{Name: protocol.PhasePrefill, Batch: b.Index, StartNs: b.PrefillStartNs, EndNs: b.PrefillEndNs})
		if b.DecodeStartNs != 0 {
			spans = append(spans, PhaseSpan{Name: protocol.PhaseDecode, Batch: b.Index, StartNs: b.DecodeStartNs, EndNs: b.DecodeEndNs})
		}
	}
	return spans
}

func deviceIndex(tl *energy.Timeline, id string) int {
	for _, c := range tl.Channels {
		if c.ID == id {
			return c.Index
		}
	}
	return 0
}

// windowThermal reads the first, last and highest temperature over the
// window; nil when no channel reports temperature or throttling.
// windowMemory is the highest used device memory each GPU channel reported
// in the window; nil when no channel reads memory (no GPU sensor).
func windowMemory(tl *energy.Timeline, w *measure.Window) *DeviceMemory {
	var m *DeviceMemory
	for _, c := range tl.Channels {
		lo, up := c.Bracket(w.StartNs, w.EndNs)
		peak := int64(-1)
		for _, s := range c.Samples[lo:up] {
			if s.TNs >= w.StartNs && s.TNs <= w.EndNs { // Bracket adds a sample each side
				peak = max(peak, s.MemUsedBytes)
			}
		}
		if peak < 0 {
			continue
		}
		if m == nil {
			m = &DeviceMemory{PerDevice: map[string]int64{}, Source: "nvml"}
		}
		m.PerDevice[c.ID] = peak
		m.PeakUsedBytes += peak
	}
	return m
}

func windowThermal(tl *energy.Timeline, w *measure.Window) *Thermal {
	var first, last, hi = math.NaN(), math.NaN(), math.NaN()
	throttled := false
	for _, c := range tl.Channels {
		lo, up := c.Bracket(w.StartNs, w.EndNs)
		for _, s := range c.Samples[lo:up] {
			if s.ThrottleReasons > 0 && s.ThrottleReasons&energy.ThrottlePowerOrThermal != 0 {
				throttled = true
			}
			if math.IsNaN(s.TempC) {
				continue
			}
			if math.IsNaN(first) {
				first = s.TempC
			}
			last = s.TempC
			if math.IsNaN(hi) || s.TempC > hi {
				hi = s.TempC
			}
		}
	}
	if math.IsNaN(hi) && !throttled {
		return nil
	}
	t := &Thermal{Throttled: throttled}
	if !math.IsNaN(hi) {
		t.StartC, t.EndC, t.MaxC = float64Ptr(first), float64Ptr(last), float64Ptr(hi)
	}
	return t
}

func perSecond(n int, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(n) / s
}

// latencyDist summarises milliseconds with linear-interpolation percentiles.
func latencyDist(v []float64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	var sumv float64
	for _, x := range s {
		sumv += x
	}
	q := func(p float64) float64 {
		pos := p * float64(len(s)-1)
		lo := int(math.Floor(pos))
		hi := int(math.Ceil(pos))
		return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
	}
	return Dist{N: len(s), MeanMs: sumv / float64(len(s)), P50Ms: q(.5), P90Ms: q(.9), P95Ms: q(.95), P99Ms: q(.99), MinMs: s[0], MaxMs: s[len(s)-1]}
}

func float64Ptr(v float64) *float64 { return &v }

// backendMemory copies the worker's memory report; nil without one.
func backendMemory(m *protocol.Memory) *BackendMemory {
	if m == nil {
		return nil
	}
	opt := func(v int64) *int64 {
		if v <= 0 {
			return nil
		}
		return &v
	}
	return &BackendMemory{PeakAllocatedBytes: opt(m.PeakAllocatedBytes), PeakReservedBytes: opt(m.PeakReservedBytes),
		KVCacheBytes: opt(m.KVCacheBytes), WeightsBytes: opt(m.WeightsBytes), Source: "backend", Reporter: m.Reporter}
}
