package energy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// PowermetricsOptions configure the Apple Silicon sensor.
type PowermetricsOptions struct {
	// Path is the powermetrics binary ("/usr/bin/powermetrics" when empty).
	Path string
	// Interval is powermetrics' sample interval (-i); 0: DefaultIntervalApple.
	Interval time.Duration
	// Source, when set, replaces the powermetrics process: its output is
	// read instead (tests replay recorded output).
	Source io.Reader
	// Geteuid replaces os.Geteuid (tests).
	Geteuid func() int
}

// DefaultIntervalApple: powermetrics' own sampling period. Its samples run
// 15–30 % long under load (a 100 ms request gives 116–129 ms periods), and
// each costs the tool CPU time; 200 ms keeps ≥ 5 Hz.
const DefaultIntervalApple = 200 * time.Millisecond

// PowermetricsSample is one "*** Sampled system activity" block of
// powermetrics' text output (--samplers cpu_power,gpu_power,ane_power).
// Powers are in watts, NaN when the block had no such line.
type PowermetricsSample struct {
	ElapsedMs float64
	CPUW      float64
	GPUW      float64
	ANEW      float64
	CombinedW float64
}

// ParsePowermetrics reads powermetrics text output and calls fn with each
// complete sample. A sample is complete when the next one starts or the
// input ends. "GPU Power" is taken from its first line in a sample (the
// GPU section repeats it).
func ParsePowermetrics(r io.Reader, fn func(PowermetricsSample)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var cur *PowermetricsSample
	flush := func() {
		if cur != nil && !(math.IsNaN(cur.CPUW) && math.IsNaN(cur.GPUW) && math.IsNaN(cur.ANEW) && math.IsNaN(cur.CombinedW)) {
			fn(*cur)
		}
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "*** Sampled system activity") {
			flush()
			n := math.NaN()
			cur = &PowermetricsSample{ElapsedMs: math.NaN(), CPUW: n, GPUW: n, ANEW: n, CombinedW: n}
			// "(... ) (5021.96ms elapsed) ***"
			if i := strings.LastIndex(line, "ms elapsed)"); i > 0 {
				j := strings.LastIndexByte(line[:i], '(')
				if v, err := strconv.ParseFloat(line[j+1:i], 64); err == nil {
					cur.ElapsedMs = v
				}
			}
			continue
		}
		if cur == nil {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *float64
		switch k {
		case "CPU Power":
			dst = &cur.CPUW
		case "GPU Power":
			dst = &cur.GPUW
		case "ANE Power":
			dst = &cur.ANEW
		case "Combined Power (CPU + GPU + ANE)":
			dst = &cur.CombinedW
		default:
			continue
		}
		if !math.IsNaN(*dst) {
			continue
		}
		w, err := parsePowerValue(v)
		if err != nil {
			return fmt.Errorf("parse powermetrics line %q: %w", line, err)
		}
		*dst = w
	}
	flush()
	return sc.Err()
}

// parsePowerValue reads "954 mW" or "1.2 W" as watts.
func parsePowerValue(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, fmt.Errorf("want '<number> mW'")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, err
	}
	switch f[1] {
	case "mW":
		return v / 1000, nil
	case "W":
		return v, nil
	}
	return 0, fmt.Errorf("unknown unit %q", f[1])
}

// PowermetricsSensor measures Apple Silicon CPU, GPU and ANE power with
// macOS's powermetrics, which reads the SoC's energy model (IOReport). It
// runs `powermetrics -i <ms> --samplers cpu_power,gpu_power,ane_power` for
// the sensor's lifetime and holds the latest sample; energy is each
// sample's power × its elapsed time, accumulated (powermetrics reports
// average power over each period, so this is exact per period and the
// timeline is a step function at its resolution).
type PowermetricsSensor struct {
	cmd      *exec.Cmd
	cancel   context.CancelFunc
	channels []Channel
	mu       sync.Mutex
	latest   [3]float64
	cum      [3]float64 // J
	samples  int
	err      error
	done     chan struct{}
}

// The Apple Silicon sensor, after hwmon in auto's chain.
func init() {
	RegisterSensor(SensorDef{Name: "powermetrics", AutoRank: 5, Interval: DefaultIntervalApple, Open: openPowermetricsSensor,
		AutoReason: func(Sensor) string {
			return "Apple Silicon: CPU, GPU and ANE power from powermetrics"
		}})
}

