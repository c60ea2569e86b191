package execute

import (
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// measuredWindow is a successful slot's measured window, found after the
// fact from the worker's events.
type measuredWindow struct {
	startNs, endNs int64 // CLOCK_MONOTONIC
	splitMethod    string
	// pass is a prefill-pass worker's separate max_tokens=1 pass (zero
	// otherwise).
	pass protocol.Interval
}

// windowOf returns the measured window: from the first measured prefill to
// done, so warmup and the thermal floor (which the worker sleeps after
// warmup_done) stay outside it; the phases are the worker's batch
// intervals. A worker that reported no phase is measured from warmup_done.
// A prefill-pass worker (vLLM, TensorRT-LLM) ran a separate max_tokens=1
// pass before the full generation: the window is the full generation, and
// the pass, measured on its own, is its prefill share.
func windowOf(sum protocol.Summary) measuredWindow {
	w := measuredWindow{startNs: sum.WarmupDoneNs, endNs: sum.DoneNs, splitMethod: protocol.PhaseSplitTimestamps}
	if win, ok := sum.Window(); ok {
		w.startNs = win.StartNs
		if w.endNs == 0 || w.endNs < win.EndNs {
			w.endNs = win.EndNs
		}
	}
	if sum.Done != nil && sum.Done.PhaseSplitMethod == protocol.PhaseSplitPrefillPass {
		w.splitMethod = protocol.PhaseSplitPrefillPass
		b := sum.Batches[0] // the checker guarantees one batch with both pairs
		w.pass = protocol.Interval{StartNs: b.PrefillStartNs, EndNs: b.PrefillEndNs}
		w.startNs = b.DecodeStartNs
	}
	return w
}

// measured fills a successful slot's record from its window: timing and
// work, then the energy of the window computed from the sampled timeline
// tl (nil when measurement is off), and the timeseries around it.
func (s *slotRun) measured(sum protocol.Summary, loadedNs int64, tl *energy.Timeline, out runner.Outcome) {
	rec := s.rec
	w := windowOf(sum)
	rec.PhaseSplitMethod = w.splitMethod
	if w.endNs <= w.startNs {
		rec.Fail(outcomeError("protocol", "the worker reported no measured window (done before warmup_done)", out))
		return
	}
	rec.FillTiming(sum, w.startNs, w.endNs, loadedNs, s.run.Config.Warmup.ThermalFloorSeconds)
	rec.FillWork(sum)
	if w.pass.EndNs > w.pass.StartNs {
		rec.SplitPrefillPassTimes(w.pass)
	}
	if tl == nil {
		rec.MarkEnergyUnavailable("energy measurement is off (energy.sensor: none)")
		return
	}
	if err := s.measureEnergy(sum, w, tl); err != nil {
		rec.Fail(outcomeError("measurement", err.Error(), out))
		return
	}
	s.writeTimeseries(sum, w, tl)
}

// measureEnergy computes the window's energy, per phase, from the sampled
// timeline, and for a prefill-pass worker the pass's share.
func (s *slotRun) measureEnergy(sum protocol.Summary, w measuredWindow, tl *energy.Timeline) error {
	phases := []measure.Phase{
		{Name: protocol.PhasePrefill, Intervals: toIntervals(sum.Phases(protocol.PhasePrefill))},
		{Name: protocol.PhaseDecode, Intervals: toIntervals(sum.Phases(protocol.PhaseDecode))},
	}
	prefillPass := w.splitMethod == protocol.PhaseSplitPrefillPass
	if prefillPass {
		phases = phases[1:] // the full generation is the window; the pass is measured below
	}
	win, err := measure.Compute(tl, "inference", w.startNs, w.endNs, phases, measure.Options{Baseline: s.base})
	if err != nil {
		return err
	}
	s.rec.FillEnergy(win, s.base, tl)
	if prefillPass {
		if err := s.splitPrefillPassEnergy(tl, w.pass); err != nil {
			s.rec.Warnings = append(s.rec.Warnings, "prefill pass not measured: "+err.Error())
		}
	}
	return nil
}

// splitPrefillPassEnergy measures the prefill pass on its own and gives
// its energy to prefill, the rest of the full generation's to decode.
func (s *slotRun) splitPrefillPassEnergy(tl *energy.Timeline, pass protocol.Interval) error {
	pw, err := measure.Compute(tl, "prefill-pass", pass.StartNs, pass.EndNs, nil, measure.Options{})
	if err != nil {
		return err
	}
	return s.rec.SplitPrefillPassEnergy(pw.EnergyJ)
}

// writeTimeseries writes the sampled timeline over the window (from the
// prefill pass, when there is one) as the slot's timeseries Parquet.
func (s *slotRun) writeTimeseries(sum protocol.Summary, w measuredWindow, tl *energy.Timeline) {
	from := w.startNs
	if w.splitMethod == protocol.PhaseSplitPrefillPass {
		from = w.pass.StartNs // keep the pass in the timeseries
	}
	rel, err := s.x.st.WriteTimeseries(tl.Slice(from, w.endNs), result.TimeseriesMeta{
		Study: s.x.plan.Name, RunID: s.run.ID, Cycle: s.entry.Cycle, WindowStartNs: w.startNs, WindowEndNs: w.endNs, Phases: result.PhaseSpans(sum),
	})
	if err != nil {
		s.rec.Warnings = append(s.rec.Warnings, "timeseries not written: "+err.Error())
		return
	}
	s.rec.Timeseries = rel
}

func toIntervals(iv []protocol.Interval) []measure.Interval {
	out := make([]measure.Interval, len(iv))
	for i, v := range iv {
		out[i] = measure.Interval{StartNs: v.StartNs, EndNs: v.EndNs}
	}
	return out
}
