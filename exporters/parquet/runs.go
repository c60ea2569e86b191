package parquet

import (
	"context"
	"encoding/json"
	"io"
	"slices"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// RunColumns is the fixed part of the per-run statistics table: one row per
// run per study, summarised over its cycles by stats.Summarise. After them,
// per metric m of stats.Metrics (in that order): m_n, m_mean, m_std,
// m_ci_low, m_ci_high, m_ci_method (bca, or the fallback used), m_ci_mc_error, all null
// when the run has no value of m — stats.Metrics, then stats.QualityMetrics
// (null for runs that were not scored) —; then the coord_<dimension> columns as in
// the per-cycle table; last QualityRunColumns.
var RunColumns = []Column{
	runStr("study", "study name", func(r *exporters.RunRow) string { return r.Study }),
	runStr("run_id", "stable run id", func(r *exporters.RunRow) string { return r.RunID }),
	runStr("experiment", "experiment name", func(r *exporters.RunRow) string { return r.Experiment }),
	runStr("model", "model id", func(r *exporters.RunRow) string { return r.Model }),
	runStr("backend", "backend", func(r *exporters.RunRow) string { return r.Backend }),
	runStr("precision", "precision", func(r *exporters.RunRow) string { return r.Precision }),
	runStr("config_hash", "hash of the canonical effective config", func(r *exporters.RunRow) string { return r.ConfigHash }),
	{Name: "cycles", Kind: Int64, Doc: "records seen, valid or not", i: func(x *row) (int64, bool) { return int64(x.run.Cycles), true }},
	{Name: "n_valid_cycles", Kind: Int64, Doc: "cycles with status ok", i: func(x *row) (int64, bool) { return int64(x.run.ValidCount), true }},
	{Name: "steady_state_at_cycle", Kind: Int64, Doc: "cycle where J/output token settled (null when it did not)", i: func(x *row) (int64, bool) {
		return int64(x.run.SteadyStateAt), x.run.SteadyStateAt > 0
	}},
	{Name: "ci_level", Kind: Float64, Doc: "confidence level of every CI", f: func(x *row) (float64, bool) { return x.run.Method.ConfidenceLevel, true }},
	{Name: "ci_resamples", Kind: Int64, Doc: "bootstrap resamples", i: func(x *row) (int64, bool) { return int64(x.run.Method.Resamples), true }},
	{Name: "flags", Kind: StringList, Doc: "validity flags of any cycle", l: func(x *row) []string { return x.run.Flags }},
	{Name: "warnings", Kind: StringList, Doc: "summary warnings", l: func(x *row) []string { return x.run.Warnings }},
	{Name: "coordinates", Kind: String, Doc: "grid coordinates, JSON object", s: func(x *row) (string, bool) {
		s, ok := compactJSON(x.run.Coordinates)
		return s, ok && s != "{}"
	}},
}

func runStr(name, doc string, g func(*exporters.RunRow) string) Column {
	return Column{Name: name, Kind: String, Doc: doc, s: func(x *row) (string, bool) { v := g(x.run); return v, v != "" }}
}

// RunColumnsFor is the per-run table's schema for runs.
func RunColumnsFor(runs []exporters.RunRow) []Column {
	used := names{}
	cols := slices.Clone(RunColumns)
	for _, c := range cols {
		used[c.Name] = true
	}
	for _, m := range append(slices.Clone(stats.Metrics), stats.QualityMetrics...) {
		name := m.Name
		get := func(x *row) *stats.MetricStats { return x.run.Metric(name) }
		ci := func(x *row) *stats.CI {
			if ms := get(x); ms != nil {
				return ms.CI
			}
			return nil
		}
		cols = append(cols,
			Column{Name: used.add(name + "_n"), Kind: Int64, Doc: "cycles with a value of " + name, i: func(x *row) (int64, bool) {
				if ms := get(x); ms != nil {
					return int64(ms.N), true
				}
				return 0, false
			}},
			Column{Name: used.add(name + "_mean"), Kind: Float64, Doc: "mean of " + name + " (" + m.Unit + ")", f: func(x *row) (float64, bool) {
				if ms := get(x); ms != nil {
					return ms.Mean, true
				}
				return 0, false
			}},
			Column{Name: used.add(name + "_std"), Kind: Float64, Doc: "sample standard deviation of " + name, f: func(x *row) (float64, bool) {
				if ms := get(x); ms != nil {
					return ms.Std, true
				}
				return 0, false
			}},
			Column{Name: used.add(name + "_ci_low"), Kind: Float64, Doc: "CI lower bound of the mean of " + name, f: func(x *row) (float64, bool) {
				if c := ci(x); c != nil {
					return c.Lower, true
				}
				return 0, false
			}},
			Column{Name: used.add(name + "_ci_high"), Kind: Float64, Doc: "CI upper bound of the mean of " + name, f: func(x *row) (float64, bool) {
				if c := ci(x); c != nil {
					return c.Upper, true
				}
				return 0, false
			}},
			Column{Name: used.add(name + "_ci_method"), Kind: String, Doc: "interval method used for " + name + ": bca or the fallback", s: func(x *row) (string, bool) {
				if c := ci(x); c != nil {
					return c.Method, true
				}
				return "", false
			}},
			Column{Name: used.add(name + "_ci_mc_error"), Kind: Float64, Doc: "Monte Carlo standard error of the CI endpoints of " + name, f: func(x *row) (float64, bool) {
				if c := ci(x); c != nil {
					return c.MCError, true
				}
				return 0, false
			}},
		)
	}
	var coords []map[string]json.RawMessage
	for _, r := range runs {
		if m := parseCoords(r.Coordinates); m != nil {
			coords = append(coords, m)
		}
	}
	return append(append(cols, coordColumns(coords, used)...), QualityRunColumns...)
}

// QualityRunColumns close the per-run table (appended, so the columns
// before them keep their places): the lm-eval scoring of scored runs, null
// for the others (docs/quality.md).
var QualityRunColumns = []Column{
	{Name: "quality_status", Kind: String, Doc: "lm-eval scoring: ok or failed (null: not scored); scored per cycle, failed when any cycle's scoring failed", s: func(x *row) (string, bool) {
		if q := x.run.Quality; q != nil {
			return string(q.Status), true
		}
		if len(x.run.QualityCycles) == 0 {
			return "", false
		}
		for _, q := range x.run.QualityCycles {
			if q.Status != result.StatusOK {
				return string(result.StatusFailed), true
			}
		}
		return string(result.StatusOK), true
	}},
	{Name: "quality_source", Kind: String, Doc: "lm-eval model that scored the run (hf, vllm, local-completions)", s: func(x *row) (string, bool) {
		if q := x.run.QualityRef(); q != nil {
			return q.Source, q.Source != ""
		}
		return "", false
	}},
	{Name: "quality_lm_eval_version", Kind: String, Doc: "lm-eval's lm_eval_version", s: func(x *row) (string, bool) {
		if q := x.run.QualityRef(); q != nil {
			return q.LMEvalVersion, q.LMEvalVersion != ""
		}
		return "", false
	}},
	{Name: "quality_command", Kind: StringList, Doc: "the exact lm-eval command line", l: func(x *row) []string {
		if q := x.run.QualityRef(); q != nil {
			return q.Command
		}
		return nil
	}},
	{Name: "quality_tasks", Kind: String, Doc: "per task: metric, filter, value, stderr, n_shot, version, samples, weight (JSON array); null when scored per cycle (see quality_cycles)", s: func(x *row) (string, bool) {
		if q := x.run.Quality; q != nil && len(q.Tasks) > 0 {
			b, err := json.Marshal(q.Tasks)
			return string(b), err == nil
		}
		return "", false
	}},
	{Name: "quality_cycles", Kind: String, Doc: "quality.scope cycle: per cycle, its scoring's status, score, score_stderr, energy (J) and tasks (JSON array; null when scored once per run)", s: func(x *row) (string, bool) {
		if len(x.run.QualityCycles) == 0 {
			return "", false
		}
		type cycleQuality struct {
			Cycle       int                  `json:"cycle"`
			Status      result.Status        `json:"status"`
			Score       *float64             `json:"score"`
			ScoreStderr *float64             `json:"score_stderr,omitempty"`
			EnergyJ     *float64             `json:"energy_j"`
			Tasks       []result.QualityTask `json:"tasks"`
		}
		out := make([]cycleQuality, len(x.run.QualityCycles))
		for i, q := range x.run.QualityCycles {
			out[i] = cycleQuality{Cycle: q.Cycle, Status: q.Status, Score: q.Score, ScoreStderr: q.ScoreStderr, EnergyJ: q.Energy.RawJ, Tasks: q.Tasks}
		}
		b, err := json.Marshal(out)
		return string(b), err == nil
	}},
}

// WriteRuns writes the per-run statistics table as Parquet.
func WriteRuns(ctx context.Context, w io.Writer, runs []exporters.RunRow, meta map[string]string) error {
	cols := RunColumnsFor(runs)
	rows := make([]row, len(runs))
	withCoords := hasCoords(cols)
	for i := range runs {
		rows[i] = row{run: &runs[i]}
		if withCoords {
			rows[i].coords = parseCoords(runs[i].Coordinates)
		}
	}
	return writeRows(ctx, w, cols, rows, meta)
}

// recordRows are the per-cycle table's rows of recs.
func recordRows(recs []*result.Record, cols []Column, unit *carbon.Estimate) []row {
	rows := make([]row, len(recs))
	withCoords := hasCoords(cols)
	for i, r := range recs {
		rows[i] = newRow(r, unit)
		if withCoords {
			rows[i].coords = parseCoords(r.Coordinates)
		}
	}
	return rows
}
