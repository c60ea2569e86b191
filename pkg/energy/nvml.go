//go:build cgo

package energy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// NVML field ids read in the one batched GetFieldValues call per GPU per sample.
const (
	fieldEnergy       = nvml.FI_DEV_TOTAL_ENERGY_CONSUMPTION // 83, mJ since driver load
	fieldPowerInstant = nvml.FI_DEV_POWER_INSTANT            // 186, mW, not the 1 s average
)

// nvmlCounterPeriodNs: the H100's energy counter updates every ~100 ms
// (measured, docs/reference h100-facts); NVML documents no faster period.
const nvmlCounterPeriodNs = 100_000_000

// Aux fields a GPU may not support; disabled after the first NOT_SUPPORTED.
const (
	auxTemp = 1 << iota
	auxSMClock
	auxMemClock
	auxUtil
	auxMem
	auxThrottle
	auxAll = auxTemp | auxSMClock | auxMemClock | auxUtil | auxMem | auxThrottle
)

type nvmlDev struct {
	dev          nvml.Device
	uuid         string
	counterField bool // energy read from field 83 in the batch
	counterCall  bool // energy read from GetTotalEnergyConsumption (field unsupported)
	powerField   bool // instant power from field 186
	powerAvg     bool // fallback: GetPowerUsage (1 s average on Ampere+)
	base         uint64
	based        bool
	fv           []nvml.FieldValue
	ids          []uint32
	aux          int
}

// NVMLSensor reads NVIDIA GPUs through NVML: the energy counter for totals,
// instant power (field 186) for the timeline, plus temperature, clocks,
// utilisation, memory and throttle reasons.
type NVMLSensor struct {
	lib      nvml.Interface
	devs     []*nvmlDev
	channels []Channel
	closed   bool
}

func libFrom(opt NVMLOptions) (nvml.Interface, error) {
	if opt.Lib == nil {
		return nvml.New(), nil
	}
	lib, ok := opt.Lib.(nvml.Interface)
	if !ok {
		return nil, fmt.Errorf("open nvml: Lib is %T, not nvml.Interface", opt.Lib)
	}
	return lib, nil
}

// initNVML calls Init and nothing else unless it succeeded: any other NVML
// call without a successful Init kills the process (symbol lookup error).
func initNVML(opt NVMLOptions) (nvml.Interface, error) {
	lib, err := libFrom(opt)
	if err != nil {
		return nil, err
	}
	if ret := lib.Init(); ret != nvml.SUCCESS {
		reason := "init: " + ret.Error()
		switch ret {
		case nvml.ERROR_LIBRARY_NOT_FOUND:
			reason = "libnvidia-ml.so.1 not found (no NVIDIA driver on this machine, or not mounted into the container)"
		case nvml.ERROR_DRIVER_NOT_LOADED:
			reason = "NVIDIA driver not loaded"
		case nvml.ERROR_NO_PERMISSION:
			reason = "no permission to open the GPU device files (/dev/nvidia*)"
		}
		return nil, Unavailable("nvml", reason)
	}
	return lib, nil
}

// OpenNVML initialises NVML and prepares the GPUs that CUDA_VISIBLE_DEVICES
// selects (all when unset), each once, identified by UUID.
//
// MIG policy: a MIG instance cannot be measured on its own (NVML reports
// power and energy per physical GPU only), so llem measures the parent GPU
// and attaches a warning to the channel: the energy includes every other MIG
// instance on that GPU. This keeps MIG users measurable while making the
// caveat part of every result (flag mig_parent_measured).
func OpenNVML(opt NVMLOptions) (*NVMLSensor, error) {
	lib, err := initNVML(opt)
	if err != nil {
		return nil, err
	}
	s := &NVMLSensor{lib: lib}
	if err := s.open(opt); err != nil {
		lib.Shutdown()
		return nil, err
	}
	return s, nil
}

type selectedGPU struct {
	dev      nvml.Device
	warnings []Caveat
}

