package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/dataset"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// slot runs the manifest entry at pos. It returns ok=false when ctx ended
// (the entry is back to pending) and an error only when the results
// directory cannot be written.
func (x *executor) slot(ctx context.Context, pos int) (ok bool, err error) {
	e := x.st.Entry(pos)
	run := x.runs[e.RunID]
	started := time.Now().UTC()
	if err := x.st.UpdateEntry(pos, func(en *result.Entry) {
		en.Status = result.EntryRunning
		en.Attempts++
		en.StartedAt = &started
		en.EndedAt = nil
		en.Error = ""
	}); err != nil {
		return false, err
	}
	e = x.st.Entry(pos)
	x.emit(Event{Kind: EventRun, Entry: e})

	rec := x.measureSlot(ctx, run, e)
	x.lastEnd = time.Now()
	if ctx.Err() != nil && rec.Status == result.StatusFailed && rec.Error != nil && rec.Error.Kind == "interrupted" {
		// Interrupted: no record; the slot runs again on resume.
		err := x.st.UpdateEntry(pos, func(en *result.Entry) {
			en.Status = result.EntryPending
			en.StartedAt = nil
		})
		return false, err
	}
	rel, werr := x.st.WriteRecord(rec)
	if werr != nil {
		return false, werr
	}
	ended := time.Now().UTC()
	if err := x.st.UpdateEntry(pos, func(en *result.Entry) {
		en.EndedAt = &ended
		en.Record = rel
		if rec.Status == result.StatusOK {
			en.Status = result.EntryDone
		} else {
			en.Status = result.EntryFailed
			en.Error = rec.Error.Kind + ": " + firstLine(rec.Error.Message)
		}
	}); err != nil {
		return false, err
	}
	x.addDone()
	if rec.Status != result.StatusOK {
		x.failed++
	}
	x.emit(Event{Kind: EventRunEnd, Entry: x.st.Entry(pos), Record: rec})
	return true, nil
}

// events collects a worker's stream as it arrives: validated by
// protocol.Checker, with the lifecycle timestamps the record needs.
type events struct {
	mu       sync.Mutex
	check    *protocol.Checker
	streamOK error
	helloNs  int64
	loadedNs int64
	all      int
}

