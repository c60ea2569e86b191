package slurm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Files under a study directory's slurm/ folder.
const (
	Folder         = "slurm"
	SubmissionFile = "submission.json" // the latest submission
	TasksDir       = "tasks"           // one claimed directory per run in flight
	LogsDir        = "logs"            // %A_%a.out of each task, merge-%j.out
)

// Submission is one sbatch of a study: what the array's tasks need to
// rebuild the plan on their node and which run each array index runs.
type Submission struct {
	Dir    string `json:"dir"`   // the study directory (absolute)
	Study  string `json:"study"` // the study file (absolute), re-planned by each task
	Cycles int    `json:"cycles,omitempty"`
	Runner string `json:"runner,omitempty"`
	Python string `json:"python,omitempty"`
	// Runs maps each array index to the run it measures.
	Runs        []string  `json:"runs"`
	MaxParallel int       `json:"max_parallel,omitempty"`
	Resources   Resources `json:"resources"`
	Llem        string    `json:"llem"` // the llem executable tasks run
	JobID       string    `json:"job_id,omitempty"`
	MergeJobID  string    `json:"merge_job_id,omitempty"`
	SubmittedAt time.Time `json:"submitted_at"`
}

// ArrayScript is the exact batch script of the array.
func (s *Submission) ArrayScript() string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "#SBATCH --job-name=%s\n", jobName(s.Dir))
	arr := fmt.Sprintf("0-%d", len(s.Runs)-1)
	if s.MaxParallel > 0 {
		arr += "%" + strconv.Itoa(s.MaxParallel)
	}
	fmt.Fprintf(&b, "#SBATCH --array=%s\n", arr)
	fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(s.Dir, Folder, LogsDir, "%A_%a.out"))
	b.WriteString("#SBATCH --ntasks=1\n")
	for _, l := range s.Resources.lines() {
		fmt.Fprintf(&b, "#SBATCH %s\n", l)
	}
	fmt.Fprintf(&b, "exec %s slurm-task %s\n", quote(s.Llem), quote(filepath.Join(s.Dir, Folder, SubmissionFile)))
	return b.String()
}

// MergeScript is the exact batch script of the merge job, which runs
// after every array task ended (afterany), whatever their outcome.
func (s *Submission) MergeScript() string {
	var b strings.Builder
	b.WriteString("#!/bin/bash\n")
	fmt.Fprintf(&b, "#SBATCH --job-name=%s-merge\n", jobName(s.Dir))
	fmt.Fprintf(&b, "#SBATCH --dependency=afterany:%s\n", orPlaceholder(s.JobID, "<array job>"))
	fmt.Fprintf(&b, "#SBATCH --output=%s\n", filepath.Join(s.Dir, Folder, LogsDir, "merge-%j.out"))
	b.WriteString("#SBATCH --ntasks=1\n")
	r := Resources{Partition: s.Resources.Partition, Account: s.Resources.Account, QOS: s.Resources.QOS}
	for _, l := range r.lines() {
		fmt.Fprintf(&b, "#SBATCH %s\n", l)
	}
	fmt.Fprintf(&b, "exec %s slurm merge %s\n", quote(s.Llem), quote(s.Dir))
	return b.String()
}

func orPlaceholder(s, p string) string {
	if s == "" {
		return p
	}
	return s
}

func jobName(dir string) string { return "llem-" + result.Slug(filepath.Base(dir)) }

// ReadSubmission reads dir's latest submission; ok is false when the
// study was never submitted to Slurm.
func ReadSubmission(dir string) (*Submission, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, Folder, SubmissionFile))
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var s Submission
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, false, fmt.Errorf("read %s: %w", SubmissionFile, err)
	}
	return &s, true, nil
}

// Missing lists, in plan order, the runs of m with a slot that is neither
// done nor skipped, or with a done cycle and a quality scoring not done
// (the task scores it after its cycles; a per-cycle scoring after that
// done cycle): what a (re)submission sends.
func Missing(m result.Manifest, plan *study.Plan) []string {
	type runCycle struct {
		run   string
		cycle int
	}
	need, doneCycle := map[string]bool{}, map[runCycle]bool{}
	for _, e := range m.Entries {
		if e.Status != result.EntryDone && e.Status != result.EntrySkipped {
			need[e.RunID] = true
		}
		if e.Status == result.EntryDone {
			doneCycle[runCycle{e.RunID, 0}] = true
			doneCycle[runCycle{e.RunID, e.Cycle}] = true
		}
	}
	for _, q := range m.Quality {
		if q.Status != result.EntryDone && doneCycle[runCycle{q.RunID, q.Cycle}] {
			need[q.RunID] = true
		}
	}
	var runs []string
	for _, r := range plan.Runs {
		if need[r.ID] {
			runs = append(runs, r.ID)
		}
	}
	return runs
}

