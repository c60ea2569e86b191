package execute

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/quality"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Quality scoring events.
const (
	EventQuality    = "quality"     // Entry (RunID, Label): a run's scoring starts; Message: the lm-eval command
	EventQualityLog = "quality_log" // Entry, Message: lm-eval's progress
	EventQualityEnd = "quality_end" // Entry, Message: the score or the failure
)

// QualityRequest is what a run's scoring job is built from.
type QualityRequest struct {
	Run study.Run
	// Dir is the scoring's exchange directory (records are elsewhere).
	Dir     string
	Timeout time.Duration
	Grace   time.Duration
}

// QualityJob is a run's scoring job with what the record keeps of it.
type QualityJob struct {
	Job runner.Job
	// Source is lm-eval's model (hf, vllm, local-completions); Command the
	// exact lm-eval command line; OutputDir lm-eval's --output_path.
	Source    string
	Command   []string
	OutputDir string
}

// QualityFunc builds a run's scoring job where its backend runs (the
// wiring root knows which lm-eval model scores which backend).
type QualityFunc func(QualityRequest) (QualityJob, error)

// scoreQuality scores every scored run (quality: in its config) whose
// scoring is not done yet and that has at least one done cycle: once per
// run, after every efficiency slot, so the scoring's heat and load never
// sit inside a measured window. A run scored per cycle (quality.scope
// "cycle") gets each done cycle's scoring that is not done yet: the ones a
// killed session left, or that failed. It returns false when ctx ended.
func (x *executor) scoreQuality(ctx context.Context) (bool, error) {
	for _, run := range x.plan.Runs {
		if !run.Config.Scored() {
			continue
		}
		cycles := []int{0}
		if run.Config.Quality.PerCycle() {
			cycles = x.doneCycles(run.ID)
		} else if !x.anyDone(run.ID) {
			continue
		}
		for _, c := range cycles {
			ok, err := x.scoreIfDue(ctx, run, c)
			if err != nil || !ok {
				return ok, err
			}
		}
	}
	return true, nil
}

// scoreCycle scores the run of the slot at pos after that cycle when the
// run is scored per cycle (quality.scope "cycle") and the slot is done:
// between slots, outside every measured window, before the next slot's gap
// and cool-down. It returns false when ctx ended.
func (x *executor) scoreCycle(ctx context.Context, pos int) (bool, error) {
	e := x.st.Entry(pos)
	run := x.runs[e.RunID]
	if !run.Config.Scored() || !run.Config.Quality.PerCycle() || e.Status != result.EntryDone {
		return true, nil
	}
	ok, err := x.scoreIfDue(ctx, run, e.Cycle)
	if ok && err == nil {
		x.scored = true
	}
	return ok, err
}

// scoreIfDue scores run after cycle (0: the run's one scoring) unless that
// scoring is done or already ran this session (a failed one waits for
// --resume, as a run's one scoring does).
func (x *executor) scoreIfDue(ctx context.Context, run study.Run, cycle int) (bool, error) {
	m := x.st.Manifest()
	if e, ok := m.QualityOf(run.ID, cycle); ok && e.Status == result.EntryDone {
		return true, nil
	}
	key := qualityKey{run.ID, cycle}
	if x.attempted[key] {
		return true, nil
	}
	if ctx.Err() != nil {
		return false, nil
	}
	if x.attempted == nil {
		x.attempted = map[qualityKey]bool{}
	}
	x.attempted[key] = true
	return x.scoreRun(ctx, run, cycle)
}

// qualityKey names one scoring: a run's (cycle 0) or one cycle's.
type qualityKey struct {
	run   string
	cycle int
}

func (x *executor) anyDone(runID string) bool {
	for _, pos := range x.slotsOf[runID] {
		if x.st.Entry(pos).Status == result.EntryDone {
			return true
		}
	}
	return false
}

// doneCycles are the run's done cycles, in schedule order.
func (x *executor) doneCycles(runID string) []int {
	var out []int
	for _, pos := range x.slotsOf[runID] {
		if e := x.st.Entry(pos); e.Status == result.EntryDone {
			out = append(out, e.Cycle)
		}
	}
	return out
}

