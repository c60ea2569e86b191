package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// slotRun is one measurement of a slot: what its steps share. Its steps
// run in order: setup (sensor, baseline, route, job, sampler), the worker
// under a slotObserver, failure sorting, then the window and its energy.
type slotRun struct {
	x         *executor
	run       study.Run
	entry     result.Entry
	rec       *result.Record
	start     time.Time
	monoStart int64
	sensor    *openSensor
	base      *measure.Baseline
	sampler   *energy.Sampler // nil when measurement is off
	runner    runner.Runner
	job       runner.Job
	finish    func(FinishRequest) // the route's Finish (nil: none)
}

// slotFailure is a slot that failed before its worker ran (or could not be
// started); Kind is the record's error kind.
type slotFailure struct{ kind, msg, hint string }

func (f *slotFailure) Error() string { return f.msg }

// measureSlot runs one slot and returns its record (ok or failed).
func (x *executor) measureSlot(ctx context.Context, run study.Run, e result.Entry) *result.Record {
	s := &slotRun{x: x, run: run, entry: e, start: time.Now().UTC(), monoStart: monoNow()}
	s.rec = x.newRecord(run, e, s.start)
	if err := s.setup(ctx); err != nil {
		return s.failEarly(err)
	}
	var sensor energy.Sensor
	if s.sensor != nil {
		sensor = s.sensor.s
	}
	obs := newSlotObserver(x, e, s.sampler, sensor)
	var gpuBefore []string // other GPU processes before the worker exists
	if s.sampler != nil {
		gpuBefore = otherGPUProcesses(sensor)
	}
	stopLive := x.livePower(s.sampler, e)
	out, runErr := s.runner.Run(ctx, s.job, obs.observe)
	stopLive()
	var tl *energy.Timeline
	if s.sampler != nil {
		tl = s.sampler.Stop()
	}
	s.rec.Timing.EndedAt = time.Now().UTC()
	s.rec.Timing.WallS = float64(monoNow()-s.monoStart) / 1e9
	s.rec.Energy.PerDevice = []result.DeviceEnergy{}
	if runErr != nil {
		return s.failEarly(&slotFailure{"spawn", runErr.Error(), errHint(runErr)})
	}
	sum, streamErr := obs.finish()
	s.rec.FillWorker(sum, s.runner.Name())
	if re := sortFailure(out, sum, streamErr, s.job); re != nil {
		s.rec.Fail(*re)
	} else {
		s.rec.Status = result.StatusOK
		s.measured(sum, obs.loadedAt(), tl, out)
		if s.rec.Status == result.StatusOK && s.sampler != nil {
			obs.flagDisturbance(s.rec, gpuBefore)
		}
	}
	if s.finish != nil {
		s.finish(FinishRequest{Record: s.rec, Timeline: tl, Dir: s.job.Dir})
	}
	return s.rec
}

// newRecord starts a slot's record: who and what it measures.
func (x *executor) newRecord(run study.Run, e result.Entry, start time.Time) *result.Record {
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
	return rec
}

// failEarly records a failure that left no worker outcome to report: the
// wall time is the slot's so far, no exit code, no energy.
func (s *slotRun) failEarly(err error) *result.Record {
	var f *slotFailure
	if !errors.As(err, &f) {
		f = &slotFailure{"config", err.Error(), ""}
	}
	s.rec.Fail(result.RunError{Kind: f.kind, Message: f.msg, Hint: f.hint, ExitCode: -1})
	s.rec.Timing.EndedAt = time.Now().UTC()
	s.rec.Timing.WallS = s.rec.Timing.EndedAt.Sub(s.start).Seconds()
	s.rec.Energy.PerDevice = []result.DeviceEnergy{}
	return s.rec
}

// setup readies everything the worker runs under: the sensor and idle
// baseline (before the worker exists), the run's route and its job, and
// the sampler. A *slotFailure says what stopped it.
func (s *slotRun) setup(ctx context.Context) error {
	if err := s.setupEnergy(ctx); err != nil {
		return err
	}
	if err := s.setupJob(); err != nil {
		return err
	}
	if s.sensor.s == nil {
		return nil
	}
	iv := time.Duration(s.run.Config.Energy.SampleIntervalMs) * time.Millisecond
	s.sampler = energy.NewSampler(s.sensor.s, energy.SamplerOptions{Interval: iv})
	if err := s.sampler.Start(ctx); err != nil {
		s.sampler = nil
		return &slotFailure{"sensor", err.Error(), ""}
	}
	return nil
}

