// Package gpuctl sets a run's GPU power limit and clocks (the study's gpu:
// section) through NVML, reads back what is in effect, and puts every GPU
// back the way it was found: at the end of the study, on Ctrl-C, after a
// worker crash (the parent, not the worker, holds the settings), and, after
// a kill -9 of llem, at its next start from a journal written before the
// first change.
//
// The GPUs are those the study uses (CUDA_VISIBLE_DEVICES, so under Slurm
// or Docker the allocated ones); each has its own journal and lock file in
// the journal directory, so two llem processes on one machine never fight
// over a GPU and one never restores a GPU another is still using.
package gpuctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/llenergymeasure/llem/pkg/study"
)

// ErrNoPermission is returned (wrapped) when NVML refuses to change a
// setting: it needs root or CAP_SYS_ADMIN.
var ErrNoPermission = errors.New("setting GPU power limit or clocks needs root or CAP_SYS_ADMIN; run llem as root (sudo -E llem ...), grant the capability (sudo setcap cap_sys_admin+ep $(command -v llem)), or remove the study's gpu: section")

// Range is what one GPU allows and what it is set to now (read-only).
type Range struct {
	Index          int    `json:"index"`
	UUID           string `json:"uuid"`
	Name           string `json:"name"`
	MinLimitW      float64
	MaxLimitW      float64
	DefaultLimitW  float64
	LimitW         float64
	EnforcedLimitW float64
	// SM (graphics) and memory clock ranges of performance state P0
	// (0 when unknown). NVML rounds a locked clock to a supported one; the
	// record keeps the clocks really read back. (go-nvml v0.13's bindings
	// of nvmlDeviceGetSupported{Memory,Graphics}Clocks pass a one-element
	// buffer, so the full lists cannot be read through them.)
	SMMinMHz, SMMaxMHz   int
	MemMinMHz, MemMaxMHz int
}

// target is a run's settings resolved for one GPU.
type target struct {
	limitMW        uint32 // 0: leave as found
	sm, mem        int    // locked clocks, 0: not locked
	appMem, appSM  int    // 0: leave as found
	hasLimit, hasA bool
}

type problem struct{ field, msg string }

// resolve turns settings into one GPU's target and lists what the GPU
// does not allow.
func resolve(g *study.GPU, r Range) (target, []problem) {
	var t target
	var ps []problem
	if g == nil {
		return t, nil
	}
	bad := func(field, format string, args ...any) {
		ps = append(ps, problem{field, fmt.Sprintf("GPU %d (%s): ", r.Index, r.Name) + fmt.Sprintf(format, args...)})
	}
	lim, field := 0.0, ""
	switch {
	case g.PowerLimitW != nil:
		lim, field = *g.PowerLimitW, "power_limit_w"
	case g.PowerLimitFraction != nil:
		lim, field = *g.PowerLimitFraction*r.DefaultLimitW, "power_limit_fraction"
	}
	if field != "" {
		if lim < r.MinLimitW-0.0005 || lim > r.MaxLimitW+0.0005 {
			bad(field, "power limit %g W is outside the allowed %g–%g W (default %g W)", lim, r.MinLimitW, r.MaxLimitW, r.DefaultLimitW)
		}
		t.limitMW, t.hasLimit = uint32(lim*1000+0.5), true
	}
	clock := func(field string, v, lo, hi int, what string) {
		if hi > 0 && (v < lo || v > hi) {
			bad(field, "%d MHz is outside the %s clock range %d–%d MHz", v, what, lo, hi)
		}
	}
	if g.SMClockMHz != nil {
		t.sm = *g.SMClockMHz
		clock("sm_clock_mhz", t.sm, r.SMMinMHz, r.SMMaxMHz, "SM")
	}
	if g.MemClockMHz != nil {
		t.mem = *g.MemClockMHz
		clock("mem_clock_mhz", t.mem, r.MemMinMHz, r.MemMaxMHz, "memory")
	}
	if g.AppMemClockMHz != nil && g.AppSMClockMHz != nil {
		t.appMem, t.appSM, t.hasA = *g.AppMemClockMHz, *g.AppSMClockMHz, true
		clock("app_mem_clock_mhz", t.appMem, r.MemMinMHz, r.MemMaxMHz, "memory")
		clock("app_sm_clock_mhz", t.appSM, r.SMMinMHz, r.SMMaxMHz, "SM")
	}
	return t, ps
}

