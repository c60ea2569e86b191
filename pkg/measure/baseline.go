package measure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

func (c Cache) path(fingerprint, sensor string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, fingerprint+"-"+sensor)
	return filepath.Join(c.dir(), "baseline-"+safe+".json")
}

// Load returns a cached baseline for this fingerprint and sensor when it is
// younger than TTL and covers every channel; ok is false otherwise.
func (c Cache) Load(fingerprint string, sensor energy.Sensor) (b *Baseline, ok bool, err error) {
	data, err := os.ReadFile(c.path(fingerprint, sensor.Name()))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("load baseline cache: %w", err)
	}
	b = new(Baseline)
	if err := json.Unmarshal(data, b); err != nil {
		return nil, false, fmt.Errorf("load baseline cache %s: %w", c.path(fingerprint, sensor.Name()), err)
	}
	if c.TTL > 0 && c.now().Sub(b.MeasuredAt) > c.TTL {
		return nil, false, nil
	}
	if b.Fingerprint != fingerprint || !b.covers(sensor.Channels()) {
		return nil, false, nil
	}
	b.Source = "cache"
	return b, true, nil
}

// Save writes b atomically (temp file + rename).
func (c Cache) Save(b *Baseline) error {
	if err := os.MkdirAll(c.dir(), 0o755); err != nil {
		return fmt.Errorf("save baseline cache: %w", err)
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return fmt.Errorf("save baseline cache: %w", err)
	}
	dst := c.path(b.Fingerprint, b.Sensor)
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
	b, _, err := MeasureBaseline(ctx, s, cfg.Duration, cfg.Sampler)
	if err != nil {
		return nil, err
	}
	b.Fingerprint = cfg.Fingerprint
	sort.Slice(b.Devices, func(i, j int) bool { return b.Devices[i].ID < b.Devices[j].ID })
	if cfg.TTL > 0 && cfg.Fingerprint != "" {
		if err := cache.Save(b); err != nil {
			return b, err
		}
	}
	return b, nil
}
