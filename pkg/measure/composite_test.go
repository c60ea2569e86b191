package measure

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/energy/sensortest"
)

// TestCompositeEndToEndOnFixtures runs the real composite sensor and
// sampler over the recorded sysfs tree (pkg/energy/testdata/sysfs, moved in
// with LLEM_SYSFS_ROOT, the way `llem eval` finds it) with its RAPL dram
// zone removed, so the TDP estimate fills the DRAM domain: AMD (hwmon power),
// Intel i915 and xe (hwmon energy counters) GPUs, the RAPL package, the
// estimate's memory. A goroutine advances the counters as hardware would.
// The window is split into many short batches (prefill 8 ms, decode 24 ms,
// 8 ms between batches) and the phases must sum to the window within 0.1 %.
func TestCompositeEndToEndOnFixtures(t *testing.T) {
	root := sensortest.SysfsFixture(t, "../energy/testdata/sysfs")
	if err := os.RemoveAll(filepath.Join(root, "class/powercap/intel-rapl:0:2")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(energy.SysfsRootEnv, root)
	s, sel, err := energy.Open(energy.Config{Sensor: "composite", NVML: energy.NVMLOptions{Lib: struct{}{}},
		AMDSMI: energy.AMDSMIOptions{LibPath: filepath.Join(root, "no-libamd_smi.so")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ids []string
	for _, c := range s.Channels() {
		ids = append(ids, c.ID)
	}
	for _, want := range []string{"rapl:package-0", "hwmon:amdgpu:0000:c1:00.0:power1", "hwmon:i915:0000:00:02.0:energy1", "hwmon:xe:0000:03:00.0:energy1", "estimate:memory"} {
		if !slices.Contains(ids, want) {
			t.Errorf("composite channels %v lack %s", ids, want)
		}
	}
	if slices.Contains(ids, "estimate:cpu") || slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(id, "NVDA2008") }) {
		t.Errorf("CPU measured by RAPL, yet %v also has an estimate or Grace CPU channel", ids)
	}
	if sel.MissingDomains["platform"] == "" || len(sel.Parts) < 5 {
		t.Errorf("selection parts %+v missing %+v", sel.Parts, sel.MissingDomains)
	}

	// Counters advance: package 20 W, i915 10 W, xe card 30 W (pkg 25 W).
	adv := map[string]float64{"class/powercap/intel-rapl:0/energy_uj": 20, "class/powercap/intel-rapl:0:0/energy_uj": 12,
		"class/hwmon/hwmon1/energy1_input": 10, "class/hwmon/hwmon2/energy1_input": 30, "class/hwmon/hwmon2/energy2_input": 25}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		last := time.Now()
		for ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
			dt := time.Since(last).Seconds()
			last = time.Now()
			for f, w := range adv {
				p := filepath.Join(root, f)
				b, _ := os.ReadFile(p)
				v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
				// In place, as sysfs does (the sensors keep the file open and
				// pread it); the value only grows, so nothing old is left over.
				if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
					f.WriteAt([]byte(strconv.FormatUint(v+uint64(w*dt*1e6), 10)+"\n"), 0)
					f.Close()
				}
			}
		}
	}()

	sm := energy.NewSampler(s, energy.SamplerOptions{Interval: 10 * time.Millisecond})
	if err := sm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	t0 := clock.Now()
	var pre, dec []Interval
	for i := 0; i < 15; i++ {
		a := clock.Now()
		time.Sleep(8 * time.Millisecond)
		b := clock.Now()
		time.Sleep(24 * time.Millisecond)
		c := clock.Now()
		pre, dec = append(pre, Interval{a, b}), append(dec, Interval{b, c})
		time.Sleep(8 * time.Millisecond)
	}
	t1 := clock.Now()
	sm.Mark()
	time.Sleep(30 * time.Millisecond)
	tl := sm.Stop()

	w, err := Compute(tl, "window", t0, t1, []Phase{{Name: "prefill", Intervals: pre}, {Name: "decode", Intervals: dec}}, Options{MinWindow: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	T := w.DurationS
	if got := strings.Join(w.EfficiencyDomains, ","); got != "accelerator,cpu,dram" {
		t.Errorf("efficiency domains = %s", got)
	}
	dom := map[string]float64{}
	for _, d := range w.Domains {
		dom[d.Domain] = d.EnergyJ
	}
	// accelerator: amdgpu 34 W (power1_average) + i915 10 W + xe card 30 W; cpu: RAPL 20 W.
	if !near(dom["accelerator"]/T, 74, 74*0.25) || !near(dom["cpu"]/T, 20, 20*0.25) || !(dom["dram"] > 0) {
		t.Errorf("per-domain power over %.3f s: %+v (want accelerator ≈ 74 W, cpu ≈ 20 W, dram > 0)", T, map[string]float64{"accelerator": dom["accelerator"] / T, "cpu": dom["cpu"] / T, "dram": dom["dram"] / T})
	}
	if !w.HasFlag(FlagEstimateUsed) || !w.HasFlag(FlagAveragePowerTimeline) {
		t.Errorf("flags = %+v, want estimate_used (DRAM) and average_power_timeline (amdgpu)", w.Flags)
	}
	if w.AllDomainsJ < w.EnergyJ || w.EnergyJ <= 0 {
		t.Errorf("energy %v, all domains %v", w.EnergyJ, w.AllDomainsJ)
	}
	var sum float64
	names := []string{}
	for _, p := range w.Phases {
		sum += p.EnergyJ
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "prefill,decode,host" {
		t.Errorf("phases = %v", names)
	}
	if math.Abs(sum-w.EnergyJ) > 1e-3*w.EnergyJ || w.HasFlag(FlagPhaseSumMismatch) {
		t.Errorf("phases sum to %v J, window %v J", sum, w.EnergyJ)
	}
	if h := w.Phases[2]; !(h.Share > 0.05 && h.DurationS > 0.05) {
		t.Errorf("host phase %+v: the 8 ms gaps between 15 batches are not attributed", h)
	}

	// The record gets the shares, domains and per-device domains:
	// pkg/result's TestFillEnergyDomains.
}

// TestDomainsChooseWhatCounts: energy.domains without dram leaves the DRAM
// channel reported but out of the window energy.
func TestDomainsChooseWhatCounts(t *testing.T) {
	gpu := synth("gpu:a", 100*time.Millisecond, 20, func(float64) float64 { return 300 }, func(t float64) float64 { return 300 * t })
	dram := synth("rapl:dram-0", 100*time.Millisecond, 20, func(float64) float64 { return 10 }, func(t float64) float64 { return 10 * t })
	dram.Kind = "dram"
	chs := []energy.Channel{gpu.Channel, dram.Channel}
	energy.ApplyDomains(chs, []string{"accelerator", "cpu"})
	gpu.Channel, dram.Channel = chs[0], chs[1]
	w, err := Compute(tl(gpu, dram), "w", at(2), at(12), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !near(w.EnergyJ, 3000, 1) || !near(w.AllDomainsJ, 3100, 1) || strings.Join(w.EfficiencyDomains, ",") != "accelerator" {
		t.Errorf("energy %v all %v domains %v", w.EnergyJ, w.AllDomainsJ, w.EfficiencyDomains)
	}
	if len(w.Domains) != 2 || w.Domains[1].Domain != "dram" || w.Domains[1].InTotal {
		t.Errorf("domains = %+v", w.Domains)
	}
}
