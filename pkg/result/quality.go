package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// QualityFile is a run's quality record, beside its cycle records.
const QualityFile = "quality.json"

// qualityStem is the file stem of a scoring's files: quality for the one
// scoring of a run (cycle 0, quality.scope "run"), quality-c<N> for the
// scoring after cycle N (quality.scope "cycle").
func qualityStem(cycle int) string {
	if cycle <= 0 {
		return "quality"
	}
	return "quality-c" + strconv.Itoa(cycle)
}

// QualityPath is the quality record of a run's scoring, relative to the
// study directory: records/<run>/quality.json for a run's one scoring
// (cycle 0), records/<run>/quality-c<N>.json for cycle N's. Fixed, like
// RecordPath: a rescore replaces it.
func QualityPath(runID string, cycle int) string {
	return filepath.ToSlash(filepath.Join(RecordsDir, Slug(runID), qualityStem(cycle)+".json"))
}

// LMEvalResultsPath is the copy of lm-eval's own results file of a run's
// scoring (cycle as in QualityPath), relative to the study directory.
func LMEvalResultsPath(runID string, cycle int) string {
	return filepath.ToSlash(filepath.Join(RecordsDir, Slug(runID), qualityStem(cycle)+".lm-eval.json"))
}

// QualityWorkPath is the exchange directory of a run's scoring (cycle as in
// QualityPath), absolute.
func (s *Store) QualityWorkPath(runID string, cycle int) string {
	return filepath.Join(s.Dir, WorkDir, Slug(runID), qualityStem(cycle))
}

// QualityEntry is the manifest's state of one quality scoring: a run's
// one scoring (Cycle 0, quality.scope "run"), or the scoring after one of
// its cycles (quality.scope "cycle").
type QualityEntry struct {
	RunID    string      `json:"run_id"`
	Cycle    int         `json:"cycle,omitempty" doc:"the cycle scored after (quality.scope cycle); absent: the run's one scoring"`
	Status   EntryStatus `json:"status" doc:"pending, running, done or failed"`
	Attempts int         `json:"attempts"`
	Record   string      `json:"record,omitempty" doc:"path of records/<run>/quality.json (quality-c<N>.json per cycle)"`
	Error    string      `json:"error,omitempty"`
}

// QualityRecord is one run's quality score: what lm-eval reported per task,
// the weighted score, and what the scoring cost in energy.
type QualityRecord struct {
	SchemaVersion string `json:"schema_version"`
	Study         string `json:"study"`
	StudyHash     string `json:"study_hash"`
	RunID         string `json:"run_id"`
	ConfigHash    string `json:"config_hash"`
	// Cycle is the cycle this scoring followed (quality.scope "cycle");
	// 0 (absent) for a run's one scoring.
	Cycle   int    `json:"cycle,omitempty"`
	Attempt int    `json:"attempt"`
	Status  Status `json:"status" doc:"ok or failed"`
	// Source is lm-eval's model (hf, vllm, local-completions).
	Source string `json:"source"`
	// Command is the exact lm-eval command line, interpreter first.
	Command []string `json:"command"`
	// Runner is where it ran (local, docker).
	Runner        string   `json:"runner,omitempty"`
	LMEvalVersion string   `json:"lm_eval_version,omitempty" doc:"lm-eval's own lm_eval_version"`
	GitHash       string   `json:"git_hash,omitempty" doc:"lm-eval's git_hash of its working directory"`
	Limit         *float64 `json:"limit,omitempty" doc:"quality.limit: examples per task (a fraction when < 1); limited scores are for testing"`
	// Score is the weighted mean of the scored tasks' values; ScoreStderr
	// its standard error from the tasks' stderrs (independent tasks), when
	// every scored task reports one.
	Score       *float64      `json:"score"`
	ScoreStderr *float64      `json:"score_stderr,omitempty"`
	Tasks       []QualityTask `json:"tasks"`
	// ResultsFile is lm-eval's results file, copied beside this record.
	ResultsFile string        `json:"results_file,omitempty"`
	Energy      QualityEnergy `json:"energy"`
	Timing      QualityTiming `json:"timing"`
	Error       *RunError     `json:"error,omitempty"`
	Warnings    []string      `json:"warnings"`
}

// QualityTask is one task's result as lm-eval's results file gives it.
type QualityTask struct {
	Task   string  `json:"task"`
	Metric string  `json:"metric" doc:"the metric that enters the score, e.g. acc_norm"`
	Filter string  `json:"filter" doc:"lm-eval's filter of that metric, e.g. none, strict-match"`
	Value  float64 `json:"value"`
	// Stderr is lm-eval's <metric>_stderr,<filter> (nil when it reports N/A).
	Stderr         *float64 `json:"stderr"`
	HigherIsBetter *bool    `json:"higher_is_better,omitempty"`
	NShot          *int     `json:"n_shot,omitempty"`
	Version        string   `json:"version,omitempty" doc:"the task's version (lm-eval versions)"`
	Samples        *int     `json:"samples,omitempty" doc:"examples scored (n-samples effective)"`
	SamplesTotal   *int     `json:"samples_total,omitempty" doc:"examples in the task (n-samples original)"`
	Weight         float64  `json:"weight"`
	// Scored says whether the task entered the score (false: its metric is
	// lower-is-better, e.g. perplexity, or it reported no usable value).
	Scored bool `json:"scored"`
	// Metrics are all the numeric values lm-eval reported for the task,
	// keyed as it keys them ("acc,none").
	Metrics map[string]float64 `json:"metrics"`
}

