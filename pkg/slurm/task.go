package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/result"
)

// OwnerFile, in a task directory, says which array task claimed the run.
const OwnerFile = "owner.json"

// Alloc is what Slurm gave an array task: it goes into every record's
// environment snapshot (key "slurm") and keys the idle-baseline cache per
// node and GPU set.
type Alloc struct {
	JobID       string    `json:"job_id"`       // SLURM_JOB_ID
	ArrayJobID  string    `json:"array_job_id"` // SLURM_ARRAY_JOB_ID
	ArrayTaskID int       `json:"array_task_id"`
	Node        string    `json:"node"`                 // SLURMD_NODENAME
	GPUs        string    `json:"gpus,omitempty"`       // SLURM_JOB_GPUS / SLURM_STEP_GPUS
	CUDADevices string    `json:"cuda_visible_devices"` // what the sensor and the worker see
	Partition   string    `json:"partition,omitempty"`  // SLURM_JOB_PARTITION
	StartedAt   time.Time `json:"started_at,omitempty"` // claim time
	RunID       string    `json:"run_id,omitempty"`     // the run claimed
	Submission  string    `json:"submission,omitempty"` // its submission time, RFC 3339
}

// AllocFromEnv reads the task's allocation from Slurm's environment.
func AllocFromEnv() (Alloc, error) {
	idx, err := strconv.Atoi(os.Getenv("SLURM_ARRAY_TASK_ID"))
	if err != nil {
		return Alloc{}, errors.New("llem slurm-task runs inside a Slurm array task (SLURM_ARRAY_TASK_ID is not set)")
	}
	gpus := os.Getenv("SLURM_STEP_GPUS")
	if gpus == "" {
		gpus = os.Getenv("SLURM_JOB_GPUS")
	}
	return Alloc{
		JobID: os.Getenv("SLURM_JOB_ID"), ArrayJobID: os.Getenv("SLURM_ARRAY_JOB_ID"), ArrayTaskID: idx,
		Node: os.Getenv("SLURMD_NODENAME"), GPUs: gpus, CUDADevices: os.Getenv("CUDA_VISIBLE_DEVICES"),
		Partition: os.Getenv("SLURM_JOB_PARTITION"),
	}, nil
}

// TaskID is the array task's Slurm ID, "123_4".
func (a Alloc) TaskID() string { return a.ArrayJobID + "_" + strconv.Itoa(a.ArrayTaskID) }

// TaskDir is the directory a run's array task claims and writes.
func TaskDir(dir, runID string) string {
	return filepath.Join(dir, Folder, TasksDir, result.Slug(runID))
}

// ErrClaimed is returned when another task already claimed the run.
var ErrClaimed = errors.New("the run is already claimed by another array task")

// RunTask measures the run of array task a.ArrayTaskID of sub: it claims
// the run (mkdir of its task directory, so exactly one task ever runs it),
// builds there a study directory that holds the whole schedule with every
// other run's slots marked skipped (so records keep the study's positions,
// paths and design hash) and runs it with opt — the single-machine study
// loop, on this node, with the sensor seeing only this allocation's GPUs
// (CUDA_VISIBLE_DEVICES). The merge adopts what it leaves.
func RunTask(ctx context.Context, sub *Submission, a Alloc, opt execute.Options, log io.Writer) (*execute.Report, error) {
	if a.ArrayTaskID < 0 || a.ArrayTaskID >= len(sub.Runs) {
		return nil, fmt.Errorf("array task %d: the submission has %d runs", a.ArrayTaskID, len(sub.Runs))
	}
	runID := sub.Runs[a.ArrayTaskID]
	m, err := result.ReadManifest(sub.Dir)
	if err != nil {
		return nil, err
	}
	td := TaskDir(sub.Dir, runID)
	if err := os.Mkdir(td, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			owner, _ := os.ReadFile(filepath.Join(td, OwnerFile))
			return nil, fmt.Errorf("%w: %s", ErrClaimed, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("claim run %s: %w", runID, err)
	}
	a.StartedAt, a.RunID, a.Submission = time.Now().UTC(), runID, sub.SubmittedAt.Format(time.RFC3339Nano)
	if err := result.WriteJSON(filepath.Join(td, OwnerFile), a); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "llem: array task %s on %s claimed run %s (CUDA_VISIBLE_DEVICES=%q)\n", a.TaskID(), a.Node, runID, a.CUDADevices)

	tm := m
	tm.Entries = append([]result.Entry(nil), m.Entries...)
	tm.Status, tm.Sessions, tm.EndedAt = result.StudyRunning, 0, nil
	for i := range tm.Entries {
		e := &tm.Entries[i]
		switch {
		case e.RunID != runID:
			e.Status, e.Record, e.Error, e.StartedAt, e.EndedAt = result.EntrySkipped, "", "", nil, nil
		case e.Status == result.EntryDone:
			// Earlier cycles stay done here (steady-state stopping reads
			// them): copy their records in.
			if err := copyFile(filepath.Join(sub.Dir, e.Record), filepath.Join(td, e.Record)); err != nil {
				return nil, err
			}
		case e.Status == result.EntrySkipped:
		default:
			e.Status, e.Record, e.Error, e.StartedAt, e.EndedAt = result.EntryPending, "", "", nil, nil
		}
	}
	st, err := result.CreateAt(td, tm)
	if err != nil {
		return nil, err
	}
	err = st.WritePlan(opt.Plan)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	opt.Environment, err = withAlloc(opt.Environment, a)
	if err != nil {
		return nil, err
	}
	// Baselines are per node and GPU set: the cache may be on a shared home.
	opt.Fingerprint += "-" + result.Slug(a.Node+"-"+a.CUDADevices)
	return execute.Resume(ctx, td, opt)
}

// withAlloc adds the allocation to the environment snapshot as "slurm".
func withAlloc(env json.RawMessage, a Alloc) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(env) > 0 {
		if err := json.Unmarshal(env, &obj); err != nil {
			return nil, fmt.Errorf("environment snapshot: %w", err)
		}
	}
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	obj["slurm"] = b
	return json.Marshal(obj)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return result.WriteFileAtomic(dst, b)
}
