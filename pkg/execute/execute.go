// Package execute is the study loop: it runs every (run, cycle) slot of a
// study.Plan in its planned order, measures each one, and keeps a results
// directory (pkg/result) that is consistent at every instant.
//
// Per slot: the gap before it (time, a cool-down at cycle boundaries, and a
// temperature gate where a device reports temperature; skippable), the idle
// baseline (cached per sensor and hardware, measured before the worker
// starts), then the worker through the run's Route (its runner.Runner and
// job builder, from Options.Routes) while the parent samples energy; the
// worker's warmup_done and phase events give the measured window and its
// prefill/decode split (pkg/measure); then the record (filled by
// pkg/result), the timeseries Parquet and the manifest transition.
//
// Failure model: a failed, crashed or timed-out run is recorded (status
// failed, with its error and the worker's stderr tail) and the study goes
// on. Ctrl-C (ctx cancelled) stops the worker in flight, puts its slot back
// to pending and marks the study interrupted. A kill -9 at any moment loses
// at most the slot in flight: the manifest and every record are written
// atomically, a slot's record path is fixed (a rerun replaces, never adds),
// and Resume reruns every slot not done.
package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
	"github.com/llenergymeasure/llem/pkg/study"
)

// JobRequest and JobFunc are the backend's side of a slot (pkg/backend).
type (
	JobRequest = backend.JobRequest
	JobFunc    = backend.JobFunc
)

// SensorFunc opens the energy sensor for an experiment's energy block. A nil
// sensor with a nil error means measurement is off (sensor: none).
type SensorFunc func(study.Energy) (energy.Sensor, energy.Selection, error)

// OpenSensor is the default SensorFunc: energy.Open on the real machine.
func OpenSensor(e study.Energy) (energy.Sensor, energy.Selection, error) {
	return energy.Open(energy.Config{Sensor: e.Sensor, Domains: e.Domains, NVML: energy.NVMLOptionsFromEnv(), AMDSMI: energy.AMDSMIOptionsFromEnv()})
}

// Options configure an execution.
type Options struct {
	Plan *study.Plan
	// OutRoot is the results root: a new execution goes to
	// OutRoot/<study>-<time>/. Ignored by Resume.
	OutRoot string
	// Routes gives each run its runner and job builder (required): e.g.
	// LocalRoutes, or pkg/pipeline's resolution of the study's runners.
	Routes Router
	// Sensor opens sensors; nil means OpenSensor.
	Sensor SensorFunc
	// Environment is the snapshot stored in every record (JSON); Fingerprint
	// keys the baseline cache.
	Environment json.RawMessage
	Fingerprint string
	// ProcRoot is where /proc is, for the busy-host check of each window
	// ("/proc" when empty).
	ProcRoot string
	// BaselineCache is where idle baselines are cached across studies; a
	// zero Dir means measure.DefaultCacheDir().
	BaselineCache measure.Cache
	// Grace is the worker's SIGTERM → SIGKILL delay (runner default when 0).
	Grace time.Duration
	// Skip, when a value arrives, cuts the current gap short (a key press).
	Skip <-chan struct{}
	// OnEvent receives progress (from the executing goroutine and, for live
	// power, a ticker goroutine; never concurrently).
	OnEvent func(Event)
	// LivePower is how often EventPower fires during a run (0: 1 s).
	LivePower time.Duration
	// Carbon is the study's carbon setting merged with the user config's:
	// every measured record carries its CO2 estimate (or why there is
	// none).
	Carbon carbon.Config
	// GPU, when the study sets GPU settings, applies them per run and
	// restores the GPUs when the execution ends (see GPUControl).
	GPU GPUControl
	// Sleep waits d or until ctx ends or skip fires; tests replace it.
	Sleep func(ctx context.Context, d time.Duration, skip <-chan struct{}) error
}

// Event kinds for progress displays.
const (
	EventStart    = "start"    // Total, Done (already done when resuming)
	EventGap      = "gap"      // Gap, Message (reason)
	EventBaseline = "baseline" // Entry, PowerW (idle), Message (measured or cached)
	EventRun      = "run"      // Entry: a slot starts
	EventPhase    = "phase"    // Entry, Phase: loading, warmup, measuring, prefill, decode
	EventPower    = "power"    // Entry, PowerW: latest sampled power
	EventRunEnd   = "run_end"  // Entry, Record
	EventSkipped  = "skipped"  // Entry: steady state reached before this cycle
	EventEnd      = "end"
)