// measureSlot runs one slot and returns its record (ok or failed).
func (x *executor) measureSlot(ctx context.Context, run study.Run, e result.Entry) *result.Record {
	start := time.Now().UTC()
	monoStart := monoNow()
	rec := &result.Record{
		SchemaVersion: result.SchemaVersion, Study: x.plan.Name, StudyHash: x.plan.DesignHash,
		RunID: run.ID, Experiment: run.Origin, Cycle: e.Cycle, Attempt: e.Attempts, Position: e.Position,
		Model: run.Model, Backend: run.Backend, Precision: run.Config.Precision,
		Config: run.ConfigJSON, ConfigHash: run.Hash, Environment: x.opt.Environment,
		Llem:  result.LlemInfo{Version: version.Version, Commit: version.Commit()},
		Flags: []string{}, Warnings: []string{},
	}
	if len(run.Coordinates) > 0 {
		rec.Coordinates, _ = json.Marshal(run.Coordinates)
	}
	rec.Timing.StartedAt = start
	fail := func(kind, msg, hint string) *result.Record {
		rec.Status = result.StatusFailed
		rec.Error = &result.RunError{Kind: kind, Message: msg, Hint: hint, ExitCode: -1}
		rec.Timing.EndedAt = time.Now().UTC()
		rec.Timing.WallS = rec.Timing.EndedAt.Sub(start).Seconds()
		rec.Energy.PerDevice = []result.DeviceEnergy{}
		return rec
	}

	// Sensor and baseline, before the worker exists.
	sens := x.sensor(run.Config.Energy)
	rec.Energy.Sensor = sens.sel.Sensor
	if sens.err != nil {
		return fail("sensor", sens.err.Error(), "run `llem env` to see which sensors work here, or set energy: sensor: \"estimate\"")
	}
	var base *measure.Baseline
	if sens.s != nil && run.Config.Baseline.Enabled {
		b, err := x.baseline(ctx, sens.s, run.Config.Baseline)
		if ctx.Err() != nil {
			return fail("interrupted", "interrupted during the idle baseline", "")
		}
		if err != nil {
			rec.Warnings = append(rec.Warnings, "idle baseline unavailable: "+err.Error())
		}
		base = b
		if b != nil {
			var w float64
			for _, d := range b.Devices {
				w += d.PowerW
			}
			how := fmt.Sprintf("measured over %.0f s", b.DurationS)
			if b.Source == "cache" {
				how = fmt.Sprintf("cached, %s old", time.Since(b.MeasuredAt).Round(time.Second))
			}
			x.emit(Event{Kind: EventBaseline, Entry: e, PowerW: w, Message: how})
		}
	}

	// The job.
	jf := x.opt.Backends[run.Backend]
	if jf == nil {
		return fail("unsupported", fmt.Sprintf("no worker for backend %s in this llem", run.Backend), "pass --python for Python backends, or use backend native")
	}
	kind := "local"
	if r, ok := x.plan.Runners[run.Backend]; ok && r.Kind != "" && r.Kind != "auto" {
		kind = r.Kind
	}
	rn := x.opt.Runners[kind+":"+run.Backend] // e.g. a docker runner with that backend's image
	if rn == nil {
		rn = x.opt.Runners[kind]
	}
	if rn == nil {
		return fail("runner", fmt.Sprintf("runner %s is not available for backend %s", kind, run.Backend), "use --runner local")
	}
	prompts, err := x.filePrompts(run)
	if err != nil {
		return fail(protocol.ErrKindDataset, err.Error(), errs.Hint(err))
	}
	job, err := jf(JobRequest{Run: run, Cycle: e.Cycle, Dir: x.st.WorkPath(run.ID, e.Cycle), Timeout: x.runTimeout(run), Grace: x.opt.Grace, Prompts: prompts})
	if err != nil {
		return fail("config", err.Error(), "")
	}

	// Sample while the worker runs.
	var sm *energy.Sampler
	if sens.s != nil {
		iv := time.Duration(run.Config.Energy.SampleIntervalMs) * time.Millisecond
		sm = energy.NewSampler(sens.s, energy.SamplerOptions{Interval: iv})
		if err := sm.Start(ctx); err != nil {
			return fail("sensor", err.Error(), "")
		}
	}
	stopLive := x.livePower(sm, e)
	ev := &events{check: protocol.NewChecker()}
	phaseName := ""
	phaseSeen := false
	out, runErr := rn.Run(ctx, job, func(w protocol.Event) {
		// Window boundaries known now: put an energy-counter reading
		// within milliseconds of each (the sampler reads the counter only
		// every CounterEvery ticks otherwise; docs/methodology.md). The
		// window runs from the first phase start (warmup_done for a worker
		// that reports no phases) to done.
		if sm != nil {
			switch {
			case w.Kind == protocol.KindWarmupDone, w.Kind == protocol.KindDone,
				w.Kind == protocol.KindPhase && w.Phase != nil && w.Phase.State == "start" && !phaseSeen:
				sm.Mark()
			}
		}
		if w.Kind == protocol.KindPhase {
			phaseSeen = true
		}
		ev.mu.Lock()
		ev.all++
		if ev.streamOK == nil {
			if err := ev.check.Add(w); err != nil {
				ev.streamOK = err
			}
		}
		switch w.Kind {
		case protocol.KindHello:
			ev.helloNs = w.TNs
		case protocol.KindLoaded:
			ev.loadedNs = w.TNs
		}
		ev.mu.Unlock()
		p := ""
		switch w.Kind {
		case protocol.KindHello:
			p = "loading"
		case protocol.KindLoaded:
			p = "warmup"
		case protocol.KindWarmupDone:
			p = "measuring"
		case protocol.KindPhase:
			if w.Phase.State == "start" {
				p = w.Phase.Name
			}
		}
		if p != "" && p != phaseName {
			phaseName = p
			x.emit(Event{Kind: EventPhase, Entry: e, Phase: p})
		}
	})
	stopLive()
	var tl *energy.Timeline
	if sm != nil {
		tl = sm.Stop()
	}
	rec.Timing.EndedAt = time.Now().UTC()
	rec.Timing.WallS = float64(monoNow()-monoStart) / 1e9
	rec.Energy.PerDevice = []result.DeviceEnergy{}
	if runErr != nil {
		return fail("spawn", runErr.Error(), errHint(runErr))
	}
	sum, finErr := ev.check.Finish()
	if ev.streamOK != nil {
		finErr = ev.streamOK
	}
	fillWorker(rec, sum, rn.Name(), ev)

	// Failures, most specific first.
	rec.Status = result.StatusOK
	switch {
	case out.Interrupted:
		setErr(rec, "interrupted", "the run was interrupted", "", out)
	case out.TimedOut:
		setErr(rec, "timeout", fmt.Sprintf("the run exceeded its timeout of %s and was stopped", job.Timeout), "raise execution.run_timeout_seconds or use fewer prompts", out)
	case sum.Error != nil:
		setErr(rec, sum.Error.Kind, sum.Error.Message, sum.Error.Hint, out)
	case out.ExitCode != 0:
		setErr(rec, "crash", fmt.Sprintf("the worker exited with status %d", out.ExitCode), "see error.stderr_tail and the worker's stderr in "+job.Dir, out)
	case len(out.ProtocolErrs) > 0:
		setErr(rec, "protocol", errors.Join(out.ProtocolErrs...).Error(), "the worker printed something that is not a protocol event on stdout; logs belong on stderr", out)
	case finErr != nil:
		setErr(rec, "protocol", finErr.Error(), "", out)
	}
	if rec.Status != result.StatusOK {
		return rec
	}

	// The measured window: from the first measured prefill to done, so
	// warmup and the thermal floor (which the worker sleeps after
	// warmup_done) stay outside it; the phases are the worker's batch
	// intervals. A worker that reported no phase is measured from
	// warmup_done.
	w0, w1 := sum.WarmupDoneNs, sum.DoneNs
	if win, ok := sum.Window(); ok {
		w0 = win.StartNs
		if w1 == 0 || w1 < win.EndNs {
			w1 = win.EndNs
		}
	}
	// A prefill-pass worker (vLLM, TensorRT-LLM) ran a separate
	// max_tokens=1 pass before the full generation: the window is the full
	// generation, and the pass, measured on its own, is its prefill share.
	rec.PhaseSplitMethod = protocol.PhaseSplitTimestamps
	var pass protocol.Interval
	if sum.Done != nil && sum.Done.PhaseSplitMethod == protocol.PhaseSplitPrefillPass {
		rec.PhaseSplitMethod = protocol.PhaseSplitPrefillPass
		b := sum.Batches[0] // the checker guarantees one batch with both pairs
		pass = protocol.Interval{StartNs: b.PrefillStartNs, EndNs: b.PrefillEndNs}
		w0 = b.DecodeStartNs
	}
	if w1 <= w0 {
		setErr(rec, "protocol", "the worker reported no measured window (done before warmup_done)", "", out)
		return rec
	}
	rec.Timing.WindowStartNs, rec.Timing.WindowEndNs = w0, w1
	rec.Timing.WindowS = float64(w1-w0) / 1e9
	if sum.Loaded != nil {
		rec.Timing.LoadS = float64(sum.Loaded.LoadTimeNs) / 1e9
		if ev.loadedNs > 0 && sum.WarmupDoneNs > ev.loadedNs {
			rec.Timing.WarmupS = float64(sum.WarmupDoneNs-ev.loadedNs) / 1e9
		}
	}
	if sum.WarmupDone != nil {
		rec.Warmup = &result.Warmup{Prompts: sum.WarmupDone.Prompts, TimeS: rec.Timing.WarmupS, ThermalFloorS: run.Config.Warmup.ThermalFloorSeconds}
	}
	fillWork(rec, sum)
	if pass.EndNs > pass.StartNs {
		splitPrefillPass(rec, pass)
	}

	var spans []result.PhaseSpan
	for _, b := range sum.Batches {
		spans = append(spans, result.PhaseSpan{Name: protocol.PhasePrefill, Batch: b.Index, StartNs: b.PrefillStartNs, EndNs: b.PrefillEndNs})
		if b.DecodeStartNs != 0 {
			spans = append(spans, result.PhaseSpan{Name: protocol.PhaseDecode, Batch: b.Index, StartNs: b.DecodeStartNs, EndNs: b.DecodeEndNs})
		}
	}
	if tl == nil {
		rec.Energy.Method = "unavailable"
		rec.Energy.Unavailable = "energy measurement is off (energy.sensor: none)"
		rec.Efficiency.Basis = "none"
		rec.Flags = append(rec.Flags, "energy_unavailable")
		return rec
	}
	phases := []measure.Phase{
		{Name: protocol.PhasePrefill, Intervals: toIntervals(sum.Phases(protocol.PhasePrefill))},
		{Name: protocol.PhaseDecode, Intervals: toIntervals(sum.Phases(protocol.PhaseDecode))},
	}
	ts0 := w0
	if rec.PhaseSplitMethod == protocol.PhaseSplitPrefillPass {
		phases = phases[1:] // the full generation is the window; the pass is measured below
		ts0 = pass.StartNs  // keep the pass in the timeseries
	}
	win, err := measure.Compute(tl, "inference", w0, w1, phases, measure.Options{Baseline: base})
	if err != nil {
		setErr(rec, "measurement", err.Error(), "", out)
		return rec
	}
	fillEnergy(rec, win, base, tl)
	if rec.PhaseSplitMethod == protocol.PhaseSplitPrefillPass {
		if err := splitPrefillPassEnergy(rec, tl, pass); err != nil {
			rec.Warnings = append(rec.Warnings, "prefill pass not measured: "+err.Error())
		}
	}
	if rel, err := x.st.WriteTimeseries(tl.Slice(ts0, w1), result.TimeseriesMeta{
		Study: x.plan.Name, RunID: run.ID, Cycle: e.Cycle, WindowStartNs: w0, WindowEndNs: w1, Phases: spans,
	}); err != nil {
		rec.Warnings = append(rec.Warnings, "timeseries not written: "+err.Error())
	} else {
		rec.Timeseries = rel
	}
	return rec
}

