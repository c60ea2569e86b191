package measure

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
	cfg := BaselineConfig{Duration: 150 * time.Millisecond, TTL: time.Hour, Fingerprint: "hw1",
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
	if _, err := os.Stat(filepath.Join(dir, "baseline-hw1-fake.json")); err != nil {
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
		Devices: []BaselineDevice{{ID: "gpu:other", PowerW: 60}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Load("hw", &idleSensor{}); ok || err != nil {
		t.Errorf("load = %v, %v; want a miss", ok, err)
	}
	if err := os.WriteFile(c.path("bad", "fake"), []byte("{"), 0o644); err != nil {
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
