package json

import (
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// record is a Record as exported: the stored fields, with the values a
// failed run never measured as null rather than 0 (throughput, the
// window, sample and latency counts: the same cells the Parquet export
// leaves null), latency quantiles null when a distribution has no
// samples, and the record's CO2 estimate under the export's carbon
// settings. Fields declared here shadow the embedded record's.
type record struct {
	*result.Record
	Timing     timing           `json:"timing"`
	Energy     energy           `json:"energy"`
	Throughput throughput       `json:"throughput"`
	Latency    latency          `json:"latency"`
	CO2        *carbon.Estimate `json:"co2"`
}

type timing struct {
	result.Timing
	WindowS       *float64 `json:"window_s"`
	WindowStartNs *int64   `json:"window_start_ns"`
	WindowEndNs   *int64   `json:"window_end_ns"`
}

type energy struct {
	result.Energy
	Samples *int `json:"samples"`
}

type throughput struct {
	Requests           *int     `json:"requests"`
	InputTokens        *int     `json:"input_tokens"`
	OutputTokens       *int     `json:"output_tokens"`
	InputTokensPerSec  *float64 `json:"input_tokens_per_sec"`
	OutputTokensPerSec *float64 `json:"output_tokens_per_sec"`
	RequestsPerSec     *float64 `json:"requests_per_sec"`
}

type latency struct {
	TTFT       dist                    `json:"ttft"`
	ITL        dist                    `json:"itl"`
	TPOT       dist                    `json:"tpot"`
	E2E        dist                    `json:"e2e"`
	PerRequest []result.RequestLatency `json:"per_request,omitempty"`
}

type dist struct {
	N      *int     `json:"n"`
	MeanMs *float64 `json:"mean_ms"`
	P50Ms  *float64 `json:"p50_ms"`
	P90Ms  *float64 `json:"p90_ms"`
	P95Ms  *float64 `json:"p95_ms"`
	P99Ms  *float64 `json:"p99_ms"`
	MinMs  *float64 `json:"min_ms"`
	MaxMs  *float64 `json:"max_ms"`
}

func some[T any](v T, ok bool) *T {
	if !ok {
		return nil
	}
	return &v
}

func viewDist(d result.Dist, ok bool) dist {
	q := ok && d.N > 0
	return dist{N: some(d.N, ok), MeanMs: some(d.MeanMs, q), P50Ms: some(d.P50Ms, q), P90Ms: some(d.P90Ms, q),
		P95Ms: some(d.P95Ms, q), P99Ms: some(d.P99Ms, q), MinMs: some(d.MinMs, q), MaxMs: some(d.MaxMs, q)}
}

// view is r as exported under cc.
func view(r *result.Record, cc carbon.Config) record {
	ok := r.Status == result.StatusOK
	t := r.Throughput
	return record{
		Record: r,
		Timing: timing{Timing: r.Timing, WindowS: some(r.Timing.WindowS, ok),
			WindowStartNs: some(r.Timing.WindowStartNs, ok), WindowEndNs: some(r.Timing.WindowEndNs, ok)},
		Energy: energy{Energy: r.Energy, Samples: some(r.Energy.Samples, ok)},
		Throughput: throughput{Requests: some(t.Requests, ok), InputTokens: some(t.InputTokens, ok), OutputTokens: some(t.OutputTokens, ok),
			InputTokensPerSec: some(t.InputTokensPerSec, ok), OutputTokensPerSec: some(t.OutputTokensPerSec, ok), RequestsPerSec: some(t.RequestsPerSec, ok)},
		Latency: latency{TTFT: viewDist(r.Latency.TTFT, ok), ITL: viewDist(r.Latency.ITL, ok), TPOT: viewDist(r.Latency.TPOT, ok), E2E: viewDist(r.Latency.E2E, ok),
			PerRequest: r.Latency.PerRequest},
		CO2: result.RecordCO2(r, cc),
	}
}
