package measure

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/energy"
)

// Baseline is the idle power of each channel, measured with nothing running.
type Baseline struct {
	// Method: "idle-mean" — the channel's window energy over the idle period
	// (counter delta where there is one) divided by its duration.
	Method      string           `json:"method"`
	Source      string           `json:"source"` // "measured" or "cache"
	Sensor      string           `json:"sensor"`
	Fingerprint string           `json:"fingerprint,omitempty"`
	MeasuredAt  time.Time        `json:"measured_at"`
	DurationS   float64          `json:"duration_s"`
	Devices     []BaselineDevice `json:"devices"`
	// NotIdle lists why the machine was not idle while the baseline was
	// measured (after any re-measurements); empty when it was.
	NotIdle []string `json:"not_idle,omitempty"`
	// Attempts is how many times it was measured (re-measured while busy).
	Attempts int `json:"attempts,omitempty"`
}

// BaselineDevice is one channel's idle power.
type BaselineDevice struct {
	ID     string        `json:"id"`
	PowerW float64       `json:"power_w"`
	Method energy.Method `json:"method"`
}

// BaselineMethod is the method name recorded with every baseline.
const BaselineMethod = "idle-mean"

// PowerW returns a channel's idle power.
func (b *Baseline) PowerW(id string) (float64, bool) {
	for _, d := range b.Devices {
		if d.ID == id {
			return d.PowerW, true
		}
	}
	return 0, false
}

// covers reports whether the baseline has every counted channel.
func (b *Baseline) covers(chs []energy.Channel) bool {
	for _, c := range chs {
		if c.SubsetOf != "" {
			continue
		}
		if _, ok := b.PowerW(c.ID); !ok {
			return false
		}
	}
	return true
}

// MeasureBaseline samples the idle machine for d and returns each channel's
// mean power, with the timeline it came from.
func MeasureBaseline(ctx context.Context, s energy.Sensor, d time.Duration, opt energy.SamplerOptions) (*Baseline, *energy.Timeline, error) {
	if d <= 0 {
		return nil, nil, fmt.Errorf("measure baseline: duration %v must be positive", d)
	}
	sm := energy.NewSampler(s, opt)
	t0 := clock.Now()
	if err := sm.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("measure baseline: %w", err)
	}
	timer := time.NewTimer(d)
	select {
	case <-ctx.Done():
		timer.Stop()
		sm.Stop()
		return nil, nil, fmt.Errorf("measure baseline: %w", ctx.Err())
	case <-timer.C:
	}
	t1 := clock.Now()
	tl := sm.Stop()
	w, err := Compute(tl, "idle-baseline", t0, t1, nil, Options{MinWindow: time.Nanosecond})
	if err != nil {
		return nil, tl, fmt.Errorf("measure baseline: %w", err)
	}
	b := &Baseline{Method: BaselineMethod, Source: "measured", Sensor: s.Name(), MeasuredAt: time.Now().UTC(), DurationS: w.DurationS}
	for _, dev := range w.Devices {
		if !dev.Available || !dev.Counted {
			continue
		}
		b.Devices = append(b.Devices, BaselineDevice{ID: dev.ID, PowerW: dev.MeanPowerW, Method: dev.Method})
	}
	if len(b.Devices) == 0 {
		return nil, tl, errors.New("measure baseline: no channel produced an idle power")
	}
	return b, tl, nil
}

// Cache stores baselines on disk, one file per hardware fingerprint, valid
// for TTL (idle power drifts with temperature and driver state).
type Cache struct {
	Dir string        // DefaultCacheDir() when empty
	TTL time.Duration // entries older than this are ignored
	Now func() time.Time
}

// DefaultCacheDir is where idle baselines are cached: $LLEM_CACHE_DIR/baseline,
// else $XDG_CACHE_HOME/llem/baseline (~/.cache/llem/baseline) — beside
// llem's other caches (harness/, trt-engines/).
func DefaultCacheDir() string {
	if d := os.Getenv("LLEM_CACHE_DIR"); d != "" {
		return filepath.Join(d, "baseline")
	}
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "llem", "baseline")
}

func (c Cache) dir() string {
	if c.Dir == "" {
		return DefaultCacheDir()
	}
	return c.Dir
}

func (c Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// path keys the cache file by user, hardware fingerprint, sensor and the
// measuring conditions (Conditions: which channels, their power limits):
// a baseline is never shared across users (a shared LLEM_CACHE_DIR), nor
// reused after CUDA_VISIBLE_DEVICES, energy.domains or a power limit change.
func (c Cache) path(fingerprint, sensor, cond string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, fmt.Sprintf("u%d-%s-%s-%s", os.Getuid(), fingerprint, sensor, cond))
	return filepath.Join(c.dir(), "baseline-"+safe+".json")
}

// Conditions is a short hash of what a baseline depends on besides the
// hardware: the measured channels and their power limits.
func Conditions(chs []energy.Channel) string {
	var parts []string
	for _, c := range chs {
		parts = append(parts, fmt.Sprintf("%s|%g|%v|%v", c.ID, c.MaxPowerW, c.SubsetOf != "", c.Excluded))
	}
	sort.Strings(parts)
	h := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(h[:6])
}