// Event is one progress notification.
type Event struct {
	Kind    string
	Total   int
	Done    int // slots finished (done, failed or skipped), this session and before
	Entry   result.Entry
	Phase   string
	PowerW  float64
	Record  *result.Record
	Gap     time.Duration
	Message string
}

// Report is the outcome of an execution.
type Report struct {
	Dir      string
	Manifest result.Manifest
	Summary  *result.Summary
	Stats    *stats.StudySummary
	Failed   int
	// QualityFailed counts runs whose quality scoring failed this session.
	QualityFailed int
	Interrupted   bool
}

// ErrFailed is returned (wrapped) when at least one run failed.
var ErrFailed = errors.New("some runs failed")

// Run starts a new execution of opt.Plan under opt.OutRoot.
func Run(ctx context.Context, opt Options) (*Report, error) {
	st, err := Create(opt.OutRoot, opt.Plan)
	if err != nil {
		return nil, err
	}
	return execute(ctx, st, opt, true)
}

// Create makes a new study directory under root for plan p, every slot
// pending, its first session started, and returns its locked Store. Run
// starts here; pkg/slurm creates the directory its array tasks share.
func Create(root string, p *study.Plan) (*result.Store, error) {
	now := time.Now().UTC()
	m := result.Manifest{
		Study: p.Name, StudyHash: p.DesignHash, LlemVersion: version.Version,
		Status: result.StudyRunning, StartedAt: now, UpdatedAt: now,
	}
	for pos, slot := range p.Schedule {
		r := p.Runs[slot.Run]
		m.Entries = append(m.Entries, result.Entry{
			RunID: r.ID, Experiment: r.Origin, Cycle: slot.Cycle, Position: pos,
			Label: label(r), Status: result.EntryPending,
		})
	}
	m.Sessions = 1
	m.Quality = qualityEntries(p)
	return result.Create(root, m, now, p)
}

// Finish ends an execution whose slots ran elsewhere (pkg/slurm's array
// tasks): summary.json from st's manifest and verified records, then the
// final status — the very code a single-machine execution ends with, so
// the same records give the same summary. A slot still pending makes the
// study interrupted.
func Finish(st *result.Store, plan *study.Plan) (*Report, error) {
	x := &executor{opt: Options{Plan: plan}, st: st, plan: plan}
	return x.finish(st.Counts().Pending+st.Counts().Running > 0)
}

// NewRecord starts the record of slot e of run (who and what it measures),
// as the study loop does; pkg/slurm fills it as failed for a slot whose
// array task died.
func NewRecord(plan *study.Plan, run study.Run, e result.Entry, env json.RawMessage, start time.Time) *result.Record {
	x := &executor{opt: Options{Plan: plan, Environment: env}, plan: plan}
	return x.newRecord(run, e, start)
}

// Resume continues the execution in dir: it checks that opt.Plan is the
// plan that started it, and runs every slot that is not done or skipped.
func Resume(ctx context.Context, dir string, opt Options) (*Report, error) {
	st, err := result.Open(dir)
	if err != nil {
		return nil, err
	}
	m := st.Manifest()
	if err := samePlan(m, opt.Plan); err != nil {
		st.Close()
		return nil, err
	}
	// A session killed right after creating the directory has no plan yet.
	if _, err := os.Stat(filepath.Join(dir, result.PlanFile)); err != nil {
		if err := st.WritePlan(opt.Plan); err != nil {
			st.Close()
			return nil, err
		}
	}
	// Trust the records, not the manifest: a finished slot whose record is
	// missing, corrupt or another study's runs again.
	if _, err := st.Repair(); err != nil {
		st.Close()
		return nil, err
	}
	return execute(ctx, st, opt, false)
}

// ResumeError says why a results directory cannot be resumed with the
// given plan: the study's runs or schedule changed since it started.
type ResumeError struct {
	Study  string
	Reason string
}

func (e *ResumeError) Error() string { return "resume " + e.Study + ": " + e.Reason }

// samePlan reports whether the manifest was made from plan p; a
// *ResumeError says how it differs.
func samePlan(m result.Manifest, p *study.Plan) error {
	differs := func(format string, args ...any) error {
		return &ResumeError{Study: m.Study, Reason: fmt.Sprintf(format, args...)}
	}
	if m.StudyHash != p.DesignHash {
		return differs("the study's runs changed (design %s, the results directory has %s)", p.DesignHash, m.StudyHash)
	}
	if len(m.Entries) != len(p.Schedule) {
		return differs("the schedule changed (%d slots, the results directory has %d); pass the same --cycles", len(p.Schedule), len(m.Entries))
	}
	for i, s := range p.Schedule {
		e := m.Entries[i]
		if e.RunID != p.Runs[s.Run].ID || e.Cycle != s.Cycle {
			return differs("slot %d is %s cycle %d in the plan but %s cycle %d in the results directory", i, p.Runs[s.Run].ID, s.Cycle, e.RunID, e.Cycle)
		}
	}
	return nil
}

