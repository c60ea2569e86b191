package execute

import (
	"context"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/study"
)

// racySensor is a fake sensor (no GPU here) that, like RAPL and the
// estimate, keeps state between reads and does not lock it.
type racySensor struct {
	reads int
	last  int64
}

func (f *racySensor) Name() string { return "fake" }
func (f *racySensor) Channels() []energy.Channel {
	return []energy.Channel{{ID: "fake:0", Sensor: "fake", Kind: "gpu", Method: energy.MethodCounter, HasCounter: true}}
}
func (f *racySensor) Read(dst []energy.Sample, mode energy.ReadMode) error {
	f.reads++
	now := time.Now().UnixNano()
	dst[0].Reset(now)
	dst[0].PowerW = float64(now - f.last)
	dst[0].EnergyJ = float64(f.reads)
	if mode&energy.ReadAux != 0 {
		dst[0].TempC = 40 + float64(f.reads%10)
	}
	f.last = now
	return nil
}
func (f *racySensor) Close() error { return nil }

// TestMaxTempBesideRunningSampler: the temperature gate's direct read and a
// running sampler share the executor's sensor without a data race (run
// with -race; it reports one if executor.sensor stops serialising reads).
func TestMaxTempBesideRunningSampler(t *testing.T) {
	t.Parallel()
	x := &executor{opt: Options{Sensor: func(study.Energy) (energy.Sensor, energy.Selection, error) {
		return &racySensor{}, energy.Selection{Sensor: "fake"}, nil
	}}, sensors: map[string]*openSensor{}}
	s := x.sensor(study.Energy{Sensor: "fake"}).s
	sm := energy.NewSampler(s, energy.SamplerOptions{Interval: time.Millisecond, AuxEvery: 1, CounterEvery: 1})
	if err := sm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if c, ok := maxTemp(s); !ok || c < 40 || c >= 50 {
					t.Errorf("maxTemp = %v, %v", c, ok)
					return
				}
				sm.Mark()
			}
		}()
	}
	wg.Wait()
	tl := sm.Stop()
	if n := len(tl.Channels[0].Samples); n < 400 {
		t.Errorf("%d samples, want at least the 400 marks", n)
	}
}

// coolingSensor is a fake GPU that cools by 10 °C at every gate pause.
type coolingSensor struct {
	logSensor
	tempC atomic.Int64
}

func (f *coolingSensor) Read(dst []energy.Sample, mode energy.ReadMode) error {
	err := f.logSensor.Read(dst, mode)
	if !math.IsNaN(dst[0].TempC) {
		dst[0].TempC = float64(f.tempC.Load())
	}
	return err
}

// TestTemperatureGate: before the second run the executor waits, one
// pause at a time, until the device is at or below cooldown_max_temp_c.
func TestTemperatureGate(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`experiments: [{}, {max_output_tokens: 2}]
execution: {cycles: 1, order: "sequential", cooldown_max_temp_c: 60}
`)
	if len(plan.Runs) != 2 {
		t.Fatalf("runs = %d", len(plan.Runs))
	}
	fs := &coolingSensor{}
	fs.tempC.Store(85)
	var msgs []string
	_, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(),
		Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)}),
		Sensor: func(study.Energy) (energy.Sensor, energy.Selection, error) {
			return fs, energy.Selection{Sensor: "fake", Method: energy.MethodCounter}, nil
		},
		Sleep: func(ctx context.Context, d time.Duration, skip <-chan struct{}) error {
			fs.tempC.Add(-10)
			return nil
		},
		OnEvent: func(ev Event) {
			if ev.Kind == EventGap {
				msgs = append(msgs, ev.Message)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "cooling: 85 °C > 60 °C|cooling: 75 °C > 60 °C|cooling: 65 °C > 60 °C"
	if got := strings.Join(msgs, "|"); got != want {
		t.Errorf("gap events %q, want %q", got, want)
	}
}
