package parquet

import (
	"bytes"
	"encoding/json"
	"math"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/compute"
	"github.com/llenergymeasure/llem/pkg/result"
)

// Kind is a column's value type.
type Kind int

// Column kinds. Every column may be null except where noted in docs.
const (
	String Kind = iota
	Int64
	Float64
	Bool
	Timestamp  // timestamp[us, tz=UTC]
	StringList // list<string>
)

// Arrow returns the Arrow type of k.
func (k Kind) Arrow() arrow.DataType {
	switch k {
	case Int64:
		return arrow.PrimitiveTypes.Int64
	case Float64:
		return arrow.PrimitiveTypes.Float64
	case Bool:
		return arrow.FixedWidthTypes.Boolean
	case Timestamp:
		return arrow.FixedWidthTypes.Timestamp_us // unit us, TimeZone "UTC"
	case StringList:
		return arrow.ListOf(arrow.BinaryTypes.String)
	}
	return arrow.BinaryTypes.String
}

// row is what a getter sees: the record and values derived once per row.
// est is the study-wide carbon estimate for one joule (nil when the record
// has no raw energy, so every carbon column is null); co2g is this row's
// grams, computed as est.Scale would without allocating.
type row struct {
	r    *result.Record
	est  *carbon.Estimate
	co2g float64
	// coords are r's grid coordinates, parsed once per row when the
	// export has coordinate columns.
	coords map[string]json.RawMessage
	// run is set instead of r on rows of the per-run statistics table.
	run *exporters.RunRow
}

// newRow derives a row's carbon values from unit = carbon.Compute(1, cc).
func newRow(r *result.Record, unit *carbon.Estimate) row {
	x := row{r: r}
	if r.Energy.RawJ != nil {
		x.est = unit
		if unit.CO2Grams != nil {
			// Same expression as carbon.Estimate.Scale.
			x.co2g = *unit.CO2Grams / unit.EnergyJ * result.CarbonEnergyJ(r)
		}
	}
	return x
}

// Column is one flat column of the export. Exactly one getter is set,
// matching Kind; ok=false writes a null.
type Column struct {
	Name string
	Kind Kind
	Doc  string
	s    func(*row) (string, bool)
	i    func(*row) (int64, bool)
	f    func(*row) (float64, bool)
	b    func(*row) (bool, bool)
	t    func(*row) (time.Time, bool)
	l    func(*row) []string
	// j is set (with s) on JSON columns: the stored JSON, which the writer
	// compacts once per distinct value rather than once per row.
	j func(*row) json.RawMessage
}

func str(name, doc string, g func(*result.Record) string) Column {
	return Column{Name: name, Kind: String, Doc: doc, s: func(x *row) (string, bool) { return g(x.r), true }}
}

func nstr(name, doc string, g func(*result.Record) string) Column {
	return Column{Name: name, Kind: String, Doc: doc, s: func(x *row) (string, bool) { v := g(x.r); return v, v != "" }}
}

func i64(name, doc string, g func(*result.Record) int64) Column {
	return Column{Name: name, Kind: Int64, Doc: doc, i: func(x *row) (int64, bool) { return g(x.r), true }}
}

func f64(name, doc string, g func(*result.Record) float64) Column {
	return Column{Name: name, Kind: Float64, Doc: doc, f: func(x *row) (float64, bool) { return g(x.r), true }}
}

func pf64(name, doc string, g func(*result.Record) *float64) Column {
	return Column{Name: name, Kind: Float64, Doc: doc, f: func(x *row) (float64, bool) {
		if p := g(x.r); p != nil {
			return *p, true
		}
		return 0, false
	}}
}

func ts(name, doc string, g func(*result.Record) time.Time) Column {
	return Column{Name: name, Kind: Timestamp, Doc: doc, t: func(x *row) (time.Time, bool) { v := g(x.r); return v, !v.IsZero() }}
}

// rawJSON renders stored JSON compactly (records on disk are indented).
func rawJSON(name, doc string, g func(*result.Record) json.RawMessage) Column {
	return Column{Name: name, Kind: String, Doc: doc,
		s: func(x *row) (string, bool) { return compactJSON(g(x.r)) },
		j: func(x *row) json.RawMessage { return g(x.r) }}
}