// selectGPUs maps CUDA_VISIBLE_DEVICES onto NVML handles, deduplicated by UUID.
func selectGPUs(lib nvml.Interface, opt NVMLOptions) ([]selectedGPU, []string, error) {
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, nil, Unavailable("nvml", "device count: "+ret.Error())
	}
	all := make([]nvml.Device, 0, count)
	uuids := make([]string, 0, count)
	for i := 0; i < count; i++ {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, nil, fmt.Errorf("get gpu %d handle: %w", i, ret)
		}
		u, ret := d.GetUUID()
		if ret != nvml.SUCCESS {
			return nil, nil, fmt.Errorf("get gpu %d uuid: %w", i, ret)
		}
		all = append(all, d)
		uuids = append(uuids, u)
	}
	entries, every := ParseVisibleDevices(opt.VisibleDevices, opt.VisibleSet)
	var notes []string
	var out []selectedGPU
	seen := map[string]bool{}
	add := func(i int, warn ...Caveat) {
		if seen[uuids[i]] {
			return
		}
		seen[uuids[i]] = true
		out = append(out, selectedGPU{dev: all[i], warnings: warn})
	}
	if every {
		for i := range all {
			add(i)
		}
		return out, notes, nil
	}
	numeric := false
	for _, e := range entries {
		switch {
		case e.Index >= 0:
			numeric = true
			if e.Index >= count {
				return nil, nil, fmt.Errorf("select gpus: CUDA_VISIBLE_DEVICES index %d, but NVML sees %d GPUs", e.Index, count)
			}
			add(e.Index)
		case e.IsMIG():
			mig, ret := lib.DeviceGetHandleByUUID(e.UUID)
			if ret != nvml.SUCCESS {
				return nil, nil, fmt.Errorf("select gpus: MIG device %s: %w", e.UUID, ret)
			}
			parent, ret := mig.GetDeviceHandleFromMigDeviceHandle()
			if ret != nvml.SUCCESS {
				return nil, nil, fmt.Errorf("select gpus: parent of MIG device %s: %w", e.UUID, ret)
			}
			pu, ret := parent.GetUUID()
			if ret != nvml.SUCCESS {
				return nil, nil, fmt.Errorf("select gpus: parent uuid of %s: %w", e.UUID, ret)
			}
			found := false
			for i, u := range uuids {
				if u == pu {
					add(i, Caveat{CaveatMIGParent, fmt.Sprintf("MIG instance %s selected: measuring its whole parent GPU %s, so energy includes every other MIG instance on it", e.UUID, pu)})
					found = true
				}
			}
			if !found {
				return nil, nil, fmt.Errorf("select gpus: parent %s of MIG device %s not among NVML's GPUs", pu, e.UUID)
			}
		default:
			match := -1
			for i, u := range uuids {
				if strings.HasPrefix(u, e.UUID) {
					if match >= 0 {
						return nil, nil, fmt.Errorf("select gpus: CUDA_VISIBLE_DEVICES entry %q matches more than one GPU", e.UUID)
					}
					match = i
				}
			}
			if match < 0 {
				return nil, nil, fmt.Errorf("select gpus: CUDA_VISIBLE_DEVICES entry %q matches no GPU", e.UUID)
			}
			add(match)
		}
	}
	if numeric && opt.DeviceOrder != "PCI_BUS_ID" && !sameNames(all) {
		notes = append(notes, "CUDA_VISIBLE_DEVICES uses indices on a machine with different GPU models and CUDA_DEVICE_ORDER is not PCI_BUS_ID: CUDA's order may differ from NVML's; set CUDA_DEVICE_ORDER=PCI_BUS_ID or use UUIDs")
	}
	return out, notes, nil
}

func sameNames(devs []nvml.Device) bool {
	first := ""
	for i, d := range devs {
		n, _ := d.GetName()
		if i == 0 {
			first = n
		} else if n != first {
			return false
		}
	}
	return true
}

