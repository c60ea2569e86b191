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
	// Sensor is auto, none, a registered sensor (SensorNames) or an
	// alias of one.
	Sensor   string
	NVML     NVMLOptions
	RAPL     RAPLOptions
	Hwmon    HwmonOptions
	AMDSMI   AMDSMIOptions
	Apple    PowermetricsOptions
	Estimate EstimateOptions
	// Domains are the energy domains that count toward efficiency ratios
	// (energy.domains; DefaultDomains when empty). Only the composite
	// sensor measures more than one domain; channels of other domains are
	// marked Excluded.
	Domains []string
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
	Sensor    string    `json:"sensor"`          // a registered sensor, or none
	Method    Method    `json:"method"`          // counter | power-integration | estimate-tdp | none
	Reason    string    `json:"reason"`          // one sentence
	Notes     []string  `json:"notes,omitempty"` // alias notes, per-channel notes
	Tried     []Attempt `json:"tried,omitempty"` // in order
	Channels  []Channel `json:"channels,omitempty"`
	// Domains count toward efficiency ratios (energy.domains).
	Domains []string `json:"domains,omitempty"`
	// Parts and MissingDomains: the composite sensor's sensors tried and,
	// per domain nothing measures, why.
	Parts          []CompositePart   `json:"parts,omitempty"`
	MissingDomains map[string]string `json:"missing_domains,omitempty"`
}

// ErrUnknownSensor is returned for a sensor name Open does not know.
var ErrUnknownSensor = errors.New("unknown energy sensor")

// Open picks and opens a sensor from the registry (RegisterSensor). auto
// tries the sensors of auto's chain in AutoRank order (NVML with the energy
// counter on Volta+, else integrated power; RAPL; the TDP estimate). An
// explicit choice that is unavailable is an error (wrapping ErrUnavailable)
// rather than a silent fallback. none returns a nil Sensor. An alias is
// opened as its target, with the alias's note.
func Open(cfg Config) (Sensor, Selection, error) {
	if err := ValidateDomains(cfg.Domains); err != nil {
		return nil, Selection{Requested: cfg.Sensor}, err
	}
	req := strings.ToLower(strings.TrimSpace(cfg.Sensor))
	if req == "" {
		req = SensorAuto
	}
	sel := Selection{Requested: req}
	name := req
	if a, ok := LookupSensorAlias(req); ok {
		name = a.Target
		sel.Notes = append(sel.Notes, a.Note)
	}
	try := func(d SensorDef) (Sensor, error) {
		s, err := d.Open(cfg)
		a := Attempt{Sensor: d.Name}
		if err != nil {
			a.Error = err.Error()
		}
		sel.Tried = append(sel.Tried, a)
		return s, err
	}
	finish := func(s Sensor, reason string) (Sensor, Selection, error) {
		sel.Domains = cfg.Domains
		if len(sel.Domains) == 0 {
			sel.Domains = DefaultDomains
		}
		if c, ok := s.(*CompositeSensor); ok {
			sel.Parts, sel.MissingDomains = c.Parts, c.Missing
		} else if len(cfg.Domains) > 0 {
			ApplyDomains(s.Channels(), cfg.Domains)
		}
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
	case SensorNone:
		sel.Sensor, sel.Method, sel.Reason = SensorNone, MethodNone, "energy measurement switched off (energy.sensor: none)"
		return nil, sel, nil
	case SensorAuto:
		var tried []string
		for _, d := range autoChain() {
			tried = append(tried, d.Name)
			if s, err := try(d); err == nil {
				return finish(s, d.AutoReason(s))
			}
		}
		return nil, sel, fmt.Errorf("open energy sensor auto: %w: no sensor works here (tried %s)", ErrUnavailable, strings.Join(tried, ", "))
	}
	if d, ok := LookupSensor(name); ok {
		s, err := try(d)
		if err != nil {
			return nil, sel, fmt.Errorf("open energy sensor %s: %w", name, err)
		}
		return finish(s, fmt.Sprintf("energy.sensor: %s requested", req))
	}
	return nil, sel, fmt.Errorf("open energy sensor %q: %w (choose %s)", req, ErrUnknownSensor, SensorsHint())
}

// The Python original's sensor names, mapped onto llem's sensors.
func init() {
	RegisterSensorAlias(SensorAlias{Name: "zeus", Target: "nvml", Note: "energy.sensor 'zeus' is an alias: llem reads the same NVML energy counter (nvmlDeviceGetTotalEnergyConsumption) that Zeus's ZeusMonitor reads, itself; Zeus is not used"})
	RegisterSensorAlias(SensorAlias{Name: "codecarbon", Target: SensorAuto, Note: "energy.sensor 'codecarbon' is an alias of auto: llem uses the sources CodeCarbon uses (NVML energy counter, RAPL, a TDP estimate) itself, with no 15 s polling; CodeCarbon is not used and no CO2 is computed"})
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