// compactJSON is a JSON column's cell: null for absent or JSON null, else
// the JSON without insignificant whitespace (kept as stored if invalid).
func compactJSON(raw []byte) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if bytes.IndexByte(raw, '\n') < 0 {
		return string(raw), true
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw), true
	}
	return b.String(), true
}

func phase(prefix string, g func(*result.Record) *result.PhaseMetrics) []Column {
	return []Column{
		{Name: prefix + "_tokens", Kind: Int64, Doc: prefix + " tokens", i: func(x *row) (int64, bool) {
			if p := g(x.r); p != nil {
				return int64(p.Tokens), true
			}
			return 0, false
		}},
		{Name: prefix + "_time_s", Kind: Float64, Doc: prefix + " time", f: func(x *row) (float64, bool) {
			if p := g(x.r); p != nil {
				return p.TimeS, true
			}
			return 0, false
		}},
		{Name: prefix + "_energy_j", Kind: Float64, Doc: prefix + " energy", f: func(x *row) (float64, bool) {
			if p := g(x.r); p != nil && p.EnergyJ != nil {
				return *p.EnergyJ, true
			}
			return 0, false
		}},
		{Name: prefix + "_tokens_per_sec", Kind: Float64, Doc: prefix + " throughput", f: func(x *row) (float64, bool) {
			if p := g(x.r); p != nil {
				return p.TokensPerSec, true
			}
			return 0, false
		}},
		{Name: prefix + "_energy_per_token_j", Kind: Float64, Doc: prefix + " energy per token", f: func(x *row) (float64, bool) {
			if p := g(x.r); p != nil && p.EnergyPerTokenJ != nil {
				return *p.EnergyPerTokenJ, true
			}
			return 0, false
		}},
	}
}

func dist(prefix string, g func(*result.Record) *result.Dist) []Column {
	cols := []Column{{Name: prefix + "_n", Kind: Int64, Doc: prefix + " sample count (null for a failed run)", i: func(x *row) (int64, bool) {
		return int64(g(x.r).N), x.r.Status == result.StatusOK
	}}}
	for _, q := range []struct {
		suffix string
		get    func(*result.Dist) float64
	}{
		{"mean_ms", func(d *result.Dist) float64 { return d.MeanMs }},
		{"p50_ms", func(d *result.Dist) float64 { return d.P50Ms }},
		{"p90_ms", func(d *result.Dist) float64 { return d.P90Ms }},
		{"p95_ms", func(d *result.Dist) float64 { return d.P95Ms }},
		{"p99_ms", func(d *result.Dist) float64 { return d.P99Ms }},
		{"min_ms", func(d *result.Dist) float64 { return d.MinMs }},
		{"max_ms", func(d *result.Dist) float64 { return d.MaxMs }},
	} {
		cols = append(cols, Column{Name: prefix + "_" + q.suffix, Kind: Float64, Doc: prefix + " " + q.suffix + " (null when n = 0)",
			f: func(x *row) (float64, bool) {
				d := g(x.r)
				if d.N == 0 {
					return 0, false
				}
				return q.get(d), true
			}})
	}
	return cols
}

// Columns is the export schema, one row per run per cycle. Names are
// stable (documented in docs/results.md); new columns are only appended.
// Built on first use, not at init: every llem command links this package,
// and --version or a completion query should not pay for it.
func Columns() []Column { return columns() }

