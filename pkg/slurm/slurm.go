// Package slurm runs a study on a Slurm cluster: one job array whose
// tasks each run one run's cycles on the node Slurm gives them, against
// the study directory on a shared filesystem, and a dependent (afterany)
// job that merges the tasks' results into the study directory and writes
// summary.json once with the single-machine code (execute.Finish).
//
// State is lock-free across nodes: a task claims its run by creating the
// run's task directory (mkdir, atomic on every POSIX and NFS filesystem)
// and keeps its own study directory there (its own manifest, journal and
// lock, which nobody else opens); only the submitter and the merge — one
// at a time, under the study directory's lock — write the study's
// manifest. docs/slurm.md has the design and its reasons.
package slurm

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"

	"github.com/llenergymeasure/llem/internal/errs"
)

// Resources are the per-task sbatch options (user config `slurm:`,
// flags). Empty fields are left to the cluster's defaults.
type Resources struct {
	Partition  string   `json:"partition,omitempty"`
	Account    string   `json:"account,omitempty"`
	QOS        string   `json:"qos,omitempty"`
	GPUs       string   `json:"gpus,omitempty"` // --gpus: "1", "h100:1"
	CPUs       int      `json:"cpus,omitempty"` // --cpus-per-task
	Mem        string   `json:"mem,omitempty"`  // --mem: "32G"
	Time       string   `json:"time,omitempty"` // --time: "02:00:00"
	Constraint string   `json:"constraint,omitempty"`
	Extra      []string `json:"extra,omitempty"` // more sbatch options, e.g. "--exclusive"
}

// lines are the #SBATCH options of r, in a fixed order.
func (r Resources) lines() []string {
	var l []string
	add := func(opt, v string) {
		if v != "" {
			l = append(l, opt+"="+v)
		}
	}
	add("--partition", r.Partition)
	add("--account", r.Account)
	add("--qos", r.QOS)
	add("--gpus", r.GPUs)
	if r.CPUs > 0 {
		add("--cpus-per-task", strconv.Itoa(r.CPUs))
	}
	add("--mem", r.Mem)
	add("--time", r.Time)
	add("--constraint", r.Constraint)
	return append(l, r.Extra...)
}

// Validate says what is wrong with r, as bad input.
func (r Resources) Validate() error {
	for _, x := range r.Extra {
		if !strings.HasPrefix(x, "-") || strings.ContainsAny(x, "\n\r") {
			return errs.BadInput(fmt.Errorf("slurm extra option %q: not one sbatch option", x), `write each as an sbatch option on one line, e.g. "--exclusive" or "--nodelist=gpu01"`)
		}
	}
	if r.CPUs < 0 {
		return errs.BadInput(fmt.Errorf("slurm cpus %d: must be positive", r.CPUs), "set cpus to 1 or more, or leave it out")
	}
	return nil
}

// quote makes s one word for bash.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// run runs a Slurm client and returns its trimmed stdout; a failure
// carries its stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if _, lerr := exec.LookPath(name); lerr != nil {
			return "", errs.WithHint(fmt.Errorf("%s: not found", name), "run llem --on slurm where the Slurm clients (sbatch, squeue, scontrol, scancel) are on PATH, e.g. a login node")
		}
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// Task is one array task as squeue lists it.
type Task struct {
	Index  int    // the array index; -1 for a job that is not an array
	State  string // PENDING, RUNNING, COMPLETING, …
	Reason string
	Node   string
}

// Queue lists the live (pending, running, completing) tasks of the given
// jobs, arrays expanded. Finished tasks are not listed: squeue, not sacct,
// so clusters without accounting work.
func Queue(ctx context.Context, jobIDs ...string) ([]Task, error) {
	var ids []string
	for _, id := range jobIDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := run(ctx, "squeue", "-h", "-r", "-j", strings.Join(ids, ","), "-o", "%i|%T|%r|%N")
	if err != nil {
		// squeue fails on job IDs it no longer knows: nothing is live.
		if strings.Contains(err.Error(), "Invalid job id") {
			return nil, nil
		}
		return nil, err
	}
	var tasks []Task
	for _, l := range strings.Split(out, "\n") {
		f := strings.Split(l, "|")
		if len(f) != 4 {
			continue
		}
		t := Task{Index: -1, State: f[1], Reason: f[2], Node: f[3]}
		if _, idx, ok := strings.Cut(f[0], "_"); ok {
			if n, err := strconv.Atoi(idx); err == nil {
				t.Index = n
			}
		}
		tasks = append(tasks, t)
	}
	sort.Slice(tasks, func(i, j int) bool { return tasks[i].Index < tasks[j].Index })
	return tasks, nil
}

// JobState is what scontrol says of a job or array task: its state
// (COMPLETED, TIMEOUT, CANCELLED, NODE_FAIL, OUT_OF_MEMORY, FAILED, …) and
// reason. Known is false when slurmctld no longer holds the job (it keeps
// finished jobs for MinJobAge seconds).
type JobState struct {
	State, Reason string
	ExitCode      string
	Known         bool
}

// ShowJob asks scontrol about one job ("123" or "123_4").
func ShowJob(ctx context.Context, id string) JobState {
	out, err := run(ctx, "scontrol", "show", "job", "-o", id)
	if err != nil {
		return JobState{}
	}
	js := JobState{Known: true}
	for _, f := range strings.Fields(out) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "JobState":
			js.State = v
		case "Reason":
			js.Reason = v
		case "ExitCode":
			js.ExitCode = v
		}
	}
	return js
}

// Cancel cancels the given jobs (scancel); unknown or finished jobs are
// not an error.
func Cancel(ctx context.Context, jobIDs ...string) error {
	var ids []string
	for _, id := range jobIDs {
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := run(ctx, "scancel", ids...)
	if err != nil && strings.Contains(err.Error(), "Invalid job id") {
		return nil
	}
	return err
}

// sbatch submits a script file and returns the job ID.
func sbatch(ctx context.Context, args ...string) (string, error) {
	out, err := run(ctx, "sbatch", append([]string{"--parsable"}, args...)...)
	if err != nil {
		return "", err
	}
	id, _, _ := strings.Cut(out, ";") // "123;cluster" on federated setups
	if _, err := strconv.Atoi(id); err != nil {
		return "", fmt.Errorf("sbatch: unexpected output %q", out)
	}
	return id, nil
}
