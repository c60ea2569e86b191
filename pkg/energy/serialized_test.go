package energy

import (
	"context"
	"sync"
	"testing"
	"time"
)

// unlockedSensor keeps state between reads without a lock, as RAPL and the
// estimate do; a fake (no hardware needed).
type unlockedSensor struct{ reads int }

func (u *unlockedSensor) Name() string { return "fake" }
func (u *unlockedSensor) Channels() []Channel {
	return []Channel{{ID: "fake:0", Sensor: "fake", Kind: "gpu", Method: MethodCounter, HasCounter: true}}
}
func (u *unlockedSensor) Read(dst []Sample, _ ReadMode) error {
	u.reads++
	dst[0].EnergyJ, dst[0].PowerW = float64(u.reads), 1
	return nil
}
func (u *unlockedSensor) Close() error { return nil }

// TestSerialized: reads from a running Sampler and from other goroutines do
// not race (run with -race) and none is lost.
func TestSerialized(t *testing.T) {
	if Serialized(nil) != nil {
		t.Error("Serialized(nil) is not nil")
	}
	u := &unlockedSensor{}
	s := Serialized(u)
	if Serialized(s) != s || s.Name() != "fake" || len(s.Channels()) != 1 {
		t.Fatal("Serialized does not pass through or wraps twice")
	}
	sm := NewSampler(s, SamplerOptions{Interval: time.Millisecond})
	if err := sm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]Sample, 1)
			for range 250 {
				s.Read(buf, ReadAux)
			}
		}()
	}
	wg.Wait()
	tl := sm.Stop()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if want := 1000 + len(tl.Channels[0].Samples); u.reads != want {
		t.Errorf("reads = %d, want %d (1000 direct + every sample)", u.reads, want)
	}
}