// setupEnergy opens the run's sensor and takes the idle baseline when the
// run asks for one (an unavailable baseline is a warning, not a failure).
func (s *slotRun) setupEnergy(ctx context.Context) error {
	s.sensor = s.x.sensor(s.run.Config.Energy)
	s.rec.Energy.Sensor = s.sensor.sel.Sensor
	if s.sensor.err != nil {
		return &slotFailure{"sensor", s.sensor.err.Error(), "run `llem env` to see which sensors work here, or set energy: sensor: \"estimate\""}
	}
	if s.sensor.s == nil || !s.run.Config.Baseline.Enabled {
		return nil
	}
	b, err := s.x.baseline(ctx, s.sensor.s, s.run.Config.Baseline)
	if ctx.Err() != nil {
		return &slotFailure{"interrupted", "interrupted during the idle baseline", ""}
	}
	if err != nil {
		s.rec.Warnings = append(s.rec.Warnings, "idle baseline unavailable: "+err.Error())
	}
	s.base = b
	if b != nil {
		var w float64
		for _, d := range b.Devices {
			w += d.PowerW
		}
		how := fmt.Sprintf("measured over %.0f s", b.DurationS)
		if b.Source == "cache" {
			how = fmt.Sprintf("cached, %s old", time.Since(b.MeasuredAt).Round(time.Second))
		}
		s.x.emit(Event{Kind: EventBaseline, Entry: s.entry, PowerW: w, Message: how})
	}
	return nil
}

// setupJob asks the router for the run's route and builds the slot's job.
func (s *slotRun) setupJob() error {
	rt, err := s.x.opt.Routes.Route(s.run)
	if err != nil {
		var re *RouteError
		if errors.As(err, &re) {
			return &slotFailure{re.Kind, re.Message, re.Hint}
		}
		return &slotFailure{"runner", err.Error(), errs.Hint(err)}
	}
	prompts, err := s.x.filePrompts(s.run)
	if err != nil {
		return &slotFailure{protocol.ErrKindDataset, err.Error(), errs.Hint(err)}
	}
	e := s.entry
	job, err := rt.Job(JobRequest{Run: s.run, Cycle: e.Cycle, Dir: s.x.st.WorkPath(s.run.ID, e.Cycle),
		Timeout: s.x.runTimeout(s.run), Grace: s.x.opt.Grace, Prompts: prompts})
	if err != nil {
		return &slotFailure{"config", err.Error(), ""}
	}
	s.runner, s.job, s.finish = rt.Runner, job, rt.Finish
	return nil
}

// sortFailure says why a worker's slot failed, most specific cause first,
// or nil when it succeeded: interrupted, timed out, the worker's own error
// event, a crash, stray stdout, then an invalid event stream.
func sortFailure(out runner.Outcome, sum protocol.Summary, streamErr error, job runner.Job) *result.RunError {
	re := func(kind, msg, hint string) *result.RunError {
		return &result.RunError{Kind: kind, Message: msg, Hint: hint, ExitCode: out.ExitCode, StderrTail: out.StderrTail}
	}
	switch {
	case out.Interrupted:
		return re("interrupted", "the run was interrupted", "")
	case out.TimedOut:
		return re("timeout", fmt.Sprintf("the run exceeded its timeout of %s and was stopped", job.Timeout), "raise execution.run_timeout_seconds or use fewer prompts")
	case sum.Error != nil:
		return re(sum.Error.Kind, sum.Error.Message, sum.Error.Hint)
	case out.ExitCode != 0:
		return re("crash", fmt.Sprintf("the worker exited with status %d", out.ExitCode), "see error.stderr_tail and the worker's stderr in "+job.Dir)
	case len(out.ProtocolErrs) > 0:
		return re("protocol", errors.Join(out.ProtocolErrs...).Error(), "the worker printed something that is not a protocol event on stdout; logs belong on stderr")
	case streamErr != nil:
		return re("protocol", streamErr.Error(), "")
	}
	return nil
}

// outcomeError is a failure found after the worker ended cleanly (no
// window, a window that cannot be measured), with the worker's outcome.
func outcomeError(kind, msg string, out runner.Outcome) result.RunError {
	return result.RunError{Kind: kind, Message: msg, ExitCode: out.ExitCode, StderrTail: out.StderrTail}
}

func errHint(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}
