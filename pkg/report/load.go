package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// Study is one study directory as the report reads it.
type Study struct {
	Dir      string
	Manifest result.Manifest
	// Summary is nil when summary.json is not written yet.
	Summary  *result.Summary
	Records  []*result.Record
	Problems []result.RecordProblem
	// Stats are pkg/stats' per-run estimates, computed from the records.
	Stats *stats.StudySummary
}

// Name is the study's name, or its directory.
func (s *Study) Name() string {
	if s.Manifest.Study != "" {
		return s.Manifest.Study
	}
	return filepath.Base(s.Dir)
}

// Load reads a study directory (manifest, summary, records) and computes
// its statistics with o. The methodology mode is the study's own: steady
// state when any run stopped early on it.
func Load(dir string, o stats.Options) (*Study, error) {
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
		return nil, fmt.Errorf("read summary of %s: %w", dir, err)
	}
	s.Records, s.Problems, err = result.StudyRecords(dir, m)
	if err != nil {
		return nil, fmt.Errorf("read records of %s: %w", dir, err)
	}
	if len(s.Records) == 0 {
		return nil, errs.BadInput(fmt.Errorf("no records in %s", filepath.Join(dir, result.RecordsDir)),
			"the study has not finished a run yet; llem results ls shows its status")
	}
	mode := stats.ModeFixedCycles
	if s.Summary != nil {
		for _, r := range s.Summary.Runs {
			if r.SteadyState.StoppedBy == "steady_state" {
				mode = stats.ModeSteadyState
			}
		}
	}
	acc := stats.NewSummary(stats.SummaryOptions{Mode: mode, Bootstrap: o})
	for _, r := range s.Records {
		acc.Add(r)
	}
	s.Stats = acc.Close()
	return s, nil
}

// samples is one timeseries Parquet file, column by column.
type samples struct {
	meta     result.TimeseriesMeta
	channel  []string
	name     []string
	tS       []float64
	powerW   []float64 // NaN for null
	tempC    []float64
	throttle []int64 // -1 for null
}

// readTimeseries reads the columns the timeline figure needs from a
// timeseries Parquet file written by result.EncodeTimeseries.
func readTimeseries(path string) (*samples, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer pf.Close()
	s := &samples{}
	if kv := pf.MetaData().KeyValueMetadata().FindValue("llem"); kv != nil {
		if err := json.Unmarshal([]byte(*kv), &s.meta); err != nil {
			return nil, fmt.Errorf("read %s: metadata: %w", path, err)
		}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer tbl.Release()
	col := func(name string) []arrow.Array {
		idx := tbl.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil
		}
		return tbl.Column(idx[0]).Data().Chunks()
	}
	for _, c := range col("channel") {
		a := c.(*array.String)
		for i := range a.Len() {
			s.channel = append(s.channel, a.Value(i))
		}
	}
	for _, c := range col("device_name") {
		a := c.(*array.String)
		for i := range a.Len() {
			s.name = append(s.name, a.Value(i))
		}
	}
	floats := func(name string) []float64 {
		var out []float64
		for _, c := range col(name) {
			a := c.(*array.Float64)
			for i := range a.Len() {
				if a.IsNull(i) {
					out = append(out, math.NaN())
				} else {
					out = append(out, a.Value(i))
				}
			}
		}
		return out
	}
	s.tS, s.powerW, s.tempC = floats("t_s"), floats("power_w"), floats("temp_c")
	for _, c := range col("throttle_reasons") {
		a := c.(*array.Int64)
		for i := range a.Len() {
			if a.IsNull(i) {
				s.throttle = append(s.throttle, -1)
			} else {
				s.throttle = append(s.throttle, a.Value(i))
			}
		}
	}
	n := len(s.tS)
	if len(s.channel) != n || len(s.powerW) != n || len(s.tempC) != n || len(s.name) != n {
		return nil, fmt.Errorf("read %s: columns of different lengths", path)
	}
	return s, nil
}
