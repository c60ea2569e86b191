package measure

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/pkg/energy"
)

// computeDevice measures one channel over [t0, t1] and allocates its energy
// to the phases (the last clipped phase is "host").
//
// Counter channels: with s_a and s_b the counter readings nearest to t0 and
// t1 (inside or outside the window), E = counter(s_b) − counter(s_a) +
// ∫_{t0}^{s_a} P + ∫_{s_b}^{t1} P, the integrals signed (an edge reading
// outside the window subtracts the energy between it and the boundary).
// Readings are sparse (every 2 s by default, plus Sampler.Mark at known
// boundaries), so taking the nearest one keeps the power-integrated edges
// short. Without a counter, or when s_a and s_b are fewer than
// CounterMinPeriods counter updates apart, E is the trapezoid integral of
// instant power over [t0, t1].
//
// Phases: each phase's power integral over its intervals, scaled by
// E / (Σ phase integrals + "host" integral), so the phase energies sum to E
// exactly and inherit the counter's calibration.
func computeDevice(w *Window, c *energy.ChannelTimeline, t0, t1 int64, ph []clippedPhase, intervalNs int64, opt Options) Device {
	d := Device{ID: c.ID, Kind: c.Kind, Domain: energy.DomainOf(c.Channel), Device: c.Device, Sensor: c.Sensor, Method: c.Method,
		Counted: c.SubsetOf == "", InTotal: c.SubsetOf == "" && !c.Excluded}
	s := c.Samples
	lo, hi := c.Bracket(t0, t1)
	in := s[lo:hi]
	T := float64(t1-t0) / 1e9

	i0, i1 := -1, -1
	if c.HasCounter {
		i0, i1 = nearestCounter(s, t0), nearestCounter(s, t1)
	}
	integral := integrate(in, t0, t1)
	havePower := !math.IsNaN(integral)

	switch {
	case len(s) == 0:
		d.Unavailable = "no samples recorded"
	case c.HasCounter && i0 >= 0 && i1 > i0 && float64(s[i1].TNs-s[i0].TNs) >= opt.CounterMinPeriods*float64(c.CounterPeriodNs) &&
		float64(t1-t0) >= opt.CounterMinPeriods*float64(c.CounterPeriodNs):
		delta := s[i1].EnergyJ - s[i0].EnergyJ
		e := delta
		if havePower {
			e += signedIntegral(s, t0, s[i0].TNs) + signedIntegral(s, s[i1].TNs, t1)
		} else {
			// No power timeline: stretch the counter's mean power over the edges.
			e = delta * T / (float64(s[i1].TNs-s[i0].TNs) / 1e9)
			w.flag(FlagNoPowerSamples, SeverityInfo, c.ID, "no instant-power samples: window edges extrapolated from the counter's mean power", math.NaN())
		}
		d.Available, d.EnergyJ, d.Method = true, e, energy.MethodCounter
		d.CounterJ = ptr(delta)
		span := float64(s[i1].TNs-s[i0].TNs) / 1e9
		if havePower && delta > 0 {
			ij := signedIntegral(s, s[i0].TNs, s[i1].TNs)
			dis := (ij - delta) / delta
			d.IntegralJ, d.Disagreement = ptr(ij), ptr(dis)
			if span >= opt.CrossCheckMin.Seconds() && math.Abs(dis) > opt.DisagreeThreshold {
				w.flag(FlagDisagreement, SeverityWarning, c.ID, fmt.Sprintf("instant-power integral differs from the energy counter by %+.1f%% over %.1f s (threshold %.0f%%)", 100*dis, span, 100*opt.DisagreeThreshold), dis)
			}
		}
	case havePower:
		d.Available, d.EnergyJ = true, integral
		d.IntegralJ = ptr(integral)
		if c.HasCounter {
			d.Method = energy.MethodPowerIntegration
			w.flag(FlagShortWindowIntegral, SeverityWarning, c.ID, fmt.Sprintf("window (%.3f s) is shorter than %.0f energy-counter updates (%.0f ms each) or has no two counter readings that far apart: energy integrated from instant power instead", T, opt.CounterMinPeriods, float64(c.CounterPeriodNs)/1e6), T)
		}
	default:
		d.Unavailable = "no usable samples in the window"
	}
	if !d.Available {
		w.flag(FlagChannelUnavailable, SeverityWarning, c.ID, "no energy for this channel in the window: "+d.Unavailable, math.NaN())
		d.phase = make([]float64, len(ph))
		return d
	}
	d.MeanPowerW = d.EnergyJ / T
	checkSamples(w, &d, c, t0, t1, intervalNs, opt)

	// Phases.
	if len(ph) > 0 {
		d.phase = make([]float64, len(ph))
		parts := make([]float64, len(ph))
		var sum float64
		for k, p := range ph[:len(ph)-1] {
			for _, x := range p.intervals {
				parts[k] += integrate(in, x.StartNs, x.EndNs)
			}
			sum += parts[k]
		}
		other := math.Max(integral-sum, 0)
		parts[len(ph)-1] = other
		sum += other
		if !havePower || sum <= 0 || math.IsNaN(sum) {
			// No power shape to go by: allocate by duration.
			sum = 0
			for k, p := range ph {
				parts[k] = p.dur
				sum += p.dur
			}
		}
		if sum > 0 {
			for k := range parts {
				d.phase[k] = d.EnergyJ * parts[k] / sum
			}
		}
	}
	return d
}

