package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/carbon"
)

// Study is a study directory read back whole, for the commands and
// exporters that read finished (or interrupted) studies.
type Study struct {
	Dir      string
	Manifest Manifest
	// Summary is nil when the study has no summary.json yet (still running
	// or interrupted before it was written).
	Summary *Summary
	Records []*Record
	// PlanOrder is the plan's run IDs in plan order (plan.json), so tables
	// list runs as the study file wrote them, not in shuffled execution
	// order; empty without a readable plan.json.
	PlanOrder []string
	// RunNames are the names of named experiments entries by run ID
	// (plan.json), the label people gave the run.
	RunNames map[string]string
	// Problems are record files that were not read: missing, corrupt, or
	// not this study's (StudyRecords); commands warn about them.
	Problems []RecordProblem
	// Quality holds each scored run's verified quality records by run ID,
	// in cycle order (StudyQuality: one for quality.scope "run", one per
	// scored cycle for "cycle"); problems join Problems.
	Quality map[string][]*QualityRecord
	// Carbon is the study's own carbon block, read from plan.json's
	// top-level "carbon" key when the plan records one (zero otherwise).
	Carbon carbon.Config
}

// Name is the study's name (from the manifest, else the directory).
func (s *Study) Name() string {
	if s.Manifest.Study != "" {
		return s.Manifest.Study
	}
	return s.Dir
}

// LoadStudy reads a study directory: manifest, summary (optional), the
// plan's carbon block (optional) and every verified record in executed
// order (StudyRecords: files that are not this study's are listed in
// Problems, never read as results). It only reads: a study being written
// meanwhile is safe.
func LoadStudy(dir string) (*Study, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		var me *ManifestError
		if errors.As(err, &me) {
			return nil, errs.BadInput(err, me.Hint())
		}
		return nil, err
	}
	s := &Study{Dir: dir, Manifest: m}
	if sum, err := ReadSummary(dir); err == nil {
		s.Summary = sum
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load study %s: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, PlanFile)); err == nil {
		var plan struct {
			Carbon *carbon.Config `json:"carbon"`
			Runs   []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"runs"`
		}
		if json.Unmarshal(b, &plan) == nil {
			if plan.Carbon != nil {
				s.Carbon = *plan.Carbon
			}
			for _, r := range plan.Runs {
				s.PlanOrder = append(s.PlanOrder, r.ID)
				if r.Name != "" {
					if s.RunNames == nil {
						s.RunNames = map[string]string{}
					}
					s.RunNames[r.ID] = r.Name
				}
			}
		}
	}
	s.Records, s.Problems, err = StudyRecords(dir, m)
	if err != nil {
		return nil, fmt.Errorf("load study %s: %w", dir, err)
	}
	var qp []RecordProblem
	s.Quality, qp = StudyQuality(dir, m)
	s.Problems = append(s.Problems, qp...)
	linkCycleQuality(s.Records, s.Quality)
	return s, nil
}

// linkCycleQuality sets each record's CycleQuality from the per-cycle
// quality records of its run (cycle > 0: quality.scope "cycle").
func linkCycleQuality(recs []*Record, quality map[string][]*QualityRecord) {
	for _, r := range recs {
		for _, q := range quality[r.RunID] {
			if q.Cycle > 0 && q.Cycle == r.Cycle {
				r.CycleQuality = q
			}
		}
	}
}

// NoRecordsError says a study directory holds no record yet, so there is
// nothing to summarise. It is the user's input (exit 2) with a hint.
type NoRecordsError struct{ Dir string }

func (e *NoRecordsError) Error() string { return "no records in " + e.Dir + "/" + RecordsDir }

// RequireRecords returns a *NoRecordsError (marked as bad input, with a
// hint) when s has no record.
func (s *Study) RequireRecords() error {
	if len(s.Records) > 0 {
		return nil
	}
	return errs.BadInput(&NoRecordsError{Dir: s.Dir}, "the study has not finished a run yet; llem results ls shows its status")
}
