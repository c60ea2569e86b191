package measure

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/energy"
)

// MarkLine, alone on a stdout line, asks for an energy-counter reading now:
// a command prints it right before a window starts so that the window's
// first edge has a counter reading within milliseconds (announcing the
// window with WindowPrefix after it ends does the same for its last edge).
const MarkLine = "LLEM_MARK"

// WindowPrefix starts a stdout line by which a measured command announces a
// window: WindowPrefix + {"name": "...", "start_ns": T0, "end_ns": T1,
// "reference_j": J} with CLOCK_MONOTONIC nanoseconds (Python:
// time.monotonic_ns()). reference_j, optional, is an independent reading of
// the same window (e.g. the command's own NVML counter delta) to compare with.
const WindowPrefix = "LLEM_WINDOW "

// Marker is one announced window.
type Marker struct {
	Name       string   `json:"name"`
	StartNs    int64    `json:"start_ns"`
	EndNs      int64    `json:"end_ns"`
	ReferenceJ *float64 `json:"reference_j"`
}

// CommandResult is what MeasureCommand found.
type CommandResult struct {
	Sampler  SamplerCost      `json:"sampler"`
	ExitCode int              `json:"exit_code"`
	Windows  []MarkedWindow   `json:"windows"` // "process" first, then the markers
	Timeline *energy.Timeline `json:"-"`
}

// SamplerCost is the sampling rate and what it cost.
type SamplerCost struct {
	IntervalMs float64 `json:"interval_ms"`
	Samples    int     `json:"samples"`
	WallS      float64 `json:"wall_s"`
	CPUS       float64 `json:"cpu_s"`
	// CPUPct is this process's CPU time over the wall time while sampling:
	// an upper bound on the sampler's cost when the process does nothing
	// else while it waits for the command.
	CPUPct float64 `json:"cpu_pct_of_one_core"`
}

// MarkedWindow is a measured window with its optional reference.
type MarkedWindow struct {
	*Window
	ReferenceJ *float64 `json:"reference_j,omitempty"`
	DiffPct    *float64 `json:"diff_pct,omitempty"` // 100 × (llem − reference) / reference
}

// MeasureCommand samples s while cmd runs, relays the command's stdout to
// stdout (collecting window markers), and measures the whole process
// lifetime ("process") and each announced window. A command that exits
// non-zero is not an error: ExitCode says so.
func MeasureCommand(ctx context.Context, s energy.Sensor, opt energy.SamplerOptions, cmd *exec.Cmd, stdout io.Writer) (*CommandResult, error) {
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("measure command: %w", err)
	}
	sm := energy.NewSampler(s, opt)
	ru0, w0, t0 := cpuTime(), time.Now(), clock.Now()
	if err := sm.Start(ctx); err != nil {
		return nil, fmt.Errorf("measure command: %w", err)
	}
	if err := cmd.Start(); err != nil {
		sm.Stop()
		return nil, fmt.Errorf("measure command: start %s: %w", cmd.Path, err)
	}
	var markers []Marker
	var bad []error
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == MarkLine {
			sm.Mark()
			continue
		}
		if rest, ok := strings.CutPrefix(line, WindowPrefix); ok {
			sm.Mark()
			var m Marker
			if err := json.Unmarshal([]byte(rest), &m); err != nil {
				bad = append(bad, fmt.Errorf("parse %sline %q: %w", WindowPrefix, rest, err))
			} else {
				markers = append(markers, m)
			}
		}
		fmt.Fprintln(stdout, line)
	}
	waitErr := cmd.Wait()
	t1 := clock.Now()
	tl := sm.Stop()
	wall, cpu := time.Since(w0), cpuTime()-ru0

	res := &CommandResult{Timeline: tl, Sampler: SamplerCost{IntervalMs: float64(sm.Interval()) / 1e6,
		WallS: wall.Seconds(), CPUS: cpu.Seconds(), CPUPct: 100 * cpu.Seconds() / wall.Seconds()}}
	if len(tl.Channels) > 0 {
		res.Sampler.Samples = len(tl.Channels[0].Samples)
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		res.ExitCode = ee.ExitCode()
	} else if waitErr != nil {
		return nil, fmt.Errorf("measure command: wait for %s: %w", cmd.Path, waitErr)
	}
	add := func(name string, a, b int64, ref *float64) error {
		w, err := Compute(tl, name, a, b, nil, Options{})
		if err != nil {
			return err
		}
		mw := MarkedWindow{Window: w, ReferenceJ: ref}
		if ref != nil && *ref != 0 {
			d := 100 * (w.EnergyJ - *ref) / *ref
			mw.DiffPct = &d
		}
		res.Windows = append(res.Windows, mw)
		return nil
	}
	if err := add("process", t0, t1, nil); err != nil {
		return nil, fmt.Errorf("measure command: %w", err)
	}
	for _, m := range markers {
		if err := add(m.Name, m.StartNs, m.EndNs, m.ReferenceJ); err != nil {
			bad = append(bad, fmt.Errorf("window %s: %w", m.Name, err))
		}
	}
	return res, errors.Join(bad...)
}

// cpuTime is this process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