func (s *NVMLSensor) open(opt NVMLOptions) error {
	gpus, notes, err := selectGPUs(s.lib, opt)
	if err != nil {
		return err
	}
	if len(gpus) == 0 {
		return Unavailable("nvml", "no GPU selected (no NVIDIA GPU found, or CUDA_VISIBLE_DEVICES is empty)")
	}
	for _, g := range gpus {
		d := g.dev
		uuid, _ := d.GetUUID()
		name, _ := d.GetName()
		idx, ret := d.GetIndex()
		if ret != nvml.SUCCESS {
			idx = -1
		}
		ch := Channel{ID: "gpu:" + uuid, Sensor: "nvml", Kind: "gpu", Name: name, Index: idx,
			Notes: append([]string(nil), notes...), Warnings: g.warnings}
		if cur, _, ret := d.GetMigMode(); ret == nvml.SUCCESS && cur == nvml.DEVICE_MIG_ENABLE && len(g.warnings) == 0 {
			ch.Warnings = append(ch.Warnings, Caveat{CaveatMIGParent, fmt.Sprintf("MIG is enabled on %s: llem measures the whole GPU, including every MIG instance on it", uuid)})
		}
		if mw, ret := d.GetEnforcedPowerLimit(); ret == nvml.SUCCESS {
			ch.MaxPowerW = float64(mw) / 1000
		}
		nd := &nvmlDev{dev: d, uuid: uuid, aux: auxAll}
		arch, ret := d.GetArchitecture()
		volta := ret == nvml.SUCCESS && arch >= nvml.DEVICE_ARCH_VOLTA && arch != nvml.DEVICE_ARCH_UNKNOWN
		// Probe the batched fields once to learn what this GPU answers.
		probe := []nvml.FieldValue{{FieldId: fieldEnergy}, {FieldId: fieldPowerInstant}}
		if ret := d.GetFieldValues(probe); ret == nvml.SUCCESS {
			nd.counterField = volta && probe[0].NvmlReturn == uint32(nvml.SUCCESS)
			nd.powerField = probe[1].NvmlReturn == uint32(nvml.SUCCESS)
		}
		if volta && !nd.counterField {
			if _, ret := d.GetTotalEnergyConsumption(); ret == nvml.SUCCESS {
				nd.counterCall = true
			}
		}
		if !nd.powerField {
			if _, ret := d.GetPowerUsage(); ret == nvml.SUCCESS {
				nd.powerAvg = true
				if volta && arch >= nvml.DEVICE_ARCH_AMPERE {
					ch.Warnings = append(ch.Warnings, Caveat{CaveatAveragePower, "instant power (field 186) unsupported: timeline uses GetPowerUsage, a 1 s average on Ampere and newer"})
				}
			}
		}
		switch {
		case nd.counterField || nd.counterCall:
			ch.Method, ch.HasCounter, ch.CounterPeriodNs = MethodCounter, true, nvmlCounterPeriodNs
		case nd.powerField || nd.powerAvg:
			ch.Method = MethodPowerIntegration
			if !volta {
				ch.Notes = append(ch.Notes, "pre-Volta GPU has no energy counter: energy is the integral of sampled power")
			} else {
				ch.Notes = append(ch.Notes, "energy counter did not answer: energy is the integral of sampled power")
			}
		default:
			return Unavailable("nvml", fmt.Sprintf("GPU %s reports neither an energy counter nor power", uuid))
		}
		if nd.counterField {
			nd.ids = append(nd.ids, fieldEnergy)
		}
		if nd.powerField {
			nd.ids = append(nd.ids, fieldPowerInstant)
		}
		nd.fv = make([]nvml.FieldValue, len(nd.ids))
		s.devs = append(s.devs, nd)
		s.channels = append(s.channels, ch)
	}
	return nil
}

// Name implements Sensor.
func (s *NVMLSensor) Name() string { return "nvml" }

// Channels implements Sensor.
func (s *NVMLSensor) Channels() []Channel { return s.channels }

// Read implements Sensor: one batched GetFieldValues per GPU (energy counter
// and instant power), plus the aux calls when aux is set.
func (s *NVMLSensor) Read(dst []Sample, mode ReadMode) error {
	var errs []*ChannelError
	for i, d := range s.devs {
		if err := d.read(&dst[i], mode); err != nil {
			if errs == nil {
				errs = make([]*ChannelError, len(s.devs))
			}
			errs[i] = &ChannelError{Index: i, Err: err}
		}
	}
	if errs == nil {
		return nil
	}
	return JoinChannelErrors(errs)
}

