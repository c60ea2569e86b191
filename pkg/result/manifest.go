package result

import (
	"encoding/json"
	"time"
)

// EntryStatus is the state of one run × cycle in the manifest.
type EntryStatus string

// Manifest entry states. A run×cycle moves pending → running → done|failed;
// skipped means steady state was reached before this cycle.
const (
	EntryPending EntryStatus = "pending"
	EntryRunning EntryStatus = "running"
	EntryDone    EntryStatus = "done"
	EntryFailed  EntryStatus = "failed"
	EntrySkipped EntryStatus = "skipped"
)

// Study statuses.
const (
	StudyRunning     = "running"
	StudyCompleted   = "completed"   // every entry done or skipped
	StudyFailed      = "failed"      // finished, some entries failed
	StudyInterrupted = "interrupted" // stopped by Ctrl-C or a signal
)

// Manifest is the checkpoint of a study execution: one entry per run per
// cycle, in executed order. manifest.json is its snapshot, rewritten
// atomically; per-slot transitions since the snapshot are lines of
// manifest.journal (see JournalFile), so a crash at any moment loses at most
// the transition being written, and ReadManifest sees the latest state.
type Manifest struct {
	SchemaVersion string     `json:"schema_version"`
	Study         string     `json:"study"`
	StudyHash     string     `json:"study_hash,omitempty"`
	LlemVersion   string     `json:"llem_version"`
	Status        string     `json:"status" doc:"running, completed, failed or interrupted"`
	StartedAt     time.Time  `json:"started_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	EndedAt       *time.Time `json:"ended_at,omitempty"`
	Sessions      int        `json:"sessions" doc:"how many times llem eval worked on this directory (1 + resumes)"`
	Counts        Counts     `json:"counts"`
	// Quality lists the quality scoring of each scored run (quality: in its
	// config), one per run, in plan order; absent when no run is scored.
	Quality []QualityEntry `json:"quality,omitempty"`
	Entries []Entry        `json:"entries"`
}

// Counts of manifest entries by state.
type Counts struct {
	Total   int `json:"total"`
	Pending int `json:"pending"`
	Running int `json:"running"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// Entry is one run × cycle.
type Entry struct {
	RunID      string      `json:"run_id"`
	Experiment string      `json:"experiment,omitempty"`
	Cycle      int         `json:"cycle"`
	Position   int         `json:"position" doc:"index in the executed order"`
	Label      string      `json:"label" doc:"backend / model / precision, for people"`
	Status     EntryStatus `json:"status"`
	Attempts   int         `json:"attempts"`
	Record     string      `json:"record,omitempty" doc:"record file, relative to the study directory"`
	Error      string      `json:"error,omitempty"`
	StartedAt  *time.Time  `json:"started_at,omitempty"`
	EndedAt    *time.Time  `json:"ended_at,omitempty"`
}

// move counts one entry changing from state old to state new.
func (c *Counts) move(old, new EntryStatus) {
	if old == new {
		return
	}
	c.add(old, -1)
	c.add(new, 1)
}

func (c *Counts) add(s EntryStatus, d int) {
	switch s {
	case EntryPending:
		c.Pending += d
	case EntryRunning:
		c.Running += d
	case EntryDone:
		c.Done += d
	case EntryFailed:
		c.Failed += d
	case EntrySkipped:
		c.Skipped += d
	}
}

// Recount recomputes m.Counts from the entries.
func (m *Manifest) Recount() {
	c := Counts{Total: len(m.Entries)}
	for _, e := range m.Entries {
		switch e.Status {
		case EntryPending:
			c.Pending++
		case EntryRunning:
			c.Running++
		case EntryDone:
			c.Done++
		case EntryFailed:
			c.Failed++
		case EntrySkipped:
			c.Skipped++
		}
	}
	m.Counts = c
}

// Summary is the study-level result, written when a study execution ends
// (also after an interruption, covering what is done).
type Summary struct {
	SchemaVersion string          `json:"schema_version"`
	Study         string          `json:"study"`
	StudyHash     string          `json:"study_hash,omitempty"`
	Llem          LlemInfo        `json:"llem"`
	Status        string          `json:"status"`
	StartedAt     time.Time       `json:"started_at"`
	EndedAt       time.Time       `json:"ended_at"`
	WallS         float64         `json:"wall_s"`
	Counts        Counts          `json:"counts"`
	TotalEnergyJ  *float64        `json:"total_energy_j" doc:"sum of raw window energy of the done records"`
	Execution     json.RawMessage `json:"execution,omitempty" doc:"the study's execution settings (cycles, order, seed, gaps)"`
	Runs          []RunSummary    `json:"runs"`
	// Stats is pkg/stats' study summary (per-run estimates with CIs), kept
	// as raw JSON so this package does not import its consumer.
	Stats    json.RawMessage `json:"stats,omitempty"`
	Warnings []string        `json:"warnings"`
}

// RunSummary is one run across its cycles.
type RunSummary struct {
	RunID       string      `json:"run_id"`
	Experiment  string      `json:"experiment,omitempty"`
	Label       string      `json:"label"`
	ConfigHash  string      `json:"config_hash"`
	Cycles      int         `json:"cycles" doc:"cycles planned"`
	Done        int         `json:"done"`
	Failed      int         `json:"failed"`
	Records     []string    `json:"records"`
	SteadyState SteadyState `json:"steady_state"`
	Flags       []string    `json:"flags"`
}

// SteadyState says why a run stopped cycling: the rolling coefficient of
// variation of energy per output token over the last Window cycles fell below
// Threshold, or the configured cycles ran out first.
type SteadyState struct {
	Reached   bool     `json:"reached"`
	AtCycle   int      `json:"at_cycle,omitempty"`
	CV        *float64 `json:"cv" doc:"rolling CV over the last window cycles; null with fewer cycles"`
	Window    int      `json:"window"`
	Threshold float64  `json:"threshold"`
	StoppedBy string   `json:"stopped_by" doc:"steady_state, cycles_exhausted or incomplete"`
}