// CheckPlan validates every run's gpu settings against every selected
// GPU's range before anything runs. The error is a *study.Error whose
// diagnostics point at the value in the study file (exit code 2).
func CheckPlan(p *study.Plan, ranges []Range) error {
	var ds []study.Diagnostic
	seen := map[string]bool{}
	for _, run := range p.Runs {
		g := run.Config.GPU
		if g.Key() == "" {
			continue
		}
		if len(ranges) == 0 {
			ds = append(ds, p.GPUDiag(run, "power_limit_w", "the study sets GPU settings but no NVIDIA GPU is selected (CUDA_VISIBLE_DEVICES) or NVML is unavailable; remove the gpu: section to run here"))
			break
		}
		for _, r := range ranges {
			_, ps := resolve(g, r)
			for _, pr := range ps {
				d := p.GPUDiag(run, pr.field, pr.msg)
				if k := d.String(); !seen[k] {
					seen[k] = true
					ds = append(ds, d)
				}
			}
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return &study.Error{Diags: ds}
}

// Describe writes the dry-run view of the plan's GPU settings: each
// selected GPU's allowed range and current values, and the distinct
// settings in schedule order with how many changes the schedule makes.
// It writes nothing for a plan without GPU settings.
func Describe(w io.Writer, p *study.Plan, ranges []Range) {
	if !p.HasGPU() {
		return
	}
	fmt.Fprintln(w, "GPU settings:")
	for _, r := range ranges {
		fmt.Fprintf(w, "  GPU %d %s (%s): power limit %g W (allowed %g–%g W, default %g W, enforced %g W)", r.Index, r.Name, r.UUID, r.LimitW, r.MinLimitW, r.MaxLimitW, r.DefaultLimitW, r.EnforcedLimitW)
		if r.SMMaxMHz > 0 {
			fmt.Fprintf(w, "; SM clock %d–%d MHz", r.SMMinMHz, r.SMMaxMHz)
		}
		if r.MemMaxMHz > 0 {
			fmt.Fprintf(w, "; memory clock %d–%d MHz", r.MemMinMHz, r.MemMaxMHz)
		}
		fmt.Fprintln(w)
	}
	if len(ranges) == 0 {
		fmt.Fprintln(w, "  no NVIDIA GPU selected: the settings cannot be applied here")
	}
	var order []string
	seen := map[string]bool{}
	for _, s := range p.Schedule {
		if k := p.Runs[s.Run].Config.GPU.Key(); !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}
	for _, k := range order {
		if k == "" {
			k = "(as found)"
		}
		fmt.Fprintf(w, "  setting %s\n", k)
	}
	fmt.Fprintf(w, "  %d changes over %d slots (runs grouped by setting); each waits gpu.settle_seconds (default %s)\n", p.GPUChanges(), len(p.Schedule), study.DefaultGPUSettle)
	if err := CheckPlan(p, ranges); err != nil {
		fmt.Fprintf(w, "  problems: %v\n", err)
	}
}

// DefaultDir is where journals and locks live: $LLEM_GPU_STATE_DIR, else
// $XDG_STATE_HOME/llem/gpu, else ~/.local/state/llem/gpu. It must be the
// same for the llem that set a GPU and the one that restores it (so run
// both as the same user, e.g. both under sudo).
func DefaultDir() string {
	if d := os.Getenv("LLEM_GPU_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "llem", "gpu")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "llem", "gpu")
	}
	return filepath.Join(os.TempDir(), "llem-gpu")
}
