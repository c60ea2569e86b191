package stats

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/llenergymeasure/llem/pkg/result"
)

// Methodology modes.
const (
	ModeFixedCycles = "fixed_cycles" // every planned cycle ran; all valid ones are summarised
	ModeSteadyState = "steady_state" // cycles stopped once the rolling CV settled
)

// Steady-state detection defaults (inventory §5.9: rolling CV < 5% over 3
// consecutive cycles).
const (
	SteadyWindow    = 3
	SteadyThreshold = 0.05
)

// Methodology records how every number in a StudySummary was obtained, so a
// reader of the JSON alone can reproduce it.
type Methodology struct {
	Mode            string  `json:"mode" doc:"fixed_cycles or steady_state"`
	Statistic       string  `json:"statistic"`
	CIMethod        string  `json:"ci_method" doc:"method requested; each CI records the one used"`
	ConfidenceLevel float64 `json:"confidence_level"`
	Resamples       int     `json:"resamples"`
	Seed            uint64  `json:"seed"`
	ValidCycles     string  `json:"valid_cycles" doc:"which records count"`
	StdDDOF         int     `json:"std_ddof"`
	Percentiles     string  `json:"percentiles"`
	SteadyWindow    int     `json:"steady_state_window"`
	SteadyThreshold float64 `json:"steady_state_cv_threshold"`
	// CIFallbacks counts metric CIs that could not use BCa (see each CI's
	// fallback_reason).
	CIFallbacks int `json:"ci_fallbacks"`
}

// MetricStats is one metric of one run across its valid cycles.
type MetricStats struct {
	Name string `json:"name"`
	Unit string `json:"unit"`
	Description
}

// RunStats is one run (one effective config) across its cycles.
type RunStats struct {
	RunID      string `json:"run_id"`
	Experiment string `json:"experiment,omitempty"`
	// Name is the experiments entry's name, when the study gave one.
	Name       string          `json:"name,omitempty"`
	Model      string          `json:"model"`
	Backend    string          `json:"backend"`
	Precision  string          `json:"precision,omitempty"`
	ConfigHash string          `json:"config_hash"`
	Config     json.RawMessage `json:"config,omitempty"`
	Cycles     int             `json:"cycles" doc:"records seen, valid or not"`
	ValidCount int             `json:"n_valid_cycles"`
	// SteadyStateAt is the cycle at which energy per output token reached
	// steady state (0 when it did not).
	SteadyStateAt int           `json:"steady_state_at_cycle"`
	Metrics       []MetricStats `json:"metrics"`
	Flags         []string      `json:"flags"`
	Warnings      []string      `json:"warnings"`
}

// Label is "backend / model / precision", for people, after the
// experiments entry's name when it has one ("plain: pytorch / …").
func (r *RunStats) Label() string {
	l := r.Backend + " / " + r.Model
	if r.Name != "" {
		l = r.Name + ": " + l
	}
	if r.Precision != "" {
		l += " / " + r.Precision
	}
	return l
}

// Metric returns the named metric, or nil.
func (r *RunStats) Metric(name string) *MetricStats {
	for i := range r.Metrics {
		if r.Metrics[i].Name == name {
			return &r.Metrics[i]
		}
	}
	return nil
}

// StudySummary is pkg/stats' view of a study: per-run estimates with CIs.
// It is what result.Summary.Stats holds.
type StudySummary struct {
	Methodology Methodology `json:"measurement_methodology"`
	Runs        []RunStats  `json:"runs"`
	Warnings    []string    `json:"warnings"`
}

// Run returns the run with id, or nil.
func (s *StudySummary) Run(id string) *RunStats {
	for i := range s.Runs {
		if s.Runs[i].RunID == id {
			return &s.Runs[i]
		}
	}
	return nil
}

// Metric extracts one number from a record; ok is false when the record
// has no value for it (unavailable sensor, no phase split...).
type Metric struct {
	Name  string
	Unit  string
	Value func(*result.Record) (float64, bool)
}

func ptr(p *float64) (float64, bool) {
	if p == nil {
		return 0, false
	}
	return *p, true
}

