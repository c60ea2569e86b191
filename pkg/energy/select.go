package energy

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Config selects and configures a sensor (the experiment's energy: block
// plus where to find the hardware).
type Config struct {
	// Sensor is auto | nvml | rapl | estimate | none, or the Python
	// original's names zeus (→ nvml) and codecarbon (→ auto).
	Sensor   string
	NVML     NVMLOptions
	RAPL     RAPLOptions
	Estimate EstimateOptions
}

// NVMLOptionsFromEnv fills the device selection from CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER.
func NVMLOptionsFromEnv() NVMLOptions {
	v, set := os.LookupEnv("CUDA_VISIBLE_DEVICES")
	return NVMLOptions{VisibleDevices: v, VisibleSet: set, DeviceOrder: os.Getenv("CUDA_DEVICE_ORDER")}
}

// Attempt is one sensor tried during selection.
type Attempt struct {
	Sensor string `json:"sensor"`
	Error  string `json:"error,omitempty"` // why it was not used; empty for the chosen one
}

// Selection records which sensor was chosen and why; it goes into results.
type Selection struct {
	Requested string    `json:"requested"`       // what the config said
	Sensor    string    `json:"sensor"`          // nvml | rapl | estimate | none
	Method    Method    `json:"method"`          // counter | power-integration | estimate-tdp | none
	Reason    string    `json:"reason"`          // one sentence
	Notes     []string  `json:"notes,omitempty"` // alias notes, per-channel notes
	Tried     []Attempt `json:"tried,omitempty"` // in order
	Channels  []Channel `json:"channels,omitempty"`
}

// Sensors names accepted by Open, for error hints.
const Sensors = "auto, nvml, rapl, estimate, none (aliases: zeus, codecarbon)"

// ErrUnknownSensor is returned for a sensor name Open does not know.
var ErrUnknownSensor = errors.New("unknown energy sensor")

// Open picks and opens a sensor. auto tries, in order: NVML with the energy
// counter (Volta+), NVML power integration (pre-Volta), RAPL, the TDP
// estimate. An explicit choice that is unavailable is an error (wrapping
// ErrUnavailable) rather than a silent fallback. none returns a nil Sensor.
func Open(cfg Config) (Sensor, Selection, error) {
	req := strings.ToLower(strings.TrimSpace(cfg.Sensor))
	if req == "" {
		req = "auto"
	}
	sel := Selection{Requested: req}
	name := req
	switch req {
	case "zeus":
		name = "nvml"
		sel.Notes = append(sel.Notes, "energy.sensor 'zeus' is an alias: llem reads the same NVML energy counter (nvmlDeviceGetTotalEnergyConsumption) that Zeus's ZeusMonitor reads, itself; Zeus is not used")
	case "codecarbon":
		name = "auto"
		sel.Notes = append(sel.Notes, "energy.sensor 'codecarbon' is an alias of auto: llem uses the sources CodeCarbon uses (NVML energy counter, RAPL, a TDP estimate) itself, with no 15 s polling; CodeCarbon is not used and no CO2 is computed")
	}
	try := func(sensor string) (Sensor, error) {
		var s Sensor
		var err error
		switch sensor {
		case "nvml":
			var n *NVMLSensor
			if n, err = OpenNVML(cfg.NVML); err == nil {
				s = n
			}
		case "rapl":
			var r *RAPLSensor
			if r, err = OpenRAPL(cfg.RAPL); err == nil {
				s = r
			}
		case "estimate":
			var e *EstimateSensor
			if e, err = OpenEstimate(cfg.Estimate); err == nil {
				s = e
			}
		}
		a := Attempt{Sensor: sensor}
		if err != nil {
			a.Error = err.Error()
		}
		sel.Tried = append(sel.Tried, a)
		return s, err
	}
	finish := func(s Sensor, reason string) (Sensor, Selection, error) {
		sel.Sensor = s.Name()
		sel.Channels = s.Channels()
		sel.Method = overallMethod(sel.Channels)
		sel.Reason = reason
		for _, c := range sel.Channels {
			sel.Notes = append(sel.Notes, c.Notes...)
		}
		sel.Notes = dedupe(sel.Notes)
		return s, sel, nil
	}
	switch name {
	case "none":
		sel.Sensor, sel.Method, sel.Reason = "none", MethodNone, "energy measurement switched off (energy.sensor: none)"
		return nil, sel, nil
	case "nvml", "rapl", "estimate":
		s, err := try(name)
		if err != nil {
			return nil, sel, fmt.Errorf("open energy sensor %s: %w", name, err)
		}
		return finish(s, fmt.Sprintf("energy.sensor: %s requested", req))
	case "auto":
		if s, err := try("nvml"); err == nil {
			n := len(s.Channels())
			if overallMethod(s.Channels()) == MethodCounter {
				return finish(s, fmt.Sprintf("NVML energy counter available on all %d selected GPU(s) (Volta or newer)", n))
			}
			return finish(s, fmt.Sprintf("NVML found %d GPU(s) but not every one has an energy counter (pre-Volta): integrating sampled power", n))
		}
		if s, err := try("rapl"); err == nil {
			return finish(s, "no usable NVIDIA GPU; RAPL energy counters readable")
		}
		if s, err := try("estimate"); err == nil {
			return finish(s, "no NVIDIA GPU and no readable RAPL: estimating from TDP × CPU utilisation (not a measurement)")
		}
		return nil, sel, fmt.Errorf("open energy sensor auto: %w: no sensor works here (tried nvml, rapl, estimate)", ErrUnavailable)
	}
	return nil, sel, fmt.Errorf("open energy sensor %q: %w (choose %s)", req, ErrUnknownSensor, Sensors)
}

// overallMethod is the weakest method among the channels that count.
func overallMethod(chs []Channel) Method {
	rank := map[Method]int{MethodCounter: 0, MethodPowerIntegration: 1, MethodEstimateTDP: 2}
	m, r := MethodNone, -1
	for _, c := range chs {
		if c.SubsetOf != "" {
			continue
		}
		if rank[c.Method] > r {
			m, r = c.Method, rank[c.Method]
		}
	}
	return m
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
