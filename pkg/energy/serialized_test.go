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

// listingSensor is a fake sensor with a FAKE NVML process list.
type listingSensor struct{ *unlockedSensor }

func (listingSensor) OtherProcesses() ([]string, error) { return []string{"pid 9 on GPU-x"}, nil }

// TestSerializedPassesProcessList: the study loop sees every sensor through
// Serialized; NVML's process list (the idle-baseline and window checks)
// must come through it.
func TestSerializedPassesProcessList(t *testing.T) {
	type lister interface{ OtherProcesses() ([]string, error) }
	got, err := Serialized(listingSensor{&unlockedSensor{}}).(lister).OtherProcesses()
	if err != nil || len(got) != 1 || got[0] != "pid 9 on GPU-x" {
		t.Errorf("through Serialized: %v %v", got, err)
	}
	if got, err := Serialized(&unlockedSensor{}).(lister).OtherProcesses(); got != nil || err != nil {
		t.Errorf("a sensor without a list: %v %v", got, err)
	}
}
