package energy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// CompositePart is one sensor the composite tried: what it measures, or why
// it is not used. `llem env` lists them.
type CompositePart struct {
	Sensor   string   `json:"sensor"`
	Domains  []string `json:"domains,omitempty"`  // domains it contributes
	Channels []string `json:"channels,omitempty"` // channel IDs it contributes
	Error    string   `json:"error,omitempty"`    // why it contributes nothing
	// Skipped explains devices of a working sensor that gave no channel
	// (hwmon devices without power readings, ...).
	Skipped []string `json:"skipped,omitempty"`
}

type compositePart struct {
	s       Sensor
	keep    []int // indexes into s.Channels() that the composite reports
	scratch []Sample
	offset  int // first composite channel of this part
}

// CompositeSensor measures every available domain at once, on one timeline:
// each NVIDIA GPU by UUID (NVML), each AMD GPU (AMD SMI), each CPU package
// and DRAM (RAPL), hwmon devices not covered by those (Intel GPUs, AMD GPUs
// without AMD SMI, Grace CPU power, platform meters), Apple Silicon CPU/GPU/ANE
// (powermetrics), and, for the CPU or DRAM domain when nothing measures it,
// the TDP estimate (flagged estimate_used). One Read reads every part, so
// the Sampler and pkg/measure need nothing special: per-device and
// per-domain energies fall out of the channels.
//
// Which domains count toward efficiency ratios is Config.Domains
// (DefaultDomains: accelerator, cpu, dram): channels of other domains are
// marked Excluded, reported per device and per domain and in the
// all-domains total, not in the window energy.
type CompositeSensor struct {
	parts    []*compositePart
	channels []Channel
	// Parts records every sensor tried, for `llem env` and the selection notes.
	Parts []CompositePart
	// Missing says, per domain that nothing measures, why.
	Missing map[string]string
}

// The composite sensor: explicit only (energy.sensor: composite), not in
// auto's chain, so existing single-sensor results keep their meaning.
func init() {
	RegisterSensor(SensorDef{Name: "composite", Interval: DefaultIntervalNVML, Open: openCompositeSensor})
}

