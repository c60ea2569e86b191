package energy

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// AMDSMIOptions configure the AMD SMI sensor.
type AMDSMIOptions struct {
	// LibPath is libamd_smi.so's path; empty tries the dynamic loader's
	// search path, then $ROCM_PATH/lib and /opt/rocm/lib.
	LibPath string
	// Lib replaces the library (tests pass recorded values).
	Lib AMDSMILib
	// VisibleDevices selects GPUs as HIP/ROCm do: comma-separated indices
	// (AMD SMI enumeration order) or UUIDs; VisibleSet false means all.
	// AMDSMIOptionsFromEnv fills it from ROCR_VISIBLE_DEVICES, else
	// HIP_VISIBLE_DEVICES.
	VisibleDevices string
	VisibleSet     bool
}

// AMDSMIOptionsFromEnv reads the GPU selection from ROCR_VISIBLE_DEVICES or
// HIP_VISIBLE_DEVICES (the first that is set).
func AMDSMIOptionsFromEnv() AMDSMIOptions {
	for _, k := range []string{"ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"} {
		if v, ok := os.LookupEnv(k); ok {
			return AMDSMIOptions{VisibleDevices: v, VisibleSet: true}
		}
	}
	return AMDSMIOptions{}
}

// AMDSMIStatus is amdsmi_status_t.
type AMDSMIStatus uint32

// amdsmi_status_t values used here (amd_smi/amdsmi.h).
const (
	AMDSMIStatusSuccess      AMDSMIStatus = 0
	AMDSMIStatusInval        AMDSMIStatus = 1
	AMDSMIStatusNotSupported AMDSMIStatus = 2
	AMDSMIStatusNoPerm       AMDSMIStatus = 10
)

func (s AMDSMIStatus) Error() string {
	switch s {
	case AMDSMIStatusSuccess:
		return "success"
	case AMDSMIStatusInval:
		return "AMDSMI_STATUS_INVAL"
	case AMDSMIStatusNotSupported:
		return "AMDSMI_STATUS_NOT_SUPPORTED"
	case AMDSMIStatusNoPerm:
		return "AMDSMI_STATUS_NO_PERM"
	}
	return "amdsmi status " + strconv.Itoa(int(s))
}

// AMDSMILib is the part of libamd_smi the sensor calls, one method per C
// function (amd_smi/amdsmi.h). Handles are the library's opaque pointers.
// The real one is loaded at run time (amdsmi_lib.go); tests replay recorded
// values.
type AMDSMILib interface {
	// Init is amdsmi_init(AMDSMI_INIT_AMD_GPUS).
	Init() AMDSMIStatus
	// ShutDown is amdsmi_shut_down.
	ShutDown() AMDSMIStatus
	// GPUs is amdsmi_get_socket_handles then amdsmi_get_processor_handles
	// per socket, in enumeration order.
	GPUs() ([]uintptr, AMDSMIStatus)
	// UUID is amdsmi_get_gpu_device_uuid.
	UUID(h uintptr) (string, AMDSMIStatus)
	// BDF is amdsmi_get_gpu_bdf_id: domain<<32 | partition<<28 | bus<<8 |
	// device<<3 | function.
	BDF(h uintptr) (uint64, AMDSMIStatus)
	// EnergyCount is amdsmi_get_energy_count: the accumulator, its
	// resolution in µJ per count, and the device timestamp in ns.
	EnergyCount(h uintptr) (count uint64, resolutionUJ float32, tsNs uint64, st AMDSMIStatus)
}

type amdGPU struct {
	h         uintptr
	last      uint64 // µJ (count × resolution), as read
	lastTs    uint64
	lastT     int64
	cum       float64 // µJ since the first read
	started   bool
	resUJ     float64
	countOnly bool
}

// AMDSMISensor reads AMD GPUs through AMD SMI: the energy accumulator
// (amdsmi_get_energy_count: counter × resolution µJ) for totals, and the
// counter's rate between samples (device timestamps) for the timeline.
//
// Partitions (MI300 CPX/DPX/QPX compute partitions, XCPs): AMD SMI lists
// each partition as a processor, but the energy accumulator belongs to the
// whole GPU. As with NVML's MIG, llem measures the physical GPU once (one
// channel per PCI device, read through its first partition that answers)
// and attaches partition_parent_measured: the energy includes every other
// partition on that GPU.
type AMDSMISensor struct {
	lib      AMDSMILib
	gpus     []*amdGPU
	channels []Channel
	closed   bool
}

