package execute

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// logSensor is a fake energy sensor (no GPU here): one GPU channel with a
// counter, 100 W, 50 °C; it logs when each read happened and what it read.
type logSensor struct {
	mu    sync.Mutex
	t0    int64
	reads []sensorRead
}

type sensorRead struct {
	tNs  int64
	mode energy.ReadMode
}

func (f *logSensor) Name() string { return "fake" }
func (f *logSensor) Channels() []energy.Channel {
	return []energy.Channel{{ID: "fake:0", Sensor: "fake", Kind: "gpu", Method: energy.MethodCounter, HasCounter: true, MaxPowerW: 700}}
}
func (f *logSensor) Read(dst []energy.Sample, mode energy.ReadMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := clock.Now()
	if f.t0 == 0 {
		f.t0 = now
	}
	dst[0].Reset(now)
	dst[0].PowerW = 100
	if mode&energy.ReadCounter != 0 {
		dst[0].EnergyJ = 100 * float64(now-f.t0) / 1e9
	}
	if mode&energy.ReadAux != 0 {
		dst[0].TempC = 50
	}
	f.reads = append(f.reads, sensorRead{now, mode})
	return nil
}
func (f *logSensor) Close() error { return nil }

// counterReadsIn returns the counter reads in [from, to].
func (f *logSensor) counterReadsIn(from, to int64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.reads {
		if r.mode&energy.ReadCounter != 0 && r.tNs >= from && r.tNs <= to {
			n++
		}
	}
	return n
}

// scriptRunner is an in-process runner that plays a valid worker stream,
// pausing between events, and records when each event was delivered:
// [before onEvent, after onEvent].
type scriptRunner struct {
	spans []eventSpan
}

type eventSpan struct {
	what     string
	from, to int64
}

func (r *scriptRunner) Name() string { return "local" }

func (r *scriptRunner) Run(ctx context.Context, job runner.Job, onEvent func(protocol.Event)) (runner.Outcome, error) {
	out := runner.Outcome{Started: time.Now()}
	emit := func(what string, ev protocol.Event) {
		time.Sleep(5 * time.Millisecond)
		ev.TNs = clock.Now()
		from := ev.TNs
		onEvent(ev)
		r.spans = append(r.spans, eventSpan{what, from, clock.Now()})
	}
	phase := func(name, state string, in, outTok int) protocol.Event {
		return protocol.Event{Kind: protocol.KindPhase, Phase: &protocol.Phase{Name: name, State: state, Batch: 0, BatchSize: 1, InputTokens: in, OutputTokens: outTok}}
	}
	emit("hello", protocol.Event{Kind: protocol.KindHello, Hello: &protocol.Hello{Backend: "native", ProtocolVersion: protocol.ProtocolVersion, Versions: map[string]string{"fake": "1"}}})
	emit("loaded", protocol.Event{Kind: protocol.KindLoaded, Loaded: &protocol.Loaded{Model: "fake", Parameters: 1000, Layers: 1, DType: "fp32", LoadTimeNs: 1000}})
	emit("warmup_done", protocol.Event{Kind: protocol.KindWarmupDone, WarmupDone: &protocol.WarmupDone{Prompts: 1}})
	emit("prefill start", phase(protocol.PhasePrefill, "start", 0, 0))
	emit("prefill end", phase(protocol.PhasePrefill, "end", 4, 1))
	emit("decode start", phase(protocol.PhaseDecode, "start", 0, 0))
	emit("decode end", phase(protocol.PhaseDecode, "end", 0, 2))
	t := clock.Now()
	emit("request", protocol.Event{Kind: protocol.KindRequest, Request: &protocol.Request{Index: 0, InputTokens: 4, OutputTokens: 3, StartNs: t - 3e7, TTFTNs: 1e7, EndNs: t, ITLNs: []int64{1e7, 1e7}, FinishReason: "length"}})
	emit("done", protocol.Event{Kind: protocol.KindDone, Done: &protocol.Done{Requests: 1, InputTokens: 4, OutputTokens: 3}})
	out.Ended = time.Now()
	return out, nil
}

// TestMarkAtWindowBoundaries: the energy counter is read (Sampler.Mark)
// while the executor handles warmup_done, the first phase start and done,
// and at no other event. The sampling interval is long enough that no
// scheduled tick reads the counter during the run.
func TestMarkAtWindowBoundaries(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, strings.Replace(fakeBase, "sample_interval_ms: 50", "sample_interval_ms: 1000", 1)+`execution: {cycles: 1, order: "sequential"}
`)
	fs := &logSensor{}
	rn := &scriptRunner{}
	rep, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(),
		Routes: Routes{"native": {Runner: rn, Job: fakeWorkerJob(0)}},
		Sensor: func(study.Energy) (energy.Sensor, energy.Selection, error) {
			return fs, energy.Selection{Sensor: "fake", Method: energy.MethodCounter}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil || len(recs) != 1 || recs[0].Status != result.StatusOK || recs[0].Energy.RawJ == nil {
		t.Fatalf("records: %v %+v", err, recs)
	}
	marked := map[string]bool{"warmup_done": true, "prefill start": true, "done": true}
	if len(rn.spans) != 9 {
		t.Fatalf("spans: %+v", rn.spans)
	}
	for _, s := range rn.spans {
		n := fs.counterReadsIn(s.from, s.to)
		if marked[s.what] && n != 1 {
			t.Errorf("%s: %d counter reads while the executor handled it, want 1 (Sampler.Mark)", s.what, n)
		}
		if !marked[s.what] && n != 0 {
			t.Errorf("%s: %d counter reads while the executor handled it, want 0", s.what, n)
		}
	}
	// Start, the three marks, Stop: nothing else read the counter.
	if n := fs.counterReadsIn(0, 1<<62); n != 5 {
		t.Errorf("%d counter reads in all, want 5 (start, 3 marks, stop)", n)
	}
}
