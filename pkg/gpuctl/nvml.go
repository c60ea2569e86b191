//go:build cgo

package gpuctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Options configure Open.
type Options struct {
	// Lib is the NVML library (go-nvml's mock in tests); nil loads
	// libnvidia-ml.
	Lib nvml.Interface
	// Select picks the GPUs (CUDA_VISIBLE_DEVICES); zero: every GPU.
	Select energy.NVMLOptions
	// Dir holds journals and locks; "" means DefaultDir().
	Dir string
	// Plan is the study whose settings will be applied: it decides what
	// the journal must be able to undo, and is checked against the ranges.
	Plan *study.Plan
}

// gpu is one controlled GPU.
type gpu struct {
	dev   nvml.Device
	rng   Range
	found journal
	lock  *gpuLock
	// locked clocks this session set now (0: none).
	sm, mem int
}

// Controller applies runs' GPU settings and restores the GPUs. It
// implements execute.GPUControl.
type Controller struct {
	lib       nvml.Interface
	dir       string
	gpus      []*gpu
	cur       string // Key of the settings in effect ("" = as found)
	journaled bool
	restored  bool
	Notes     []string // e.g. GPUs restored from a stale journal
}

func libOf(l nvml.Interface) nvml.Interface {
	if l == nil {
		return nvml.New()
	}
	return l
}

func initLib(lib nvml.Interface) error {
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_LIBRARY_NOT_FOUND, nvml.ERROR_DRIVER_NOT_LOADED:
		return fmt.Errorf("gpu settings: NVML unavailable (%v): the study's gpu: section needs an NVIDIA GPU and driver", ret)
	default:
		return fmt.Errorf("gpu settings: NVML init: %v", ret)
	}
}

// nvmlErr wraps a failed NVML call; NO_PERMISSION becomes ErrNoPermission.
func nvmlErr(what string, r Range, ret nvml.Return) error {
	if ret == nvml.ERROR_NO_PERMISSION {
		return fmt.Errorf("%s on GPU %d (%s): %w", what, r.Index, r.UUID, ErrNoPermission)
	}
	if ret == nvml.ERROR_NOT_SUPPORTED {
		return fmt.Errorf("%s on GPU %d (%s): not supported by this GPU or driver", what, r.Index, r.UUID)
	}
	return fmt.Errorf("%s on GPU %d (%s): %v", what, r.Index, r.UUID, ret)
}