// The AMD SMI sensor, after NVML in auto's chain.
func init() {
	RegisterSensor(SensorDef{Name: "amdsmi", AutoRank: 2, Interval: DefaultIntervalNVML, Open: openAMDSMISensor,
		AutoReason: func(Sensor) string {
			return "no usable NVIDIA GPU; AMD GPUs with AMD SMI energy counters found"
		}})
}

func openAMDSMISensor(cfg Config) (Sensor, error) {
	s, err := OpenAMDSMI(cfg.AMDSMI)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// amdBDFPhysical clears the partition bits ([31:28], and the function bits
// [2:0] that some modes use for the partition id) so that every partition
// of one GPU has the same key.
func amdBDFPhysical(bdf uint64) uint64 { return bdf &^ (0xF<<28 | 0x7) }

// AMDPCIAddress formats a BDF id as a PCI address, 0000:c1:00.0.
func AMDPCIAddress(bdf uint64) string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", bdf>>32&0xFFFFFFFF, bdf>>8&0xFF, bdf>>3&0x1F, bdf&0x7)
}

// OpenAMDSMI loads libamd_smi (or opt.Lib), initialises it for AMD GPUs and
// prepares one channel per selected physical GPU.
func OpenAMDSMI(opt AMDSMIOptions) (*AMDSMISensor, error) {
	lib := opt.Lib
	if lib == nil {
		l, err := loadAMDSMI(opt.LibPath)
		if err != nil {
			return nil, err
		}
		lib = l
	}
	if st := lib.Init(); st != AMDSMIStatusSuccess {
		reason := "amdsmi_init: " + st.Error()
		if st == AMDSMIStatusNoPerm {
			reason = "amdsmi_init: no permission to open the GPU device files (/dev/kfd, /dev/dri/*): add the user to the render and video groups"
		}
		return nil, Unavailable("amdsmi", reason)
	}
	s := &AMDSMISensor{lib: lib}
	if err := s.open(opt); err != nil {
		lib.ShutDown()
		return nil, err
	}
	return s, nil
}

func (s *AMDSMISensor) open(opt AMDSMIOptions) error {
	hs, st := s.lib.GPUs()
	if st != AMDSMIStatusSuccess {
		return Unavailable("amdsmi", "list GPUs: "+st.Error())
	}
	if len(hs) == 0 {
		return Unavailable("amdsmi", "AMD SMI found no AMD GPU")
	}
	type proc struct {
		h    uintptr
		idx  int
		uuid string
		bdf  uint64
	}
	var procs []proc
	for i, h := range hs {
		p := proc{h: h, idx: i}
		p.uuid, _ = s.lib.UUID(h)
		p.bdf, _ = s.lib.BDF(h)
		procs = append(procs, p)
	}
	selected := make([]bool, len(procs))
	if !opt.VisibleSet {
		for i := range selected {
			selected[i] = true
		}
	} else {
		for _, tok := range strings.Split(opt.VisibleDevices, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" {
				break
			}
			found := false
			if n, err := strconv.Atoi(tok); err == nil && n >= 0 && n < len(procs) {
				selected[n], found = true, true
			}
			for i, p := range procs {
				if !found && p.uuid != "" && strings.EqualFold(p.uuid, tok) {
					selected[i], found = true, true
				}
			}
			if !found {
				break // as the ROCm runtime: the list ends at the first invalid entry
			}
		}
	}
	// Group partitions by physical GPU, in enumeration order.
	var order []uint64
	groups := map[uint64][]proc{}
	for _, p := range procs {
		k := amdBDFPhysical(p.bdf)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	var skipped []string
	for gi, k := range order {
		g := groups[k]
		want := false
		for _, p := range g {
			want = want || selected[p.idx]
		}
		if !want {
			continue
		}
		var dev *amdGPU
		var reason string
		for _, p := range g {
			c, res, ts, st := s.lib.EnergyCount(p.h)
			if st != AMDSMIStatusSuccess {
				reason = st.Error()
				continue
			}
			_, _ = c, ts // the zero point is taken by the first Read below
			dev = &amdGPU{h: p.h, resUJ: float64(res)}
			break
		}
		addr := AMDPCIAddress(k)
		if dev == nil {
			skipped = append(skipped, fmt.Sprintf("GPU %s: amdsmi_get_energy_count: %s", addr, reason))
			continue
		}
		id := g[0].uuid
		if id == "" {
			id = addr
		}
		ch := Channel{ID: "gpu:" + id, Sensor: "amdsmi", Kind: "gpu", Domain: DomainAccelerator, Name: "AMD GPU " + addr,
			Index: gi, Device: addr, Method: MethodCounter, HasCounter: true, CounterPeriodNs: amdCounterPeriodNs,
			Notes: []string{fmt.Sprintf("AMD SMI energy accumulator × %.4g µJ resolution; power is its rate between samples (device timestamps)", dev.resUJ)}}
		if len(g) > 1 {
			var parts []string
			for _, p := range g {
				parts = append(parts, fmt.Sprintf("%d (%s)", p.idx, p.uuid))
			}
			ch.Warnings = append(ch.Warnings, Caveat{CaveatPartitionParent, fmt.Sprintf("GPU %s is partitioned into %d compute partitions (%s): AMD SMI reports energy per physical GPU, so the whole GPU was measured, including partitions this run does not use", addr, len(g), strings.Join(parts, ", "))})
		}
		s.gpus = append(s.gpus, dev)
		s.channels = append(s.channels, ch)
	}
	if len(s.gpus) == 0 {
		if len(skipped) > 0 {
			return Unavailable("amdsmi", "no selected AMD GPU has an energy counter ("+strings.Join(skipped, "; ")+")")
		}
		return Unavailable("amdsmi", "no AMD GPU selected by ROCR_VISIBLE_DEVICES/HIP_VISIBLE_DEVICES")
	}
	// Zero point.
	dst := make([]Sample, len(s.gpus))
	_ = s.Read(dst, ReadCounter)
	return nil
}

