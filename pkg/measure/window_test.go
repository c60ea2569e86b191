package measure

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/energy"
)

const sec = int64(time.Second)

// synth builds a channel sampled every step from 0 to end seconds, with
// instant power p(t) and an exact cumulative counter e(t) (both in SI units).
func synth(id string, step time.Duration, end float64, p, e func(t float64) float64) energy.ChannelTimeline {
	c := energy.ChannelTimeline{Channel: energy.Channel{ID: id, Sensor: "fake", Kind: "gpu", Method: energy.MethodCounter,
		HasCounter: true, CounterPeriodNs: 100_000_000, MaxPowerW: 700}}
	for tn := int64(0); tn <= int64(end*1e9); tn += int64(step) {
		t := float64(tn) / 1e9
		var s energy.Sample
		s.Reset(tn)
		s.PowerW, s.TempC = p(t), 50
		if e != nil {
			s.EnergyJ = e(t)
		}
		c.Samples = append(c.Samples, s)
	}
	return c
}

func ramp(t float64) float64       { return 100 + 10*t }
func rampEnergy(t float64) float64 { return 100*t + 5*t*t }
func at(s float64) int64           { return int64(math.Round(s * 1e9)) }
func near(a, b, tol float64) bool  { return math.Abs(a-b) <= tol }
func tl(chs ...energy.ChannelTimeline) *energy.Timeline {
	return &energy.Timeline{Sensor: "fake", IntervalNs: 100_000_000, Channels: chs}
}