// ReadRanges reads each selected GPU's allowed ranges and current values.
// It only reads: this is what `llem eval --dry-run` and `llem env` show.
func ReadRanges(l nvml.Interface, sel energy.NVMLOptions) ([]Range, error) {
	lib := libOf(l)
	if err := initLib(lib); err != nil {
		return nil, err
	}
	defer lib.Shutdown()
	devs, _, err := energy.SelectedGPUs(lib, sel)
	if err != nil {
		return nil, err
	}
	out := make([]Range, 0, len(devs))
	for _, d := range devs {
		r, err := readRange(d)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func readRange(d nvml.Device) (Range, error) {
	var r Range
	var ret nvml.Return
	if r.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
		return r, fmt.Errorf("gpu uuid: %v", ret)
	}
	r.Index, _ = d.GetIndex()
	r.Name, _ = d.GetName()
	w := func(mw uint32) float64 { return float64(mw) / 1000 }
	if lo, hi, ret := d.GetPowerManagementLimitConstraints(); ret == nvml.SUCCESS {
		r.MinLimitW, r.MaxLimitW = w(lo), w(hi)
	}
	if v, ret := d.GetPowerManagementDefaultLimit(); ret == nvml.SUCCESS {
		r.DefaultLimitW = w(v)
	}
	if v, ret := d.GetPowerManagementLimit(); ret == nvml.SUCCESS {
		r.LimitW = w(v)
	}
	if v, ret := d.GetEnforcedPowerLimit(); ret == nvml.SUCCESS {
		r.EnforcedLimitW = w(v)
	}
	r.SMMinMHz, r.SMMaxMHz = clockRange(d, nvml.CLOCK_GRAPHICS)
	r.MemMinMHz, r.MemMaxMHz = clockRange(d, nvml.CLOCK_MEM)
	return r, nil
}

// clockRange is P0's min..max of a clock, else 0..max clock.
func clockRange(d nvml.Device, c nvml.ClockType) (int, int) {
	if lo, hi, ret := d.GetMinMaxClockOfPState(c, nvml.PSTATE_0); ret == nvml.SUCCESS && hi > 0 {
		return int(lo), int(hi)
	}
	if hi, ret := d.GetMaxClockInfo(c); ret == nvml.SUCCESS {
		return 0, int(hi)
	}
	return 0, 0
}

// Open takes the selected GPUs for opt.Plan: it restores any GPU a killed
// llem left changed (its journal), locks each GPU, reads its ranges and
// checks the plan against them, and checks that NVML lets this process
// change settings (a no-op set of the current power limit), so a missing
// permission is an error before anything runs.
func Open(opt Options) (*Controller, error) {
	lib := libOf(opt.Lib)
	if err := initLib(lib); err != nil {
		return nil, err
	}
	c := &Controller{lib: lib, dir: opt.Dir}
	if c.dir == "" {
		c.dir = DefaultDir()
	}
	ok := false
	defer func() {
		if !ok {
			c.release()
			lib.Shutdown()
		}
	}()
	devs, _, err := energy.SelectedGPUs(lib, opt.Select)
	if err != nil {
		return nil, err
	}
	var ranges []Range
	for _, d := range devs {
		r, err := readRange(d)
		if err != nil {
			return nil, err
		}
		lk, err := lockGPU(c.dir, r.UUID)
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("gpu settings: GPU %d (%s) is being set by another llem process (lock %s); wait for it or select other GPUs with CUDA_VISIBLE_DEVICES", r.Index, r.UUID, lockPath(c.dir, r.UUID))
		}
		if err != nil {
			return nil, err
		}
		g := &gpu{dev: d, rng: r, lock: lk}
		c.gpus = append(c.gpus, g)
		if j, err := readJournal(c.dir, r.UUID); err == nil {
			if err := restoreFrom(d, *j, r); err != nil {
				return nil, fmt.Errorf("gpu settings: restoring GPU %d from the journal of killed llem pid %d: %w", r.Index, j.PID, err)
			}
			if err := removeJournal(c.dir, r.UUID); err != nil {
				return nil, err
			}
			c.Notes = append(c.Notes, fmt.Sprintf("GPU %d (%s): restored the settings found by llem pid %d, which ended without restoring them", r.Index, r.UUID, j.PID))
			if r, err = readRange(d); err != nil {
				return nil, err
			}
			g.rng = r
		}
		ranges = append(ranges, g.rng)
	}
	if opt.Plan != nil {
		if err := CheckPlan(opt.Plan, ranges); err != nil {
			return nil, err
		}
	}
	for _, g := range c.gpus {
		if err := g.snapshot(opt.Plan); err != nil {
			return nil, err
		}
		// The permission check: setting the limit it already has changes
		// nothing, and NVML answers NO_PERMISSION exactly as for a change.
		if ret := g.dev.SetPowerManagementLimit(g.found.PowerLimitMW); ret != nvml.SUCCESS {
			return nil, nvmlErr("set power limit", g.rng, ret)
		}
	}
	ok = true
	return c, nil
}

// snapshot records the GPU's settings as found and what the plan may change.
func (g *gpu) snapshot(p *study.Plan) error {
	lim, ret := g.dev.GetPowerManagementLimit()
	if ret != nvml.SUCCESS {
		return nvmlErr("read power limit", g.rng, ret)
	}
	j := journal{UUID: g.rng.UUID, Index: g.rng.Index, PID: os.Getpid(), PowerLimitMW: lim}
	if m, ret := g.dev.GetApplicationsClock(nvml.CLOCK_MEM); ret == nvml.SUCCESS {
		if s, ret := g.dev.GetApplicationsClock(nvml.CLOCK_GRAPHICS); ret == nvml.SUCCESS {
			j.AppMemMHz, j.AppSMMHz = m, s
		}
	}
	if p != nil {
		for _, r := range p.Runs {
			s := r.Config.GPU
			if s == nil {
				continue
			}
			j.Limit = j.Limit || s.PowerLimitW != nil || s.PowerLimitFraction != nil
			j.LockSM = j.LockSM || s.SMClockMHz != nil
			j.LockMem = j.LockMem || s.MemClockMHz != nil
			j.AppClocks = j.AppClocks || s.AppMemClockMHz != nil
		}
	}
	g.found = j
	return nil
}

// Apply puts run's settings on every GPU unless they are already in
// effect, and returns how long to let them settle (0 when nothing
// changed). The journal is written before the first change.
func (c *Controller) Apply(ctx context.Context, run study.Run) (time.Duration, error) {
	key := run.Config.GPU.Key()
	if key == c.cur {
		return 0, nil
	}
	if !c.journaled {
		for _, g := range c.gpus {
			g.found.Written = time.Now().UTC()
			if err := writeJournal(c.dir, g.found); err != nil {
				return 0, err
			}
		}
		c.journaled = true
	}
	for _, g := range c.gpus {
		t, _ := resolve(run.Config.GPU, g.rng)
		if err := g.apply(t); err != nil {
			c.cur = "\x00unknown" // partly applied: the next run sets everything again
			return 0, err
		}
	}
	c.cur = key
	return run.Config.GPU.Settle(), nil
}