// Load returns a cached baseline for this fingerprint and sensor when it is
// younger than TTL and covers every channel; ok is false otherwise.
func (c Cache) Load(fingerprint string, sensor energy.Sensor) (b *Baseline, ok bool, err error) {
	p := c.path(fingerprint, sensor.Name(), Conditions(sensor.Channels()))
	if fi, err := os.Stat(p); err == nil && !ownedByMe(fi) {
		return nil, false, nil // another user's file: never trusted
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load baseline cache: %w", err)
	}
	b = new(Baseline)
	if err := json.Unmarshal(data, b); err != nil {
		return nil, false, fmt.Errorf("load baseline cache %s: %w", p, err)
	}
	if c.TTL > 0 && c.now().Sub(b.MeasuredAt) > c.TTL {
		return nil, false, nil
	}
	if b.Fingerprint != fingerprint || !b.covers(sensor.Channels()) || len(b.NotIdle) > 0 {
		return nil, false, nil
	}
	b.Source = "cache"
	return b, true, nil
}

// Save writes b atomically (temp file + rename), readable by its owner only,
// under the key of the conditions chs were measured in.
func (c Cache) Save(b *Baseline, chs []energy.Channel) error {
	if err := os.MkdirAll(c.dir(), 0o700); err != nil {
		return fmt.Errorf("save baseline cache: %w", err)
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("save baseline cache: %w", err)
	}
	dst := c.path(b.Fingerprint, b.Sensor, Conditions(chs))
	tmp, err := os.CreateTemp(c.dir(), ".baseline-*")
	if err != nil {
		return fmt.Errorf("save baseline cache: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("save baseline cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save baseline cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save baseline cache: %w", err)
	}
	return nil
}

// BaselineConfig is the experiment's baseline: block plus where to cache.
type BaselineConfig struct {
	Duration    time.Duration // 30 s when zero
	TTL         time.Duration // cache_ttl_seconds; 0 disables the cache
	Fingerprint string        // envinfo hardware fingerprint
	Cache       Cache
	Sampler     energy.SamplerOptions
	// Idle configures the checks that the machine was idle; a baseline
	// measured while busy is re-measured, then kept with NotIdle set.
	Idle IdleCheck
}

// IdleCheck tells a busy machine from an idle one during a baseline.
type IdleCheck struct {
	// Retries: re-measurements while not idle (0: none, the baseline is
	// flagged instead).
	Retries int
	// RetryWait: pause before each re-measurement (5 s).
	RetryWait time.Duration
	// MaxUtilPct: mean device utilisation above this is busy (10 %).
	MaxUtilPct float64
	// FloorFactor, FloorMarginW: a channel whose idle power exceeds its
	// own floor (the lowest idle power this user has measured for it on
	// this hardware, kept in the cache) × FloorFactor + FloorMarginW is
	// busy (1.25, 5 W).
	FloorFactor, FloorMarginW float64
	// MaxHostBusy: host CPU busy fraction from /proc/stat over the baseline
	// above this is busy (0.25).
	MaxHostBusy float64
	// ProcRoot: where /proc is ("/proc").
	ProcRoot string
	// Processes lists processes other than llem using the measured
	// devices; nil uses the sensor's OtherProcesses method when it has one
	// (NVML, composite), else skips the check.
	Processes func() ([]string, error)
}

func (o *IdleCheck) defaults() {
	if o.RetryWait == 0 {
		o.RetryWait = 5 * time.Second
	}
	if o.MaxUtilPct == 0 {
		o.MaxUtilPct = 10
	}
	if o.FloorFactor == 0 {
		o.FloorFactor = 1.25
	}
	if o.FloorMarginW == 0 {
		o.FloorMarginW = 5
	}
	if o.MaxHostBusy == 0 {
		o.MaxHostBusy = 0.25
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
}

// hostBusy reads the aggregate busy and total jiffies from /proc/stat.
func hostJiffies(procRoot string) (busy, total uint64, ok bool) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, false
	}
	var v [8]uint64
	for i := 1; i < len(f) && i <= 8; i++ {
		v[i-1], _ = strconv.ParseUint(f[i], 10, 64)
	}
	for _, x := range v {
		total += x
	}
	return total - v[3] - v[4], total, true
}