func label(r study.Run) string {
	l := r.Backend + " / " + r.Model
	if r.Config.Precision != "" {
		l += " / " + r.Config.Precision
	}
	if bs, ok := r.Config.Section()["batch_size"]; ok {
		l += fmt.Sprintf(" / bs %v", bs)
	}
	if sv := r.Config.Serving; sv != nil { // serving mode: the load tells runs apart
		switch {
		case sv.Load.Rate > 0:
			l += fmt.Sprintf(" / serving %g req/s", sv.Load.Rate)
		default:
			l += fmt.Sprintf(" / serving concurrency %d", sv.Load.Concurrency)
		}
	}
	if r.Name != "" { // a named experiment: its name leads, the facts follow
		l = r.Name + ": " + l
	}
	return l
}

// executor holds one execution's state.
type executor struct {
	opt     Options
	st      *result.Store
	plan    *study.Plan
	runs    map[string]study.Run
	sensors map[string]*openSensor
	base    map[string]*measure.Baseline // in-memory baseline per sensor
	prompts map[string][]protocol.Prompt // file-dataset prompts per run ID, read once
	// slotsOf lists each run's manifest positions, so per-run questions
	// cost O(cycles), not O(entries).
	slotsOf map[string][]int
	total   int
	done    int
	failed  int
	// qualityFailed counts failed scorings this session.
	qualityFailed int
	// attempted are the scorings that ran this session (interrupted ones
	// excepted: the session ends with them).
	attempted map[qualityKey]bool
	// scored says a per-cycle scoring ran since the last slot: the next
	// slot gets the cool-down of a cycle boundary.
	scored  bool
	lastEnd time.Time
	lastCyc int
	// emitMu serialises OnEvent (worker events and live power arrive on
	// different goroutines) and guards done for it.
	emitMu sync.Mutex
}

type openSensor struct {
	s   energy.Sensor
	sel energy.Selection
	err error
}

func (x *executor) addDone() {
	x.emitMu.Lock()
	x.done++
	x.emitMu.Unlock()
}

func (x *executor) emit(ev Event) {
	x.emitMu.Lock()
	defer x.emitMu.Unlock()
	if x.opt.OnEvent != nil {
		ev.Total, ev.Done = x.total, x.done
		x.opt.OnEvent(ev)
	}
}

// execute runs st's pending slots. fresh says st was just created as a
// running first session, so there is no session start to record.
func execute(ctx context.Context, st *result.Store, opt Options, fresh bool) (rep *Report, err error) {
	defer st.Close()
	if opt.GPU != nil {
		defer func() { err = errors.Join(err, opt.GPU.Restore()) }()
	}
	if opt.Routes == nil {
		return nil, errors.New("execute: no routes (Options.Routes)")
	}
	if opt.Sensor == nil {
		opt.Sensor = OpenSensor
	}
	if opt.Sleep == nil {
		opt.Sleep = sleep
	}
	x := &executor{opt: opt, st: st, plan: opt.Plan, runs: map[string]study.Run{},
		sensors: map[string]*openSensor{}, base: map[string]*measure.Baseline{}}
	defer func() {
		for _, s := range x.sensors {
			if s.s != nil {
				s.s.Close()
			}
		}
	}()
	for _, r := range opt.Plan.Runs {
		x.runs[r.ID] = r
	}
	x.slotsOf = make(map[string][]int, len(opt.Plan.Runs))
	for pos, s := range opt.Plan.Schedule {
		id := opt.Plan.Runs[s.Run].ID
		x.slotsOf[id] = append(x.slotsOf[id], pos)
	}

	// A slot left running was in flight when the previous session died:
	// it goes back to pending (its partial outputs are replaced when it reruns).
	if err := startSession(st, fresh); err != nil {
		return nil, err
	}
	m := st.Manifest()
	x.total = len(m.Entries)
	x.done = m.Counts.Done + m.Counts.Failed + m.Counts.Skipped
	x.emit(Event{Kind: EventStart})

	interrupted := false
	for pos := range m.Entries {
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		e := st.Entry(pos)
		if e.Status == result.EntryDone || e.Status == result.EntrySkipped {
			continue
		}
		if x.steadyReached(e.RunID, e.Cycle) {
			if err := st.UpdateEntry(pos, func(en *result.Entry) { en.Status = result.EntrySkipped }); err != nil {
				return nil, err
			}
			x.addDone()
			x.emit(Event{Kind: EventSkipped, Entry: st.Entry(pos)})
			continue
		}
		if err := x.gap(ctx, e); err != nil {
			interrupted = true
			break
		}
		ok, err := x.slot(ctx, pos)
		if err != nil {
			return nil, err
		}
		if !ok {
			interrupted = true
			break
		}
		// quality.scope "cycle": the cycle is scored right after its slot,
		// outside every measured window; the next slot waits as after a
		// cycle boundary (gap).
		if ok, err = x.scoreCycle(ctx, pos); err != nil {
			return nil, err
		} else if !ok {
			interrupted = true
			break
		}
	}
	if !interrupted {
		ok, err := x.scoreQuality(ctx)
		if err != nil {
			return nil, err
		}
		interrupted = !ok
	}
	return x.finish(interrupted)
}