var columns = sync.OnceValue(func() []Column {
	c := []Column{
		str("schema_version", "record schema version", func(r *result.Record) string { return r.SchemaVersion }),
		str("study", "study name", func(r *result.Record) string { return r.Study }),
		nstr("study_hash", "study design hash", func(r *result.Record) string { return r.StudyHash }),
		str("run_id", "stable run id (hash of the effective config)", func(r *result.Record) string { return r.RunID }),
		nstr("experiment", "experiment name", func(r *result.Record) string { return r.Experiment }),
		i64("cycle", "cycle, from 1", func(r *result.Record) int64 { return int64(r.Cycle) }),
		i64("attempt", "attempt, from 1", func(r *result.Record) int64 { return int64(r.Attempt) }),
		i64("position", "position in executed order, from 0", func(r *result.Record) int64 { return int64(r.Position) }),
		str("model", "model id", func(r *result.Record) string { return r.Model }),
		str("backend", "backend", func(r *result.Record) string { return r.Backend }),
		nstr("precision", "precision", func(r *result.Record) string { return r.Precision }),
		str("config_hash", "hash of the canonical effective config", func(r *result.Record) string { return r.ConfigHash }),
		str("status", "ok or failed", func(r *result.Record) string { return string(r.Status) }),
		nstr("error_kind", "failure kind", func(r *result.Record) string {
			if r.Error != nil {
				return r.Error.Kind
			}
			return ""
		}),
		nstr("error_message", "failure message", func(r *result.Record) string {
			if r.Error != nil {
				return r.Error.Message
			}
			return ""
		}),
		ts("started_at", "run start (UTC)", func(r *result.Record) time.Time { return r.Timing.StartedAt }),
		ts("ended_at", "run end (UTC)", func(r *result.Record) time.Time { return r.Timing.EndedAt }),
		f64("wall_s", "whole run", func(r *result.Record) float64 { return r.Timing.WallS }),
		f64("load_s", "model load", func(r *result.Record) float64 { return r.Timing.LoadS }),
		f64("warmup_s", "warmup", func(r *result.Record) float64 { return r.Timing.WarmupS }),
		measuredF64("window_s", "measured window", func(r *result.Record) float64 { return r.Timing.WindowS }),
		str("energy_sensor", "sensor", func(r *result.Record) string { return r.Energy.Sensor }),
		str("energy_method", "counter, power-integration, estimate-tdp or unavailable", func(r *result.Record) string { return r.Energy.Method }),
		nstr("energy_unavailable", "why no energy was measured", func(r *result.Record) string { return r.Energy.Unavailable }),
		f64("sample_interval_ms", "timeline sampling interval", func(r *result.Record) float64 { return r.Energy.SampleIntervalMs }),
		measuredI64("energy_samples", "timeline samples in the window", func(r *result.Record) int64 { return int64(r.Energy.Samples) }),
		pf64("energy_raw_j", "window energy, all devices", func(r *result.Record) *float64 { return r.Energy.RawJ }),
		pf64("energy_adjusted_j", "raw minus idle baseline", func(r *result.Record) *float64 { return r.Energy.BaselineAdjustedJ }),
		pf64("baseline_power_w", "idle baseline power", func(r *result.Record) *float64 {
			if r.Energy.Baseline != nil {
				return &r.Energy.Baseline.PowerW
			}
			return nil
		}),
		nstr("baseline_method", "fresh, cached or unavailable", func(r *result.Record) string {
			if r.Energy.Baseline != nil {
				return r.Energy.Baseline.Method
			}
			return ""
		}),
		pf64("mean_power_w", "raw_j / window_s", func(r *result.Record) *float64 { return r.Energy.MeanPowerW }),
		pf64("peak_power_w", "peak power", func(r *result.Record) *float64 { return r.Energy.PeakPowerW }),
		pf64("cross_check_rel_diff", "|counter - integral| / counter", func(r *result.Record) *float64 {
			if r.Energy.CrossCheck != nil {
				return &r.Energy.CrossCheck.RelDiff
			}
			return nil
		}),
		measuredI64("requests", "requests", func(r *result.Record) int64 { return int64(r.Throughput.Requests) }),
		measuredI64("input_tokens", "input tokens", func(r *result.Record) int64 { return int64(r.Throughput.InputTokens) }),
		measuredI64("output_tokens", "output tokens", func(r *result.Record) int64 { return int64(r.Throughput.OutputTokens) }),
		measuredF64("input_tokens_per_sec", "input tokens / window", func(r *result.Record) float64 { return r.Throughput.InputTokensPerSec }),
		measuredF64("output_tokens_per_sec", "output tokens / window", func(r *result.Record) float64 { return r.Throughput.OutputTokensPerSec }),
		measuredF64("requests_per_sec", "requests / window", func(r *result.Record) float64 { return r.Throughput.RequestsPerSec }),
		nstr("efficiency_basis", "baseline_adjusted or raw", func(r *result.Record) string { return r.Efficiency.Basis }),
		pf64("energy_per_output_token_j", "primary cross-config metric", func(r *result.Record) *float64 { return r.Efficiency.EnergyPerOutputTokenJ }),
		pf64("energy_per_token_j", "energy / (input + output tokens)", func(r *result.Record) *float64 { return r.Efficiency.EnergyPerTokenJ }),
		pf64("energy_per_request_j", "energy / requests", func(r *result.Record) *float64 { return r.Efficiency.EnergyPerRequestJ }),
		pf64("output_tokens_per_j", "output tokens / energy", func(r *result.Record) *float64 { return r.Efficiency.OutputTokensPerJ }),
	}
	c = append(c, phase("prefill", func(r *result.Record) *result.PhaseMetrics { return r.Prefill })...)
	c = append(c, phase("decode", func(r *result.Record) *result.PhaseMetrics { return r.Decode })...)
	c = append(c, dist("ttft", func(r *result.Record) *result.Dist { return &r.Latency.TTFT })...)
	c = append(c, dist("itl", func(r *result.Record) *result.Dist { return &r.Latency.ITL })...)
	c = append(c, dist("tpot", func(r *result.Record) *result.Dist { return &r.Latency.TPOT })...)
	c = append(c, dist("e2e", func(r *result.Record) *result.Dist { return &r.Latency.E2E })...)
	c = append(c,
		pf64("thermal_max_c", "max temperature in the window", func(r *result.Record) *float64 {
			if r.Thermal != nil {
				return r.Thermal.MaxC
			}
			return nil
		}),
		Column{Name: "throttled", Kind: Bool, Doc: "thermal throttling seen", b: func(x *row) (bool, bool) {
			if x.r.Thermal != nil {
				return x.r.Thermal.Throttled, true
			}
			return false, false
		}},
		Column{Name: "model_parameters", Kind: Int64, Doc: "parameter count", i: func(x *row) (int64, bool) {
			if x.r.ModelInfo != nil {
				return x.r.ModelInfo.Parameters, true
			}
			return 0, false
		}},
		Column{Name: "co2_g", Kind: Float64, Doc: "estimated gCO2e (derived, see carbon_*)", f: func(x *row) (float64, bool) {
			return x.co2g, x.est != nil && x.est.CO2Grams != nil
		}},
		Column{Name: "carbon_intensity_g_per_kwh", Kind: Float64, Doc: "grid intensity used", f: func(x *row) (float64, bool) {
			if x.est != nil && x.est.IntensityGPerKWh != nil {
				return *x.est.IntensityGPerKWh, true
			}
			return 0, false
		}},
		Column{Name: "carbon_pue", Kind: Float64, Doc: "PUE used", f: func(x *row) (float64, bool) {
			if x.est != nil && x.est.CO2Grams != nil {
				return x.est.PUE, true
			}
			return 0, false
		}},
		Column{Name: "carbon_method", Kind: String, Doc: "user_intensity or regional_average", s: func(x *row) (string, bool) {
			if x.est != nil && x.est.Method != "" {
				return x.est.Method, true
			}
			return "", false
		}},
		Column{Name: "carbon_source", Kind: String, Doc: "where the intensity came from", s: func(x *row) (string, bool) {
			if x.est != nil && x.est.Source != "" {
				return x.est.Source, true
			}
			return "", false
		}},
		Column{Name: "flags", Kind: StringList, Doc: "validity flags", l: func(x *row) []string { return x.r.Flags }},
		Column{Name: "warnings", Kind: StringList, Doc: "measurement warnings", l: func(x *row) []string { return x.r.Warnings }},
		str("llem_version", "llem version", func(r *result.Record) string { return r.Llem.Version }),
		nstr("timeseries", "timeseries Parquet, relative to the study directory", func(r *result.Record) string { return r.Timeseries }),
		rawJSON("config", "effective config, JSON", func(r *result.Record) json.RawMessage { return r.Config }),
		rawJSON("environment", "environment snapshot, JSON", func(r *result.Record) json.RawMessage { return r.Environment }),
		nstr("phase_split_method", "how prefill was told from decode: timestamps or prefill-pass", func(r *result.Record) string { return r.PhaseSplitMethod }),
		// Appended for issue 16; earlier positions are unchanged.
		pf64("adjusted_energy_per_output_token_j", "energy_adjusted_j / output tokens (null without a baseline)", func(r *result.Record) *float64 { return r.Efficiency.AdjustedEnergyPerOutputTokenJ }),
		measuredI64("window_start_ns", "CLOCK_MONOTONIC start of the measured window (null for a failed run)", func(r *result.Record) int64 { return r.Timing.WindowStartNs }),
		measuredI64("window_end_ns", "CLOCK_MONOTONIC end of the measured window (null for a failed run)", func(r *result.Record) int64 { return r.Timing.WindowEndNs }),
		Column{Name: "model_layers", Kind: Int64, Doc: "transformer layers (worker's loaded event)", i: func(x *row) (int64, bool) {
			if m := x.r.ModelInfo; m != nil && m.Layers > 0 {
				return int64(m.Layers), true
			}
			return 0, false
		}},
		Column{Name: "model_dtype", Kind: String, Doc: "weights dtype as loaded", s: func(x *row) (string, bool) {
			if m := x.r.ModelInfo; m != nil && m.DType != "" {
				return m.DType, true
			}
			return "", false
		}},
		Column{Name: "model_memory_bytes", Kind: Int64, Doc: "model memory reported by the worker", i: func(x *row) (int64, bool) {
			if m := x.r.ModelInfo; m != nil && m.MemoryBytes > 0 {
				return m.MemoryBytes, true
			}
			return 0, false
		}},
		Column{Name: "model_load_time_s", Kind: Float64, Doc: "model load time reported by the worker", f: func(x *row) (float64, bool) {
			if m := x.r.ModelInfo; m != nil {
				return m.LoadTimeS, true
			}
			return 0, false
		}},
		Column{Name: "worker_runner", Kind: String, Doc: "local or docker", s: func(x *row) (string, bool) {
			if w := x.r.Worker; w != nil && w.Runner != "" {
				return w.Runner, true
			}
			return "", false
		}},
		Column{Name: "worker_protocol_version", Kind: Int64, Doc: "worker protocol version", i: func(x *row) (int64, bool) {
			if w := x.r.Worker; w != nil {
				return int64(w.ProtocolVersion), true
			}
			return 0, false
		}},
		Column{Name: "worker_versions", Kind: String, Doc: "backend package versions, JSON object (also one version_<package> column each)", s: func(x *row) (string, bool) {
			if w := x.r.Worker; w != nil && len(w.Versions) > 0 {
				b, _ := json.Marshal(w.Versions) // keys sorted
				return string(b), true
			}
			return "", false
		}},
		nstr("coordinates", "grid coordinates, JSON object (also one typed coord_<dimension> column each)", func(r *result.Record) string {
			s, _ := compactJSON(r.Coordinates)
			if s == "{}" {
				return ""
			}
			return s
		}),
	)
	c = append(c, flopsColumns()...)
	c = append(c,
		pf64("wh_per_1k_output_tokens", "energy_per_output_token_j in Wh per 1000 output tokens (= kWh per million output tokens)", func(r *result.Record) *float64 {
			if p := r.Efficiency.EnergyPerOutputTokenJ; p != nil {
				v := *p * 1000 / 3600
				return &v
			}
			return nil
		}),
	)
	c = append(c, memoryColumns()...)
	return c
})

