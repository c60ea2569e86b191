package energy

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeSensor stands in for GPU hardware in sampler tests: two channels whose
// counters advance by 1 J per read; aux reads are counted.
type fakeSensor struct {
	mu      sync.Mutex
	reads   int
	aux     int
	counter int
	fail    bool
}

func (f *fakeSensor) Name() string { return "fake" }
func (f *fakeSensor) Channels() []Channel {
	return []Channel{{ID: "fake:0", Sensor: "fake", Kind: "gpu", Method: MethodCounter, HasCounter: true},
		{ID: "fake:1", Sensor: "fake", Kind: "gpu", Method: MethodCounter, HasCounter: true}}
}
func (f *fakeSensor) Read(dst []Sample, mode ReadMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if mode&ReadAux != 0 {
		f.aux++
	}
	if mode&ReadCounter != 0 {
		f.counter++
	}
	if f.fail {
		return JoinChannelErrors([]*ChannelError{nil, {Index: 1, Err: errors.New("gpu lost")}})
	}
	for i := range dst {
		dst[i].EnergyJ = float64(f.reads)
		dst[i].PowerW = 100
	}
	return nil
}
func (f *fakeSensor) Close() error { return nil }

func (f *fakeSensor) counts() (reads, aux, counter int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads, f.aux, f.counter
}

