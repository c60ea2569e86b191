package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/clock"
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
	Sampler   samplerCost      `json:"sampler"`
	ExitCode  int              `json:"exit_code"`
	Windows   []measuredWindow `json:"windows"`
}

type samplerCost struct {
	IntervalMs float64 `json:"interval_ms"`
	Samples    int     `json:"samples"`
	WallS      float64 `json:"wall_s"`
	CPUS       float64 `json:"cpu_s"`
	// CPUPct is llem's whole-process CPU time over the wall time while
	// sampling: an upper bound on the sampler's cost, as llem does nothing
	// else while it waits for the command.
	CPUPct float64 `json:"cpu_pct_of_one_core"`
}

type measuredWindow struct {
	*measure.Window
	ReferenceJ *float64 `json:"reference_j,omitempty"`
	DiffPct    *float64 `json:"diff_pct,omitempty"` // 100 × (llem − reference) / reference
}

type windowMarker struct {
	Name       string   `json:"name"`
	StartNs    int64    `json:"start_ns"`
	EndNs      int64    `json:"end_ns"`
	ReferenceJ *float64 `json:"reference_j"`
}

const windowPrefix = "LLEM_WINDOW "

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
			return errs.BadInput(err, "use one of "+energy.Sensors)
		}
		return errs.WithHint(err, "run `llem env` to see which sensors work here")
	}
	if sensor == nil {
		return errs.BadInput(errors.New("measure: energy.sensor none measures nothing"), "use --sensor auto")
	}
	defer sensor.Close()

	sm := energy.NewSampler(sensor, energy.SamplerOptions{Interval: c.Interval})
	// The child's stderr is copied on exec's goroutine while its stdout is
	// relayed here, possibly to the same writer: serialise them.
	stderr := &lockedWriter{w: stdio.Stderr}
	var childOut io.Writer = stdio.Stdout
	if c.JSON {
		childOut = stderr
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stderr = stdio.Stdin, stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("measure: %w", err)
	}

	ru0 := cpuTime()
	w0 := time.Now()
	t0 := clock.Now()
	if err := sm.Start(ctx); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		sm.Stop()
		return errs.BadInput(fmt.Errorf("measure: start %s: %w", args[0], err), "check the command and PATH")
	}
	var markers []windowMarker
	var scanErr error
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, windowPrefix); ok {
			var m windowMarker
			if err := json.Unmarshal([]byte(rest), &m); err != nil {
				scanErr = fmt.Errorf("measure: bad %sline %q: %w", windowPrefix, rest, err)
				continue
			}
			markers = append(markers, m)
		}
		fmt.Fprintln(childOut, line)
	}
	waitErr := cmd.Wait()
	t1 := clock.Now()
	tl := sm.Stop()
	wall := time.Since(w0)
	cpu := cpuTime() - ru0

	res := measureResult{Selection: sel}
	res.Sampler = samplerCost{IntervalMs: float64(sm.Interval()) / 1e6, WallS: wall.Seconds(), CPUS: cpu.Seconds(),
		CPUPct: 100 * cpu.Seconds() / wall.Seconds()}
	if len(tl.Channels) > 0 {
		res.Sampler.Samples = len(tl.Channels[0].Samples)
	}
	if ee := (*exec.ExitError)(nil); errors.As(waitErr, &ee) {
		res.ExitCode = ee.ExitCode()
	} else if waitErr != nil {
		return fmt.Errorf("measure: wait for %s: %w", args[0], waitErr)
	}
	add := func(name string, a, b int64, ref *float64) error {
		w, err := measure.Compute(tl, name, a, b, nil, measure.Options{})
		if err != nil {
			return err
		}
		mw := measuredWindow{Window: w, ReferenceJ: ref}
		if ref != nil && *ref != 0 {
			d := 100 * (w.EnergyJ - *ref) / *ref
			mw.DiffPct = &d
		}
		res.Windows = append(res.Windows, mw)
		return nil
	}
	if err := add("process", t0, t1, nil); err != nil {
		return fmt.Errorf("measure: %w", err)
	}
	for _, m := range markers {
		if err := add(m.Name, m.StartNs, m.EndNs, m.ReferenceJ); err != nil {
			fmt.Fprintf(stdio.Stderr, "llem: window %s: %v\n", m.Name, err)
		}
	}
	if c.Timeline != "" {
		if err := writeJSON(c.Timeline, tl); err != nil {
			fmt.Fprintln(stdio.Stderr, "llem:", err)
		}
	}
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("measure: write result: %w", err)
		}
	} else {
		printMeasure(stdio.Stdout, res)
	}
	if scanErr != nil {
		fmt.Fprintln(stdio.Stderr, "llem:", scanErr)
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

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
