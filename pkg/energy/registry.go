package energy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// SensorDef describes one sensor to Open, `llem env` and the schema's
// energy.sensor enum. Each sensor's file registers its SensorDef from an
// init function (RegisterSensor), as node_exporter registers collectors;
// the order in which auto tries sensors is AutoRank, not file order.
type SensorDef struct {
	// Name is the value of energy.sensor and of Sensor.Name().
	Name string
	// Open opens the sensor on this machine; an absent device is an error
	// wrapping ErrUnavailable.
	Open func(Config) (Sensor, error)
	// AutoRank places the sensor in auto's chain: 1 is tried first; 0 means
	// auto never tries it.
	AutoRank int
	// AutoReason says why auto chose the sensor s (one sentence).
	AutoReason func(s Sensor) string
	// Interval is the default sampling interval of its timeline.
	Interval time.Duration
}

// SensorAlias is a name of the Python original that Open maps onto one of
// llem's sensors, with the note recorded in the selection.
type SensorAlias struct {
	Name string
	// Target is a registered sensor or "auto".
	Target string
	Note   string
}

// Selection modes that are not sensors: auto picks one, none measures
// nothing (recorded as unavailable, never zero).
const (
	SensorAuto = "auto"
	SensorNone = "none"
)

var (
	registryMu sync.RWMutex
	sensorDefs = map[string]SensorDef{}
	aliases    []SensorAlias
)

// RegisterSensor adds d to the sensor registry; it panics on a programming
// error (empty or duplicate name, no Open), so a broken registration fails
// every test.
func RegisterSensor(d SensorDef) {
	registryMu.Lock()
	defer registryMu.Unlock()
	switch {
	case d.Name == "" || d.Name == SensorAuto || d.Name == SensorNone:
		panic(fmt.Sprintf("energy.RegisterSensor: reserved or empty name %q", d.Name))
	case d.Open == nil:
		panic("energy.RegisterSensor(" + d.Name + "): no Open")
	case d.AutoRank > 0 && d.AutoReason == nil:
		panic("energy.RegisterSensor(" + d.Name + "): in auto's chain without an AutoReason")
	}
	if _, dup := sensorDefs[d.Name]; dup || aliasIndex(d.Name) >= 0 {
		panic("energy.RegisterSensor: " + d.Name + " registered twice")
	}
	sensorDefs[d.Name] = d
}

// RegisterSensorAlias adds a; aliases are listed in registration order.
func RegisterSensorAlias(a SensorAlias) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := sensorDefs[a.Name]; dup || aliasIndex(a.Name) >= 0 || a.Name == SensorAuto || a.Name == SensorNone {
		panic("energy.RegisterSensorAlias: " + a.Name + " registered twice")
	}
	aliases = append(aliases, a)
}

func aliasIndex(name string) int {
	return slices.IndexFunc(aliases, func(a SensorAlias) bool { return a.Name == name })
}

// LookupSensor returns the registered sensor name.
func LookupSensor(name string) (SensorDef, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	d, ok := sensorDefs[name]
	return d, ok
}

// LookupSensorAlias returns the alias name.
func LookupSensorAlias(name string) (SensorAlias, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	if i := aliasIndex(name); i >= 0 {
		return aliases[i], true
	}
	return SensorAlias{}, false
}

// SensorDefs returns the registered sensors: auto's chain in rank order
// first, then the others by name.
func SensorDefs() []SensorDef {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]SensorDef, 0, len(sensorDefs))
	for _, d := range sensorDefs {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := out[i].AutoRank, out[j].AutoRank
		if (ri > 0) != (rj > 0) {
			return ri > 0
		}
		if ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// SensorAliases returns the aliases in registration order.
func SensorAliases() []SensorAlias {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return slices.Clone(aliases)
}

// autoChain is the sensors auto tries, in order.
func autoChain() []SensorDef {
	var out []SensorDef
	for _, d := range SensorDefs() {
		if d.AutoRank > 0 {
			out = append(out, d)
		}
	}
	return out
}

// SensorNames is every value energy.sensor accepts: auto, the sensors,
// none, then the aliases — the schema's #Energy.sensor enum.
func SensorNames() []string {
	names := []string{SensorAuto}
	for _, d := range SensorDefs() {
		names = append(names, d.Name)
	}
	names = append(names, SensorNone)
	for _, a := range SensorAliases() {
		names = append(names, a.Name)
	}
	return names
}

// SensorsHint names the values Open accepts, for error hints:
// "auto, nvml, rapl, estimate, none (aliases: zeus, codecarbon)".
func SensorsHint() string {
	var main, al []string
	main = append(main, SensorAuto)
	for _, d := range SensorDefs() {
		main = append(main, d.Name)
	}
	main = append(main, SensorNone)
	for _, a := range SensorAliases() {
		al = append(al, a.Name)
	}
	s := strings.Join(main, ", ")
	if len(al) > 0 {
		s += " (aliases: " + strings.Join(al, ", ") + ")"
	}
	return s
}