func TestCounterWindowWithInterpolatedEdges(t *testing.T) {
	c := synth("gpu:a", 100*time.Millisecond, 30, ramp, rampEnergy)
	w, err := Compute(tl(c), "run", at(1.04), at(21.06), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := rampEnergy(21.06) - rampEnergy(1.04)
	if !near(w.EnergyJ, want, 1e-6) || w.Method != energy.MethodCounter || !near(w.DurationS, 20.02, 1e-9) {
		t.Fatalf("window = %.6f J via %s over %v s, want %.6f J via counter", w.EnergyJ, w.Method, w.DurationS, want)
	}
	d := w.Devices[0]
	if d.Disagreement == nil || math.Abs(*d.Disagreement) > 1e-9 || !near(*d.CounterJ, rampEnergy(21.1)-rampEnergy(1.0), 1e-9) {
		t.Errorf("cross-check = %+v", d)
	}
	if len(w.Flags) != 0 {
		t.Errorf("unexpected flags %+v", w.Flags)
	}
	if !near(w.MeanPowerW, want/20.02, 1e-9) || *d.MaxPowerW != ramp(21.0) || d.Samples != 200 {
		t.Errorf("mean %v max %v samples %d", w.MeanPowerW, *d.MaxPowerW, d.Samples)
	}
	if _, err := json.Marshal(w); err != nil {
		t.Errorf("window does not marshal: %v", err)
	}
}

// stepPower: 300 W during prefill, 150 W during decode, 100 W otherwise.
var prefill = []Interval{{at(2), at(3)}, {at(10), at(11)}}
var decode = []Interval{{at(3), at(10)}, {at(11), at(20)}}

func stepPower(t float64) float64 {
	switch {
	case (t >= 2 && t < 3) || (t >= 10 && t < 11):
		return 300
	case (t >= 3 && t < 10) || (t >= 11 && t < 20):
		return 150
	}
	return 100
}

func stepEnergy(t float64) float64 { // exact ∫0^t stepPower
	e, x := 0.0, 0.0
	for _, seg := range []struct{ end, p float64 }{{2, 100}, {3, 300}, {10, 150}, {11, 300}, {20, 150}, {math.Inf(1), 100}} {
		if t <= x {
			break
		}
		hi := math.Min(t, seg.end)
		e += (hi - x) * seg.p
		x = seg.end
	}
	return e
}

func TestPhasesSumToTotal(t *testing.T) {
	c := synth("gpu:a", 50*time.Millisecond, 25, stepPower, stepEnergy)
	phases := []Phase{{Name: "prefill", Intervals: prefill}, {Name: "decode", Intervals: decode}}
	w, err := Compute(tl(c), "run", at(1), at(21), phases, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(w.EnergyJ, 3200, 1e-6) {
		t.Fatalf("total = %v, want 3200", w.EnergyJ)
	}
	if len(w.Phases) != 3 || w.Phases[2].Name != OtherPhase {
		t.Fatalf("phases = %+v", w.Phases)
	}
	var sum float64
	for _, p := range w.Phases {
		sum += p.EnergyJ
	}
	if !near(sum, w.EnergyJ, 1e-9) {
		t.Errorf("phase sum %v != total %v", sum, w.EnergyJ)
	}
	// Each phase within the trapezoid error at its step edges (≤ 0.05 s × 200 W per edge).
	for _, tt := range []struct {
		i    int
		want float64
		dur  float64
	}{{0, 600, 2}, {1, 2400, 16}, {2, 200, 2}} {
		p := w.Phases[tt.i]
		if !near(p.EnergyJ, tt.want, 25) || !near(p.DurationS, tt.dur, 1e-9) {
			t.Errorf("%s = %.1f J over %.2f s, want ≈ %.0f J over %.0f s", p.Name, p.EnergyJ, p.DurationS, tt.want, tt.dur)
		}
	}
	if w.Phases[0].Intervals != 2 || !near(w.Phases[0].Devices["gpu:a"], w.Phases[0].EnergyJ, 0) {
		t.Errorf("prefill = %+v", w.Phases[0])
	}
}

func TestShortWindowIsIntegratedAndFlagged(t *testing.T) {
	c := synth("gpu:a", 100*time.Millisecond, 10, func(float64) float64 { return 400 }, func(t float64) float64 { return 400 * t })
	w, err := Compute(tl(c), "tiny", at(5.02), at(5.17), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.Method != energy.MethodPowerIntegration || !near(w.EnergyJ, 60, 1e-6) {
		t.Errorf("short window = %v J via %s, want 60 J via power-integration", w.EnergyJ, w.Method)
	}
	if !w.HasFlag(FlagShortWindowIntegral) || !w.HasFlag(FlagWindowTooShort) {
		t.Errorf("flags = %+v", w.Flags)
	}
}

func TestDisagreementFlagged(t *testing.T) {
	// The counter runs at twice the instant power.
	c := synth("gpu:a", 100*time.Millisecond, 30, func(float64) float64 { return 200 }, func(t float64) float64 { return 400 * t })
	w, err := Compute(tl(c), "run", at(2), at(22), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := w.Devices[0]
	if !w.HasFlag(FlagDisagreement) || !near(*d.Disagreement, -0.5, 1e-9) {
		t.Errorf("disagreement %v, flags %+v", *d.Disagreement, w.Flags)
	}
	// Counter wins: 20 s × 400 W.
	if !near(w.EnergyJ, 8000, 1e-6) {
		t.Errorf("energy %v, want 8000", w.EnergyJ)
	}
}

func TestBaselineAdjustedSideBySide(t *testing.T) {
	c := synth("gpu:a", 50*time.Millisecond, 25, stepPower, stepEnergy)
	b := &Baseline{Method: BaselineMethod, Devices: []BaselineDevice{{ID: "gpu:a", PowerW: 80}}}
	phases := []Phase{{Name: "prefill", Intervals: prefill}, {Name: "decode", Intervals: decode}}
	w, err := Compute(tl(c), "run", at(1), at(21), phases, Options{Baseline: b})
	if err != nil {
		t.Fatal(err)
	}
	if !near(w.EnergyJ, 3200, 1e-6) || w.AdjustedEnergyJ == nil || !near(*w.AdjustedEnergyJ, 3200-80*20, 1e-6) || *w.IdlePowerW != 80 || w.BaselineMethod != BaselineMethod {
		t.Fatalf("raw %v adjusted %v idle %v", w.EnergyJ, w.AdjustedEnergyJ, w.IdlePowerW)
	}
	var sum float64
	for _, p := range w.Phases {
		sum += *p.AdjustedEnergyJ
	}
	if !near(sum, *w.AdjustedEnergyJ, 1e-6) {
		t.Errorf("adjusted phases sum %v != adjusted total %v", sum, *w.AdjustedEnergyJ)
	}
	// An idle baseline above the load is flagged, not clamped.
	b.Devices[0].PowerW = 500
	w, _ = Compute(tl(c), "run", at(1), at(21), nil, Options{Baseline: b})
	if !w.HasFlag(FlagPowerBelowIdle) || !w.HasFlag(FlagBelowBaseline) || *w.AdjustedEnergyJ >= 0 {
		t.Errorf("flags %+v adjusted %v", w.Flags, *w.AdjustedEnergyJ)
	}
	// A baseline equal to the load's power up to float rounding (a
	// constant estimate channel) is not below it.
	b.Devices[0].PowerW = 160 * (1 + 1e-13)
	w, _ = Compute(tl(c), "run", at(1), at(21), nil, Options{Baseline: b})
	if w.HasFlag(FlagBelowBaseline) || w.HasFlag(FlagPowerBelowIdle) {
		t.Errorf("rounding flagged: %+v adjusted %v", w.Flags, *w.AdjustedEnergyJ)
	}
	// A baseline missing a channel gives no adjusted total.
	w, _ = Compute(tl(c), "run", at(1), at(21), nil, Options{Baseline: &Baseline{Method: BaselineMethod}})
	if w.AdjustedEnergyJ != nil || !w.HasFlag(FlagBaselineStale) {
		t.Errorf("missing-channel baseline: adjusted %v flags %+v", w.AdjustedEnergyJ, w.Flags)
	}
}

func TestMultiDeviceSumAndSubsets(t *testing.T) {
	a := synth("gpu:a", 100*time.Millisecond, 30, func(float64) float64 { return 300 }, func(t float64) float64 { return 300 * t })
	b := synth("gpu:b", 100*time.Millisecond, 30, func(float64) float64 { return 200 }, func(t float64) float64 { return 200 * t })
	core := synth("rapl:core-0", 100*time.Millisecond, 30, func(float64) float64 { return 50 }, func(t float64) float64 { return 50 * t })
	core.SubsetOf = "gpu:a"
	w, err := Compute(tl(a, b, core), "run", at(5), at(25), []Phase{{Name: "decode", Intervals: []Interval{{at(5), at(25)}}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(w.EnergyJ, 10000, 1e-6) || len(w.Devices) != 3 || w.Devices[2].Counted || !near(w.Devices[2].EnergyJ, 1000, 1e-6) {
		t.Fatalf("total %v devices %+v", w.EnergyJ, w.Devices)
	}
	if !near(w.Phases[0].Devices["gpu:b"], 4000, 1e-6) || !near(w.Phases[1].EnergyJ, 0, 1e-9) {
		t.Errorf("phases %+v", w.Phases)
	}
}

func TestValidityFlags(t *testing.T) {
	mk := func() energy.ChannelTimeline {
		return synth("gpu:a", 100*time.Millisecond, 30, func(float64) float64 { return 300 }, func(t float64) float64 { return 300 * t })
	}
	tests := []struct {
		name   string
		edit   func(c *energy.ChannelTimeline)
		t0, t1 float64
		want   string
	}{
		{"thermal throttle", func(c *energy.ChannelTimeline) { c.Samples[100].ThrottleReasons = energy.ThrottleHwThermal }, 5, 25, FlagThermalThrottle},
		{"power cap", func(c *energy.ChannelTimeline) { c.Samples[100].ThrottleReasons = energy.ThrottleSwPowerCap }, 5, 25, FlagPowerThrottle},
		{"hot", func(c *energy.ChannelTimeline) { c.Samples[100].TempC = 99 }, 5, 25, FlagTempOutOfRange},
		{"drift", func(c *energy.ChannelTimeline) {
			for i := 150; i < len(c.Samples); i++ {
				c.Samples[i].TempC = 70
			}
		}, 5, 25, FlagThermalDrift},
		{"gap", func(c *energy.ChannelTimeline) { c.Samples = append(c.Samples[:100:100], c.Samples[110:]...) }, 5, 25, FlagSamplerGap},
		{"read errors", func(c *energy.ChannelTimeline) { c.Samples[100].Reset(c.Samples[100].TNs) }, 5, 25, FlagReadErrors},
		{"outside timeline", func(*energy.ChannelTimeline) {}, 15, 40, FlagOutsideTimeline},
		{"power above limit", func(c *energy.ChannelTimeline) { c.MaxPowerW = 200 }, 5, 25, FlagPowerAboveLimit},
		{"glitch sample", func(c *energy.ChannelTimeline) { c.Samples[100].PowerW = 12_572_969 }, 5, 25, FlagPowerAboveLimit},
		{"estimate", func(c *energy.ChannelTimeline) {
			c.Warnings = []energy.Caveat{{Code: energy.CaveatEstimate, Message: energy.EstimateWarning}}
		}, 5, 25, FlagEstimateUsed},
		{"mig", func(c *energy.ChannelTimeline) {
			c.Warnings = []energy.Caveat{{Code: energy.CaveatMIGParent, Message: "MIG"}}
		}, 5, 25, FlagMIGParent},
		{"no samples", func(c *energy.ChannelTimeline) { c.Samples = nil }, 5, 25, FlagChannelUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mk()
			tt.edit(&c)
			w, err := Compute(tl(c), "run", at(tt.t0), at(tt.t1), nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !w.HasFlag(tt.want) {
				t.Errorf("flags %+v lack %s", w.Flags, tt.want)
			}
			if _, err := json.Marshal(w); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
	// A clean window carries none of them.
	c := mk()
	w, _ := Compute(tl(c), "run", at(5), at(25), nil, Options{})
	if len(w.Flags) != 0 {
		t.Errorf("clean window flags: %+v", w.Flags)
	}
}

func TestPowerIntegrationChannelAndOverlap(t *testing.T) {
	c := synth("gpu:old", 100*time.Millisecond, 30, ramp, nil)
	c.HasCounter, c.Method = false, energy.MethodPowerIntegration
	phases := []Phase{{Name: "a", Intervals: []Interval{{at(5), at(12)}}}, {Name: "b", Intervals: []Interval{{at(10), at(30)}}}}
	w, err := Compute(tl(c), "run", at(5), at(25), phases, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.Method != energy.MethodPowerIntegration || !near(w.EnergyJ, rampEnergy(25)-rampEnergy(5), 1e-6) || w.HasFlag(FlagShortWindowIntegral) {
		t.Errorf("pre-Volta window %v via %s flags %+v", w.EnergyJ, w.Method, w.Flags)
	}
	if !w.HasFlag(FlagPhaseOverlap) || !w.HasFlag(FlagPhaseOutsideWindow) {
		t.Errorf("flags %+v", w.Flags)
	}
	var sum float64
	for _, p := range w.Phases {
		sum += p.EnergyJ
	}
	if !near(sum, w.EnergyJ, 1e-9) {
		t.Errorf("overlapping phases sum %v != total %v", sum, w.EnergyJ)
	}
}

func TestCounterWithoutPowerSamples(t *testing.T) {
	c := synth("gpu:a", 100*time.Millisecond, 30, func(float64) float64 { return math.NaN() }, func(t float64) float64 { return 250 * t })
	w, err := Compute(tl(c), "run", at(5.05), at(25.05), []Phase{{Name: "x", Intervals: []Interval{{at(6), at(7)}}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(w.EnergyJ, 5000, 1e-6) || !w.HasFlag(FlagNoPowerSamples) {
		t.Errorf("energy %v flags %+v", w.EnergyJ, w.Flags)
	}
	// Phases fall back to duration shares.
	if !near(w.Phases[0].EnergyJ, 250, 1e-6) {
		t.Errorf("phase %+v", w.Phases[0])
	}
}

func TestComputeRejectsBadInput(t *testing.T) {
	if _, err := Compute(nil, "x", 0, 1, nil, Options{}); err == nil {
		t.Error("nil timeline accepted")
	}
	if _, err := Compute(tl(), "x", 5, 5, nil, Options{}); err == nil {
		t.Error("empty window accepted")
	}
}

func TestIntegrate(t *testing.T) {
	s := []energy.Sample{{TNs: 1 * sec, PowerW: 10}, {TNs: 2 * sec, PowerW: math.NaN()}, {TNs: 3 * sec, PowerW: 30}}
	tests := []struct {
		a, b int64
		want float64
	}{
		{1 * sec, 3 * sec, 40},     // trapezoid across the NaN
		{0, 1 * sec, 10},           // held before the first sample
		{3 * sec, 5 * sec, 60},     // held after the last
		{2 * sec, 3 * sec, 25},     // interpolated start
		{0, 5 * sec, 10 + 40 + 60}, // all
	}
	for _, tt := range tests {
		if got := integrate(s, tt.a, tt.b); !near(got, tt.want, 1e-9) {
			t.Errorf("integrate(%d, %d) = %v, want %v", tt.a/sec, tt.b/sec, got, tt.want)
		}
	}
	if got := integrate([]energy.Sample{{TNs: 0, PowerW: math.NaN()}}, 0, sec); !math.IsNaN(got) {
		t.Errorf("no power: %v, want NaN", got)
	}
}

func TestSparseCounterUsesNearestReadings(t *testing.T) {
	// The counter is read every 2 s (NaN in between) while power is sampled
	// every 100 ms; the window's edges fall 0.3–0.9 s from the readings.
	c := synth("gpu:a", 100*time.Millisecond, 30, ramp, rampEnergy)
	for i := range c.Samples {
		if i%20 != 0 {
			c.Samples[i].EnergyJ = math.NaN()
		}
	}
	w, err := Compute(tl(c), "run", at(3.7), at(16.3), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := w.Devices[0]
	// Nearest readings: 4.0 (after t0) and 16.0 (before t1).
	if !near(w.EnergyJ, rampEnergy(16.3)-rampEnergy(3.7), 1e-6) || !near(*d.CounterJ, rampEnergy(16)-rampEnergy(4), 1e-9) {
		t.Errorf("energy %v counter %v", w.EnergyJ, *d.CounterJ)
	}
	// Readings outside the window: 2.0 for t0 = 2.2, 18.0 for t1 = 17.8.
	w, _ = Compute(tl(c), "run", at(2.2), at(17.8), nil, Options{})
	if d := w.Devices[0]; !near(w.EnergyJ, rampEnergy(17.8)-rampEnergy(2.2), 1e-6) || !near(*d.CounterJ, rampEnergy(18)-rampEnergy(2), 1e-9) {
		t.Errorf("outside readings: energy %v counter %v", w.EnergyJ, *d.CounterJ)
	}
	if w.Method != energy.MethodCounter || len(w.Flags) != 0 {
		t.Errorf("method %s flags %+v", w.Method, w.Flags)
	}
}