func openPowermetricsSensor(cfg Config) (Sensor, error) {
	s, err := OpenPowermetrics(cfg.Apple)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenPowermetrics starts powermetrics (or reads opt.Source). powermetrics
// must run as root: without it the error says so and how to run llem.
func OpenPowermetrics(opt PowermetricsOptions) (*PowermetricsSensor, error) {
	if opt.Interval <= 0 {
		opt.Interval = DefaultIntervalApple
	}
	s := &PowermetricsSensor{done: make(chan struct{})}
	for i, k := range []string{"cpu", "gpu", "ane"} {
		kind, dom := k, DomainAccelerator
		if k == "cpu" {
			dom = DomainCPU
		}
		s.channels = append(s.channels, Channel{ID: "apple:" + k, Sensor: "powermetrics", Kind: kind, Domain: dom,
			Name: "Apple " + strings.ToUpper(k), Index: i, Method: MethodPowerIntegration,
			Notes: []string{fmt.Sprintf("powermetrics %s power: the SoC energy model's average over each %v sample", strings.ToUpper(k), opt.Interval)}})
	}
	for i := range s.latest {
		s.latest[i] = math.NaN()
	}
	src := opt.Source
	if src == nil {
		if runtime.GOOS != "darwin" {
			return nil, Unavailable("powermetrics", "not macOS (powermetrics exists only on macOS)")
		}
		path := opt.Path
		if path == "" {
			path = "/usr/bin/powermetrics"
		}
		if _, err := os.Stat(path); err != nil {
			return nil, Unavailable("powermetrics", fmt.Sprintf("%s not found", path))
		}
		euid := os.Geteuid
		if opt.Geteuid != nil {
			euid = opt.Geteuid
		}
		if euid() != 0 {
			return nil, Unavailable("powermetrics", "powermetrics needs root (it reads the SoC energy model through a privileged interface): run llem with sudo, e.g. `sudo -E llem eval study.cue`")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, path, "-i", strconv.Itoa(int(opt.Interval.Milliseconds())), "--samplers", "cpu_power,gpu_power,ane_power", "-b", "1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			cancel()
			return nil, Unavailable("powermetrics", err.Error())
		}
		if err := cmd.Start(); err != nil {
			cancel()
			return nil, Unavailable("powermetrics", "start: "+err.Error())
		}
		s.cmd, s.cancel, src = cmd, cancel, out
	} else if opt.Geteuid != nil && opt.Geteuid() != 0 {
		return nil, Unavailable("powermetrics", "powermetrics needs root (it reads the SoC energy model through a privileged interface): run llem with sudo, e.g. `sudo -E llem eval study.cue`")
	}
	go s.consume(src)
	return s, nil
}

func (s *PowermetricsSensor) consume(r io.Reader) {
	defer close(s.done)
	err := ParsePowermetrics(r, func(p PowermetricsSample) {
		s.mu.Lock()
		defer s.mu.Unlock()
		dt := p.ElapsedMs / 1000
		for i, w := range []float64{p.CPUW, p.GPUW, p.ANEW} {
			s.latest[i] = w
			if !math.IsNaN(w) && dt > 0 {
				s.cum[i] += w * dt
			}
		}
		s.samples++
	})
	s.mu.Lock()
	if err != nil {
		s.err = err
	} else {
		s.err = fmt.Errorf("powermetrics output ended")
	}
	s.mu.Unlock()
}

// Name implements Sensor.
func (s *PowermetricsSensor) Name() string { return "powermetrics" }

// Channels implements Sensor.
func (s *PowermetricsSensor) Channels() []Channel { return s.channels }

// Read implements Sensor: the latest complete powermetrics sample. Until
// the first sample arrives, fields stay unread (NaN). Once powermetrics
// has stopped (killed, or its output ended), every read is an error.
func (s *PowermetricsSensor) Read(dst []Sample, _ ReadMode) error {
	now := clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.channels {
		dst[i].Reset(now)
	}
	if s.err != nil && s.cmd != nil {
		errs := make([]*ChannelError, len(s.channels))
		for i := range errs {
			errs[i] = &ChannelError{Index: i, Err: fmt.Errorf("powermetrics: %w", s.err)}
		}
		return JoinChannelErrors(errs)
	}
	if s.samples == 0 {
		return nil
	}
	for i := range s.channels {
		dst[i].PowerW = s.latest[i]
		dst[i].EnergyJ = s.cum[i]
	}
	return nil
}

// Close implements Sensor: stops powermetrics.
func (s *PowermetricsSensor) Close() error {
	if s.cancel != nil {
		s.cancel()
		s.cmd.Wait()
	}
	return nil
}