// waitReads waits until the sensor has been read at least n times; it fails
// the test if that does not happen within a generous hang guard.
func waitReads(t *testing.T, f *fakeSensor, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, _, _ := f.counts(); r >= n {
			return
		}
		if time.Now().After(deadline) {
			r, _, _ := f.counts()
			t.Fatalf("sampler stopped recording: %d reads, want %d", r, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSamplerRecordsTimeline(t *testing.T) {
	const auxEvery, counterEvery = 3, 4
	fs := &fakeSensor{}
	sm := NewSampler(fs, SamplerOptions{Interval: 2 * time.Millisecond, AuxEvery: auxEvery, CounterEvery: counterEvery})
	if err := sm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sm.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	// Wait for Start's read and 2×auxEvery×counterEvery ticks (however long
	// they take on a loaded machine) rather than sleeping a fixed time.
	const minTicks = 2 * auxEvery * counterEvery
	waitReads(t, fs, 1+minTicks)
	mid := sm.Snapshot()
	tl := sm.Stop()
	again := sm.Stop()
	if len(again.Channels[0].Samples) != len(tl.Channels[0].Samples) {
		t.Error("second Stop changed the timeline")
	}
	n := len(tl.Channels[0].Samples)
	reads, aux, counter := fs.counts()
	// Every read is one sample: Start's, one per tick, Stop's.
	if n != reads || n < 2+minTicks || len(mid.Channels[0].Samples) < 1+minTicks || len(mid.Channels[0].Samples) > n {
		t.Fatalf("samples = %d (mid %d), reads %d", n, len(mid.Channels[0].Samples), reads)
	}
	if tl.Sensor != "fake" || tl.IntervalNs != 2e6 || tl.Channels[1].ID != "fake:1" {
		t.Errorf("timeline header = %+v", tl.Channels[1].Channel)
	}
	s := tl.Channels[0].Samples
	for i := 1; i < n; i++ {
		if s[i].TNs <= s[i-1].TNs || s[i].EnergyJ != s[i-1].EnergyJ+1 {
			t.Fatalf("sample %d not after %d: %+v %+v", i, i-1, s[i-1], s[i])
		}
	}
	// Start and Stop read everything; tick k reads aux when k%auxEvery == 0
	// and the counter when k%counterEvery == 0. Stop has waited for the
	// ticking goroutine, so the tick count is exact.
	ticks := reads - 2
	if want := 2 + ticks/auxEvery; aux != want {
		t.Errorf("aux reads = %d over %d ticks, want %d", aux, ticks, want)
	}
	if want := 2 + ticks/counterEvery; counter != want {
		t.Errorf("counter reads = %d over %d ticks, want %d", counter, ticks, want)
	}
}

func TestSamplerContextCancelStops(t *testing.T) {
	fs := &fakeSensor{}
	sm := NewSampler(fs, SamplerOptions{Interval: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	if err := sm.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	cancel()
	time.Sleep(5 * time.Millisecond)
	fs.mu.Lock()
	r := fs.reads
	fs.mu.Unlock()
	time.Sleep(10 * time.Millisecond)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.reads != r {
		t.Errorf("sampler kept reading after cancel: %d → %d", r, fs.reads)
	}
}

func TestSamplerAttributesChannelErrors(t *testing.T) {
	fs := &fakeSensor{fail: true}
	sm := NewSampler(fs, SamplerOptions{Interval: time.Hour})
	if err := sm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tl := sm.Stop()
	if tl.Channels[0].Errors != 0 || tl.Channels[1].Errors != 2 || tl.Channels[1].LastError != "gpu lost" {
		t.Errorf("errors = %d/%d %q", tl.Channels[0].Errors, tl.Channels[1].Errors, tl.Channels[1].LastError)
	}
	if e := tl.Channels[1].Samples[0].EnergyJ; !math.IsNaN(e) {
		t.Errorf("failed sample energy = %v, want NaN", e)
	}
}

func TestTimelineSliceKeepsBracketingSamples(t *testing.T) {
	tl := &Timeline{Channels: []ChannelTimeline{{Samples: []Sample{{TNs: 0}, {TNs: 10}, {TNs: 20}, {TNs: 30}, {TNs: 40}}}}}
	got := tl.Slice(12, 28).Channels[0].Samples
	if len(got) != 3 || got[0].TNs != 10 || got[2].TNs != 30 {
		t.Errorf("Slice(12,28) = %+v", got)
	}
	got = tl.Slice(-5, 100).Channels[0].Samples
	if len(got) != 5 {
		t.Errorf("Slice over everything = %d samples", len(got))
	}
	if f, l, ok := tl.Span(); !ok || f != 0 || l != 40 {
		t.Errorf("Span = %d %d %v", f, l, ok)
	}
}

func TestOpenFallsBackAndRecordsWhy(t *testing.T) {
	noNVML := NVMLOptions{Lib: struct{}{}} // not an nvml.Interface: NVML cannot open
	raplRoot := writeRAPLTree(t, 1<<32)
	procRoot := writeProc(t, cpuinfoEPYC, "cpu  1 0 1 8 0 0 0 0\n")

	noAMD := AMDSMIOptions{LibPath: "/nonexistent/libamd_smi.so"}
	noHwmon := HwmonOptions{Root: t.TempDir()}
	s, sel, err := Open(Config{NVML: noNVML, AMDSMI: noAMD, RAPL: RAPLOptions{Root: raplRoot}, Estimate: EstimateOptions{ProcRoot: procRoot}})
	if err != nil || sel.Sensor != "rapl" || sel.Method != MethodCounter || len(sel.Tried) != 3 || sel.Tried[0].Error == "" || sel.Tried[1].Error == "" {
		t.Fatalf("auto → %+v, %v", sel, err)
	}
	s.Close()

	_, sel, err = Open(Config{Sensor: "codecarbon", NVML: noNVML, AMDSMI: noAMD, Hwmon: noHwmon, RAPL: RAPLOptions{Root: t.TempDir()}, Estimate: EstimateOptions{ProcRoot: procRoot}})
	if err != nil || sel.Sensor != "estimate" || sel.Method != MethodEstimateTDP || len(sel.Tried) != 6 || !strings.Contains(sel.Notes[0], "alias of auto") {
		t.Fatalf("codecarbon → %+v, %v", sel, err)
	}

	_, _, err = Open(Config{Sensor: "rapl", RAPL: RAPLOptions{Root: t.TempDir()}})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("explicit rapl without a tree: %v", err)
	}
	s, sel, err = Open(Config{Sensor: "none"})
	if err != nil || s != nil || sel.Method != MethodNone {
		t.Errorf("none → %v %+v %v", s, sel, err)
	}
	if _, _, err = Open(Config{Sensor: "wattmeter"}); !errors.Is(err, ErrUnknownSensor) {
		t.Errorf("unknown sensor: %v", err)
	}
}

// BenchmarkSample measures one sampler tick on the RAPL fixture (real file
// reads): time and allocations per sample.
func BenchmarkSample(b *testing.B) {
	root := writeRAPLTree(&testing.T{}, 1<<32)
	defer os.RemoveAll(root)
	s, err := OpenRAPL(RAPLOptions{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	sm := NewSampler(s, SamplerOptions{Capacity: b.N + 1})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sm.mu.Lock()
		sm.sampleLocked(ReadAux)
		sm.mu.Unlock()
	}
}

// BenchmarkSamplerCPU runs the sampler at its default rate for one second
// per iteration and reports the process CPU time it costs as a percentage
// of one core (goal ≤ 0.5 %). Run it with -benchtime=1x.
func BenchmarkSamplerCPU(b *testing.B) {
	root := writeRAPLTree(&testing.T{}, 1<<32)
	defer os.RemoveAll(root)
	s, err := OpenRAPL(RAPLOptions{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	var cpu, wall time.Duration
	for i := 0; i < b.N; i++ {
		sm := NewSampler(s, SamplerOptions{Interval: DefaultIntervalNVML})
		r0, t0 := rusage(b), time.Now()
		if err := sm.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
		sm.Stop()
		cpu += rusage(b) - r0
		wall += time.Since(t0)
	}
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
}

func rusage(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestSampleJSONRoundTripsUnreadFields(t *testing.T) {
	var s Sample
	s.Reset(42)
	s.PowerW = 123.5
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"energy_j":null`) || !strings.Contains(string(b), `"power_w":123.5`) || !strings.Contains(string(b), `"throttle_reasons":null`) {
		t.Errorf("json = %s", b)
	}
	var back Sample
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.TNs != 42 || back.PowerW != 123.5 || !math.IsNaN(back.EnergyJ) || back.ThrottleReasons != -1 {
		t.Errorf("round trip = %+v", back)
	}
}

func TestSamplerMarkReadsCounterNow(t *testing.T) {
	fs := &fakeSensor{}
	sm := NewSampler(fs, SamplerOptions{Interval: time.Hour})
	sm.Mark() // not running: nothing
	if err := sm.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	sm.Mark()
	tl := sm.Stop()
	if n := len(tl.Channels[0].Samples); n != 3 || fs.counter != 3 {
		t.Errorf("samples %d, counter reads %d; want 3 and 3 (start, mark, stop)", n, fs.counter)
	}
}
