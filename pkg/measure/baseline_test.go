package measure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/energy"
)

// idleSensor stands in for an idle GPU (no GPU on the test machine): a
// counter that advances at a constant 80 W of wall time, instant power 80 W.
type idleSensor struct {
	mu    sync.Mutex
	start time.Time
	reads int
}

func (s *idleSensor) Name() string { return "fake" }
func (s *idleSensor) Channels() []energy.Channel {
	return []energy.Channel{{ID: "gpu:idle", Sensor: "fake", Kind: "gpu", Method: energy.MethodCounter, HasCounter: true, CounterPeriodNs: 1_000_000}}
}
func (s *idleSensor) Read(dst []energy.Sample, _ energy.ReadMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.start.IsZero() {
		s.start = time.Now()
	}
	s.reads++
	dst[0].EnergyJ = 80 * time.Since(s.start).Seconds()
	dst[0].PowerW = 80
	return nil
}
func (s *idleSensor) Close() error { return nil }

func TestGetBaselineMeasuresThenCaches(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	cfg := BaselineConfig{Duration: 150 * time.Millisecond, TTL: time.Hour, Fingerprint: "hw1", Idle: IdleCheck{ProcRoot: t.TempDir()},
		Cache: Cache{Dir: dir, Now: func() time.Time { return now }}, Sampler: energy.SamplerOptions{Interval: 5 * time.Millisecond}}
	s := &idleSensor{}
	b, err := GetBaseline(context.Background(), s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := b.PowerW("gpu:idle")
	if !ok || p < 70 || p > 90 || b.Source != "measured" || b.Method != BaselineMethod || b.Fingerprint != "hw1" {
		t.Fatalf("baseline = %+v", b)
	}
	if _, err := os.Stat(cfg.Cache.path("hw1", "fake", Conditions(s.Channels()))); err != nil {
		t.Fatalf("cache file: %v", err)
	}
	reads := s.reads
	b2, err := GetBaseline(context.Background(), s, cfg)
	if err != nil || b2.Source != "cache" || s.reads != reads {
		t.Fatalf("second call: %+v, %v (reads %d → %d)", b2, err, reads, s.reads)
	}
	// Past the TTL the cache is ignored and a new baseline measured.
	now = now.Add(2 * time.Hour)
	b3, err := GetBaseline(context.Background(), s, cfg)
	if err != nil || b3.Source != "measured" {
		t.Fatalf("after TTL: %+v, %v", b3, err)
	}
	// Another machine's fingerprint does not hit.
	cfg.Fingerprint = "hw2"
	if _, ok, _ := cfg.Cache.Load("hw2", s); ok {
		t.Error("cache hit for an unknown fingerprint")
	}
}

func TestCacheIgnoresBaselineMissingAChannel(t *testing.T) {
	c := Cache{Dir: t.TempDir(), TTL: time.Hour}
	if err := c.Save(&Baseline{Method: BaselineMethod, Sensor: "fake", Fingerprint: "hw", MeasuredAt: time.Now(),
		Devices: []BaselineDevice{{ID: "gpu:other", PowerW: 60}}}, (&idleSensor{}).Channels()); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Load("hw", &idleSensor{}); ok || err != nil {
		t.Errorf("load = %v, %v; want a miss", ok, err)
	}
	if err := os.WriteFile(c.path("bad", "fake", Conditions((&idleSensor{}).Channels())), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load("bad", &idleSensor{}); err == nil {
		t.Error("corrupt cache file accepted")
	}
}

func TestMeasureBaselineHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := MeasureBaseline(ctx, &idleSensor{}, time.Minute, energy.SamplerOptions{Interval: time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
}

// busySensor is a GPU at 40 % utilisation drawing 200 W during its "idle" baseline.
type busySensor struct{ idleSensor }

func (s *busySensor) Read(dst []energy.Sample, m energy.ReadMode) error {
	s.idleSensor.Read(dst, m)
	dst[0].EnergyJ *= 2.5
	dst[0].PowerW, dst[0].UtilPct = 200, 40
	return nil
}
func (s *busySensor) OtherProcesses() ([]string, error) { return []string{"pid 4242 on GPU-x"}, nil }

func TestBaselineNotIdleIsFlaggedReMeasuredAndNeverCached(t *testing.T) {
	dir := t.TempDir()
	proc := t.TempDir()
	// A host 50 % busy: /proc/stat advances by 10 busy and 10 idle jiffies per read.
	var mu sync.Mutex
	n := uint64(0)
	writeStat := func() {
		mu.Lock()
		defer mu.Unlock()
		n++
		tmp := filepath.Join(proc, "stat.tmp")
		os.WriteFile(tmp, []byte(fmt.Sprintf("cpu  %d 0 0 %d 0 0 0 0\n", 10*n, 10*n)), 0o644)
		os.Rename(tmp, filepath.Join(proc, "stat"))
	}
	writeStat()
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				writeStat()
			}
		}
	}()
	defer close(stop)
	cfg := BaselineConfig{Duration: 60 * time.Millisecond, TTL: time.Hour, Fingerprint: "hw",
		Cache: Cache{Dir: dir}, Sampler: energy.SamplerOptions{Interval: 5 * time.Millisecond},
		Idle: IdleCheck{ProcRoot: proc, Retries: 1, RetryWait: time.Millisecond}}
	// Idle first: this user's floor for gpu:idle becomes ~80 W.
	if _, err := GetBaseline(context.Background(), &idleSensor{}, BaselineConfig{Duration: 60 * time.Millisecond, Fingerprint: "hw",
		Cache: Cache{Dir: dir}, Sampler: cfg.Sampler, Idle: IdleCheck{ProcRoot: t.TempDir()}}); err != nil {
		t.Fatal(err)
	}
	b, err := GetBaseline(context.Background(), &busySensor{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(b.NotIdle, "; ")
	for _, want := range []string{"utilisation 40%", "above its own idle floor", "pid 4242", "host CPU 50% busy"} {
		if !strings.Contains(got, want) {
			t.Errorf("NotIdle = %q, want %q", got, want)
		}
	}
	if b.Attempts != 2 {
		t.Errorf("attempts = %d, want 2 (one re-measurement)", b.Attempts)
	}
	if _, ok, _ := cfg.Cache.Load("hw", &busySensor{}); ok {
		t.Error("a busy baseline was cached")
	}
	// The window that uses it carries the flag.
	tl := &energy.Timeline{Sensor: "fake", IntervalNs: 1e8, Channels: []energy.ChannelTimeline{{Channel: (&idleSensor{}).Channels()[0],
		Samples: []energy.Sample{{TNs: 0, EnergyJ: 0, PowerW: 100}, {TNs: 20e9, EnergyJ: 2000, PowerW: 100}}}}}
	w, _ := Compute(tl, "w", 0, 20e9, nil, Options{Baseline: &Baseline{Method: BaselineMethod, Devices: []BaselineDevice{{ID: "gpu:idle", PowerW: 80}}, NotIdle: b.NotIdle}})
	if !w.HasFlag(FlagBaselineNotIdle) {
		t.Errorf("flags = %+v", w.Flags)
	}
}

func TestCacheIsPerUserAndPerConditions(t *testing.T) {
	c := Cache{Dir: t.TempDir(), TTL: time.Hour}
	s := &idleSensor{}
	p := c.path("hw", "fake", Conditions(s.Channels()))
	if !strings.Contains(filepath.Base(p), fmt.Sprintf("u%d-", os.Getuid())) {
		t.Errorf("cache path %s has no uid", p)
	}
	other := s.Channels()
	other[0].MaxPowerW = 300 // a changed power limit
	if Conditions(other) == Conditions(s.Channels()) {
		t.Error("a power-limit change keeps the same cache key")
	}
	if err := c.Save(&Baseline{Method: BaselineMethod, Sensor: "fake", Fingerprint: "hw", MeasuredAt: time.Now(),
		Devices: []BaselineDevice{{ID: "gpu:idle", PowerW: 60}}}, s.Channels()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file %v mode %v", err, fi)
	}
	if _, ok, _ := c.Load("hw", s); !ok {
		t.Error("own cache file not loaded")
	}
	if os.Getuid() == 0 {
		// As root, a file owned by another user must be ignored.
		os.Chown(p, 12345, 12345)
		if _, ok, _ := c.Load("hw", s); ok {
			t.Error("another user's cache file was used")
		}
	}
}