func (d *nvmlDev) read(dst *Sample, mode ReadMode) error {
	dst.Reset(clock.Now())
	// The energy field is first in ids: leave it out unless asked for.
	fv := d.fv
	if d.counterField && mode&ReadCounter == 0 {
		fv = d.fv[1:]
	}
	if len(fv) > 0 {
		off := len(d.fv) - len(fv)
		for i := range fv {
			fv[i] = nvml.FieldValue{FieldId: d.ids[off+i]}
		}
		if ret := d.dev.GetFieldValues(fv); ret != nvml.SUCCESS {
			return fmt.Errorf("read gpu %s fields: %w", d.uuid, ret)
		}
	}
	dst.TNs = clock.Now()
	for i := range fv {
		f := &fv[i]
		if f.NvmlReturn != uint32(nvml.SUCCESS) {
			return fmt.Errorf("read gpu %s field %d: %w", d.uuid, f.FieldId, nvml.Return(f.NvmlReturn))
		}
		switch f.FieldId {
		case fieldEnergy:
			if err := d.setEnergy(dst, fieldUint(f)); err != nil {
				return err
			}
		case fieldPowerInstant:
			dst.PowerW = float64(fieldUint(f)) / 1000
		}
	}
	if d.counterCall && mode&ReadCounter != 0 {
		mj, ret := d.dev.GetTotalEnergyConsumption()
		if ret != nvml.SUCCESS {
			return fmt.Errorf("read gpu %s energy: %w", d.uuid, ret)
		}
		if err := d.setEnergy(dst, mj); err != nil {
			return err
		}
	}
	if d.powerAvg {
		mw, ret := d.dev.GetPowerUsage()
		if ret != nvml.SUCCESS {
			return fmt.Errorf("read gpu %s power: %w", d.uuid, ret)
		}
		dst.PowerW = float64(mw) / 1000
	}
	if mode&ReadAux != 0 {
		d.readAux(dst)
	}
	return nil
}

func (d *nvmlDev) setEnergy(dst *Sample, mj uint64) error {
	if !d.based {
		d.base, d.based = mj, true
	}
	if mj < d.base {
		return fmt.Errorf("read gpu %s energy: counter went backwards (%d < %d mJ; driver reloaded?)", d.uuid, mj, d.base)
	}
	dst.EnergyJ = float64(mj-d.base) / 1000
	return nil
}

// readAux reads the slow fields; each is optional and switched off after the
// first NOT_SUPPORTED so unsupported calls are not repeated every tick.
func (d *nvmlDev) readAux(dst *Sample) {
	off := func(bit int, ret nvml.Return) bool {
		if ret == nvml.ERROR_NOT_SUPPORTED {
			d.aux &^= bit
		}
		return ret == nvml.SUCCESS
	}
	if d.aux&auxTemp != 0 {
		if v, ret := d.dev.GetTemperature(nvml.TEMPERATURE_GPU); off(auxTemp, ret) {
			dst.TempC = float64(v)
		}
	}
	if d.aux&auxSMClock != 0 {
		if v, ret := d.dev.GetClockInfo(nvml.CLOCK_SM); off(auxSMClock, ret) {
			dst.SMClockMHz = float64(v)
		}
	}
	if d.aux&auxMemClock != 0 {
		if v, ret := d.dev.GetClockInfo(nvml.CLOCK_MEM); off(auxMemClock, ret) {
			dst.MemClockMHz = float64(v)
		}
	}
	if d.aux&auxUtil != 0 {
		if v, ret := d.dev.GetUtilizationRates(); off(auxUtil, ret) {
			dst.UtilPct = float64(v.Gpu)
		}
	}
	if d.aux&auxMem != 0 {
		if v, ret := d.dev.GetMemoryInfo(); off(auxMem, ret) {
			dst.MemUsedBytes = int64(v.Used)
		}
	}
	if d.aux&auxThrottle != 0 {
		if v, ret := d.dev.GetCurrentClocksEventReasons(); off(auxThrottle, ret) {
			dst.ThrottleReasons = int64(v)
		}
	}
}