func dist(get func(*result.Record) result.Dist, f func(result.Dist) float64) func(*result.Record) (float64, bool) {
	return func(r *result.Record) (float64, bool) {
		d := get(r)
		if d.N == 0 {
			return 0, false
		}
		return f(d), true
	}
}

func phase(get func(*result.Record) *result.PhaseMetrics, f func(*result.PhaseMetrics) (float64, bool)) func(*result.Record) (float64, bool) {
	return func(r *result.Record) (float64, bool) {
		p := get(r)
		if p == nil {
			return 0, false
		}
		return f(p)
	}
}

func positive(v float64) (float64, bool) { return v, v > 0 }

// Metrics is the list summarised for every run, in report order. Names are
// stable: they are the keys of the JSON summary and the suffixes of the
// Parquet summary columns.
var Metrics = func() []Metric {
	ttft := func(r *result.Record) result.Dist { return r.Latency.TTFT }
	itl := func(r *result.Record) result.Dist { return r.Latency.ITL }
	tpot := func(r *result.Record) result.Dist { return r.Latency.TPOT }
	e2e := func(r *result.Record) result.Dist { return r.Latency.E2E }
	pre := func(r *result.Record) *result.PhaseMetrics { return r.Prefill }
	dec := func(r *result.Record) *result.PhaseMetrics { return r.Decode }
	ms := []Metric{
		{"energy_per_output_token_j", "J/token", func(r *result.Record) (float64, bool) { return ptr(r.Efficiency.EnergyPerOutputTokenJ) }},
		{"energy_per_token_j", "J/token", func(r *result.Record) (float64, bool) { return ptr(r.Efficiency.EnergyPerTokenJ) }},
		{"energy_per_request_j", "J/request", func(r *result.Record) (float64, bool) { return ptr(r.Efficiency.EnergyPerRequestJ) }},
		{"energy_raw_j", "J", func(r *result.Record) (float64, bool) { return ptr(r.Energy.RawJ) }},
		{"energy_adjusted_j", "J", func(r *result.Record) (float64, bool) { return ptr(r.Energy.BaselineAdjustedJ) }},
		{"mean_power_w", "W", func(r *result.Record) (float64, bool) { return ptr(r.Energy.MeanPowerW) }},
		{"output_tokens_per_sec", "tokens/s", func(r *result.Record) (float64, bool) { return positive(r.Throughput.OutputTokensPerSec) }},
		{"input_tokens_per_sec", "tokens/s", func(r *result.Record) (float64, bool) { return positive(r.Throughput.InputTokensPerSec) }},
		{"requests_per_sec", "requests/s", func(r *result.Record) (float64, bool) { return positive(r.Throughput.RequestsPerSec) }},
		{"window_s", "s", func(r *result.Record) (float64, bool) { return positive(r.Timing.WindowS) }},
	}
	for _, l := range []struct {
		name string
		get  func(*result.Record) result.Dist
	}{{"ttft", ttft}, {"itl", itl}, {"tpot", tpot}, {"e2e", e2e}} {
		ms = append(ms,
			Metric{l.name + "_mean_ms", "ms", dist(l.get, func(d result.Dist) float64 { return d.MeanMs })},
			Metric{l.name + "_p50_ms", "ms", dist(l.get, func(d result.Dist) float64 { return d.P50Ms })},
			Metric{l.name + "_p95_ms", "ms", dist(l.get, func(d result.Dist) float64 { return d.P95Ms })},
			Metric{l.name + "_p99_ms", "ms", dist(l.get, func(d result.Dist) float64 { return d.P99Ms })},
		)
	}
	for _, p := range []struct {
		name string
		get  func(*result.Record) *result.PhaseMetrics
	}{{"prefill", pre}, {"decode", dec}} {
		ms = append(ms,
			Metric{p.name + "_time_s", "s", phase(p.get, func(m *result.PhaseMetrics) (float64, bool) { return m.TimeS, true })},
			Metric{p.name + "_tokens_per_sec", "tokens/s", phase(p.get, func(m *result.PhaseMetrics) (float64, bool) { return positive(m.TokensPerSec) })},
			Metric{p.name + "_energy_j", "J", phase(p.get, func(m *result.PhaseMetrics) (float64, bool) { return ptr(m.EnergyJ) })},
			Metric{p.name + "_energy_per_token_j", "J/token", phase(p.get, func(m *result.PhaseMetrics) (float64, bool) { return ptr(m.EnergyPerTokenJ) })},
		)
	}
	// Serving runs only (docs/serving.md): goodput, and the distribution of
	// per-request energy inside the steady state.
	srv := func(f func(s *result.Serving) (float64, bool)) func(*result.Record) (float64, bool) {
		return func(r *result.Record) (float64, bool) {
			if r.Serving == nil {
				return 0, false
			}
			return f(r.Serving)
		}
	}
	epr := func(f func(d *result.EnergyDist) float64) func(*result.Record) (float64, bool) {
		return srv(func(s *result.Serving) (float64, bool) {
			if s.EnergyPerRequestJ == nil || s.EnergyPerRequestJ.N == 0 {
				return 0, false
			}
			return f(s.EnergyPerRequestJ), true
		})
	}
	ms = append(ms,
		Metric{"goodput_rps", "requests/s", srv(func(s *result.Serving) (float64, bool) { return ptr(s.GoodputRps) })},
		Metric{"energy_per_request_p50_j", "J/request", epr(func(d *result.EnergyDist) float64 { return d.P50J })},
		Metric{"energy_per_request_p90_j", "J/request", epr(func(d *result.EnergyDist) float64 { return d.P90J })},
		Metric{"energy_per_request_p99_j", "J/request", epr(func(d *result.EnergyDist) float64 { return d.P99J })},
		Metric{"client_timeouts", "requests", srv(func(s *result.Serving) (float64, bool) { return float64(s.TimedOut), true })},
	)
	return ms
}()

