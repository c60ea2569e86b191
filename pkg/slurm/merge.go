package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// died are the Slurm states of a task that ended before its slot did
// through no choice of the user: its slot in flight is recorded failed
// with the state and reason. A cancelled task's slots stay pending (the
// study is interrupted; --resume resubmits them).
var died = map[string]string{
	"TIMEOUT":       "the array task reached its time limit (raise slurm time)",
	"NODE_FAIL":     "the node failed",
	"OUT_OF_MEMORY": "the array task ran out of memory (raise slurm mem)",
	"FAILED":        "the array task failed",
	"BOOT_FAIL":     "the node failed to boot",
	"PREEMPTED":     "the array task was preempted",
	"DEADLINE":      "the array task reached its deadline",
}

// Fold merges into st (the study directory's locked Store) every task
// directory whose array task is no longer live: finished slots are adopted
// with their records and timeseries (moved, same paths), a slot whose task
// died is recorded failed with Slurm's state and reason, and the task
// directory is removed. It is idempotent: a fold killed half-way is
// finished by the next one (records are moved before their entry changes,
// and Repair adopts a verified record whose entry is not yet done).
func Fold(ctx context.Context, st *result.Store, plan *study.Plan) error {
	root := filepath.Join(st.Dir, Folder, TasksDir)
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	runs := map[string]study.Run{}
	for _, r := range plan.Runs {
		runs[result.Slug(r.ID)] = r
	}
	for _, de := range ents {
		run, ok := runs[de.Name()]
		if !de.IsDir() || !ok {
			continue
		}
		if err := foldTask(ctx, st, plan, run, filepath.Join(root, de.Name())); err != nil {
			return fmt.Errorf("merge run %s: %w", run.ID, err)
		}
	}
	_, err = st.Repair()
	return err
}

func foldTask(ctx context.Context, st *result.Store, plan *study.Plan, run study.Run, td string) error {
	var owner Alloc
	if b, err := os.ReadFile(filepath.Join(td, OwnerFile)); err == nil {
		json.Unmarshal(b, &owner)
	}
	if owner.ArrayJobID != "" {
		tasks, err := Queue(ctx, owner.ArrayJobID)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			if t.Index == owner.ArrayTaskID {
				return nil // still running: its directory is its own
			}
		}
	}
	tm, terr := result.ReadManifest(td)
	m := st.Manifest()
	inFlightDone := false
	for pos, me := range m.Entries {
		if me.RunID != run.ID || me.Status == result.EntryDone || me.Status == result.EntrySkipped {
			continue
		}
		var se result.Entry
		if terr == nil && pos < len(tm.Entries) {
			se = tm.Entries[pos]
		}
		switch se.Status {
		case result.EntryDone, result.EntryFailed:
			for _, rel := range []string{result.RecordPath(run.ID, se.Cycle), result.TimeseriesPath(run.ID, se.Cycle)} {
				if err := moveIn(filepath.Join(td, rel), filepath.Join(st.Dir, rel)); err != nil {
					return err
				}
			}
			if err := st.UpdateEntry(pos, func(e *result.Entry) {
				e.Status, e.Record, e.Attempts, e.StartedAt, e.EndedAt, e.Error = se.Status, se.Record, se.Attempts, se.StartedAt, se.EndedAt, se.Error
			}); err != nil {
				return err
			}
		case result.EntrySkipped:
			if err := st.UpdateEntry(pos, func(e *result.Entry) { e.Status, e.Error = result.EntrySkipped, "" }); err != nil {
				return err
			}
		default:
			// Unfinished: the task ended first. The first such slot was in
			// flight (or next); it fails when Slurm killed the task.
			if inFlightDone {
				continue
			}
			inFlightDone = true
			js := JobState{}
			if owner.ArrayJobID != "" {
				js = ShowJob(ctx, owner.TaskID())
			}
			why, dead := died[js.State]
			switch {
			case js.State == "CANCELLED" || js.State == "COMPLETED":
				continue // cancelled or interrupted: pending, resumable
			case !js.Known:
				why, dead = "slurmctld no longer knows the array task (it ended before this slot finished)", true
			}
			if !dead {
				why = "the array task ended in state " + js.State
			}
			if err := recordDied(st, plan, run, pos, se, owner, js, why); err != nil {
				return err
			}
		}
	}
	if terr == nil {
		if err := foldQuality(st, run, tm, td); err != nil {
			return err
		}
	}
	if err := moveIn(filepath.Join(td, result.WorkDir, result.Slug(run.ID)), filepath.Join(st.Dir, result.WorkDir, result.Slug(run.ID))); err != nil {
		return err
	}
	return os.RemoveAll(td)
}

