package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/internal/redact"
	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/pyenv"
	"github.com/llenergymeasure/llem/pkg/runner/docker"
)

// envCmd shows what a researcher checks before a study. It always exits 0:
// every problem is reported as part of the output.
type envCmd struct {
	JSON bool `help:"Print the report as JSON on stdout."`
}

// envReport is `llem env --json`.
type envReport struct {
	Environment envinfo.Snapshot `json:"environment"`
	Sensor      envSensor        `json:"sensor"`
	Composite   envSensor        `json:"composite"`
	Backends    []pyenv.Report   `json:"backends"`
	Docker      envDocker        `json:"docker"`
	Config      envConfig        `json:"config"`
}

type envSensor struct {
	energy.Selection
	IntervalMs float64 `json:"sample_interval_ms,omitempty"`
	Error      string  `json:"error,omitempty"`
}

type envDocker struct {
	Reachable bool   `json:"reachable"`
	Host      string `json:"host"`
	Error     string `json:"error,omitempty"`
}

type envConfig struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	// Settings are the non-default settings with their origin (file or an
	// LLEM_* environment variable), from pkg/userconfig.
	Settings []string `json:"settings"`
	Error    string   `json:"error,omitempty"`
}

func (c *envCmd) Run(ctx context.Context, stdio *IO, cfg *UserConfig) error {
	rep := collectEnv(ctx, cfg)
	if c.JSON {
		enc := json.NewEncoder(stdio.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stdio.Stderr, "llem: write env report:", err)
		}
		return nil
	}
	printEnv(stdio.Stdout, rep)
	return nil
}

func collectEnv(ctx context.Context, cfg *UserConfig) envReport {
	nv := energy.NVMLOptionsFromEnv()
	rep := envReport{Environment: envinfo.Collect(envinfo.Options{NVML: nv})}

	var est energy.EstimateOptions
	if uc, err := cfg.Load(); err == nil {
		est.TDPWatts = uc.Energy.CPUTDPWatts
	}
	s, sel, err := energy.Open(energy.Config{Sensor: energy.SensorAuto, NVML: nv, Estimate: est})
	rep.Sensor.Selection = sel
	if err != nil {
		rep.Sensor.Error = err.Error()
	} else if s != nil {
		rep.Sensor.IntervalMs = float64(energy.DefaultInterval(s.Name()).Milliseconds())
		s.Close()
	}

	// Every domain the composite sensor finds, and why the others are missing.
	cs, csel, err := energy.Open(energy.Config{Sensor: "composite", NVML: nv})
	rep.Composite.Selection = csel
	if err != nil {
		rep.Composite.Error = err.Error()
	} else if cs != nil {
		rep.Composite.IntervalMs = float64(energy.DefaultInterval(cs.Name()).Milliseconds())
		cs.Close()
	}

	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	rep.Backends = pyenv.ReportAll(pctx, pyenv.Options{Timeout: 10 * time.Second})
	cancel()

	rep.Docker.Host = redact.URL(os.Getenv("DOCKER_HOST")) // may carry credentials
	if rep.Docker.Host == "" {
		rep.Docker.Host = "unix:///var/run/docker.sock"
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if cli, err := docker.Connect(dctx, ""); err != nil {
		rep.Docker.Error = redact.Text(err.Error())
		var de *docker.DaemonError
		if errors.As(err, &de) && de.Fix != "" {
			rep.Docker.Error += " (" + de.Fix + ")"
		}
	} else {
		rep.Docker.Reachable = true
		cli.Close()
	}
	cancel()

	rep.Config.Path = envinfo.ConfigPath()
	_, err = os.Stat(rep.Config.Path)
	rep.Config.Exists = err == nil
	rep.Config.Settings = []string{}
	if uc, err := cfg.Load(); err != nil {
		rep.Config.Error = err.Error()
	} else {
		rep.Config.Path, rep.Config.Exists, rep.Config.Settings = uc.Path, uc.Found, uc.Settings()
	}
	return rep
}

func printEnv(w io.Writer, r envReport) {
	e := r.Environment
	fmt.Fprintf(w, "llem %s (%s, %s)\n\n", e.Llem.Version, e.Llem.Commit, e.Llem.Go)

	g := e.GPU
	if g.Unavailable != "" {
		fmt.Fprintf(w, "GPUs: %s\n", g.Unavailable)
	} else {
		fmt.Fprintf(w, "GPUs: %d (driver %s, CUDA driver %s, NVML %s)\n", len(g.GPUs), g.DriverVersion, g.CUDADriverVersion, g.NVMLVersion)
		for _, x := range g.GPUs {
			sel := "not selected (CUDA_VISIBLE_DEVICES)"
			if x.Selected {
				sel = "measured"
			}
			fmt.Fprintf(w, "  [%d] %s  %s  %s, cc %s, %.0f GiB\n", x.Index, x.Name, x.UUID, x.Architecture, x.ComputeCapability, float64(x.MemoryTotalBytes)/(1<<30))
			fmt.Fprintf(w, "      power limit %s W (default %s, range %s–%s), persistence %s, ECC %s, MIG %s\n",
				fw(x.PowerLimitW), fw(x.DefaultPowerLimitW), fw(x.MinPowerLimitW), fw(x.MaxPowerLimitW), onOff(x.PersistenceMode), onOff(x.ECCEnabled), onOff(x.MIGEnabled))
			fmt.Fprintf(w, "      clocks SM %s/%s MHz, mem %s/%s MHz; energy counter %s, instant power %s; %s\n",
				fu(x.SMClockMHz), fu(x.MaxSMClockMHz), fu(x.MemClockMHz), fu(x.MaxMemClockMHz), yesNo(x.HasEnergyCounter), yesNo(x.HasInstantPower), sel)
			if x.PersistenceMode != nil && !*x.PersistenceMode {
				fmt.Fprintln(w, "      warning: persistence mode is off; power state changes may inflate measurements (sudo nvidia-smi -pm 1)")
			}
		}
	}

	fmt.Fprintln(w, "\nEnergy sensor (energy.sensor: auto)")
	if r.Sensor.Error != "" {
		fmt.Fprintf(w, "  none usable: %s\n", r.Sensor.Error)
	} else {
		fmt.Fprintf(w, "  picks %s, method %s, sampled every %.0f ms\n  why: %s\n", r.Sensor.Sensor, r.Sensor.Method, r.Sensor.IntervalMs, r.Sensor.Reason)
	}
	for _, a := range r.Sensor.Tried {
		if a.Error != "" {
			fmt.Fprintf(w, "  %s not used: %s\n", a.Sensor, a.Error)
		}
	}
	for _, n := range r.Sensor.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, c := range r.Sensor.Channels {
		for _, cv := range c.Warnings {
			fmt.Fprintf(w, "  warning (%s): %s\n", c.ID, cv.Message)
		}
	}

	printDomains(w, r.Composite)

	fmt.Fprintln(w, "\nHost")
	cpu := e.CPU
	fmt.Fprintf(w, "  CPU     %s: %d socket(s), %d cores, %d threads", orUnknown(cpu.Model), cpu.Sockets, cpu.Cores, cpu.Threads)
	if cpu.Governor != "" {
		fmt.Fprintf(w, ", governor %s", cpu.Governor)
	}
	if cpu.Hypervisor {
		fmt.Fprint(w, " (virtual machine)")
	}
	fmt.Fprintf(w, "\n  Memory  %.1f GiB\n  OS      %s, kernel %s, %s\n", float64(e.MemoryBytes)/(1<<30), orUnknown(e.OS.Name), e.OS.Kernel, e.OS.Arch)
	if e.Container.Detected {
		fmt.Fprintf(w, "  Container  %s (%s)\n", e.Container.Runtime, e.Container.Evidence)
	} else {
		fmt.Fprintln(w, "  Container  none detected")
	}
	fmt.Fprintf(w, "  Hardware fingerprint  %s\n", e.Fingerprint)

	fmt.Fprintln(w, "\nBackends")
	for _, b := range backend.All() {
		if b.Worker == backend.WorkerEngine {
			fmt.Fprintf(w, "  %-9s built in (%s)\n", b.Name, b.Builtin)
		}
	}
	for _, b := range r.Backends {
		if b.Python != nil {
			fmt.Fprintf(w, "  %-9s Python %s at %s (%s): %s\n", b.Backend, b.Python.Version, b.Python.Path, b.Python.Source, strings.Join(b.Python.PackageList(), ", "))
			continue
		}
		fmt.Fprintf(w, "  %-9s not available: %s\n", b.Backend, b.Error)
		if b.Hint != "" {
			fmt.Fprintf(w, "            fix: %s\n", b.Hint)
		}
	}
	if r.Docker.Reachable {
		fmt.Fprintf(w, "  docker    daemon reachable at %s\n", r.Docker.Host)
	} else {
		fmt.Fprintf(w, "  docker    daemon not reachable at %s: %s\n", r.Docker.Host, r.Docker.Error)
	}

	exists := "not found; defaults apply"
	if r.Config.Exists {
		exists = "found"
	}
	fmt.Fprintf(w, "\nUser config  %s (%s)\n", r.Config.Path, exists)
	if r.Config.Error != "" {
		fmt.Fprintf(w, "  error     %s\n", r.Config.Error)
	}
	for _, s := range r.Config.Settings {
		fmt.Fprintf(w, "  %s\n", s)
	}
}

func fw(p *float64) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprintf("%.0f", *p)
}