// NotIdleReasons checks one measured baseline: utilisation and power
// against each channel's floor on its timeline, other processes, host load
// (hostBusy, NaN when unknown).
func NotIdleReasons(b *Baseline, tl *energy.Timeline, floors map[string]float64, hostBusy float64, procs []string, o IdleCheck) []string {
	o.defaults()
	var out []string
	if tl != nil {
		for _, c := range tl.Channels {
			var sum float64
			n := 0
			for _, x := range c.Samples {
				if !math.IsNaN(x.UtilPct) {
					sum += x.UtilPct
					n++
				}
			}
			if n > 0 && sum/float64(n) > o.MaxUtilPct {
				out = append(out, fmt.Sprintf("%s utilisation %.0f%% (idle is ≤ %.0f%%)", c.ID, sum/float64(n), o.MaxUtilPct))
			}
		}
	}
	for _, d := range b.Devices {
		if f, ok := floors[d.ID]; ok && f > 0 && d.PowerW > f*o.FloorFactor+o.FloorMarginW {
			out = append(out, fmt.Sprintf("%s idle power %.1f W is above its own idle floor %.1f W", d.ID, d.PowerW, f))
		}
	}
	if len(procs) > 0 {
		out = append(out, "other processes on the measured GPUs: "+strings.Join(procs, ", "))
	}
	if !math.IsNaN(hostBusy) && hostBusy > o.MaxHostBusy {
		out = append(out, fmt.Sprintf("host CPU %.0f%% busy (idle is ≤ %.0f%%)", 100*hostBusy, 100*o.MaxHostBusy))
	}
	return out
}

// floorsFile keeps, per user, hardware and sensor, the lowest idle power
// each channel has shown: the device's own minimum, that a later busy
// baseline is compared against.
func (c Cache) floorsPath(fingerprint, sensor string) string {
	return c.path(fingerprint, sensor, "floors")
}

func (c Cache) loadFloors(fingerprint, sensor string) map[string]float64 {
	m := map[string]float64{}
	p := c.floorsPath(fingerprint, sensor)
	if fi, err := os.Stat(p); err != nil || !ownedByMe(fi) {
		return m
	}
	if data, err := os.ReadFile(p); err == nil {
		json.Unmarshal(data, &m)
	}
	return m
}

func (c Cache) saveFloors(fingerprint, sensor string, b *Baseline) {
	m := c.loadFloors(fingerprint, sensor)
	for _, d := range b.Devices {
		if f, ok := m[d.ID]; !ok || d.PowerW < f {
			m[d.ID] = d.PowerW
		}
	}
	if err := os.MkdirAll(c.dir(), 0o700); err != nil {
		return
	}
	data, _ := json.Marshal(m)
	tmp, err := os.CreateTemp(c.dir(), ".floors-*")
	if err != nil {
		return
	}
	tmp.Write(data)
	tmp.Close()
	if os.Rename(tmp.Name(), c.floorsPath(fingerprint, sensor)) != nil {
		os.Remove(tmp.Name())
	}
}

// GetBaseline returns a cached baseline when one is fresh, else measures one
// and caches it. A cache that cannot be written is not an error: the
// baseline is still returned, with the write error.
func GetBaseline(ctx context.Context, s energy.Sensor, cfg BaselineConfig) (*Baseline, error) {
	if cfg.Duration == 0 {
		cfg.Duration = 30 * time.Second
	}
	cache := cfg.Cache
	cache.TTL = cfg.TTL
	if cfg.TTL > 0 && cfg.Fingerprint != "" {
		if b, ok, err := cache.Load(cfg.Fingerprint, s); err == nil && ok {
			return b, nil
		}
	}
	ic := cfg.Idle
	ic.defaults()
	floors := map[string]float64{}
	if cfg.Fingerprint != "" {
		floors = cache.loadFloors(cfg.Fingerprint, s.Name())
	}
	var b *Baseline
	for attempt := 1; ; attempt++ {
		busy0, total0, ok0 := hostJiffies(ic.ProcRoot)
		nb, tl, err := MeasureBaseline(ctx, s, cfg.Duration, cfg.Sampler)
		if err != nil {
			return nil, err
		}
		b = nb
		b.Attempts = attempt
		host := math.NaN()
		if busy1, total1, ok1 := hostJiffies(ic.ProcRoot); ok0 && ok1 && total1 > total0 {
			host = float64(busy1-busy0) / float64(total1-total0)
		}
		var procs []string
		if ic.Processes != nil {
			procs, _ = ic.Processes()
		} else if pl, ok := s.(interface{ OtherProcesses() ([]string, error) }); ok {
			procs, _ = pl.OtherProcesses()
		}
		b.NotIdle = NotIdleReasons(b, tl, floors, host, procs, ic)
		if len(b.NotIdle) == 0 || attempt > ic.Retries {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("measure baseline: %w", ctx.Err())
		case <-time.After(ic.RetryWait):
		}
	}
	b.Fingerprint = cfg.Fingerprint
	sort.Slice(b.Devices, func(i, j int) bool { return b.Devices[i].ID < b.Devices[j].ID })
	if len(b.NotIdle) > 0 {
		return b, nil // a busy baseline is reported, never cached
	}
	if cfg.Fingerprint != "" {
		cache.saveFloors(cfg.Fingerprint, s.Name(), b)
	}
	if cfg.TTL > 0 && cfg.Fingerprint != "" {
		if err := cache.Save(b, s.Channels()); err != nil {
			return b, err
		}
	}
	return b, nil
}

// ownedByMe reports whether fi belongs to this process's user.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || int(st.Uid) == os.Getuid()
}