func openCompositeSensor(cfg Config) (Sensor, error) {
	s, err := OpenComposite(cfg)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ValidateDomains checks a domains list (energy.domains).
func ValidateDomains(ds []string) error {
	for _, d := range ds {
		if !slices.Contains(Domains, d) {
			return fmt.Errorf("energy.domains: unknown domain %q (choose from %s)", d, strings.Join(Domains, ", "))
		}
	}
	return nil
}

// OpenComposite opens every sensor that works here and combines them.
func OpenComposite(cfg Config) (*CompositeSensor, error) {
	if err := ValidateDomains(cfg.Domains); err != nil {
		return nil, err
	}
	c := &CompositeSensor{Missing: map[string]string{}}
	covered := map[string]bool{}
	add := func(name string, s Sensor, err error, filter func(Channel) bool) {
		p := CompositePart{Sensor: name}
		if hw, ok := s.(*HwmonSensor); ok && hw != nil {
			p.Skipped = hw.Skipped
		}
		if err != nil {
			p.Error = err.Error()
			c.Parts = append(c.Parts, p)
			return
		}
		cp := &compositePart{s: s, offset: len(c.channels)}
		for i, ch := range s.Channels() {
			if filter != nil && !filter(ch) {
				p.Skipped = append(p.Skipped, fmt.Sprintf("%s: its %s domain is measured by another sensor", ch.ID, DomainOf(ch)))
				continue
			}
			ch.Domain = DomainOf(ch)
			cp.keep = append(cp.keep, i)
			c.channels = append(c.channels, ch)
			p.Channels = append(p.Channels, ch.ID)
			if !slices.Contains(p.Domains, ch.Domain) {
				p.Domains = append(p.Domains, ch.Domain)
			}
			if ch.SubsetOf == "" {
				covered[ch.Domain] = true
			}
		}
		if len(cp.keep) == 0 {
			s.Close()
			p.Error = "no channel needed"
			c.Parts = append(c.Parts, p)
			return
		}
		cp.scratch = make([]Sample, len(s.Channels()))
		c.parts = append(c.parts, cp)
		c.Parts = append(c.Parts, p)
	}

	nv, err := OpenNVML(cfg.NVML)
	add("nvml", nilIfErr(nv, err), err, nil)
	amdOpt := cfg.AMDSMI
	if !amdOpt.VisibleSet && amdOpt.Lib == nil && amdOpt.LibPath == "" {
		amdOpt = AMDSMIOptionsFromEnv()
		amdOpt.Lib, amdOpt.LibPath = cfg.AMDSMI.Lib, cfg.AMDSMI.LibPath
	}
	amd, err := OpenAMDSMI(amdOpt)
	add("amdsmi", nilIfErr(amd, err), err, nil)
	rp, err := OpenRAPL(cfg.RAPL)
	add("rapl", nilIfErr(rp, err), err, nil)
	hopt := cfg.Hwmon
	if amd != nil {
		for _, ch := range amd.Channels() {
			hopt.SkipDevices = append(hopt.SkipDevices, ch.Device)
		}
	}
	hw, err := OpenHwmon(hopt)
	// hwmon's CPU channels (Grace) are kept only when RAPL did not measure the CPU.
	haveRAPLCPU := covered[DomainCPU]
	add("hwmon", nilIfErr(hw, err), err, func(ch Channel) bool { return !(haveRAPLCPU && ch.Domain == DomainCPU) })
	pm, err := OpenPowermetrics(cfg.Apple)
	add("powermetrics", nilIfErr(pm, err), err, nil)

	if !covered[DomainCPU] || !covered[DomainDRAM] {
		needCPU, needDRAM := !covered[DomainCPU], !covered[DomainDRAM]
		est, err := OpenEstimate(cfg.Estimate)
		add("estimate", nilIfErr(est, err), err, func(ch Channel) bool {
			d := DomainOf(ch)
			return (d == DomainCPU && needCPU) || (d == DomainDRAM && needDRAM)
		})
	}
	if len(c.parts) == 0 {
		var why []string
		for _, p := range c.Parts {
			why = append(why, p.Sensor+": "+p.Error)
		}
		return nil, Unavailable("composite", "no sensor works here ("+strings.Join(why, "; ")+")")
	}
	for _, d := range Domains {
		if covered[d] {
			continue
		}
		var why []string
		for _, p := range c.Parts {
			if p.Error != "" {
				why = append(why, p.Sensor)
			}
		}
		c.Missing[d] = "no working sensor here measures it (unavailable: " + strings.Join(why, ", ") + ")"
	}
	domains := cfg.Domains
	if len(domains) == 0 {
		domains = DefaultDomains
	}
	ApplyDomains(c.channels, domains)
	return c, nil
}

func nilIfErr[T Sensor](s T, err error) Sensor {
	if err != nil {
		return nil
	}
	return s
}

// ApplyDomains marks the counted channels outside domains Excluded, and
// notes it on the channel. If that would exclude every counted channel it
// excludes none (a study asking for CPU energy on a GPU-only sensor still
// gets the GPU, with a note), so a window never has zero counted energy by
// configuration.
func ApplyDomains(chs []Channel, domains []string) {
	n := 0
	for _, c := range chs {
		if c.SubsetOf == "" && slices.Contains(domains, DomainOf(c)) {
			n++
		}
	}
	for i := range chs {
		d := DomainOf(chs[i])
		chs[i].Domain = d
		if n > 0 && chs[i].SubsetOf == "" && !slices.Contains(domains, d) {
			chs[i].Excluded = true
			chs[i].Notes = append(chs[i].Notes, fmt.Sprintf("domain %s is not in energy.domains (%s): reported, not counted in the window energy or efficiency ratios", d, strings.Join(domains, ", ")))
		}
	}
}

// Name implements Sensor.
func (c *CompositeSensor) Name() string { return "composite" }

// Channels implements Sensor.
func (c *CompositeSensor) Channels() []Channel { return c.channels }

// Read implements Sensor: every part in turn; a failing part's channels
// carry its error, the others are filled.
func (c *CompositeSensor) Read(dst []Sample, mode ReadMode) error {
	var errs []*ChannelError
	for _, p := range c.parts {
		err := p.s.Read(p.scratch, mode)
		for j, k := range p.keep {
			dst[p.offset+j] = p.scratch[k]
		}
		if err == nil {
			continue
		}
		if errs == nil {
			errs = make([]*ChannelError, len(c.channels))
		}
		attributed := false
		var ce *ChannelError
		for e := err; e != nil && errors.As(e, &ce); e = ce.next {
			for j, k := range p.keep {
				if k == ce.Index {
					errs[p.offset+j] = &ChannelError{Index: p.offset + j, Err: ce.Err}
					attributed = true
				}
			}
		}
		if !attributed {
			for j := range p.keep {
				errs[p.offset+j] = &ChannelError{Index: p.offset + j, Err: err}
			}
		}
	}
	if errs == nil {
		return nil
	}
	for _, e := range errs {
		if e != nil {
			return JoinChannelErrors(errs)
		}
	}
	return nil
}

// Close implements Sensor: closes every part.
func (c *CompositeSensor) Close() error {
	var errs []error
	for _, p := range c.parts {
		if err := p.s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// OtherProcesses lists other processes on the measured GPUs, from every
// part that can tell (NVML), for the idle-baseline check.
func (c *CompositeSensor) OtherProcesses() ([]string, error) {
	var out []string
	for _, p := range c.parts {
		if pl, ok := p.s.(interface{ OtherProcesses() ([]string, error) }); ok {
			ps, err := pl.OtherProcesses()
			if err == nil {
				out = append(out, ps...)
			}
		}
	}
	return out, nil
}