// fieldUint decodes an integer field value (NVML stores it little-endian in
// an 8-byte union whose width ValueType gives).
func fieldUint(f *nvml.FieldValue) uint64 {
	switch nvml.ValueType(f.ValueType) {
	case nvml.VALUE_TYPE_DOUBLE:
		return uint64(math.Float64frombits(binary.LittleEndian.Uint64(f.Value[:])))
	case nvml.VALUE_TYPE_UNSIGNED_INT, nvml.VALUE_TYPE_SIGNED_INT:
		return uint64(binary.LittleEndian.Uint32(f.Value[:4]))
	case nvml.VALUE_TYPE_UNSIGNED_SHORT:
		return uint64(binary.LittleEndian.Uint16(f.Value[:2]))
	default:
		return binary.LittleEndian.Uint64(f.Value[:])
	}
}

// Close implements Sensor: NVML Shutdown, once.
func (s *NVMLSensor) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if ret := s.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("shutdown nvml: %w", ret)
	}
	return nil
}

// ProbeNVML reports the driver and every GPU's static facts, marking those
// CUDA_VISIBLE_DEVICES selects. It initialises and shuts NVML down itself.
func ProbeNVML(opt NVMLOptions) (NVMLInfo, error) {
	lib, err := initNVML(opt)
	if err != nil {
		return NVMLInfo{}, err
	}
	defer lib.Shutdown()
	var info NVMLInfo
	if v, ret := lib.SystemGetDriverVersion(); ret == nvml.SUCCESS {
		info.DriverVersion = v
	}
	if v, ret := lib.SystemGetNVMLVersion(); ret == nvml.SUCCESS {
		info.NVMLVersion = v
	}
	if v, ret := lib.SystemGetCudaDriverVersion(); ret == nvml.SUCCESS {
		info.CUDADriverVersion = fmt.Sprintf("%d.%d", v/1000, (v%1000)/10)
	}
	selected := map[string]bool{}
	if gpus, _, err := selectGPUs(lib, opt); err == nil {
		for _, g := range gpus {
			u, _ := g.dev.GetUUID()
			selected[u] = true
		}
	}
	count, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return info, fmt.Errorf("probe nvml: device count: %w", ret)
	}
	var errs []error
	for i := 0; i < count; i++ {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("probe gpu %d: %w", i, ret))
			continue
		}
		info.GPUs = append(info.GPUs, probeGPU(i, d, selected))
	}
	return info, errors.Join(errs...)
}