func fu(p *uint32) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprint(*p)
}

func onOff(p *bool) string {
	switch {
	case p == nil:
		return "?"
	case *p:
		return "on"
	}
	return "off"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// printDomains shows what energy.sensor: composite would measure: every
// domain found (with its channels), every sensor that contributes nothing
// and why, and each domain nothing measures.
func printDomains(w io.Writer, c envSensor) {
	fmt.Fprintln(w, "\nEnergy domains (energy.sensor: composite)")
	if c.Error != "" {
		fmt.Fprintf(w, "  none usable: %s\n", c.Error)
		return
	}
	for _, d := range energy.Domains {
		var ids []string
		for _, ch := range c.Channels {
			if energy.DomainOf(ch) == d {
				id := ch.ID + " (" + ch.Sensor
				if ch.SubsetOf != "" {
					id += ", inside " + ch.SubsetOf
				}
				ids = append(ids, id+")")
			}
		}
		switch {
		case len(ids) > 0:
			fmt.Fprintf(w, "  %-11s %s\n", d, strings.Join(ids, ", "))
		case c.MissingDomains[d] != "":
			fmt.Fprintf(w, "  %-11s not measured: %s\n", d, c.MissingDomains[d])
		}
	}
	for _, p := range c.Parts {
		if p.Error != "" {
			fmt.Fprintf(w, "  %s not used: %s\n", p.Sensor, p.Error)
		}
		for _, sk := range p.Skipped {
			fmt.Fprintf(w, "  %s skipped %s\n", p.Sensor, sk)
		}
	}
	fmt.Fprintf(w, "  counted in efficiency ratios: %s (energy.domains)\n", strings.Join(c.Domains, ", "))
}