// amdCounterPeriodNs: AMD SMI documents no update period for the energy
// accumulator; 10 ms keeps windows shorter than 20 ms on power integration.
// Not validated on hardware.
const amdCounterPeriodNs = 10_000_000

// Name implements Sensor.
func (s *AMDSMISensor) Name() string { return "amdsmi" }

// Channels implements Sensor.
func (s *AMDSMISensor) Channels() []Channel { return s.channels }

// Read implements Sensor: the accumulator is read every time (AMD SMI
// reads it from the GPU metrics table; no cost figure is published).
func (s *AMDSMISensor) Read(dst []Sample, _ ReadMode) error {
	var errs []*ChannelError
	for i, g := range s.gpus {
		c, res, ts, st := s.lib.EnergyCount(g.h)
		now := clock.Now()
		dst[i].Reset(now)
		if st != AMDSMIStatusSuccess {
			if errs == nil {
				errs = make([]*ChannelError, len(s.gpus))
			}
			errs[i] = &ChannelError{Index: i, Err: fmt.Errorf("amdsmi_get_energy_count %s: %w", s.channels[i].Device, st)}
			continue
		}
		if res > 0 {
			g.resUJ = float64(res)
		}
		if g.started {
			dc := c - g.last
			if c < g.last { // wrapped: narrowest width (32 or 64 bits) holding the last count
				if g.last < 1<<32 {
					dc = c + (1<<32 - g.last)
				} else {
					dc = c + (^uint64(0) - g.last) + 1
				}
			}
			duj := float64(dc) * g.resUJ
			g.cum += duj
			dt := float64(now-g.lastT) / 1e9
			if ts > g.lastTs && g.lastTs > 0 {
				dt = float64(ts-g.lastTs) / 1e9
			}
			if dt > 0 {
				dst[i].PowerW = duj / 1e6 / dt
			}
		}
		g.started, g.last, g.lastTs, g.lastT = true, c, ts, now
		dst[i].EnergyJ = g.cum / 1e6
	}
	if errs == nil {
		return nil
	}
	return JoinChannelErrors(errs)
}

// Close implements Sensor (amdsmi_shut_down).
func (s *AMDSMISensor) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if st := s.lib.ShutDown(); st != AMDSMIStatusSuccess {
		return fmt.Errorf("amdsmi_shut_down: %w", st)
	}
	return nil
}