// checkSamples adds the per-channel validity flags for samples in the window.
func checkSamples(w *Window, d *Device, c *energy.ChannelTimeline, t0, t1, intervalNs int64, opt Options) {
	s := c.Samples
	lo, hi := c.Bracket(t0, t1)
	maxP, maxT := math.Inf(-1), math.Inf(-1)
	firstT, lastT := math.NaN(), math.NaN()
	tempOut := 0
	var throttle int64
	bad := 0
	var maxGap int64
	for i := lo; i < hi; i++ {
		x := s[i]
		if i > lo {
			if g := x.TNs - s[i-1].TNs; g > maxGap {
				maxGap = g
			}
		}
		if x.TNs < t0 || x.TNs > t1 {
			continue
		}
		d.Samples++
		if math.IsNaN(x.PowerW) && (math.IsNaN(x.EnergyJ) || !c.HasCounter) {
			bad++
		}
		if !math.IsNaN(x.PowerW) {
			maxP = math.Max(maxP, x.PowerW)
		}
		if !math.IsNaN(x.TempC) {
			if math.IsNaN(firstT) {
				firstT = x.TempC
			}
			lastT = x.TempC
			maxT = math.Max(maxT, x.TempC)
			if x.TempC < opt.TempMinC || x.TempC > opt.TempMaxC {
				tempOut++
			}
		}
		if x.ThrottleReasons > 0 {
			throttle |= x.ThrottleReasons
		}
	}
	if !math.IsInf(maxP, -1) {
		d.MaxPowerW = ptr(maxP)
	}
	if !math.IsInf(maxT, -1) {
		d.MaxTempC = ptr(maxT)
	}
	if len(s) > 0 {
		first, last := s[0].TNs, s[len(s)-1].TNs
		if t0 < first-intervalNs || t1 > last+intervalNs {
			w.flag(FlagOutsideTimeline, SeverityWarning, c.ID, "the window extends beyond the sampled timeline; its edges are extrapolated", math.NaN())
		}
	}
	if intervalNs > 0 && float64(maxGap) > opt.GapFactor*float64(intervalNs) {
		w.flag(FlagSamplerGap, SeverityWarning, c.ID, fmt.Sprintf("largest gap between samples is %.0f ms (interval %.0f ms)", float64(maxGap)/1e6, float64(intervalNs)/1e6), float64(maxGap)/1e6)
	}
	if bad > 0 {
		w.flag(FlagReadErrors, SeverityWarning, c.ID, fmt.Sprintf("%d of %d samples in the window failed to read (last error: %s)", bad, d.Samples, c.LastError), float64(bad))
	}
	if c.MaxPowerW > 0 {
		if d.MeanPowerW > 1.05*c.MaxPowerW {
			w.flag(FlagPowerAboveLimit, SeverityWarning, c.ID, fmt.Sprintf("mean power %.1f W exceeds the limit %.0f W", d.MeanPowerW, c.MaxPowerW), d.MeanPowerW)
		} else if d.MaxPowerW != nil && *d.MaxPowerW > 1.5*c.MaxPowerW {
			w.flag(FlagPowerAboveLimit, SeverityWarning, c.ID, fmt.Sprintf("a power sample of %.1f W is over 1.5× the limit %.0f W (sensor glitch?)", *d.MaxPowerW, c.MaxPowerW), *d.MaxPowerW)
		}
	}
	if tempOut > 0 {
		w.flag(FlagTempOutOfRange, SeverityWarning, c.ID, fmt.Sprintf("%d temperature samples outside %.0f–%.0f °C (max %.0f °C)", tempOut, opt.TempMinC, opt.TempMaxC, maxT), maxT)
	}
	if drift := lastT - firstT; math.Abs(drift) > opt.DriftMaxC {
		w.flag(FlagThermalDrift, SeverityWarning, c.ID, fmt.Sprintf("temperature changed %+.1f °C during the window (threshold %.0f °C); lengthen warmup or thermal_floor_seconds", drift, opt.DriftMaxC), drift)
	}
	if throttle&energy.ThrottleThermalBitsOnly != 0 {
		w.flag(FlagThermalThrottle, SeverityWarning, c.ID, "thermal slowdown seen during the window ("+reasons(throttle)+")", float64(throttle))
	}
	if throttle&(energy.ThrottleSwPowerCap|energy.ThrottleHwPowerBrake) != 0 {
		w.flag(FlagPowerThrottle, SeverityInfo, c.ID, "clocks limited by the power cap during the window ("+reasons(throttle)+"); normal at full load, but the result depends on the power limit", float64(throttle))
	}
}