// apply sets t; settings t leaves out go back to what was found.
func (g *gpu) apply(t target) error {
	f := g.found
	if f.Limit {
		lim := f.PowerLimitMW
		if t.hasLimit {
			lim = t.limitMW
		}
		if ret := g.dev.SetPowerManagementLimit(lim); ret != nvml.SUCCESS {
			return nvmlErr("set power limit", g.rng, ret)
		}
	}
	if f.LockSM && t.sm != g.sm {
		ret := nvml.SUCCESS
		if t.sm > 0 {
			ret = g.dev.SetGpuLockedClocks(uint32(t.sm), uint32(t.sm))
		} else {
			ret = g.dev.ResetGpuLockedClocks()
		}
		if ret != nvml.SUCCESS {
			return nvmlErr("lock SM clock", g.rng, ret)
		}
		g.sm = t.sm
	}
	if f.LockMem && t.mem != g.mem {
		ret := nvml.SUCCESS
		if t.mem > 0 {
			ret = g.dev.SetMemoryLockedClocks(uint32(t.mem), uint32(t.mem))
		} else {
			ret = g.dev.ResetMemoryLockedClocks()
		}
		if ret != nvml.SUCCESS {
			return nvmlErr("lock memory clock", g.rng, ret)
		}
		g.mem = t.mem
	}
	if f.AppClocks {
		if err := setApp(g.dev, g.rng, t, f); err != nil {
			return err
		}
	}
	return nil
}

func setApp(d nvml.Device, r Range, t target, f journal) error {
	var ret nvml.Return
	switch {
	case t.hasA:
		ret = d.SetApplicationsClocks(uint32(t.appMem), uint32(t.appSM))
	case f.AppMemMHz > 0:
		ret = d.SetApplicationsClocks(f.AppMemMHz, f.AppSMMHz)
	default:
		ret = d.ResetApplicationsClocks()
	}
	if ret != nvml.SUCCESS {
		return nvmlErr("set application clocks", r, ret)
	}
	return nil
}