// steadyReached reports whether steady-state stopping is on and the run's
// done cycles before cycle already reached it.
func (x *executor) steadyReached(runID string, cycle int) bool {
	thr := x.plan.Execution.SteadyStateCV()
	if thr <= 0 {
		return false
	}
	vals := x.epot(runID, cycle)
	return stats.SteadyState(vals, stats.SteadyWindow, thr) > 0
}

// epot returns the energy per output token of the run's done cycles before
// cycle, in cycle order (an unmeasured value ends the sequence).
func (x *executor) epot(runID string, before int) []float64 {
	byCycle := map[int]string{}
	for _, pos := range x.slotsOf[runID] {
		if e := x.st.Entry(pos); e.Status == result.EntryDone && (before == 0 || e.Cycle < before) {
			byCycle[e.Cycle] = e.Record
		}
	}
	var vals []float64
	for c := 1; ; c++ {
		rel, ok := byCycle[c]
		if !ok {
			break
		}
		r, err := x.st.ReadRecord(rel)
		if err != nil || r.Efficiency.EnergyPerOutputTokenJ == nil {
			break
		}
		vals = append(vals, *r.Efficiency.EnergyPerOutputTokenJ)
	}
	return vals
}

// startSession records a new session in st's manifest (a count, status
// running) and puts back to pending any slot a dead session left running.
// A fresh study already says all that.
func startSession(st *result.Store, fresh bool) error {
	if fresh {
		return nil
	}
	return st.Update(func(m *result.Manifest) {
		m.Sessions++
		m.Status = result.StudyRunning
		m.EndedAt = nil
		for i := range m.Entries {
			if m.Entries[i].Status == result.EntryRunning {
				m.Entries[i].Status = result.EntryPending
			}
		}
	})
}

// epotOf is epot over records already read: the energy per output token
// of cycles 1, 2, … of one run's measured records, up to the first cycle
// without a value.
func epotOf(recs []*result.Record) []float64 {
	byCycle := make(map[int]*result.Record, len(recs))
	for _, r := range recs {
		if r.Status == result.StatusOK {
			byCycle[r.Cycle] = r
		}
	}
	var vals []float64
	for c := 1; ; c++ {
		r, ok := byCycle[c]
		if !ok || r.Efficiency.EnergyPerOutputTokenJ == nil {
			return vals
		}
		vals = append(vals, *r.Efficiency.EnergyPerOutputTokenJ)
	}
}