// SummaryOptions configures a Summary.
type SummaryOptions struct {
	Bootstrap Options
	// Mode is ModeFixedCycles (default) or ModeSteadyState, as the study
	// executed; it is recorded, not inferred.
	Mode string
	// Quality holds scored runs' quality records by run ID (one per run,
	// or one per cycle for quality.scope "cycle"): their runs get the
	// quality metrics (addRunQuality).
	Quality map[string][]*result.QualityRecord
}

// Summary accumulates records (Add) and computes statistics once (Close),
// like vegeta's Metrics: cheap to feed from a stream of records.
type Summary struct {
	opts  SummaryOptions
	order []string
	runs  map[string][]*result.Record
}

// NewSummary returns an empty accumulator.
func NewSummary(o SummaryOptions) *Summary {
	o.Bootstrap = o.Bootstrap.withDefaults()
	if o.Mode == "" {
		o.Mode = ModeFixedCycles
	}
	return &Summary{opts: o, runs: map[string][]*result.Record{}}
}

// Add adds one run × cycle record. Records of the same run are grouped by
// RunID; the order of first appearance is the order of the report.
func (s *Summary) Add(r *result.Record) {
	if _, ok := s.runs[r.RunID]; !ok {
		s.order = append(s.order, r.RunID)
	}
	s.runs[r.RunID] = append(s.runs[r.RunID], r)
}

