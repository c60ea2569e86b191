package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
)

// measureCmd measures the energy of an arbitrary command: the whole process
// lifetime, plus any windows the command announces on stdout with lines
//
//	LLEM_WINDOW {"name": "...", "start_ns": T0, "end_ns": T1, "reference_j": J}
//
// (CLOCK_MONOTONIC ns, e.g. Python's time.monotonic_ns()). reference_j is an
// independent reading (e.g. the command's own NVML counter delta) that llem
// compares with its number. It exists for validation on real hardware
// (scripts/gpu-validate.sh), hence hidden.
type measureCmd struct {
	Sensor   string        `default:"auto" help:"Energy sensor: auto, nvml, rapl, estimate (aliases zeus, codecarbon)."`
	Interval time.Duration `help:"Sampling interval (default: chosen from the sensor)."`
	JSON     bool          `help:"Print the result as JSON on stdout (the command's stdout goes to stderr)."`
	Timeline string        `help:"Also write the sampled timeline as JSON to this file." type:"path"`
	Cmd      []string      `arg:"" passthrough:"" help:"The command to run, after --."`
}

type measureResult struct {
	Selection energy.Selection `json:"selection"`
	*measure.CommandResult
}

func (c *measureCmd) Run(ctx context.Context, stdio *IO) error {
	args := c.Cmd
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errs.BadInput(errors.New("measure: no command given"), "llem measure -- python3 load.py")
	}
	sensor, sel, err := energy.Open(energy.Config{Sensor: c.Sensor, NVML: energy.NVMLOptionsFromEnv()})
	if err != nil {
		if errors.Is(err, energy.ErrUnknownSensor) {
			return errs.BadInput(err, "use one of "+energy.SensorsHint())
		}
		return errs.WithHint(err, "run `llem env` to see which sensors work here")
	}
	if sensor == nil {
		return errs.BadInput(errors.New("measure: energy sensor none measures nothing"), "use --sensor auto")
	}
	defer sensor.Close()

	// The child's stderr is copied on exec's goroutine while its stdout is
	// relayed here, possibly to the same writer: serialise them.
	stderr := &lockedWriter{w: stdio.Stderr}
	var childOut io.Writer = stdio.Stdout
	if c.JSON {
		childOut = stderr
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stderr = stdio.Stdin, stderr
	res, err := measure.MeasureCommand(ctx, sensor, energy.SamplerOptions{Interval: c.Interval}, cmd, childOut)
	if res == nil {
		return errs.WithHint(err, "check the command and PATH")
	}
	if err != nil {
		fmt.Fprintln(stderr, "llem:", err)
	}
	if c.Timeline != "" {
		if err := writeJSON(c.Timeline, res.Timeline); err != nil {
			fmt.Fprintln(stderr, "llem:", err)
		}
	}
	out := measureResult{Selection: sel, CommandResult: res}
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("measure: write result: %w", err)
		}
	} else {
		printMeasure(stdio.Stdout, out)
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("measure: %s exited with status %d", args[0], res.ExitCode)
	}
	return nil
}

func printMeasure(w io.Writer, r measureResult) {
	fmt.Fprintf(w, "sensor %s (%s): %s\n", r.Selection.Sensor, r.Selection.Method, r.Selection.Reason)
	fmt.Fprintf(w, "sampler: %d samples every %.0f ms; llem used %.3f s CPU in %.1f s (%.2f%% of one core)\n",
		r.Sampler.Samples, r.Sampler.IntervalMs, r.Sampler.CPUS, r.Sampler.WallS, r.Sampler.CPUPct)
	for _, x := range r.Windows {
		fmt.Fprintf(w, "%-10s %8.2f s  %12.3f J  %8.1f W  (%s)", x.Name, x.DurationS, x.EnergyJ, x.MeanPowerW, x.Method)
		if x.ReferenceJ != nil && x.DiffPct != nil {
			fmt.Fprintf(w, "  reference %.3f J, diff %+.3f%%", *x.ReferenceJ, *x.DiffPct)
		}
		fmt.Fprintln(w)
		for _, d := range x.Devices {
			if d.Disagreement != nil {
				fmt.Fprintf(w, "    %s: counter %.3f J, instant-power integral %.3f J (%+.3f%%)\n", d.ID, *d.CounterJ, *d.IntegralJ, 100**d.Disagreement)
			}
		}
		for _, f := range x.Flags {
			fmt.Fprintf(w, "    %s [%s] %s\n", f.Severity, f.Code, f.Message)
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
