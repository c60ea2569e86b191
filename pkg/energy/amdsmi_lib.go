//go:build cgo

package energy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ebitengine/purego"
)

// CgoEnabled says whether this build can load shared libraries at run time
// (AMD SMI; NVML is cgo too).
const CgoEnabled = true

// amdInitAMDGPUs is AMDSMI_INIT_AMD_GPUS (amd_smi/amdsmi.h).
const amdInitAMDGPUs = 1 << 1

// amdGPUUUIDSize is AMDSMI_GPU_UUID_SIZE.
const amdGPUUUIDSize = 38

// amdsmiDL is libamd_smi.so loaded at run time with purego (no cgo, no
// link-time dependency): a binary built anywhere runs where ROCm is absent,
// and the sensor then reports unavailable.
type amdsmiDL struct {
	init             func(flags uint64) uint32
	shutDown         func() uint32
	socketHandles    func(count *uint32, handles *uintptr) uint32
	processorHandles func(socket uintptr, count *uint32, handles *uintptr) uint32
	uuid             func(h uintptr, length *uint32, uuid *byte) uint32
	bdf              func(h uintptr, bdf *uint64) uint32
	energy           func(h uintptr, count *uint64, res *float32, ts *uint64) uint32
}

// amdsmiLibCandidates are tried in order when no path is given.
func amdsmiLibCandidates() []string {
	c := []string{"libamd_smi.so", "libamd_smi.so.26", "libamd_smi.so.25", "libamd_smi.so.24"}
	if r := os.Getenv("ROCM_PATH"); r != "" {
		c = append(c, filepath.Join(r, "lib", "libamd_smi.so"))
	}
	return append(c, "/opt/rocm/lib/libamd_smi.so")
}

// loadAMDSMI opens libamd_smi and resolves the functions the sensor calls.
// A missing library or symbol is ErrUnavailable with the reason.
func loadAMDSMI(path string) (AMDSMILib, error) {
	cands := amdsmiLibCandidates()
	if path != "" {
		cands = []string{path}
	}
	var h uintptr
	var errs []string
	for _, p := range cands {
		l, err := purego.Dlopen(p, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			h = l
			break
		}
		errs = append(errs, err.Error())
	}
	if h == 0 {
		return nil, Unavailable("amdsmi", fmt.Sprintf("libamd_smi.so not found (no ROCm on this machine, or not mounted into the container; tried %s)", strings.Join(cands, ", ")))
	}
	l := &amdsmiDL{}
	for _, f := range []struct {
		fn   any
		name string
	}{
		{&l.init, "amdsmi_init"}, {&l.shutDown, "amdsmi_shut_down"},
		{&l.socketHandles, "amdsmi_get_socket_handles"}, {&l.processorHandles, "amdsmi_get_processor_handles"},
		{&l.uuid, "amdsmi_get_gpu_device_uuid"}, {&l.bdf, "amdsmi_get_gpu_bdf_id"},
		{&l.energy, "amdsmi_get_energy_count"},
	} {
		sym, err := purego.Dlsym(h, f.name)
		if err != nil {
			purego.Dlclose(h)
			return nil, Unavailable("amdsmi", fmt.Sprintf("libamd_smi.so has no %s (ROCm too old: AMD SMI 24.x or newer is needed)", f.name))
		}
		purego.RegisterFunc(f.fn, sym)
	}
	return l, nil
}

func (l *amdsmiDL) Init() AMDSMIStatus     { return AMDSMIStatus(l.init(amdInitAMDGPUs)) }
func (l *amdsmiDL) ShutDown() AMDSMIStatus { return AMDSMIStatus(l.shutDown()) }

func (l *amdsmiDL) GPUs() ([]uintptr, AMDSMIStatus) {
	var n uint32
	if st := AMDSMIStatus(l.socketHandles(&n, nil)); st != AMDSMIStatusSuccess {
		return nil, st
	}
	if n == 0 {
		return nil, AMDSMIStatusSuccess
	}
	socks := make([]uintptr, n)
	if st := AMDSMIStatus(l.socketHandles(&n, &socks[0])); st != AMDSMIStatusSuccess {
		return nil, st
	}
	var out []uintptr
	for _, s := range socks[:n] {
		var m uint32
		if st := AMDSMIStatus(l.processorHandles(s, &m, nil)); st != AMDSMIStatusSuccess {
			return nil, st
		}
		if m == 0 {
			continue
		}
		ps := make([]uintptr, m)
		if st := AMDSMIStatus(l.processorHandles(s, &m, &ps[0])); st != AMDSMIStatusSuccess {
			return nil, st
		}
		out = append(out, ps[:m]...)
	}
	return out, AMDSMIStatusSuccess
}

func (l *amdsmiDL) UUID(h uintptr) (string, AMDSMIStatus) {
	var buf [amdGPUUUIDSize + 2]byte
	n := uint32(len(buf))
	if st := AMDSMIStatus(l.uuid(h, &n, &buf[0])); st != AMDSMIStatusSuccess {
		return "", st
	}
	b := buf[:]
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	return string(b), AMDSMIStatusSuccess
}

func (l *amdsmiDL) BDF(h uintptr) (uint64, AMDSMIStatus) {
	var v uint64
	return v, AMDSMIStatus(l.bdf(h, &v))
}

func (l *amdsmiDL) EnergyCount(h uintptr) (uint64, float32, uint64, AMDSMIStatus) {
	var c, ts uint64
	var r float32
	st := AMDSMIStatus(l.energy(h, &c, &r, &ts))
	return c, r, ts, st
}