// gap waits before a slot: gap_seconds between runs, plus cooldown_seconds
// at a cycle boundary or after a per-cycle quality scoring, then (where a
// device reports temperature) until it is at or below cooldown_max_temp_c,
// for at most 10 minutes.
func (x *executor) gap(ctx context.Context, e result.Entry) error {
	ex := x.plan.Execution
	scored := x.scored
	x.scored = false
	if x.lastEnd.IsZero() {
		x.lastCyc = e.Cycle
		return nil // the first slot of this session
	}
	d := time.Duration(ex.GapSeconds * float64(time.Second))
	reason := "gap"
	switch {
	case e.Cycle != x.lastCyc && ex.CooldownSeconds > 0:
		d += time.Duration(ex.CooldownSeconds * float64(time.Second))
		reason = "cool-down between cycles"
	case scored && ex.CooldownSeconds > 0:
		d += time.Duration(ex.CooldownSeconds * float64(time.Second))
		reason = "cool-down after quality scoring"
	}
	x.lastCyc = e.Cycle
	if d > 0 {
		x.emit(Event{Kind: EventGap, Entry: e, Gap: d, Message: reason})
		if err := x.opt.Sleep(ctx, d, x.opt.Skip); err != nil {
			return err
		}
	}
	if ex.CooldownMaxTempC == nil {
		return nil
	}
	s := x.sensor(x.runs[e.RunID].Config.Energy)
	if s.s == nil {
		return nil
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		t, ok := maxTemp(s.s)
		if !ok || t <= *ex.CooldownMaxTempC {
			return nil
		}
		x.emit(Event{Kind: EventGap, Entry: e, Gap: time.Second, Message: fmt.Sprintf("cooling: %.0f °C > %.0f °C", t, *ex.CooldownMaxTempC)})
		if err := x.opt.Sleep(ctx, time.Second, x.opt.Skip); err != nil {
			return err
		}
	}
	return nil
}

// maxTemp reads the hottest channel's temperature; ok is false when no
// channel reports one. It reads the sensor directly (there is no sampler
// between slots, and a stale timeline sample would not show cooling), so s
// must be safe beside a running Sampler: executor.sensor hands out
// energy.Serialized sensors.
func maxTemp(s energy.Sensor) (float64, bool) {
	buf := make([]energy.Sample, len(s.Channels()))
	s.Read(buf, energy.ReadAux)
	best, ok := math.Inf(-1), false
	for _, v := range buf {
		if !math.IsNaN(v.TempC) {
			best, ok = math.Max(best, v.TempC), true
		}
	}
	return best, ok
}

// sleep waits d, returning early (nil) on skip and with ctx's error when
// ctx ends.
func sleep(ctx context.Context, d time.Duration, skip <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	case <-skip:
	}
	return nil
}

// sensor opens (once) the sensor of an energy block.
func (x *executor) sensor(e study.Energy) *openSensor {
	key := e.Sensor
	if s, ok := x.sensors[key]; ok {
		return s
	}
	s, sel, err := x.opt.Sensor(e)
	if s != nil && err == nil {
		// One sensor serves the baseline, each slot's sampler and the
		// temperature gate between slots: serialise its reads so that no
		// two of them can ever overlap.
		s = energy.Serialized(s)
	}
	o := &openSensor{s: s, sel: sel, err: err}
	x.sensors[key] = o
	return o
}

// finish writes summary.json, then the study's final status: a manifest
// that says completed always has its summary beside it.
func (x *executor) finish(interrupted bool) (*Report, error) {
	now := time.Now().UTC()
	m := x.st.Manifest()
	m.Recount()
	switch {
	case interrupted:
		m.Status = result.StudyInterrupted
	case m.Counts.Failed > 0:
		m.Status = result.StudyFailed
	default:
		m.Status = result.StudyCompleted
	}
	m.EndedAt = &now
	sum, ss, err := x.summarise(m, now)
	if err != nil {
		return nil, err
	}
	if err := x.st.Update(func(mm *result.Manifest) { mm.Status, mm.EndedAt = m.Status, m.EndedAt }); err != nil {
		return nil, err
	}
	x.emit(Event{Kind: EventEnd})
	rep := &Report{Dir: x.st.Dir, Manifest: m, Summary: sum, Stats: ss, Failed: m.Counts.Failed, QualityFailed: x.qualityFailed, Interrupted: interrupted}
	return rep, nil
}