// foldQuality adopts the run's quality scorings from its task directory:
// the task runs the single-machine study loop, which scores the run with
// lm-eval on the task's node after its cycles (quality: in the study), or
// after each cycle (quality.scope "cycle"), so each score, lm-eval's
// results file and the manifest's quality entry come in like the cycles'
// records — file first, entry second. A scoring the task never finished
// stays pending (--resume scores it).
func foldQuality(st *result.Store, run study.Run, tm result.Manifest, td string) error {
	for _, te := range tm.Quality {
		if te.RunID != run.ID || (te.Status != result.EntryDone && te.Status != result.EntryFailed) {
			continue
		}
		m := st.Manifest()
		if me, ok := m.QualityOf(run.ID, te.Cycle); !ok || me.Status == result.EntryDone {
			continue
		}
		for _, rel := range []string{result.QualityPath(run.ID, te.Cycle), result.LMEvalResultsPath(run.ID, te.Cycle)} {
			if err := moveIn(filepath.Join(td, rel), filepath.Join(st.Dir, rel)); err != nil {
				return err
			}
		}
		if err := st.UpdateQuality(run.ID, te.Cycle, func(e *result.QualityEntry) {
			e.Status, e.Attempts, e.Record, e.Error = te.Status, max(e.Attempts, te.Attempts), te.Record, te.Error
		}); err != nil {
			return err
		}
	}
	return nil
}

// recordDied writes a failed record for the slot at pos whose array task
// died, naming Slurm's state and reason.
func recordDied(st *result.Store, plan *study.Plan, run study.Run, pos int, se result.Entry, owner Alloc, js JobState, why string) error {
	e := st.Entry(pos)
	e.Attempts = max(e.Attempts+1, se.Attempts)
	start := time.Now().UTC()
	if se.StartedAt != nil {
		start = *se.StartedAt
	}
	env, _ := withAlloc(nil, owner)
	rec := execute.NewRecord(plan, run, e, env, start)
	msg := fmt.Sprintf("Slurm array task %s on %s: %s", owner.TaskID(), owner.Node, why)
	if js.State != "" {
		msg += fmt.Sprintf(" (JobState=%s Reason=%s ExitCode=%s)", js.State, js.Reason, js.ExitCode)
	}
	rec.Fail(result.RunError{Kind: "slurm", Message: msg, ExitCode: -1,
		Hint: "see the task's log in " + filepath.Join(st.Dir, Folder, LogsDir) + "; llem eval --resume reruns the slot"})
	rec.Timing.EndedAt = time.Now().UTC()
	rec.Timing.WallS = rec.Timing.EndedAt.Sub(start).Seconds()
	rec.Energy.PerDevice = []result.DeviceEnergy{}
	rel, err := st.WriteRecord(rec)
	if err != nil {
		return err
	}
	ended := rec.Timing.EndedAt
	return st.UpdateEntry(pos, func(en *result.Entry) {
		en.Status, en.Record, en.Attempts, en.StartedAt, en.EndedAt = result.EntryFailed, rel, e.Attempts, &start, &ended
		en.Error = "slurm: " + msg
	})
}

// moveIn renames src over dst (same filesystem); a missing src is fine
// (an earlier fold moved it).
func moveIn(src, dst string) error {
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		os.RemoveAll(dst)
	}
	return os.Rename(src, dst)
}

// Merge folds dir's finished tasks and, when its array has left the queue,
// writes summary.json and the final status with execute.Finish (the
// single-machine code). It is what the afterany job runs, and what
// --resume does before resubmitting.
func Merge(ctx context.Context, dir string, plan *study.Plan) (*execute.Report, error) {
	st, err := result.Open(dir)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if err := Fold(ctx, st, plan); err != nil {
		return nil, err
	}
	if sub, ok, err := ReadSubmission(dir); err != nil {
		return nil, err
	} else if ok {
		tasks, err := Queue(ctx, sub.JobID)
		if err != nil {
			return nil, err
		}
		if len(tasks) > 0 {
			return nil, &BusyError{Dir: dir, JobID: sub.JobID}
		}
	}
	return execute.Finish(st, plan)
}
