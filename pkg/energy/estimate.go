package energy

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// EstimateOptions configure the TDP estimate.
type EstimateOptions struct {
	// ProcRoot is where proc is mounted ("/proc" when empty); FS replaces it.
	ProcRoot string
	FS       fs.FS
	// TDPWatts overrides the table: total CPU watts at 100 % utilisation for
	// the CPUs this process sees.
	TDPWatts float64
	// MemoryWattsPerGB: memory power per GB of RAM (0: DefaultMemoryWattsPerGB).
	MemoryWattsPerGB float64
}

// DefaultMemoryWattsPerGB is CodeCarbon v2's 3 W per 8 GB of RAM.
const DefaultMemoryWattsPerGB = 3.0 / 8

// EstimateWarning is attached to every channel of the estimate sensor.
const EstimateWarning = "energy is estimated (TDP × CPU utilisation + memory W/GB), not measured: expect errors of tens of percent"

// CPUFacts is what /proc says about the CPUs.
type CPUFacts struct {
	Model      string `json:"model"`
	Sockets    int    `json:"sockets"`
	Cores      int    `json:"cores"`   // physical cores, all sockets
	Threads    int    `json:"threads"` // logical CPUs this kernel shows
	Hypervisor bool   `json:"hypervisor"`
}

// ReadCPUFacts parses cpuinfo (x86 layout; other layouts give what they can).
func ReadCPUFacts(procFS fs.FS) (CPUFacts, error) {
	b, err := fs.ReadFile(procFS, "cpuinfo")
	if err != nil {
		return CPUFacts{}, fmt.Errorf("read cpuinfo: %w", err)
	}
	var f CPUFacts
	sockets := map[string]bool{}
	cores := map[string]bool{}
	phys := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			f.Threads++
		case "model name", "Model":
			if f.Model == "" {
				f.Model = v
			}
		case "physical id":
			phys = v
			sockets[v] = true
		case "core id":
			cores[phys+"/"+v] = true
		case "flags":
			f.Hypervisor = f.Hypervisor || strings.Contains(" "+v+" ", " hypervisor ")
		}
	}
	f.Sockets = max(len(sockets), 1)
	f.Cores = len(cores)
	if f.Cores == 0 {
		f.Cores = f.Threads
	}
	return f, nil
}

// ReadMemTotal returns MemTotal from meminfo in bytes.
func ReadMemTotal(procFS fs.FS) (uint64, error) {
	b, err := fs.ReadFile(procFS, "meminfo")
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse meminfo MemTotal: %w", err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("parse meminfo: no MemTotal")
}

// EstimateSensor models power when no sensor exists: CPU watts = TDP ×
// utilisation (from /proc/stat deltas), memory watts = GB × W/GB.
type EstimateSensor struct {
	proc      fs.FS
	cpuW      float64
	memW      float64
	channels  []Channel
	lastBusy  uint64
	lastTotal uint64
	lastUtil  float64 // utilisation over the last interval with new ticks
	started   bool
	buf       []byte
}

// The TDP estimate, last in auto's chain.
func init() {
	RegisterSensor(SensorDef{Name: "estimate", AutoRank: 9, Interval: DefaultIntervalEstimate, Open: openEstimateSensor,
		AutoReason: func(Sensor) string {
			return "no NVIDIA GPU and no readable RAPL: estimating from TDP × CPU utilisation (not a measurement)"
		}})
}