func reasons(bits int64) string {
	var out []string
	for _, r := range []struct {
		bit  int64
		name string
	}{{energy.ThrottleSwPowerCap, "sw_power_cap"}, {energy.ThrottleHwSlowdown, "hw_slowdown"}, {energy.ThrottleSwThermal, "sw_thermal"}, {energy.ThrottleHwThermal, "hw_thermal"}, {energy.ThrottleHwPowerBrake, "hw_power_brake"}} {
		if bits&r.bit != 0 {
			out = append(out, r.name)
		}
	}
	return strings.Join(out, ", ")
}

// nearestCounter returns the index of the sample with a valid counter reading
// closest in time to t, or -1.
func nearestCounter(s []energy.Sample, t int64) int {
	j := sort.Search(len(s), func(i int) bool { return s[i].TNs >= t })
	after, before := -1, -1
	for i := j; i < len(s); i++ {
		if !math.IsNaN(s[i].EnergyJ) {
			after = i
			break
		}
	}
	for i := j - 1; i >= 0; i-- {
		if !math.IsNaN(s[i].EnergyJ) {
			before = i
			break
		}
	}
	switch {
	case after < 0:
		return before
	case before < 0:
		return after
	case t-s[before].TNs <= s[after].TNs-t:
		return before
	}
	return after
}

// signedIntegral is ∫_a^b P dt over the samples around [a, b] (negative when b < a).
func signedIntegral(s []energy.Sample, a, b int64) float64 {
	if b < a {
		return -signedIntegral(s, b, a)
	}
	lo := sort.Search(len(s), func(i int) bool { return s[i].TNs >= a })
	hi := sort.Search(len(s), func(i int) bool { return s[i].TNs > b })
	lo, hi = max(lo-1, 0), min(hi+1, len(s))
	return integrate(s[lo:hi], a, b)
}

// integrate is the trapezoid integral (joules) of instant power over [a, b]
// using the samples with a finite PowerW, linear between samples and held
// constant before the first and after the last. NaN when there is none.
func integrate(s []energy.Sample, a, b int64) float64 {
	if b <= a {
		return 0
	}
	total := 0.0
	have := false
	var pt int64
	var pp float64
	for _, x := range s {
		if math.IsNaN(x.PowerW) {
			continue
		}
		if !have {
			have = true
			if x.TNs > a {
				total += x.PowerW * float64(min(x.TNs, b)-a)
			}
		} else if x.TNs > a && pt < b {
			lo, hi := max(pt, a), min(x.TNs, b)
			if hi > lo {
				slope := (x.PowerW - pp) / float64(x.TNs-pt)
				plo := pp + slope*float64(lo-pt)
				phi := pp + slope*float64(hi-pt)
				total += (plo + phi) / 2 * float64(hi-lo)
			}
		}
		pt, pp = x.TNs, x.PowerW
		if pt >= b {
			break
		}
	}
	if !have {
		return math.NaN()
	}
	if pt < b {
		total += pp * float64(b-max(pt, a))
	}
	return total / 1e9
}