// memoryColumns are the run's memory: NVML's whole-device peak (record
// memory) beside the backend's own account (record backend_memory: its
// allocator, its KV cache, its weights); null where the record has none.
func memoryColumns() []Column {
	backend := func(name, doc string, g func(m *result.BackendMemory) *int64) Column {
		return Column{Name: name, Kind: Int64, Doc: doc, i: func(x *row) (int64, bool) {
			if m := x.r.BackendMemory; m != nil {
				if v := g(m); v != nil {
					return *v, true
				}
			}
			return 0, false
		}}
	}
	return []Column{
		{Name: "nvml_peak_used_bytes", Kind: Int64, Doc: "peak device memory used in the measured window, all GPUs summed (NVML: every process, the CUDA context included)", i: func(x *row) (int64, bool) {
			if m := x.r.Memory; m != nil && m.PeakUsedBytes > 0 {
				return m.PeakUsedBytes, true
			}
			return 0, false
		}},
		backend("backend_peak_allocated_bytes", "allocator peak of tensor memory as the backend reports it (torch.cuda.max_memory_allocated)", func(m *result.BackendMemory) *int64 { return m.PeakAllocatedBytes }),
		backend("backend_peak_reserved_bytes", "allocator peak of reserved memory (torch.cuda.max_memory_reserved)", func(m *result.BackendMemory) *int64 { return m.PeakReservedBytes }),
		backend("backend_kv_cache_bytes", "KV cache: preallocated capacity (vLLM, TensorRT-LLM) or the largest batch's cache (native)", func(m *result.BackendMemory) *int64 { return m.KVCacheBytes }),
		backend("backend_weights_bytes", "memory the weights occupy, as the backend reports it", func(m *result.BackendMemory) *int64 { return m.WeightsBytes }),
		{Name: "backend_memory_reporter", Kind: String, Doc: "what the worker read for the backend_* memory columns", s: func(x *row) (string, bool) {
			if m := x.r.BackendMemory; m != nil && m.Reporter != "" {
				return m.Reporter, true
			}
			return "", false
		}},
	}
}

