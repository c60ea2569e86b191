// Package exporters turns a study directory into shareable files. Each
// format is its own package (json, parquet, hf) behind the small Exporter
// interface below (k6's output pattern); llem results export picks one by
// name.
package exporters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// Exporter writes one study in one format.
type Exporter interface {
	// Description says what will be written, for the command's message.
	Description() string
	Export(ctx context.Context, s *Study) error
}

// Params configures an exporter.
type Params struct {
	// Dest is the output path (file or directory, per format); "" or "-"
	// means stdout for formats that can stream.
	Dest string
	// Stdout receives output when Dest is "" or "-".
	Stdout io.Writer
	// JSONL asks the json exporter for one record per line.
	JSONL bool
	// Carbon, when it resolves to an intensity, adds CO2 columns.
	Carbon carbon.Config
}

// Constructor builds an exporter from params.
type Constructor func(Params) (Exporter, error)

// Study is a loaded study directory.
type Study struct {
	Dir      string
	Manifest result.Manifest
	// Summary is nil when the study has no summary.json yet (still running
	// or interrupted before it was written).
	Summary *result.Summary
	Records []*result.Record
	// Problems are record files that were not read: missing, corrupt, or
	// not this study's (result.StudyRecords); commands warn about them.
	Problems []result.RecordProblem
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

// Load reads a study directory: manifest, summary (optional) and every
// record in executed order.
func Load(dir string) (*Study, error) {
	m, err := result.ReadManifest(dir)
	if err != nil {
		var me *result.ManifestError
		if errors.As(err, &me) {
			return nil, errs.BadInput(err, me.Hint())
		}
		return nil, err
	}
	s := &Study{Dir: dir, Manifest: m}
	if sum, err := result.ReadSummary(dir); err == nil {
		s.Summary = sum
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load study %s: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, result.PlanFile)); err == nil {
		var plan struct {
			Carbon *carbon.Config `json:"carbon"`
		}
		if json.Unmarshal(b, &plan) == nil && plan.Carbon != nil {
			s.Carbon = *plan.Carbon
		}
	}
	s.Records, s.Problems, err = result.StudyRecords(dir, m)
	if err != nil {
		return nil, fmt.Errorf("load study %s: %w", dir, err)
	}
	return s, nil
}

// Output opens p.Dest for writing (stdout for "" or "-"); close the returned
// closer when done. The file is written in place: exports are derived data
// that can be regenerated, unlike records.
func Output(p Params) (io.Writer, func() error, error) {
	if p.Dest == "" || p.Dest == "-" {
		if p.Stdout == nil {
			return os.Stdout, func() error { return nil }, nil
		}
		return p.Stdout, func() error { return nil }, nil
	}
	f, err := os.Create(p.Dest)
	if err != nil {
		return nil, nil, errs.BadInput(fmt.Errorf("create %s: %w", p.Dest, err), "check that the directory exists and is writable")
	}
	return f, f.Close, nil
}