// restoreFrom puts back what journal j found.
func restoreFrom(d nvml.Device, j journal, r Range) error {
	var errs []error
	if j.Limit {
		if ret := d.SetPowerManagementLimit(j.PowerLimitMW); ret != nvml.SUCCESS {
			errs = append(errs, nvmlErr("restore power limit", r, ret))
		}
	}
	if j.LockSM {
		if ret := d.ResetGpuLockedClocks(); ret != nvml.SUCCESS {
			errs = append(errs, nvmlErr("unlock SM clock", r, ret))
		}
	}
	if j.LockMem {
		if ret := d.ResetMemoryLockedClocks(); ret != nvml.SUCCESS {
			errs = append(errs, nvmlErr("unlock memory clock", r, ret))
		}
	}
	if j.AppClocks {
		if err := setApp(d, r, target{}, j); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// InEffect reads back every GPU's limit, enforced limit, clocks and
// throttle reasons (call it right after the worker ends).
func (c *Controller) InEffect() []result.GPUState {
	out := make([]result.GPUState, 0, len(c.gpus))
	for _, g := range c.gpus {
		s := result.GPUState{UUID: g.rng.UUID, Index: g.rng.Index, DefaultPowerLimitW: g.rng.DefaultLimitW, ThrottleReasons: []string{}}
		var errs []error
		if v, ret := g.dev.GetPowerManagementLimit(); ret == nvml.SUCCESS {
			s.PowerLimitW = float64(v) / 1000
		} else {
			errs = append(errs, fmt.Errorf("power limit: %v", ret))
		}
		if v, ret := g.dev.GetEnforcedPowerLimit(); ret == nvml.SUCCESS {
			s.EnforcedPowerLimitW = float64(v) / 1000
		} else {
			errs = append(errs, fmt.Errorf("enforced power limit: %v", ret))
		}
		if g.sm > 0 {
			s.LockedSMClockMHz = &g.sm
		}
		if g.mem > 0 {
			s.LockedMemClockMHz = &g.mem
		}
		if v, ret := g.dev.GetApplicationsClock(nvml.CLOCK_GRAPHICS); ret == nvml.SUCCESS {
			s.AppSMClockMHz = int(v)
		}
		if v, ret := g.dev.GetApplicationsClock(nvml.CLOCK_MEM); ret == nvml.SUCCESS {
			s.AppMemClockMHz = int(v)
		}
		if v, ret := g.dev.GetClockInfo(nvml.CLOCK_SM); ret == nvml.SUCCESS {
			s.SMClockMHz = int(v)
		}
		if v, ret := g.dev.GetClockInfo(nvml.CLOCK_MEM); ret == nvml.SUCCESS {
			s.MemClockMHz = int(v)
		}
		if v, ret := g.dev.GetCurrentClocksEventReasons(); ret == nvml.SUCCESS {
			s.ThrottleReasons = ThrottleNames(v)
		} else {
			errs = append(errs, fmt.Errorf("clock event reasons: %v", ret))
		}
		if err := errors.Join(errs...); err != nil {
			s.Error = err.Error()
		}
		out = append(out, s)
	}
	return out
}

// Restore puts every GPU back as found, removes the journals and releases
// the locks. It is safe to call more than once.
func (c *Controller) Restore() error {
	if c.restored {
		return nil
	}
	var errs []error
	for _, g := range c.gpus {
		if !c.journaled {
			continue
		}
		if err := restoreFrom(g.dev, g.found, g.rng); err != nil {
			errs = append(errs, err)
			continue // the journal stays: the next start tries again
		}
		g.sm, g.mem = 0, 0
		if err := removeJournal(c.dir, g.rng.UUID); err != nil {
			errs = append(errs, err)
		}
	}
	c.restored = true
	c.release()
	c.lib.Shutdown()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("gpu settings: restore failed, the journal in %s stays and the next llem start retries: %w", c.dir, err)
	}
	return nil
}

func (c *Controller) release() {
	for _, g := range c.gpus {
		g.lock.release()
	}
}

// Recover restores every GPU whose journal in dir was left by an llem that
// died without restoring it (its lock is free), and returns what it did.
// Without journals it does not touch NVML at all, so it is cheap to call
// at every start.
func Recover(l nvml.Interface, dir string) ([]string, error) {
	if dir == "" {
		dir = DefaultDir()
	}
	uuids := journalUUIDs(dir)
	if len(uuids) == 0 {
		return nil, nil
	}
	lib := libOf(l)
	if err := initLib(lib); err != nil {
		return nil, err
	}
	defer lib.Shutdown()
	var notes []string
	var errs []error
	for _, u := range uuids {
		lk, err := lockGPU(dir, u)
		if errors.Is(err, errLocked) {
			continue // a live llem owns it
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		j, err := readJournal(dir, u)
		if err != nil {
			lk.release()
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		d, ret := lib.DeviceGetHandleByUUID(u)
		if ret != nvml.SUCCESS {
			lk.release()
			errs = append(errs, fmt.Errorf("gpu settings: journal %s names GPU %s, which NVML does not see here: %v", journalPath(dir, u), u, ret))
			continue
		}
		r := Range{Index: j.Index, UUID: u}
		if err := restoreFrom(d, *j, r); err != nil {
			lk.release()
			errs = append(errs, err)
			continue
		}
		if err := removeJournal(dir, u); err != nil {
			errs = append(errs, err)
		}
		lk.release()
		notes = append(notes, fmt.Sprintf("GPU %d (%s): restored the power limit and clocks found by llem pid %d, which was killed before restoring them", j.Index, u, j.PID))
	}
	return notes, errors.Join(errs...)
}

// throttleNames are NVML's clock event reasons (nvmlClocksEventReason*).
var throttleNames = []struct {
	bit  uint64
	name string
}{
	{nvml.ClocksEventReasonGpuIdle, "gpu_idle"},
	{nvml.ClocksEventReasonApplicationsClocksSetting, "applications_clocks"},
	{nvml.ClocksEventReasonSwPowerCap, "sw_power_cap"},
	{nvml.ClocksThrottleReasonHwSlowdown, "hw_slowdown"},
	{nvml.ClocksEventReasonSyncBoost, "sync_boost"},
	{nvml.ClocksEventReasonSwThermalSlowdown, "sw_thermal"},
	{nvml.ClocksThrottleReasonHwThermalSlowdown, "hw_thermal"},
	{nvml.ClocksThrottleReasonHwPowerBrakeSlowdown, "hw_power_brake"},
	{nvml.ClocksEventReasonDisplayClockSetting, "display_clocks"},
	{nvml.ClocksEventReasonBoardLimit, "board_limit"},
	{nvml.ClocksEventReasonReliability, "reliability"},
}

// ThrottleNames names the set bits of an NVML clock event reason mask.
func ThrottleNames(mask uint64) []string {
	out := []string{}
	for _, t := range throttleNames {
		if mask&t.bit != 0 {
			out = append(out, t.name)
		}
	}
	if rest := mask &^ allThrottleBits(); rest != 0 {
		out = append(out, fmt.Sprintf("0x%x", rest))
	}
	return slices.Clip(out)
}

func allThrottleBits() uint64 {
	var m uint64
	for _, t := range throttleNames {
		m |= t.bit
	}
	return m
}
