package energy

import "fmt"

// The NVML sensor (nvml.go; nvml_nocgo.go reports it unavailable), first
// in auto's chain.
func init() {
	RegisterSensor(SensorDef{Name: "nvml", AutoRank: 1, Interval: DefaultIntervalNVML, Open: openNVMLSensor,
		AutoReason: func(s Sensor) string {
			n := len(s.Channels())
			if overallMethod(s.Channels()) == MethodCounter {
				return fmt.Sprintf("NVML energy counter available on all %d selected GPU(s) (Volta or newer)", n)
			}
			return fmt.Sprintf("NVML found %d GPU(s) but not every one has an energy counter (pre-Volta): integrating sampled power", n)
		}})
}

func openNVMLSensor(cfg Config) (Sensor, error) {
	s, err := OpenNVML(cfg.NVML)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// NVMLOptions configure the NVML sensor and probe.
type NVMLOptions struct {
	// Lib is the NVML library to use: an nvml.Interface from
	// github.com/NVIDIA/go-nvml (tests pass go-nvml's pkg/nvml/mock). nil
	// loads libnvidia-ml at run time. Typed any so that this struct also
	// exists in CGO_ENABLED=0 builds, where go-nvml cannot be compiled.
	Lib any
	// VisibleDevices is CUDA_VISIBLE_DEVICES; VisibleSet says whether it was
	// set at all (unset = every GPU, set but empty = none).
	VisibleDevices string
	VisibleSet     bool
	// DeviceOrder is CUDA_DEVICE_ORDER ("" or "FASTEST_FIRST" or "PCI_BUS_ID");
	// numeric CUDA_VISIBLE_DEVICES entries are mapped to NVML indices, which
	// follow PCI bus order, so a heterogeneous machine without PCI_BUS_ID gets
	// a warning.
	DeviceOrder string
}

// NVMLInfo is what the NVML probe found: driver versions and every GPU.
type NVMLInfo struct {
	DriverVersion     string    `json:"driver_version"`
	CUDADriverVersion string    `json:"cuda_driver_version"` // "12.4"
	NVMLVersion       string    `json:"nvml_version"`
	GPUs              []GPUInfo `json:"gpus"`
}

// GPUInfo is the static description of one GPU, for the environment snapshot
// and `llem env`. Pointers are nil when NVML could not say.
type GPUInfo struct {
	Index             int    `json:"index"`
	UUID              string `json:"uuid"`
	Name              string `json:"name"`
	Architecture      string `json:"architecture"` // "hopper", "ampere", ...
	ComputeCapability string `json:"compute_capability,omitempty"`
	PCIBusID          string `json:"pci_bus_id,omitempty"`
	MemoryTotalBytes  uint64 `json:"memory_total_bytes,omitempty"`
	// Power limits in watts: current (management), default, min/max allowed, enforced.
	PowerLimitW         *float64 `json:"power_limit_w,omitempty"`
	DefaultPowerLimitW  *float64 `json:"default_power_limit_w,omitempty"`
	MinPowerLimitW      *float64 `json:"min_power_limit_w,omitempty"`
	MaxPowerLimitW      *float64 `json:"max_power_limit_w,omitempty"`
	EnforcedPowerLimitW *float64 `json:"enforced_power_limit_w,omitempty"`
	PersistenceMode     *bool    `json:"persistence_mode,omitempty"`
	ECCEnabled          *bool    `json:"ecc_enabled,omitempty"`
	MIGEnabled          *bool    `json:"mig_enabled,omitempty"`
	SMClockMHz          *uint32  `json:"sm_clock_mhz,omitempty"`
	MemClockMHz         *uint32  `json:"mem_clock_mhz,omitempty"`
	MaxSMClockMHz       *uint32  `json:"max_sm_clock_mhz,omitempty"`
	MaxMemClockMHz      *uint32  `json:"max_mem_clock_mhz,omitempty"`
	// HasEnergyCounter: Volta+ and the counter answered; HasInstantPower:
	// field 186 answered.
	HasEnergyCounter bool `json:"has_energy_counter"`
	HasInstantPower  bool `json:"has_instant_power"`
	// Selected: CUDA_VISIBLE_DEVICES includes this GPU (llem would measure it).
	Selected bool `json:"selected"`
}