// livePower emits the latest sampled power every LivePower until stopped.
func (x *executor) livePower(sm *energy.Sampler, e result.Entry) (stop func()) {
	if sm == nil || x.opt.OnEvent == nil {
		return func() {}
	}
	every := x.opt.LivePower
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				tl := sm.Snapshot()
				var p float64
				have := false
				for _, c := range tl.Channels {
					if c.SubsetOf != "" || len(c.Samples) == 0 {
						continue
					}
					if v := c.Samples[len(c.Samples)-1].PowerW; !math.IsNaN(v) {
						p += v
						have = true
					}
				}
				if have {
					x.emit(Event{Kind: EventPower, Entry: e, PowerW: p})
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// baseline returns the idle baseline for s: reused in memory while within
// its TTL, else from the disk cache or measured (measure.GetBaseline).
func (x *executor) baseline(ctx context.Context, s energy.Sensor, cfg study.Baseline) (*measure.Baseline, error) {
	ttl := time.Duration(cfg.CacheTTLSeconds * float64(time.Second))
	if b, ok := x.base[s.Name()]; ok && ttl > 0 && time.Since(b.MeasuredAt) < ttl {
		c := *b
		c.Source = "cache"
		return &c, nil
	}
	b, err := measure.GetBaseline(ctx, s, measure.BaselineConfig{
		Duration:    time.Duration(cfg.DurationSeconds * float64(time.Second)),
		TTL:         ttl,
		Fingerprint: x.opt.Fingerprint,
		Cache:       x.opt.BaselineCache,
	})
	if b != nil {
		x.base[s.Name()] = b
	}
	return b, err
}

func errHint(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

func setErr(rec *result.Record, kind, msg, hint string, out runner.Outcome) {
	rec.Status = result.StatusFailed
	rec.Error = &result.RunError{Kind: kind, Message: msg, Hint: hint, ExitCode: out.ExitCode, StderrTail: out.StderrTail}
}

func toIntervals(iv []protocol.Interval) []measure.Interval {
	out := make([]measure.Interval, len(iv))
	for i, v := range iv {
		out[i] = measure.Interval{StartNs: v.StartNs, EndNs: v.EndNs}
	}
	return out
}

func fillWorker(rec *result.Record, sum protocol.Summary, runnerName string, ev *events) {
	if sum.Hello.Backend != "" {
		rec.Worker = &result.WorkerInfo{Backend: sum.Hello.Backend, ProtocolVersion: sum.Hello.ProtocolVersion, Versions: sum.Hello.Versions, Runner: runnerName}
	}
	if l := sum.Loaded; l != nil {
		rec.ModelInfo = &result.ModelInfo{Parameters: l.Parameters, Layers: l.Layers, DType: l.DType, MemoryBytes: l.MemoryBytes, LoadTimeS: float64(l.LoadTimeNs) / 1e9}
	}
	for _, l := range sum.Logs {
		if l.Level == "warn" {
			rec.Warnings = append(rec.Warnings, "worker: "+l.Message)
		}
	}
}

// fillWork sets throughput, latency and the phases' token counts and times.
func fillWork(rec *result.Record, sum protocol.Summary) {
	T := rec.Timing.WindowS
	t := &rec.Throughput
	if sum.Done != nil {
		t.Requests, t.InputTokens, t.OutputTokens = sum.Done.Requests, sum.Done.InputTokens, sum.Done.OutputTokens
	}
	if T > 0 {
		t.InputTokensPerSec = float64(t.InputTokens) / T
		t.OutputTokensPerSec = float64(t.OutputTokens) / T
		t.RequestsPerSec = float64(t.Requests) / T
	}
	var ttft, itl, tpot, e2e []float64
	decodeTokens := 0
	for _, r := range sum.Requests {
		ttft = append(ttft, float64(r.TTFTNs)/1e6)
		e := float64(r.EndNs-r.StartNs) / 1e6
		e2e = append(e2e, e)
		for _, g := range r.ITLNs {
			itl = append(itl, float64(g)/1e6)
		}
		if r.OutputTokens > 1 {
			tpot = append(tpot, (e-float64(r.TTFTNs)/1e6)/float64(r.OutputTokens-1))
			decodeTokens += r.OutputTokens - 1
		}
	}
	rec.Latency = result.Latency{TTFT: dist(ttft), ITL: dist(itl), TPOT: dist(tpot), E2E: dist(e2e)}
	var pre, dec float64
	for _, iv := range sum.Phases(protocol.PhasePrefill) {
		pre += float64(iv.EndNs-iv.StartNs) / 1e9
	}
	for _, iv := range sum.Phases(protocol.PhaseDecode) {
		dec += float64(iv.EndNs-iv.StartNs) / 1e9
	}
	inTok := 0
	for _, b := range sum.Batches {
		inTok += b.InputTokens
	}
	rec.Prefill = &result.PhaseMetrics{Tokens: inTok, TimeS: pre, TokensPerSec: rate(inTok, pre)}
	rec.Decode = &result.PhaseMetrics{Tokens: decodeTokens, TimeS: dec, TokensPerSec: rate(decodeTokens, dec)}
}

// splitPrefillPass sets the phases' times for a prefill-pass worker: the
// decode phase event bracketed the full generation (which prefills again),
// so prefill time is the separate pass and decode time the rest.
func splitPrefillPass(rec *result.Record, pass protocol.Interval) {
	pre := float64(pass.EndNs-pass.StartNs) / 1e9
	full := rec.Decode.TimeS
	rec.Prefill.TimeS = pre
	rec.Prefill.TokensPerSec = rate(rec.Prefill.Tokens, pre)
	rec.Decode.TimeS = math.Max(0, full-pre)
	rec.Decode.TokensPerSec = rate(rec.Decode.Tokens, rec.Decode.TimeS)
}

// splitPrefillPassEnergy attributes the prefill pass's measured energy to
// prefill and the rest of the full generation's to decode, so the phases
// still sum to the window's raw energy.
func splitPrefillPassEnergy(rec *result.Record, tl *energy.Timeline, pass protocol.Interval) error {
	w, err := measure.Compute(tl, "prefill-pass", pass.StartNs, pass.EndNs, nil, measure.Options{})
	if err != nil {
		return err
	}
	if rec.Decode == nil || rec.Decode.EnergyJ == nil {
		return fmt.Errorf("no decode energy to split")
	}
	full, pre := *rec.Decode.EnergyJ, w.EnergyJ
	if pre > full {
		rec.Warnings = append(rec.Warnings, fmt.Sprintf("prefill pass (%.3g J) used more energy than the full generation (%.3g J); decode energy set to 0", pre, full))
		pre = full
	}
	rec.Prefill.EnergyJ = f64(pre)
	rec.Decode.EnergyJ = f64(full - pre)
	for _, pm := range []*result.PhaseMetrics{rec.Prefill, rec.Decode} {
		pm.EnergyPerTokenJ = nil
		if pm.Tokens > 0 {
			pm.EnergyPerTokenJ = f64(*pm.EnergyJ / float64(pm.Tokens))
		}
	}
	return nil
}

func rate(n int, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(n) / s
}

// dist summarises milliseconds with nearest-rank-free linear percentiles.
func dist(v []float64) result.Dist {
	if len(v) == 0 {
		return result.Dist{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	var sumv float64
	for _, x := range s {
		sumv += x
	}
	q := func(p float64) float64 {
		pos := p * float64(len(s)-1)
		lo := int(math.Floor(pos))
		hi := int(math.Ceil(pos))
		return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
	}
	return result.Dist{N: len(s), MeanMs: sumv / float64(len(s)), P50Ms: q(.5), P90Ms: q(.9), P95Ms: q(.95), P99Ms: q(.99), MinMs: s[0], MaxMs: s[len(s)-1]}
}

func f64(v float64) *float64 { return &v }

// fillEnergy copies the window into the record: totals, per device and
// domain, baseline, phases, efficiency, thermal state, flags and warnings.
func fillEnergy(rec *result.Record, w *measure.Window, base *measure.Baseline, tl *energy.Timeline) {
	en := &rec.Energy
	en.Sensor = w.Sensor
	en.Method = string(w.Method)
	en.SampleIntervalMs = w.SampleIntervalMs
	en.RawJ = f64(w.EnergyJ)
	en.MeanPowerW = f64(w.MeanPowerW)
	en.PerDomainJ = map[string]float64{}
	var peak float64
	for _, d := range w.Devices {
		en.Samples += d.Samples
		if !d.Counted {
			continue
		}
		de := result.DeviceEnergy{Index: channelIndex(tl, d.ID), Name: d.ID, Kind: d.Kind, EnergyJ: d.EnergyJ, MeanPowerW: d.MeanPowerW, BaselineW: d.IdlePowerW, Method: string(d.Method)}
		en.PerDevice = append(en.PerDevice, de)
		en.PerDomainJ[d.Kind] += d.EnergyJ
		if d.MaxPowerW != nil {
			peak += *d.MaxPowerW
		}
		if en.CrossCheck == nil && d.CounterJ != nil && d.IntegralJ != nil && *d.CounterJ != 0 {
			en.CrossCheck = &result.CrossCheck{CounterJ: *d.CounterJ, IntegralJ: *d.IntegralJ, RelDiff: math.Abs(*d.CounterJ-*d.IntegralJ) / *d.CounterJ}
		}
	}
	if peak > 0 {
		en.PeakPowerW = f64(peak)
	}
	// Efficiency ratios use raw window energy, as the Python original and
	// ML.ENERGY do: it is what the hardware drew and never goes negative.
	// The baseline-adjusted figures are reported beside them, never instead.
	energyJ := w.EnergyJ
	rec.Efficiency.Basis = "raw"
	if w.AdjustedEnergyJ != nil && base != nil {
		adj := math.Max(0, *w.AdjustedEnergyJ)
		en.BaselineAdjustedJ = f64(adj)
		method := "fresh"
		if base.Source == "cache" {
			method = "cached"
		}
		en.Baseline = &result.Baseline{PowerW: *w.IdlePowerW, Method: method, DurationS: base.DurationS, MeasuredAt: base.MeasuredAt,
			AgeS: math.Max(0, time.Since(base.MeasuredAt).Seconds()-rec.Timing.WindowS)}
		if rec.Throughput.OutputTokens > 0 {
			rec.Efficiency.AdjustedEnergyPerOutputTokenJ = f64(adj / float64(rec.Throughput.OutputTokens))
		}
	}
	t := rec.Throughput
	if t.OutputTokens > 0 {
		rec.Efficiency.EnergyPerOutputTokenJ = f64(energyJ / float64(t.OutputTokens))
	}
	if t.InputTokens+t.OutputTokens > 0 {
		rec.Efficiency.EnergyPerTokenJ = f64(energyJ / float64(t.InputTokens+t.OutputTokens))
	}
	if t.Requests > 0 {
		rec.Efficiency.EnergyPerRequestJ = f64(energyJ / float64(t.Requests))
	}
	if energyJ > 0 {
		rec.Efficiency.OutputTokensPerJ = f64(float64(t.OutputTokens) / energyJ)
	}
	for _, p := range w.Phases {
		var pm *result.PhaseMetrics
		switch p.Name {
		case protocol.PhasePrefill:
			pm = rec.Prefill
		case protocol.PhaseDecode:
			pm = rec.Decode
		}
		if pm == nil {
			continue
		}
		e := p.EnergyJ
		pm.EnergyJ = f64(e)
		if pm.Tokens > 0 {
			pm.EnergyPerTokenJ = f64(e / float64(pm.Tokens))
		}
	}
	rec.Thermal = thermal(tl, w)
	seen := map[string]bool{}
	for _, f := range w.Flags {
		if !seen[f.Code] {
			seen[f.Code] = true
			rec.Flags = append(rec.Flags, f.Code)
		}
		if f.Severity == measure.SeverityWarning {
			rec.Warnings = append(rec.Warnings, f.Code+": "+f.Message)
		}
	}
}

func channelIndex(tl *energy.Timeline, id string) int {
	for _, c := range tl.Channels {
		if c.ID == id {
			return c.Index
		}
	}
	return 0
}

// thermal reads the first, last and highest temperature over the window;
// nil when no channel reports temperature.
func thermal(tl *energy.Timeline, w *measure.Window) *result.Thermal {
	var first, last, hi = math.NaN(), math.NaN(), math.NaN()
	throttled := false
	for _, c := range tl.Channels {
		lo, up := c.Bracket(w.StartNs, w.EndNs)
		for _, s := range c.Samples[lo:up] {
			if s.ThrottleReasons > 0 && s.ThrottleReasons&energy.ThrottlePowerOrThermal != 0 {
				throttled = true
			}
			if math.IsNaN(s.TempC) {
				continue
			}
			if math.IsNaN(first) {
				first = s.TempC
			}
			last = s.TempC
			if math.IsNaN(hi) || s.TempC > hi {
				hi = s.TempC
			}
		}
	}
	if math.IsNaN(hi) && !throttled {
		return nil
	}
	t := &result.Thermal{Throttled: throttled}
	if !math.IsNaN(hi) {
		t.StartC, t.EndC, t.MaxC = f64(first), f64(last), f64(hi)
	}
	return t
}

// filePrompts resolves the prompts of a run whose dataset is a file (a
// JSONL path, relative to the study file's directory; the AI Energy Score
// set in the Hugging Face cache), so the worker gets them in its RunSpec.
// Synthetic datasets return nil: the worker builds them with the model's
// tokenizer. A run's file is read once, so all its cycles measure the same
// prompts even if the file changes mid-study.
func (x *executor) filePrompts(run study.Run) ([]protocol.Prompt, error) {
	if p, ok := x.prompts[run.ID]; ok {
		return p, nil
	}
	cfg, err := dataset.ParseConfig(run.ConfigJSON)
	if err != nil {
		return nil, err
	}
	switch cfg.Dataset.Source {
	case "jsonl", "aienergyscore":
	default:
		return nil, nil
	}
	base := ""
	if x.plan.Source != "" {
		base = filepath.Dir(x.plan.Source)
	}
	p, err := dataset.Build(cfg, dataset.Options{BaseDir: base})
	if err != nil {
		return nil, err
	}
	if x.prompts == nil {
		x.prompts = map[string][]protocol.Prompt{}
	}
	x.prompts[run.ID] = p
	return p, nil
}