// flops is a row's estimated FLOPs: pkg/compute's formula (Kaplan et al.
// 2020) for the run's mean request shape (input and output tokens per
// request), where llem knows the model's architecture (the random
// presets); ok is false otherwise and for failed runs.
func flops(r *result.Record) (compute.FLOPs, bool) {
	t := r.Throughput
	if r.Status != result.StatusOK || t.Requests <= 0 || t.InputTokens <= 0 {
		return compute.FLOPs{}, false
	}
	a, ok := compute.ForModel(r.Model)
	if !ok {
		return compute.FLOPs{}, false
	}
	p := int(math.Round(float64(t.InputTokens) / float64(t.Requests)))
	o := int(math.Round(float64(t.OutputTokens) / float64(t.Requests)))
	return a.RunFLOPs(t.Requests, p, o), true
}

func flopsColumns() []Column {
	get := func(name, doc string, v func(f compute.FLOPs, r *result.Record) (float64, bool)) Column {
		return Column{Name: name, Kind: Float64, Doc: doc, f: func(x *row) (float64, bool) {
			f, ok := flops(x.r)
			if !ok {
				return 0, false
			}
			return v(f, x.r)
		}}
	}
	return []Column{
		get("flops_total", "estimated forward FLOPs of the window's requests (2N + 2·n_layer·ctx·d_attn per token; null when the architecture is unknown)",
			func(f compute.FLOPs, _ *result.Record) (float64, bool) { return f.Total, true }),
		get("flops_per_input_token", "estimated prefill FLOPs per prompt token", func(f compute.FLOPs, _ *result.Record) (float64, bool) { return f.PerInputToken, true }),
		get("flops_per_output_token", "estimated decode FLOPs per decode step", func(f compute.FLOPs, _ *result.Record) (float64, bool) {
			return f.PerOutputToken, f.PerOutputToken > 0
		}),
		get("flops_per_sec", "flops_total / window_s", func(f compute.FLOPs, r *result.Record) (float64, bool) {
			return f.Total / r.Timing.WindowS, r.Timing.WindowS > 0
		}),
	}
}

// measuredF64 is a float64 column that is null for a failed run.
func measuredF64(name, doc string, g func(*result.Record) float64) Column {
	return Column{Name: name, Kind: Float64, Doc: doc, f: func(x *row) (float64, bool) {
		return g(x.r), x.r.Status == result.StatusOK
	}}
}

// measuredI64 is an int64 column that is null for a failed run (its value
// was never measured), as in the JSON export.
func measuredI64(name, doc string, g func(*result.Record) int64) Column {
	return Column{Name: name, Kind: Int64, Doc: doc, i: func(x *row) (int64, bool) {
		return g(x.r), x.r.Status == result.StatusOK
	}}
}
