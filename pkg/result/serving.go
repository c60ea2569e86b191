package result

import "math"

// Serving is what a serving-mode run adds to its record (docs/serving.md):
// the server, the load, the steady-state window the energy is measured
// over, and what the requests saw. The record's throughput, efficiency and
// latency fields hold the steady-state window's numbers, so summaries,
// exports and reports treat a serving run like an offline one.
type Serving struct {
	Server ServingServer `json:"server"`
	Load   ServingLoad   `json:"load"`
	// SteadyState is the window energy was measured over; nil when the run
	// never reached one (flag no_steady_state), then the window is the
	// whole load and per-request figures are not trusted.
	SteadyState   *ServingWindow `json:"steady_state" doc:"the span where the server ran steadily at the target load (docs/serving.md); null when it never reached one (flag no_steady_state)"`
	NoSteadyState string         `json:"no_steady_state,omitempty" doc:"why no steady state was found"`
	// Whole-run counts (every request sent, not only the window's).
	Requests  int `json:"requests" doc:"requests sent over the whole load"`
	Completed int `json:"completed" doc:"requests that completed over the whole load"`
	Failed    int `json:"failed" doc:"requests that failed (HTTP errors, cut streams, timeouts included)"`
	TimedOut  int `json:"timed_out" doc:"requests the client timed out (load.timeout_seconds)"`
	// In the window.
	WindowRequests    int         `json:"window_requests" doc:"requests that completed inside the steady-state window"`
	GoodputRps        *float64    `json:"goodput_rps" doc:"window requests meeting every SLO bound, per second; null without an SLO"`
	SLOAttainment     *float64    `json:"slo_attainment,omitempty" doc:"fraction of window requests meeting every SLO bound"`
	EnergyPerRequestJ *EnergyDist `json:"energy_per_request_j,omitempty" doc:"distribution of per-request energy: the window's energy shared per sampling interval among the requests by the tokens each processed in it (docs/serving.md)"`
	InFlightMean      float64     `json:"in_flight_mean" doc:"time-averaged requests in flight over the window"`
	ScheduleLagP99Ms  float64     `json:"schedule_lag_p99_ms" doc:"99th percentile of send time minus scheduled time (open loop)"`
	GeneratorBehind   bool        `json:"generator_behind" doc:"the load generator fell behind its schedule (a send over 1 ms late)"`
	PerRequestEnergyJ []float64   `json:"per_request_energy_j,omitempty" doc:"each window request's attributed energy (J), in request order"`
}

// ServingServer is the server under load.
type ServingServer struct {
	Kind    string   `json:"kind" doc:"native (llem serve), vllm, tensorrt, or url (an existing server)"`
	URL     string   `json:"url"`
	Command []string `json:"command,omitempty" doc:"the server command llem started"`
	// Measured says what llem's sensors measured: this machine's devices,
	// also for a url: server (which must run on this machine).
	Measured string  `json:"measured" doc:"what the energy covers: this machine's devices"`
	StartS   float64 `json:"start_s" doc:"seconds from server start to healthy"`
}

// ServingLoad is the offered load.
type ServingLoad struct {
	Mode        string  `json:"mode" doc:"open (arrivals at a rate) or closed (concurrency)"`
	Arrivals    string  `json:"arrivals,omitempty" doc:"poisson, gamma or constant"`
	RateRps     float64 `json:"rate_rps,omitempty"`
	Burstiness  float64 `json:"burstiness,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	DurationS   float64 `json:"duration_s" doc:"wall time of the load, first send to last response"`
}

// ServingWindow is a detected steady-state window (CLOCK_MONOTONIC ns).
type ServingWindow struct {
	StartNs       int64   `json:"start_ns"`
	EndNs         int64   `json:"end_ns"`
	DurationS     float64 `json:"duration_s"`
	StartOffsetS  float64 `json:"start_offset_s" doc:"seconds from the first send"`
	TargetRunning float64 `json:"target_running" doc:"K: time-averaged requests running (first token received, not finished) over the middle half of the load"`
	TokenRate     float64 `json:"token_rate" doc:"median output tokens/s of the window's bins"`
	Bins          int     `json:"bins" doc:"bins of the signals in the window"`
	BinS          float64 `json:"bin_s" doc:"bin width: steady_state.bin_seconds, widened to hold at least three arrivals"`
}

// FillServing sets the serving section and puts the steady-state window's
// work into throughput and its ratios into efficiency (from energy.raw_j),
// so serving records summarise like offline ones.
func (r *Record) FillServing(s *Serving, requests, inputTokens, outputTokens int) {
	r.Serving = s
	// A serving window is one host phase over the server's steady state:
	// there is no prefill/decode split to report (docs/serving.md), and a
	// zero-valued section would read as "0 J of prefill" in every export.
	r.Prefill, r.Decode = nil, nil
	T := r.Timing.WindowS
	t := &r.Throughput
	t.Requests, t.InputTokens, t.OutputTokens = requests, inputTokens, outputTokens
	if T > 0 {
		t.InputTokensPerSec = float64(inputTokens) / T
		t.OutputTokensPerSec = float64(outputTokens) / T
		t.RequestsPerSec = float64(requests) / T
	}
	if r.Energy.RawJ == nil {
		return
	}
	e := *r.Energy.RawJ
	ef := &r.Efficiency
	ef.EnergyPerOutputTokenJ, ef.EnergyPerTokenJ, ef.EnergyPerRequestJ, ef.OutputTokensPerJ = nil, nil, nil, nil
	if outputTokens > 0 {
		ef.EnergyPerOutputTokenJ = float64Ptr(e / float64(outputTokens))
		if r.Energy.BaselineAdjustedJ != nil {
			ef.AdjustedEnergyPerOutputTokenJ = float64Ptr(math.Max(0, *r.Energy.BaselineAdjustedJ) / float64(outputTokens))
		}
	}
	if inputTokens+outputTokens > 0 {
		ef.EnergyPerTokenJ = float64Ptr(e / float64(inputTokens+outputTokens))
	}
	if requests > 0 {
		ef.EnergyPerRequestJ = float64Ptr(e / float64(requests))
	}
	if e > 0 {
		ef.OutputTokensPerJ = float64Ptr(float64(outputTokens) / e)
	}
}

// EnergyDist summarises per-request energies in joules.
type EnergyDist struct {
	N     int     `json:"n"`
	MeanJ float64 `json:"mean_j"`
	P50J  float64 `json:"p50_j"`
	P90J  float64 `json:"p90_j"`
	P99J  float64 `json:"p99_j"`
	MaxJ  float64 `json:"max_j"`
}