// BusyError says a study still has a live array on the cluster.
type BusyError struct{ Dir, JobID string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("%s: its Slurm array %s is still queued or running", e.Dir, e.JobID)
}

// Hint says how to go on.
func (e *BusyError) Hint() string {
	return "wait for it (llem results ls shows its tasks), or cancel it with llem slurm cancel " + e.Dir
}

// Live reports whether dir's latest submission still has jobs in the queue.
func Live(ctx context.Context, dir string) (*Submission, bool, error) {
	sub, ok, err := ReadSubmission(dir)
	if err != nil || !ok {
		return sub, false, err
	}
	tasks, err := Queue(ctx, sub.JobID, sub.MergeJobID)
	return sub, len(tasks) > 0, err
}

// Submit writes the submission of st's missing runs and submits the array
// and its merge job. st must be the study directory's locked Store, with
// earlier tasks already merged (Fold) and no array live; sub carries the
// study, overrides, resources and llem executable, and gets the runs and
// job IDs. With no run missing it submits nothing and returns false.
func Submit(ctx context.Context, st *result.Store, plan *study.Plan, sub *Submission) (bool, error) {
	if err := sub.Resources.Validate(); err != nil {
		return false, err
	}
	sub.Dir = st.Dir
	sub.Runs = Missing(st.Manifest(), plan)
	if len(sub.Runs) == 0 {
		return false, nil
	}
	if sub.MaxParallel < 0 {
		return false, errs.BadInput(fmt.Errorf("--max-parallel %d: must be positive", sub.MaxParallel), "pass --max-parallel 1 or more, or leave it out")
	}
	sub.JobID, sub.MergeJobID = "", ""
	sub.SubmittedAt = time.Now().UTC()
	folder := filepath.Join(st.Dir, Folder)
	if err := os.MkdirAll(filepath.Join(folder, LogsDir), 0o755); err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Join(folder, TasksDir), 0o755); err != nil {
		return false, err
	}
	// The tasks read the submission: it is on disk before sbatch.
	if err := result.WriteJSON(filepath.Join(folder, SubmissionFile), sub); err != nil {
		return false, err
	}
	arrayPath := filepath.Join(folder, "array.sh")
	if err := result.WriteFileAtomic(arrayPath, []byte(sub.ArrayScript())); err != nil {
		return false, err
	}
	id, err := sbatch(ctx, arrayPath)
	if err != nil {
		return false, err
	}
	sub.JobID = id
	mergePath := filepath.Join(folder, "merge.sh")
	if err := result.WriteFileAtomic(mergePath, []byte(sub.MergeScript())); err != nil {
		Cancel(context.WithoutCancel(ctx), id)
		return false, err
	}
	mid, err := sbatch(ctx, mergePath)
	if err != nil {
		Cancel(context.WithoutCancel(ctx), id)
		return false, err
	}
	sub.MergeJobID = mid
	return true, result.WriteJSON(filepath.Join(folder, SubmissionFile), sub)
}

// Progress counts a study's slurm tasks: queued and running from squeue.
type Progress struct {
	Queued, Running int
	Live            bool // the array or its merge job is still in the queue
}

// Watch reports dir's live tasks from squeue.
func Watch(ctx context.Context, dir string) (Progress, error) {
	sub, ok, err := ReadSubmission(dir)
	if err != nil || !ok {
		return Progress{}, err
	}
	tasks, err := Queue(ctx, sub.JobID, sub.MergeJobID)
	if err != nil {
		return Progress{}, err
	}
	p := Progress{Live: len(tasks) > 0}
	for _, t := range tasks {
		if t.Index < 0 {
			continue // the merge job
		}
		switch t.State {
		case "PENDING", "CONFIGURING", "REQUEUED":
			p.Queued++
		default:
			p.Running++
		}
	}
	return p, nil
}

// Wait polls squeue until the submission's array and merge job left the
// queue, calling report when the counts change. When ctx ends (Ctrl-C on
// the submitting llem) it cancels the array — the merge job still runs
// and records what the tasks did — and returns ctx's error.
func Wait(ctx context.Context, sub *Submission, every time.Duration, report func(Progress)) error {
	var last Progress
	first := true
	for {
		p, err := Watch(context.WithoutCancel(ctx), sub.Dir)
		if err != nil {
			return err
		}
		if !p.Live {
			return nil
		}
		if first || p != last {
			report(p)
			last, first = p, false
		}
		select {
		case <-ctx.Done():
			if err := Cancel(context.WithoutCancel(ctx), sub.JobID); err != nil {
				return err
			}
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