func openEstimateSensor(cfg Config) (Sensor, error) {
	s, err := OpenEstimate(cfg.Estimate)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenEstimate reads the CPU model and memory size and picks the TDP.
func OpenEstimate(opt EstimateOptions) (*EstimateSensor, error) {
	proc := opt.FS
	if proc == nil {
		root := opt.ProcRoot
		if root == "" {
			root = "/proc"
		}
		proc = os.DirFS(root)
	}
	cpu, err := ReadCPUFacts(proc)
	if err != nil {
		return nil, Unavailable("estimate", err.Error())
	}
	mem, err := ReadMemTotal(proc)
	if err != nil {
		return nil, Unavailable("estimate", err.Error())
	}
	s := &EstimateSensor{proc: proc, buf: make([]byte, 0, 512), lastUtil: math.NaN()}
	var src string
	switch e, ok := LookupTDP(cpu.Model); {
	case opt.TDPWatts > 0:
		s.cpuW, src = opt.TDPWatts, fmt.Sprintf("user override: %.0f W", opt.TDPWatts)
	case ok:
		s.cpuW = e.TDPW * float64(cpu.Sockets)
		src = fmt.Sprintf("TDP table: %s %.0f W/socket × %d socket(s) (%s)", e.Model, e.TDPW, cpu.Sockets, TDPSource)
		if cpu.Hypervisor && e.Threads > 0 && cpu.Threads < e.Threads*cpu.Sockets {
			// A VM sees a share of the socket: scale by visible threads.
			s.cpuW = e.TDPW * float64(cpu.Threads) / float64(e.Threads)
			src = fmt.Sprintf("TDP table: %s %.0f W/socket scaled to the %d of %d threads this VM sees (%s)", e.Model, e.TDPW, cpu.Threads, e.Threads, TDPSource)
		}
	default:
		s.cpuW = DefaultWattsPerThread * float64(cpu.Threads)
		src = fmt.Sprintf("CPU %q not in the TDP table: %.0f W per thread × %d threads (CodeCarbon's default); set energy.cpu_tdp_watts in the user config (llem init writes one) or LLEM_CPU_TDP_WATTS for a better estimate", cpu.Model, DefaultWattsPerThread, cpu.Threads)
	}
	wpg := opt.MemoryWattsPerGB
	if wpg <= 0 {
		wpg = DefaultMemoryWattsPerGB
	}
	gb := float64(mem) / 1e9
	s.memW = gb * wpg
	s.channels = []Channel{
		{ID: "estimate:cpu", Sensor: "estimate", Kind: "cpu", Name: cpu.Model, Method: MethodEstimateTDP,
			MaxPowerW: s.cpuW, Notes: []string{src}, Warnings: []Caveat{{CaveatEstimate, EstimateWarning}}},
		{ID: "estimate:memory", Sensor: "estimate", Kind: "memory", Name: fmt.Sprintf("%.1f GB RAM", gb), Method: MethodEstimateTDP,
			MaxPowerW: s.memW, Notes: []string{fmt.Sprintf("%.3f W/GB × %.1f GB (CodeCarbon v2: 3 W per 8 GB)", wpg, gb)},
			Warnings: []Caveat{{CaveatEstimate, EstimateWarning}}},
	}
	busy, total, err := s.readStat()
	if err != nil {
		return nil, Unavailable("estimate", err.Error())
	}
	s.started, s.lastBusy, s.lastTotal = true, busy, total
	if total > 0 {
		// Until a tick has passed, the best prior is the average since boot.
		s.lastUtil = float64(busy) / float64(total)
	}
	return s, nil
}

// readStat returns busy and total jiffies from the aggregate "cpu" line.
func (s *EstimateSensor) readStat() (busy, total uint64, err error) {
	f, err := s.proc.Open("stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read stat: %w", err)
	}
	defer f.Close()
	buf := s.buf[:cap(s.buf)]
	n, _ := f.Read(buf)
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if !bytes.HasPrefix(line, []byte("cpu ")) {
		return 0, 0, fmt.Errorf("parse stat: first line is not the cpu total")
	}
	// user nice system idle iowait irq softirq steal (guest counted in user)
	var vals [8]uint64
	field := 0
	cur, in := uint64(0), false
	for _, c := range line[4:] {
		if c >= '0' && c <= '9' {
			cur, in = cur*10+uint64(c-'0'), true
			continue
		}
		if in && field < len(vals) {
			vals[field] = cur
			field++
		}
		cur, in = 0, false
	}
	if in && field < len(vals) {
		vals[field] = cur
		field++
	}
	if field < 4 {
		return 0, 0, fmt.Errorf("parse stat: %d fields on the cpu line", field)
	}
	for _, v := range vals {
		total += v
	}
	idle := vals[3] + vals[4]
	return total - idle, total, nil
}

// Name implements Sensor.
func (s *EstimateSensor) Name() string { return "estimate" }

// Channels implements Sensor.
func (s *EstimateSensor) Channels() []Channel { return s.channels }

// Read implements Sensor: CPU power from utilisation since the last read.
func (s *EstimateSensor) Read(dst []Sample, _ ReadMode) error {
	busy, total, err := s.readStat()
	now := clock.Now()
	dst[0].Reset(now)
	dst[1].Reset(now)
	if err != nil {
		return JoinChannelErrors([]*ChannelError{{Index: 0, Err: err}})
	}
	switch {
	case s.started && total > s.lastTotal:
		u := float64(busy-s.lastBusy) / float64(total-s.lastTotal)
		s.lastUtil = u
		s.lastBusy, s.lastTotal = busy, total
	case !s.started:
		s.lastBusy, s.lastTotal = busy, total
	}
	s.started = true
	// Two reads within one kernel tick (10 ms) see no new jiffies: keep the
	// previous utilisation rather than report nothing.
	if !math.IsNaN(s.lastUtil) {
		dst[0].PowerW = s.cpuW * s.lastUtil
		dst[0].UtilPct = 100 * s.lastUtil
	}
	dst[1].PowerW = s.memW
	return nil
}

// Close implements Sensor.
func (s *EstimateSensor) Close() error { return nil }
