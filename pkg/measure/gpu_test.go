//go:build gpu && cgo

package measure

// The real-GPU validation (issue 3), run by scripts/gpu-validate.sh on a
// machine with an NVIDIA GPU, python3, torch and nvidia-ml-py:
//
//	go test -tags gpu -run TestGPUValidation -v ./pkg/measure
//
// testdata/gpu_load.py runs a 60 s bf16 matmul load and reads the NVML
// energy counter itself around each window; llem samples the same GPU and
// measures the same windows. Pass: the steady window agrees within 0.5 %.

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/envinfo"
)

func TestGPUValidation(t *testing.T) {
	nv := energy.NVMLOptionsFromEnv()
	snap := envinfo.Collect(envinfo.Options{NVML: nv})
	s, sel, err := energy.Open(energy.Config{Sensor: "nvml", NVML: nv})
	if err != nil {
		t.Fatalf("open nvml: %v", err)
	}
	defer s.Close()
	t.Logf("sensor %s (%s): %s", sel.Sensor, sel.Method, sel.Reason)

	py := os.Getenv("LLEM_PYTHON")
	if py == "" {
		py = "python3"
	}
	script, err := filepath.Abs("testdata/gpu_load.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script)
	cmd.Stderr = os.Stderr
	var opt energy.SamplerOptions
	if v := os.Getenv("LLEM_COUNTER_EVERY"); v != "" {
		if opt.CounterEvery, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	res, err := MeasureCommand(context.Background(), s, opt, cmd, os.Stderr)
	if err != nil {
		t.Fatalf("measure: %v", err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("load exited %d", res.ExitCode)
	}
	t.Logf("sampler: %d samples at %.0f ms; %.3f s CPU in %.1f s = %.3f%% of one core",
		res.Sampler.Samples, res.Sampler.IntervalMs, res.Sampler.CPUS, res.Sampler.WallS, res.Sampler.CPUPct)
	steadyOK := false
	for _, w := range res.Windows {
		line := ""
		if w.ReferenceJ != nil {
			line = " reference " + ftoa(*w.ReferenceJ) + " J, diff " + ftoa(*w.DiffPct) + " %"
		}
		t.Logf("%-8s %7.2f s %11.2f J %7.1f W %s%s", w.Name, w.DurationS, w.EnergyJ, w.MeanPowerW, w.Method, line)
		for _, d := range w.Devices {
			if d.Disagreement != nil {
				t.Logf("         %s counter %.2f J vs instant-power integral %.2f J: %+.3f %%", d.ID, *d.CounterJ, *d.IntegralJ, 100**d.Disagreement)
			}
		}
		for _, f := range w.Flags {
			t.Logf("         flag %s: %s", f.Code, f.Message)
		}
		if w.Name == "steady" && w.DiffPct != nil {
			steadyOK = true
			if math.Abs(*w.DiffPct) > 0.5 {
				t.Errorf("steady window: llem %.2f J vs in-process NVML counter %.2f J differ by %+.3f %% (goal ≤ 0.5 %%)", w.EnergyJ, *w.ReferenceJ, *w.DiffPct)
			}
		}
	}
	if !steadyOK {
		t.Error("the load announced no steady window")
	}
	if out := os.Getenv("LLEM_VALIDATE_OUT"); out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name string, v any) {
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("env.json", snap)
		write("result.json", struct {
			Selection energy.Selection `json:"selection"`
			*CommandResult
		}{sel, res})
		write("timeline.json", res.Timeline)
	}
}

func ftoa(v float64) string { b, _ := json.Marshal(math.Round(v*1000) / 1000); return string(b) }