// summarise builds and writes summary.json from the records on disk.
func (x *executor) summarise(m result.Manifest, now time.Time) (*result.Summary, *stats.StudySummary, error) {
	recs, _, err := result.StudyRecords(x.st.Dir, m)
	if err != nil {
		return nil, nil, err
	}
	mode := stats.ModeFixedCycles
	thr := x.plan.Execution.SteadyStateCV()
	if thr > 0 {
		mode = stats.ModeSteadyState
	}
	qrecs, _ := result.StudyQuality(x.st.Dir, m)
	ss := stats.Summarise(recs, stats.SummaryOptions{Mode: mode, Quality: qrecs})
	planOrder := make([]string, len(x.plan.Runs))
	for i, r := range x.plan.Runs {
		planOrder[i] = r.ID
	}
	stats.InPlanOrder(ss, planOrder)
	statsJSON, err := json.Marshal(ss)
	if err != nil {
		return nil, nil, fmt.Errorf("encode stats: %w", err)
	}
	execJSON, _ := json.Marshal(x.plan.Execution)
	sum := &result.Summary{
		SchemaVersion: result.SchemaVersion, Study: m.Study, StudyHash: m.StudyHash,
		Llem: result.LlemInfo{Version: version.Version, Commit: version.Commit()}, Status: m.Status,
		StartedAt: m.StartedAt, EndedAt: now, WallS: now.Sub(m.StartedAt).Seconds(), Counts: m.Counts,
		Execution: execJSON, Stats: statsJSON, Warnings: append([]string{}, x.plan.Warnings...),
	}
	if total, ok := result.TotalEnergyJ(recs); ok {
		sum.TotalEnergyJ = &total
	}
	sum.Runs = x.runSummaries(m, recs, thr)
	if err := x.st.WriteSummary(sum); err != nil {
		return nil, nil, err
	}
	return sum, ss, nil
}

// runSummaries is each run across its cycles, in plan order: one pass over
// entries and records grouped by run, O(entries) rather than O(runs ×
// entries).
func (x *executor) runSummaries(m result.Manifest, recs []*result.Record, thr float64) []result.RunSummary {
	entriesOf := make(map[string][]int, len(x.plan.Runs))
	for i, e := range m.Entries {
		entriesOf[e.RunID] = append(entriesOf[e.RunID], i)
	}
	recsOf := make(map[string][]*result.Record, len(x.plan.Runs))
	for _, rec := range recs {
		recsOf[rec.RunID] = append(recsOf[rec.RunID], rec)
	}
	out := make([]result.RunSummary, 0, len(x.plan.Runs))
	for _, r := range x.plan.Runs {
		rs := result.RunSummary{RunID: r.ID, Experiment: r.Origin, Label: label(r), ConfigHash: r.Hash,
			Records: []string{}, Flags: []string{}}
		flags := map[string]bool{}
		for _, i := range entriesOf[r.ID] {
			e := m.Entries[i]
			rs.Cycles++
			switch e.Status {
			case result.EntryDone:
				rs.Done++
			case result.EntryFailed:
				rs.Failed++
			}
			if e.Record != "" {
				rs.Records = append(rs.Records, e.Record)
			}
		}
		for _, rec := range recsOf[r.ID] {
			for _, f := range rec.Flags {
				if !flags[f] {
					flags[f] = true
					rs.Flags = append(rs.Flags, f)
				}
			}
		}
		rs.SteadyState = steadyState(epotOf(recsOf[r.ID]), thr, rs)
		out = append(out, rs)
	}
	return out
}

// steadyState says whether and when the run's energy per output token
// settled, and what stopped its cycling.
func steadyState(vals []float64, thr float64, rs result.RunSummary) result.SteadyState {
	check := thr
	if check <= 0 {
		check = stats.SteadyThreshold // reported even when not used to stop
	}
	s := result.SteadyState{Window: stats.SteadyWindow, Threshold: check}
	if n := len(vals); n >= stats.SteadyWindow {
		w := vals[n-stats.SteadyWindow:]
		mean, sd := meanStd(w)
		if mean != 0 {
			cv := sd / math.Abs(mean)
			s.CV = &cv
		}
	}
	if at := stats.SteadyState(vals, stats.SteadyWindow, check); at > 0 {
		s.Reached, s.AtCycle = true, at
	}
	switch {
	case rs.Done+rs.Failed < rs.Cycles && thr > 0 && s.Reached:
		s.StoppedBy = "steady_state"
	case rs.Done+rs.Failed < rs.Cycles:
		s.StoppedBy = "incomplete"
	default:
		s.StoppedBy = "cycles_exhausted"
	}
	return s
}

func meanStd(v []float64) (mean, sd float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	if len(v) > 1 {
		sd = math.Sqrt(sd / float64(len(v)-1))
	}
	return mean, sd
}

// runTimeout is run_timeout_seconds, else max(600 s, 2 s per prompt).
func (x *executor) runTimeout(r study.Run) time.Duration {
	if t := x.plan.Execution.RunTimeoutSeconds; t != nil {
		return time.Duration(*t * float64(time.Second))
	}
	return max(600*time.Second, time.Duration(2*r.Config.N)*time.Second)
}

func monoNow() int64 { return clock.Now() }

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

func (x *executor) procRoot() string {
	if x.opt.ProcRoot != "" {
		return x.opt.ProcRoot
	}
	return "/proc"
}