// QualityEnergy is the energy of the scoring itself, over the whole lm-eval
// process (and the server it scored, for local-completions), measured with
// the run's sensor like a run's window.
type QualityEnergy struct {
	Sensor      string   `json:"sensor,omitempty"`
	RawJ        *float64 `json:"raw_j"`
	AdjustedJ   *float64 `json:"adjusted_j,omitempty"`
	MeanPowerW  *float64 `json:"mean_power_w,omitempty"`
	Unavailable string   `json:"unavailable,omitempty" doc:"why no energy was measured"`
}

// QualityTiming is when the scoring ran.
type QualityTiming struct {
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	WallS     float64   `json:"wall_s"`
}

// WriteQuality writes q to its QualityPath and returns that path.
func (s *Store) WriteQuality(q *QualityRecord) (string, error) {
	rel := QualityPath(q.RunID, q.Cycle)
	if err := WriteJSON(filepath.Join(s.Dir, rel), q); err != nil {
		return "", err
	}
	return rel, nil
}

// UpdateQuality applies fn to the quality entry of run's scoring after
// cycle (0: the run's one scoring), adding it when absent, and rewrites the
// manifest: once per scoring, so O(entries) is fine.
func (s *Store) UpdateQuality(runID string, cycle int, fn func(e *QualityEntry)) error {
	return s.Update(func(m *Manifest) {
		for i := range m.Quality {
			if m.Quality[i].RunID == runID && m.Quality[i].Cycle == cycle {
				fn(&m.Quality[i])
				return
			}
		}
		e := QualityEntry{RunID: runID, Cycle: cycle, Status: EntryPending}
		fn(&e)
		m.Quality = append(m.Quality, e)
	})
}

// QualityOf returns the quality entry of run's scoring after cycle (0: the
// run's one scoring) in m.
func (m *Manifest) QualityOf(runID string, cycle int) (QualityEntry, bool) {
	for _, e := range m.Quality {
		if e.RunID == runID && e.Cycle == cycle {
			return e, true
		}
	}
	return QualityEntry{}, false
}

// StudyQuality reads the quality records the manifest names, verified like
// cycle records (study, design hash, run ID, cycle, path); what cannot be
// trusted is listed as a problem, never read as a result. Each run's
// records come in cycle order: one (cycle 0) for quality.scope "run", one
// per scored cycle for "cycle".
func StudyQuality(dir string, m Manifest) (map[string][]*QualityRecord, []RecordProblem) {
	out := map[string][]*QualityRecord{}
	var probs []RecordProblem
	for _, e := range m.Quality {
		if e.Record == "" || (e.Status != EntryDone && e.Status != EntryFailed) {
			continue
		}
		q, kind, err := readQuality(dir, m, e)
		if err != nil {
			probs = append(probs, RecordProblem{Path: e.Record, Pos: -1, Kind: kind, Detail: err.Error()})
			continue
		}
		out[e.RunID] = append(out[e.RunID], q)
	}
	for _, qs := range out {
		slices.SortStableFunc(qs, func(a, b *QualityRecord) int { return a.Cycle - b.Cycle })
	}
	return out, probs
}

func readQuality(dir string, m Manifest, e QualityEntry) (*QualityRecord, string, error) {
	if want := QualityPath(e.RunID, e.Cycle); e.Record != want {
		return nil, RecordForeign, fmt.Errorf("quality record path %s is not %s", e.Record, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, e.Record))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, RecordMissing, errors.New("the manifest names this quality record but the file is missing")
		}
		return nil, RecordCorrupt, err
	}
	var q QualityRecord
	if err := json.Unmarshal(b, &q); err != nil {
		return nil, RecordCorrupt, fmt.Errorf("not a quality record: %w", err)
	}
	switch {
	case q.Study != m.Study || q.StudyHash != m.StudyHash:
		return nil, RecordForeign, fmt.Errorf("another study's quality record (%s %s)", q.Study, q.StudyHash)
	case q.RunID != e.RunID:
		return nil, RecordForeign, fmt.Errorf("run %s's quality record where %s's belongs", q.RunID, e.RunID)
	case q.Cycle != e.Cycle:
		return nil, RecordForeign, fmt.Errorf("the quality record of cycle %d where cycle %d's belongs", q.Cycle, e.Cycle)
	}
	return &q, "", nil
}
