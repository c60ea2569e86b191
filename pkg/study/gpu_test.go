package study

import (
	"strings"
	"testing"
)

const gpuStudy = `
base: {model: "random:llama-15m", backend: "native"}
grid: {
	precision: ["fp32"]
	n: [1, 2, 3]
	gpu: power_limit_w: [300, 450,
		700]
}
experiments: [{model: "random:llama-15m", backend: "native", gpu: {sm_clock_mhz: 1410, settle_seconds: 1}}]
execution: {cycles: 4, order: "shuffled"}
`

func TestGPUGroupedSchedule(t *testing.T) {
	p := mustLoad(t, gpuStudy)
	if len(p.Runs) != 10 {
		t.Fatalf("runs = %d, want 10", len(p.Runs))
	}
	// 4 distinct settings, blocks snake across cycles: 4 changes in cycle 1,
	// then 3 per later cycle (the first block repeats the last one).
	if got, want := p.GPUChanges(), 4+3*3; got != want {
		t.Errorf("changes = %d, want %d", got, want)
	}
	// Every run still executes once per cycle.
	seen := map[Slot]bool{}
	for _, s := range p.Schedule {
		seen[s] = true
	}
	if len(seen) != 40 || len(p.Schedule) != 40 {
		t.Errorf("schedule has %d slots (%d unique), want 40", len(p.Schedule), len(seen))
	}
	seq := mustLoad(t, strings.Replace(gpuStudy, `"shuffled"`, `"sequential"`, 1))
	if got := seq.GPUChanges(); got != 4 {
		t.Errorf("sequential changes = %d, want 4", got)
	}
	r := p.Runs[len(p.Runs)-1]
	if r.Config.GPU.Settle().Seconds() != 1 || p.Runs[0].Config.GPU.Settle() != DefaultGPUSettle {
		t.Errorf("settle: %v %v", r.Config.GPU.Settle(), p.Runs[0].Config.GPU.Settle())
	}
}

func TestGPUUnsetKeepsOrder(t *testing.T) {
	src := `
base: {model: "random:llama-15m", backend: "native"}
grid: n: [1, 2, 3, 4]
execution: {cycles: 3, order: "shuffled"}
`
	p := mustLoad(t, src)
	if p.HasGPU() {
		t.Fatal("HasGPU without a gpu section")
	}
	if strings.Contains(string(p.Runs[0].ConfigJSON), "gpu") {
		t.Errorf("config gained a gpu field: %s", p.Runs[0].ConfigJSON)
	}
}

func TestGPUDiagPositions(t *testing.T) {
	p := mustLoad(t, gpuStudy)
	for _, r := range p.Runs {
		if r.Config.GPU.PowerLimitW != nil && *r.Config.GPU.PowerLimitW == 700 {
			d := p.GPUDiag(r, "power_limit_w", "too high")
			if d.Line != 7 || d.Col != 3 {
				t.Errorf("grid value at %d:%d, want 7:3 (%s)", d.Line, d.Col, d)
			}
		}
		if r.Origin == "experiments[0]" {
			d := p.GPUDiag(r, "sm_clock_mhz", "x")
			if d.Line != 9 || !strings.Contains(d.Path, "experiments[0]") {
				t.Errorf("experiments value at %s", d)
			}
		}
	}
}

func TestGPUSchemaErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`model: "random:llama-15m", backend: "native", gpu: {power_limit_w: 300, power_limit_fraction: 0.5}`, "not both"},
		{`model: "random:llama-15m", backend: "native", gpu: {power_limit_fraction: 1.5}`, "power_limit_fraction"},
		{`model: "random:llama-15m", backend: "native", gpu: {app_mem_clock_mhz: 2619}`, "app_sm_clock_mhz"},
		{`model: "random:llama-15m", backend: "native", gpu: {sm_clok_mhz: 1}`, "sm_clock_mhz"},
	} {
		_, err := load(t, tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.src, err, tc.want)
		}
	}
}