// scoreRun runs one scoring (after cycle; 0: the run's one scoring) and
// records it (ok or failed); ok is false when ctx ended (the entry goes
// back to pending, nothing recorded).
func (x *executor) scoreRun(ctx context.Context, run study.Run, cycle int) (bool, error) {
	var attempt int
	if err := x.st.UpdateQuality(run.ID, cycle, func(e *result.QualityEntry) {
		e.Status, e.Error = result.EntryRunning, ""
		e.Attempts++
		attempt = e.Attempts
	}); err != nil {
		return false, err
	}
	entry := result.Entry{RunID: run.ID, Experiment: run.Origin, Label: label(run), Cycle: cycle}
	q := x.scoreOne(ctx, run, cycle, attempt, entry)
	if ctx.Err() != nil && q.Error != nil && q.Error.Kind == protocol.ErrKindInterrupted {
		return false, x.st.UpdateQuality(run.ID, cycle, func(e *result.QualityEntry) { e.Status = result.EntryPending })
	}
	rel, err := x.st.WriteQuality(q)
	if err != nil {
		return false, err
	}
	msg := ""
	if err := x.st.UpdateQuality(run.ID, cycle, func(e *result.QualityEntry) {
		e.Record = rel
		if q.Status == result.StatusOK {
			e.Status = result.EntryDone
			msg = fmt.Sprintf("quality %.4f", *q.Score)
			if cycle > 0 {
				msg = fmt.Sprintf("cycle %d quality %.4f", cycle, *q.Score)
			}
			if q.Energy.RawJ != nil {
				msg += fmt.Sprintf(", scoring took %.0f J", *q.Energy.RawJ)
			}
		} else {
			e.Status = result.EntryFailed
			e.Error = q.Error.Kind + ": " + firstLine(q.Error.Message)
			msg = "quality scoring failed: " + e.Error
			if cycle > 0 {
				msg = fmt.Sprintf("cycle %d quality scoring failed: %s", cycle, e.Error)
			}
			x.qualityFailed++
		}
	}); err != nil {
		return false, err
	}
	x.emit(Event{Kind: EventQualityEnd, Entry: entry, Message: msg})
	return true, nil
}

