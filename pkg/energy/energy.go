// Package energy reads power and energy sensors (NVML, RAPL, a TDP estimate)
// and records them on a CLOCK_MONOTONIC timeline.
//
// The llem parent process owns all measurement: a Sensor reads every channel
// (one GPU, one RAPL domain, one estimated component) in one call, a Sampler
// calls it on a fixed interval and appends to a Timeline, and pkg/measure turns
// the timeline plus worker timestamps into window energies. A sensor that
// cannot measure says so with an error wrapping ErrUnavailable and a reason;
// it never reports a silent zero.
package energy

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// Method is how a channel's energy totals are obtained.
type Method string

// Methods, from most to least trustworthy.
const (
	// MethodCounter: a hardware cumulative energy counter (NVML
	// TotalEnergyConsumption on Volta+, RAPL energy_uj).
	MethodCounter Method = "counter"
	// MethodPowerIntegration: trapezoid integral of sampled instant power
	// (NVML on pre-Volta GPUs, which have no energy counter).
	MethodPowerIntegration Method = "power-integration"
	// MethodEstimateTDP: a model (TDP × utilisation + memory W/GB), not a
	// measurement; every result using it carries a warning flag.
	MethodEstimateTDP Method = "estimate-tdp"
	// MethodNone: measurement switched off by the user (energy.sensor: none).
	MethodNone Method = "none"
)

// ErrUnavailable is wrapped by every "this sensor cannot measure here" error.
var ErrUnavailable = errors.New("unavailable")

// Unavailable returns an error wrapping ErrUnavailable with a reason, e.g.
// "unavailable: nvml: built without cgo".
func Unavailable(sensor, reason string) error {
	return fmt.Errorf("%w: %s: %s", ErrUnavailable, sensor, reason)
}

// Channel describes one measured thing: a GPU, a RAPL domain, or an estimated
// component. It is plain data so that it can be written next to the samples.
type Channel struct {
	ID     string `json:"id"`     // stable: "gpu:GPU-<uuid>", "rapl:package-0", "estimate:cpu"
	Sensor string `json:"sensor"` // "nvml", "rapl", "estimate", "fake"
	Kind   string `json:"kind"`   // "gpu", "package", "core", "dram", "cpu", "memory"
	Name   string `json:"name"`   // human label, e.g. "NVIDIA H100 80GB HBM3"
	Index  int    `json:"index"`  // NVML index for GPUs, package number for RAPL, else 0
	// Method is how totals for this channel are computed.
	Method Method `json:"method"`
	// HasCounter says Sample.EnergyJ comes from a hardware (or, for the
	// estimate, a synthesised) cumulative counter.
	HasCounter bool `json:"has_counter"`
	// CounterPeriodNs is how often the counter updates (NVML ~100 ms); a
	// window shorter than this cannot be taken from counter deltas.
	CounterPeriodNs int64 `json:"counter_period_ns,omitempty"`
	// MaxPowerW is the upper sanity bound: the enforced power limit for a GPU,
	// the TDP for a CPU; 0 when unknown.
	MaxPowerW float64 `json:"max_power_w,omitempty"`
	// Notes explain choices made for this channel (MIG parent measured, TDP
	// source, alias used, ...). They are copied into results.
	Notes []string `json:"notes,omitempty"`
	// SubsetOf names the channel whose energy already includes this one (a
	// RAPL core domain inside its package); such channels are shown but not
	// added into totals.
	SubsetOf string `json:"subset_of,omitempty"`
	// Warnings are caveats that make this channel's numbers less clean (a
	// MIG parent GPU shared with other tenants, a 1 s-average power source);
	// pkg/measure turns each into a validity flag on every window.
	Warnings []Caveat `json:"warnings,omitempty"`
	// Domain groups channels for per-domain energies and for the choice of
	// what counts toward efficiency ratios: DomainAccelerator,
	// DomainCPU, DomainDRAM or DomainPlatform. Empty: DomainOf derives it
	// from Kind.
	Domain string `json:"domain,omitempty"`
	// Device identifies the physical device where the sensor knows it
	// (GPU UUID, PCI address, hwmon device path), so two sensors that see
	// the same device can be told apart from two devices.
	Device string `json:"device,omitempty"`
	// Excluded marks a counted channel whose domain the study left out of
	// energy.domains: its energy is reported per device and per domain and
	// in the all-domains total, but not in the window energy that
	// efficiency ratios divide.
	Excluded bool `json:"excluded,omitempty"`
}

// Energy domains. A composite measurement reports one energy per domain;
// DefaultDomains count toward efficiency ratios.
const (
	// DomainAccelerator: GPUs and other accelerators (NVIDIA, AMD, Intel
	// GPUs; Apple GPU and ANE).
	DomainAccelerator = "accelerator"
	// DomainCPU: CPU packages (RAPL package, Apple CPU, Grace CPU).
	DomainCPU = "cpu"
	// DomainDRAM: main memory (RAPL dram; the estimate's memory model).
	DomainDRAM = "dram"
	// DomainPlatform: whole-board or whole-system meters (RAPL psys, Grace
	// module power, ACPI power meters) that overlap the others.
	DomainPlatform = "platform"
)

// Domains lists every domain, in report order.
var Domains = []string{DomainAccelerator, DomainCPU, DomainDRAM, DomainPlatform}

// DefaultDomains count toward efficiency ratios unless a study says
// otherwise: accelerators, CPU and DRAM where measured. Platform meters
// overlap them and are reported beside them.
var DefaultDomains = []string{DomainAccelerator, DomainCPU, DomainDRAM}