// Close computes every statistic and returns the summary. Further Adds are
// ignored by the returned value.
func (s *Summary) Close() *StudySummary {
	o := s.opts.Bootstrap
	out := &StudySummary{
		Methodology: Methodology{
			Mode:            s.opts.Mode,
			Statistic:       "mean across valid cycles",
			CIMethod:        MethodBCa,
			ConfidenceLevel: o.Level,
			Resamples:       o.Resamples,
			Seed:            o.Seed,
			ValidCycles:     "records with status ok; a metric's n counts cycles where it was measured",
			StdDDOF:         1,
			Percentiles:     "linear interpolation between order statistics (numpy default)",
			SteadyWindow:    SteadyWindow,
			SteadyThreshold: SteadyThreshold,
		},
		Runs:     make([]RunStats, 0, len(s.order)),
		Warnings: []string{},
	}
	// Runs are independent and each bootstrap has its own seeded generator,
	// so summarising them in parallel gives the same numbers as in series.
	runs := make([]RunStats, len(s.order))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(runtime.GOMAXPROCS(0), max(1, len(s.order))) {
		wg.Go(func() {
			for i := range next {
				runs[i] = summariseRun(s.runs[s.order[i]], o)
			}
		})
	}
	for i := range s.order {
		next <- i
	}
	close(next)
	wg.Wait()
	fewest := -1
	for _, rs := range runs {
		for _, m := range rs.Metrics {
			if m.CI != nil && m.CI.Method != MethodBCa {
				out.Methodology.CIFallbacks++
			}
		}
		if fewest < 0 || rs.ValidCount < fewest {
			fewest = rs.ValidCount
		}
		if qs := s.opts.Quality[rs.RunID]; len(qs) > 0 {
			addRunQuality(&rs, qs, energyPerRequestByCycle(s.runs[rs.RunID]), o)
		}
		out.Runs = append(out.Runs, rs)
	}
	if fewest >= 0 && fewest < MinCyclesForConfidence {
		out.Warnings = append(out.Warnings, fmt.Sprintf(
			"some runs have only %d valid cycle(s): confidence intervals from fewer than %d cycles are wide and approximate; run more cycles (execution.cycles)",
			fewest, MinCyclesForConfidence))
	}
	return out
}

// energyPerRequestByCycle is the valid cycles' energy per request by cycle.
func energyPerRequestByCycle(recs []*result.Record) map[int]float64 {
	out := map[int]float64{}
	for _, r := range recs {
		if r.Status == result.StatusOK && r.Efficiency.EnergyPerRequestJ != nil {
			out[r.Cycle] = *r.Efficiency.EnergyPerRequestJ
		}
	}
	return out
}

func summariseRun(recs []*result.Record, o Options) RunStats {
	recs = slices.Clone(recs)
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Cycle != recs[j].Cycle {
			return recs[i].Cycle < recs[j].Cycle
		}
		return recs[i].Attempt < recs[j].Attempt
	})
	first := recs[0]
	rs := RunStats{
		RunID: first.RunID, Experiment: first.Experiment, Model: first.Model,
		Backend: first.Backend, Precision: first.Precision, ConfigHash: first.ConfigHash,
		Config: first.Config, Cycles: len(recs), Flags: []string{}, Warnings: []string{},
	}
	var valid []*result.Record
	flags := map[string]bool{}
	for _, r := range recs {
		for _, f := range r.Flags {
			flags[f] = true
		}
		if r.Status == result.StatusOK {
			valid = append(valid, r)
		}
	}
	rs.ValidCount = len(valid)
	for f := range flags {
		rs.Flags = append(rs.Flags, f)
	}
	sort.Strings(rs.Flags)
	if failed := len(recs) - len(valid); failed > 0 {
		rs.Warnings = append(rs.Warnings, fmt.Sprintf("%d of %d cycles failed and are excluded", failed, len(recs)))
	}
	if len(valid) < MinCyclesForConfidence {
		rs.Warnings = append(rs.Warnings, fmt.Sprintf("only %d valid cycles (< %d): CI is approximate", len(valid), MinCyclesForConfidence))
	}
	values := make([]float64, 0, len(valid))
	cache := resampleCache{}
	for _, m := range Metrics {
		values = values[:0]
		for _, r := range valid {
			if v, ok := m.Value(r); ok {
				values = append(values, v)
			}
		}
		if len(values) == 0 {
			continue
		}
		rs.Metrics = append(rs.Metrics, MetricStats{Name: m.Name, Unit: m.Unit, Description: describe(values, o, cache)})
		if m.Name == "energy_per_output_token_j" {
			rs.SteadyStateAt = SteadyState(values, SteadyWindow, SteadyThreshold)
		}
	}
	if rs.Metrics == nil {
		rs.Metrics = []MetricStats{}
	}
	return rs
}