// scoreOne runs a run's scoring job through its route's runner while the
// run's sensor samples, and returns its record.
func (x *executor) scoreOne(ctx context.Context, run study.Run, cycle, attempt int, entry result.Entry) *result.QualityRecord {
	start := time.Now().UTC()
	q := &result.QualityRecord{
		SchemaVersion: result.SchemaVersion, Study: x.plan.Name, StudyHash: x.plan.DesignHash,
		RunID: run.ID, ConfigHash: run.Hash, Cycle: cycle, Attempt: attempt, Status: result.StatusFailed,
		Command: []string{}, Tasks: []result.QualityTask{}, Warnings: []string{},
	}
	q.Timing.StartedAt = start
	fail := func(kind, msg, hint string, out runner.Outcome) *result.QualityRecord {
		q.Status = result.StatusFailed
		q.Error = &result.RunError{Kind: kind, Message: msg, Hint: hint, ExitCode: out.ExitCode, StderrTail: out.StderrTail}
		q.Timing.EndedAt = time.Now().UTC()
		q.Timing.WallS = q.Timing.EndedAt.Sub(start).Seconds()
		return q
	}
	rt, err := x.opt.Routes.Route(run)
	if err != nil {
		return fail("runner", err.Error(), errHint(err), runner.Outcome{ExitCode: -1})
	}
	if rt.Quality == nil {
		return fail("unsupported", "no quality scoring for backend "+run.Backend+" in this llem", "set quality.source: \"none\" or score with a backend lm-eval supports", runner.Outcome{ExitCode: -1})
	}
	dir := x.st.QualityWorkPath(run.ID, cycle)
	_ = os.RemoveAll(dir) // a rescore starts clean: an old results file must never be read as this one's
	timeout := time.Duration(run.Config.Quality.TimeoutSeconds * float64(time.Second))
	qj, err := rt.Quality(QualityRequest{Run: run, Dir: dir, Timeout: timeout, Grace: x.opt.Grace})
	if err != nil {
		return fail("config", err.Error(), errHint(err), runner.Outcome{ExitCode: -1})
	}
	q.Source, q.Command, q.Runner = qj.Source, qj.Command, rt.Runner.Name()
	x.emit(Event{Kind: EventQuality, Entry: entry, Message: fmt.Sprintf("%v", qj.Command)})

	// Energy: the run's sensor over the whole scoring, like a run's window.
	s := x.sensor(run.Config.Energy)
	q.Energy.Sensor = s.sel.Sensor
	var sm *energy.Sampler
	switch {
	case s.err != nil:
		q.Energy.Unavailable = "sensor: " + s.err.Error()
	case s.s == nil:
		q.Energy.Unavailable = "energy measurement is off (energy.sensor: none)"
	default:
		iv := time.Duration(run.Config.Energy.SampleIntervalMs) * time.Millisecond
		sm = energy.NewSampler(s.s, energy.SamplerOptions{Interval: iv})
		if err := sm.Start(ctx); err != nil {
			sm = nil
			q.Energy.Unavailable = "sampler: " + err.Error()
		}
	}
	stopLive := x.livePower(sm, entry)
	t0 := monoNow()
	var streamErr *protocol.Error
	out, runErr := rt.Runner.Run(ctx, qj.Job, func(ev protocol.Event) {
		switch {
		case ev.Log != nil:
			x.emit(Event{Kind: EventQualityLog, Entry: entry, Message: ev.Log.Message})
		case ev.Error != nil:
			streamErr = ev.Error
		}
	})
	t1 := monoNow()
	stopLive()
	var tl *energy.Timeline
	if sm != nil {
		tl = sm.Stop()
	}
	if runErr != nil {
		return fail("spawn", runErr.Error(), errHint(runErr), runner.Outcome{ExitCode: -1})
	}
	switch {
	case out.Interrupted:
		return fail(protocol.ErrKindInterrupted, "the scoring was interrupted", "", out)
	case out.TimedOut:
		return fail("timeout", fmt.Sprintf("lm-eval exceeded quality.timeout_seconds (%s) and was stopped", timeout), "raise quality.timeout_seconds or set quality.limit", out)
	case streamErr != nil:
		return fail(streamErr.Kind, streamErr.Message, streamErr.Hint, out)
	case out.ExitCode != 0:
		return fail("crash", fmt.Sprintf("the scoring exited with status %d", out.ExitCode), "see error.stderr_tail and worker.stderr in "+dir, out)
	}
	path, err := quality.FindResults(qj.OutputDir)
	if err != nil {
		return fail("quality", err.Error(), "lm-eval exited 0 without writing its results file: see worker.stderr in "+dir, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fail("quality", err.Error(), "", out)
	}
	if err := quality.Fill(q, data, run.Config.Quality); err != nil {
		return fail("quality", fmt.Sprintf("%s: %v", filepath.Base(path), err), "", out)
	}
	if err := result.WriteFileAtomic(filepath.Join(x.st.Dir, result.LMEvalResultsPath(run.ID, cycle)), data); err != nil {
		q.Warnings = append(q.Warnings, "lm-eval's results file not copied: "+err.Error())
	} else {
		q.ResultsFile = result.LMEvalResultsPath(run.ID, cycle)
	}
	q.Status = result.StatusOK
	q.Timing.EndedAt = time.Now().UTC()
	q.Timing.WallS = float64(t1-t0) / 1e9
	if tl != nil {
		w, err := measure.Compute(tl, "quality", t0, t1, nil, measure.Options{Baseline: x.base[s.s.Name()]})
		if err != nil {
			q.Energy.Unavailable = "energy of the scoring: " + err.Error()
		} else {
			e, p := w.EnergyJ, w.MeanPowerW
			q.Energy.RawJ, q.Energy.MeanPowerW, q.Energy.AdjustedJ = &e, &p, w.AdjustedEnergyJ
		}
	}
	return q
}

// qualityEntries are the manifest's quality entries of a new study: one
// pending entry per scored run, in plan order; a run scored per cycle
// (quality.scope "cycle") has one per cycle of its schedule instead.
func qualityEntries(p *study.Plan) []result.QualityEntry {
	cycles := map[int][]int{}
	for _, s := range p.Schedule {
		cycles[s.Run] = append(cycles[s.Run], s.Cycle)
	}
	var out []result.QualityEntry
	for i, r := range p.Runs {
		switch {
		case !r.Config.Scored():
		case r.Config.Quality.PerCycle():
			cs := slices.Sorted(slices.Values(cycles[i]))
			for _, c := range slices.Compact(cs) {
				out = append(out, result.QualityEntry{RunID: r.ID, Cycle: c, Status: result.EntryPending})
			}
		default:
			out = append(out, result.QualityEntry{RunID: r.ID, Status: result.EntryPending})
		}
	}
	return out
}