func probeGPU(i int, d nvml.Device, selected map[string]bool) GPUInfo {
	g := GPUInfo{Index: i}
	g.UUID, _ = d.GetUUID()
	g.Name, _ = d.GetName()
	g.Selected = selected[g.UUID]
	arch, ret := d.GetArchitecture()
	if ret == nvml.SUCCESS {
		g.Architecture = archName(arch)
	}
	if ma, mi, ret := d.GetCudaComputeCapability(); ret == nvml.SUCCESS {
		g.ComputeCapability = fmt.Sprintf("%d.%d", ma, mi)
	}
	if p, ret := d.GetPciInfo(); ret == nvml.SUCCESS {
		g.PCIBusID = cString(p.BusId[:])
	}
	if m, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
		g.MemoryTotalBytes = m.Total
	}
	watts := func(mw uint32, ret nvml.Return) *float64 {
		if ret != nvml.SUCCESS {
			return nil
		}
		w := float64(mw) / 1000
		return &w
	}
	g.PowerLimitW = watts(d.GetPowerManagementLimit())
	g.DefaultPowerLimitW = watts(d.GetPowerManagementDefaultLimit())
	g.EnforcedPowerLimitW = watts(d.GetEnforcedPowerLimit())
	if lo, hi, ret := d.GetPowerManagementLimitConstraints(); ret == nvml.SUCCESS {
		g.MinPowerLimitW, g.MaxPowerLimitW = watts(lo, ret), watts(hi, ret)
	}
	boolp := func(b bool) *bool { return &b }
	if v, ret := d.GetPersistenceMode(); ret == nvml.SUCCESS {
		g.PersistenceMode = boolp(v == nvml.FEATURE_ENABLED)
	}
	if cur, _, ret := d.GetEccMode(); ret == nvml.SUCCESS {
		g.ECCEnabled = boolp(cur == nvml.FEATURE_ENABLED)
	}
	if cur, _, ret := d.GetMigMode(); ret == nvml.SUCCESS {
		g.MIGEnabled = boolp(cur == nvml.DEVICE_MIG_ENABLE)
	}
	clk := func(v uint32, ret nvml.Return) *uint32 {
		if ret != nvml.SUCCESS {
			return nil
		}
		return &v
	}
	g.SMClockMHz = clk(d.GetClockInfo(nvml.CLOCK_SM))
	g.MemClockMHz = clk(d.GetClockInfo(nvml.CLOCK_MEM))
	g.MaxSMClockMHz = clk(d.GetMaxClockInfo(nvml.CLOCK_SM))
	g.MaxMemClockMHz = clk(d.GetMaxClockInfo(nvml.CLOCK_MEM))
	fv := []nvml.FieldValue{{FieldId: fieldEnergy}, {FieldId: fieldPowerInstant}}
	if d.GetFieldValues(fv) == nvml.SUCCESS {
		volta := ret == nvml.SUCCESS && arch >= nvml.DEVICE_ARCH_VOLTA && arch != nvml.DEVICE_ARCH_UNKNOWN
		g.HasEnergyCounter = volta && fv[0].NvmlReturn == uint32(nvml.SUCCESS)
		g.HasInstantPower = fv[1].NvmlReturn == uint32(nvml.SUCCESS)
	}
	if !g.HasEnergyCounter && ret == nvml.SUCCESS && arch >= nvml.DEVICE_ARCH_VOLTA && arch != nvml.DEVICE_ARCH_UNKNOWN {
		_, r := d.GetTotalEnergyConsumption()
		g.HasEnergyCounter = r == nvml.SUCCESS
	}
	return g
}

func archName(a nvml.DeviceArchitecture) string {
	switch a {
	case nvml.DEVICE_ARCH_KEPLER:
		return "kepler"
	case nvml.DEVICE_ARCH_MAXWELL:
		return "maxwell"
	case nvml.DEVICE_ARCH_PASCAL:
		return "pascal"
	case nvml.DEVICE_ARCH_VOLTA:
		return "volta"
	case nvml.DEVICE_ARCH_TURING:
		return "turing"
	case nvml.DEVICE_ARCH_AMPERE:
		return "ampere"
	case nvml.DEVICE_ARCH_ADA:
		return "ada"
	case nvml.DEVICE_ARCH_HOPPER:
		return "hopper"
	case nvml.DEVICE_ARCH_BLACKWELL:
		return "blackwell"
	case nvml.DEVICE_ARCH_RUBIN:
		return "rubin"
	}
	return fmt.Sprintf("unknown(%d)", a)
}

func cString[T ~int8 | ~uint8](b []T) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// OtherProcesses lists the compute and graphics processes other than this
// one on the measured GPUs (nvmlDeviceGetComputeRunningProcesses,
// nvmlDeviceGetGraphicsRunningProcesses), for the idle-baseline check. A
// GPU whose driver does not answer is skipped.
func (s *NVMLSensor) OtherProcesses() ([]string, error) {
	self := uint32(os.Getpid())
	var out []string
	seen := map[string]bool{}
	for _, d := range s.devs {
		for _, get := range []func() ([]nvml.ProcessInfo, nvml.Return){d.dev.GetComputeRunningProcesses, d.dev.GetGraphicsRunningProcesses} {
			ps, ret := get()
			if ret != nvml.SUCCESS {
				continue
			}
			for _, p := range ps {
				k := fmt.Sprintf("pid %d on %s", p.Pid, d.uuid)
				if p.Pid != self && !seen[k] {
					seen[k] = true
					out = append(out, k)
				}
			}
		}
	}
	return out, nil
}