// DomainOf returns c's domain: c.Domain, else one derived from c.Kind.
func DomainOf(c Channel) string {
	if c.Domain != "" {
		return c.Domain
	}
	switch c.Kind {
	case "gpu", "ane", "accelerator":
		return DomainAccelerator
	case "package", "core", "uncore", "cpu":
		return DomainCPU
	case "dram", "memory":
		return DomainDRAM
	}
	return DomainPlatform
}

// Caveat is a machine-readable warning about a channel; Code is the validity
// flag code pkg/measure puts on every window that uses the channel.
type Caveat struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Caveat codes set by the sensors.
const (
	CaveatMIGParent    = "mig_parent_measured"
	CaveatAveragePower = "average_power_timeline"
	CaveatEstimate     = "estimate_used"
	// CaveatPartitionParent: an AMD GPU partition (XCP) was asked for; the
	// whole GPU was measured, as NVML's MIG.
	CaveatPartitionParent = "partition_parent_measured"
)

// Sample is one reading of one channel. Fields the sensor could not read are
// NaN (floats) or -1 (integers), never 0.
type Sample struct {
	TNs int64 `json:"t_ns"` // CLOCK_MONOTONIC (pkg/clock), taken right after the read
	// EnergyJ is the cumulative counter in joules, unwrapped, relative to the
	// sensor's first reading; NaN when the channel has no counter or the read failed.
	EnergyJ         float64 `json:"energy_j"`
	PowerW          float64 `json:"power_w"`
	TempC           float64 `json:"temp_c"`
	SMClockMHz      float64 `json:"sm_clock_mhz"`
	MemClockMHz     float64 `json:"mem_clock_mhz"`
	UtilPct         float64 `json:"util_pct"`
	MemUsedBytes    int64   `json:"mem_used_bytes"`
	ThrottleReasons int64   `json:"throttle_reasons"` // NVML clocks-event reason bits; -1 unknown
}

// Reset marks every field of s as not read, keeping nothing from a previous sample.
func (s *Sample) Reset(t int64) {
	nan := math.NaN()
	*s = Sample{TNs: t, EnergyJ: nan, PowerW: nan, TempC: nan, SMClockMHz: nan,
		MemClockMHz: nan, UtilPct: nan, MemUsedBytes: -1, ThrottleReasons: -1}
}

// Throttle reason bits (NVML nvmlClocksEventReasons) that mean the clocks were
// lowered by power or heat rather than by idling or by the user.
const (
	ThrottleSwPowerCap      = 0x4
	ThrottleHwSlowdown      = 0x8
	ThrottleSwThermal       = 0x20
	ThrottleHwThermal       = 0x40
	ThrottleHwPowerBrake    = 0x80
	ThrottlePowerOrThermal  = ThrottleSwPowerCap | ThrottleHwSlowdown | ThrottleSwThermal | ThrottleHwThermal | ThrottleHwPowerBrake
	ThrottleThermalBitsOnly = ThrottleHwSlowdown | ThrottleSwThermal | ThrottleHwThermal
)

// ReadMode says which fields a Read must fill; power (and any cheap counter)
// is always read.
type ReadMode uint8

const (
	// ReadAux: the slow-changing fields (temperature, clocks, utilisation,
	// memory, throttle reasons).
	ReadAux ReadMode = 1 << iota
	// ReadCounter: an energy counter that is expensive to read. NVML's costs
	// ~4 ms of CPU per read on an idle H100 and ~15 ms under load (the
	// driver busy-waits), against < 1 µs for instant power, so the sampler
	// reads it every CounterEvery ticks only. RAPL's is cheap and always read.
	ReadCounter
)

// Sensor reads all of its channels at once. Implementations are not safe for
// concurrent Read calls (RAPL and the estimate keep the previous reading to
// unwrap counters and compute rates); the Sampler is the only caller while it
// runs. Code that also reads a sensor outside its Sampler (a temperature
// check between runs) shares it through Serialized.
type Sensor interface {
	// Name is "nvml", "rapl", "estimate" (or "fake" in tests).
	Name() string
	// Channels lists what Read fills, in order; fixed after construction.
	Channels() []Channel
	// Read fills dst[i] for Channels()[i]: always power, plus what mode
	// asks for; it first marks every field of dst unread (NaN / -1), so
	// fields not read are never stale or zero. Skipping fields keeps the
	// sampler cheap. A per-channel failure leaves that sample's fields unread
	// and is returned as an error; the other channels are still filled.
	Read(dst []Sample, mode ReadMode) error
	// Close releases the sensor (NVML Shutdown).
	Close() error
}

// Serialized returns s with Read and Close behind one mutex, so a sensor can
// be shared by a Sampler and any other reader without racing on the
// sensor's state. An uncontended lock costs nanoseconds against a read's
// microseconds (RAPL) to milliseconds (the NVML counter).
func Serialized(s Sensor) Sensor {
	if s == nil {
		return nil
	}
	if _, ok := s.(*serialized); ok {
		return s
	}
	return &serialized{s: s}
}

type serialized struct {
	mu sync.Mutex
	s  Sensor
}

func (l *serialized) Name() string        { return l.s.Name() }
func (l *serialized) Channels() []Channel { return l.s.Channels() }

func (l *serialized) Read(dst []Sample, mode ReadMode) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Read(dst, mode)
}

// OtherProcesses passes the wrapped sensor's GPU process list through (NVML,
// composite), serialised with its reads; none when it has no such list.
// Without it the wrapper hid the list from the idle-baseline and window
// checks of the study loop, which see every sensor through Serialized.
func (l *serialized) OtherProcesses() ([]string, error) {
	pl, ok := l.s.(interface{ OtherProcesses() ([]string, error) })
	if !ok {
		return nil, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return pl.OtherProcesses()
}

func (l *serialized) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s.Close()
}
