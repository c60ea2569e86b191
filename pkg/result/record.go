// Package result defines llem's versioned result records and the on-disk
// store of one study execution (plan, manifest, one record per run per cycle,
// a timeseries Parquet per measured window, and the study summary).
//
// Field names are stable and carry their units (energy_j, time_s, power_w,
// t_ns, _ms for latencies). A value that could not be measured is absent or
// null with a reason, never a silent zero. The JSON Schema of Record is
// generated from these types (docs/schema/record.schema.json) and a test fails
// when it is stale.
//
// Differences from the Python original's ExperimentResult (schema 2.0), on
// purpose: throughput is split into input and output tokens/s (2.0 counted
// input tokens as output throughput); energy per token names its basis
// (output tokens); per-device energy is populated; latency is recorded
// (TTFT, ITL, TPOT, end-to-end percentiles); the warmup and the phase split
// are kept; start/end times are UTC; an unavailable sensor is explicit.
package result

import (
	"encoding/json"
	"time"

	"github.com/llenergymeasure/llem/pkg/carbon"
)

// SchemaVersion of Record, Manifest and Summary. The Python original wrote
// "2.0"; this Go port's records are a new shape, hence "3.0". Bump the minor
// for additive changes, the major for anything a reader must handle.
const SchemaVersion = "3.0"

// Status of one run × cycle.
type Status string

// Record statuses.
const (
	StatusOK     Status = "ok"
	StatusFailed Status = "failed"
)

// Record is the result of one run of one experiment in one cycle.
type Record struct {
	SchemaVersion string `json:"schema_version" doc:"version of this record's shape (3.x)"`
	Study         string `json:"study" doc:"study name"`
	StudyHash     string `json:"study_hash,omitempty" doc:"hash of the study design (all runs and execution settings)"`
	RunID         string `json:"run_id" doc:"stable id of the run: derived from the hash of its effective config"`
	Experiment    string `json:"experiment,omitempty" doc:"where the run came from in the study: grid, experiments[i], base or file"`
	// Coordinates are the grid values that made this run.
	Coordinates json.RawMessage `json:"coordinates,omitempty" doc:"grid values (dotted path → value) that made this run"`
	Cycle       int             `json:"cycle" doc:"cycle number, from 1"`
	Attempt     int             `json:"attempt" doc:"attempt number of this run×cycle, from 1 (a resumed failure is retried)"`
	Position    int             `json:"position" doc:"position of this run×cycle in the executed order, from 0"`

	// Convenience copies of the config's main axes, for flat exports.
	Model     string `json:"model"`
	Backend   string `json:"backend"`
	Precision string `json:"precision,omitempty"`

	Config      json.RawMessage `json:"config" doc:"the full effective experiment config"`
	ConfigHash  string          `json:"config_hash" doc:"hash of the canonical JSON of config"`
	Environment json.RawMessage `json:"environment,omitempty" doc:"environment snapshot (hardware, drivers, OS, container), collected once per study"`
	Llem        LlemInfo        `json:"llem"`
	Worker      *WorkerInfo     `json:"worker,omitempty" doc:"what the worker said about itself (hello event)"`
	ModelInfo   *ModelInfo      `json:"model_info,omitempty" doc:"model facts from the worker (loaded event)"`

	Status     Status     `json:"status" doc:"ok or failed"`
	Error      *RunError  `json:"error,omitempty" doc:"why the run failed; absent when status is ok"`
	Timing     Timing     `json:"timing"`
	Energy     Energy     `json:"energy"`
	Throughput Throughput `json:"throughput"`
	// Efficiency is energy divided by work, on the basis named in each field.
	Efficiency Efficiency    `json:"efficiency"`
	Prefill    *PhaseMetrics `json:"prefill,omitempty" doc:"prefill phase: prompt processing up to the first token"`
	Decode     *PhaseMetrics `json:"decode,omitempty" doc:"decode phase: tokens after the first"`
	// PhaseSplitMethod is how prefill was told from decode.
	PhaseSplitMethod string        `json:"phase_split_method,omitempty" doc:"timestamps (each batch's first forward pass timed directly) or prefill-pass (a separate max_tokens=1 pass measured before the full generation; decode = full generation − that pass)"`
	Latency          Latency       `json:"latency"`
	Thermal          *Thermal      `json:"thermal,omitempty"`
	Memory           *DeviceMemory `json:"memory,omitempty" doc:"device memory the sampler saw in the measured window (NVML); absent without a GPU sensor"`
	// BackendMemory is the backend's own account (its allocator, its KV
	// cache), beside NVML's whole-device view in Memory.
	BackendMemory *BackendMemory `json:"backend_memory,omitempty" doc:"memory as the backend itself reports it (done event's memory: allocator peaks, KV cache, weights); absent when the worker reports none"`
	Warmup        *Warmup        `json:"warmup,omitempty"`
	// Serving is a serving-mode run's server, load and steady state.
	Serving *Serving `json:"serving,omitempty" doc:"serving mode (docs/serving.md): the server, the load, the steady-state window and per-request energy; absent for offline runs"`

	// GPUSettings is what was in effect on each GPU when the study set GPU
	// settings (gpu: section); absent otherwise.
	GPUSettings []GPUState `json:"gpu_settings,omitempty" doc:"per GPU: the power limit and clocks in effect for this run, when the study set them (gpu: section)"`
	// CO2 is this record's emissions estimate (FillCO2); absent in records
	// written before schema 3.1 and until a carbon setting is applied.
	CO2 *carbon.Estimate `json:"co2,omitempty" doc:"estimated emissions of this run×cycle: carbon.Compute of the energy its efficiency ratios use (result.CarbonEnergyJ); co2_g null with absent_reason when no intensity resolves; absent when no energy was measured"`

	Flags      []string `json:"flags" doc:"validity flags: machine-readable reasons to distrust this record (e.g. estimate_used, window_too_short, power_throttling; docs/methodology.md lists them)"`
	Warnings   []string `json:"warnings" doc:"human-readable measurement warnings"`
	Timeseries string   `json:"timeseries,omitempty" doc:"path of the measured window's timeseries Parquet, relative to the study directory"`

	// CycleQuality is this cycle's lm-eval scoring when the run is scored
	// per cycle (quality.scope "cycle"): linked by LoadStudy from the
	// study's quality records for the per-cycle export columns. It is not
	// part of the record file (records/<run>/quality-c<N>.json is).
	CycleQuality *QualityRecord `json:"-"`
}

// GPUState is one GPU's settings as read back from NVML after the run.
type GPUState struct {
	UUID                string   `json:"uuid"`
	Index               int      `json:"index" doc:"NVML index"`
	PowerLimitW         float64  `json:"power_limit_w" doc:"power management limit in effect (W)"`
	EnforcedPowerLimitW float64  `json:"enforced_power_limit_w" doc:"limit the driver enforces (W): the lowest of every limit in force, including ones llem did not set"`
	DefaultPowerLimitW  float64  `json:"default_power_limit_w,omitempty" doc:"the GPU's default power limit (W)"`
	LockedSMClockMHz    *int     `json:"locked_sm_clock_mhz,omitempty" doc:"SM clock llem locked for this run (MHz); absent: not locked by llem"`
	LockedMemClockMHz   *int     `json:"locked_mem_clock_mhz,omitempty" doc:"memory clock llem locked for this run (MHz)"`
	AppSMClockMHz       int      `json:"app_sm_clock_mhz,omitempty" doc:"application graphics clock in effect (MHz)"`
	AppMemClockMHz      int      `json:"app_mem_clock_mhz,omitempty" doc:"application memory clock in effect (MHz)"`
	SMClockMHz          int      `json:"sm_clock_mhz,omitempty" doc:"SM clock when read, right after the worker ended (MHz)"`
	MemClockMHz         int      `json:"mem_clock_mhz,omitempty" doc:"memory clock when read (MHz)"`
	ThrottleReasons     []string `json:"throttle_reasons" doc:"clock event reasons active when read (sw_power_cap, hw_slowdown, sw_thermal, hw_thermal, hw_power_brake, applications_clocks, ...); the timeline has them per sample"`
	Error               string   `json:"error,omitempty" doc:"why reading back failed"`
}

// LlemInfo identifies the llem build that produced a record.
type LlemInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// WorkerInfo is the worker's hello.
type WorkerInfo struct {
	Backend         string            `json:"backend"`
	ProtocolVersion int               `json:"protocol_version"`
	Versions        map[string]string `json:"versions,omitempty" doc:"backend package versions, e.g. torch, transformers"`
	Runner          string            `json:"runner" doc:"local or docker"`
}

// ModelInfo is the worker's loaded event.
type ModelInfo struct {
	Parameters  int64   `json:"parameters"`
	Layers      int     `json:"layers,omitempty"`
	DType       string  `json:"dtype,omitempty"`
	MemoryBytes int64   `json:"memory_bytes,omitempty"`
	LoadTimeS   float64 `json:"load_time_s"`
}

// RunError says why a run failed.
type RunError struct {
	Kind       string `json:"kind" doc:"timeout, interrupted, crash, protocol, spawn, or the worker's own kind (oom, config, unsupported, ...)"`
	Message    string `json:"message"`
	Hint       string `json:"hint,omitempty"`
	ExitCode   int    `json:"exit_code"`
	StderrTail string `json:"stderr_tail,omitempty" doc:"last lines of the worker's stderr"`
}

// Timing of one run×cycle. Wall-clock instants are UTC; durations come from
// the monotonic clock.
type Timing struct {
	StartedAt     time.Time `json:"started_at"`
	EndedAt       time.Time `json:"ended_at"`
	WallS         float64   `json:"wall_s" doc:"whole run including worker start, model load and warmup"`
	LoadS         float64   `json:"load_s" doc:"model load, from the worker's loaded event"`
	WarmupS       float64   `json:"warmup_s"`
	WindowS       float64   `json:"window_s" doc:"measured window: from the first measured prefill (warmup and thermal floor excluded; for prefill-pass workers the full generation) to the worker's done"`
	WindowStartNs int64     `json:"window_start_ns" doc:"CLOCK_MONOTONIC start of the measured window"`
	WindowEndNs   int64     `json:"window_end_ns" doc:"CLOCK_MONOTONIC end of the measured window"`
}

// Energy of the measured window.
type Energy struct {
	Sensor           string  `json:"sensor" doc:"nvml, rapl, estimate, none, ..."`
	Method           string  `json:"method" doc:"counter, power-integration, estimate-tdp or unavailable"`
	Unavailable      string  `json:"unavailable,omitempty" doc:"why no energy was measured, when method is unavailable"`
	SampleIntervalMs float64 `json:"sample_interval_ms"`
	Samples          int     `json:"samples" doc:"timeline samples inside the window"`
	// RawJ is the energy of the window; nil when no sensor measured it.
	RawJ *float64 `json:"raw_j" doc:"energy of the measured window, all devices; null when unavailable"`
	// BaselineAdjustedJ = max(0, raw − baseline power × window time).
	BaselineAdjustedJ *float64           `json:"baseline_adjusted_j" doc:"max(0, raw_j − baseline.power_w × window_s); null without a baseline"`
	Baseline          *Baseline          `json:"baseline,omitempty"`
	PerDevice         []DeviceEnergy     `json:"per_device" doc:"one entry per measured device"`
	PerDomainJ        map[string]float64 `json:"per_domain_j,omitempty" doc:"energy by domain, e.g. gpu, cpu-package, dram"`
	// AllDomainsJ and EfficiencyDomains: composite measurement (energy.domains).
	AllDomainsJ       *float64     `json:"all_domains_j,omitempty" doc:"energy of every measured domain (accelerator, cpu, dram, platform), including those not in efficiency_domains; raw_j covers efficiency_domains only"`
	EfficiencyDomains []string     `json:"efficiency_domains,omitempty" doc:"the domains raw_j and the efficiency ratios cover: energy.domains (default accelerator, cpu, dram) among those measured"`
	Phases            []PhaseShare `json:"phases,omitempty" doc:"the window's energy fully attributed: prefill, decode and host (time between and around batches); energies sum to raw_j within 0.1%"`
	MeanPowerW        *float64     `json:"mean_power_w" doc:"raw_j / window_s"`
	PeakPowerW        *float64     `json:"peak_power_w,omitempty"`
	CrossCheck        *CrossCheck  `json:"cross_check,omitempty" doc:"counter vs timeline integral, where both exist"`
}

// Baseline is the idle power subtracted from the raw energy.
type Baseline struct {
	PowerW     float64   `json:"power_w"`
	Method     string    `json:"method" doc:"fresh (measured for this run), cached (reused within its TTL) or unavailable"`
	DurationS  float64   `json:"duration_s" doc:"length of the idle measurement"`
	MeasuredAt time.Time `json:"measured_at"`
	AgeS       float64   `json:"age_s" doc:"age of the baseline when the window started"`
	NotIdle    []string  `json:"not_idle,omitempty" doc:"why the machine was not idle while the baseline was measured (GPU utilisation or power above the device's idle floor, other GPU processes, host CPU load); empty when it was"`
}

// PhaseShare is one phase's part of the window energy.
type PhaseShare struct {
	Name      string   `json:"name" doc:"prefill, decode or host (window time outside every prefill and decode span: between batches, tokenisation, scheduling)"`
	DurationS float64  `json:"duration_s"`
	EnergyJ   float64  `json:"energy_j"`
	Share     float64  `json:"share" doc:"energy_j / raw_j"`
	AdjustedJ *float64 `json:"adjusted_j,omitempty" doc:"energy_j − baseline power × duration_s, when a baseline exists"`
}

// DeviceEnergy is one device's share of the window.
type DeviceEnergy struct {
	Index      int      `json:"index"`
	Name       string   `json:"name"`
	Kind       string   `json:"kind" doc:"gpu, cpu, dram, estimate"`
	EnergyJ    float64  `json:"energy_j"`
	MeanPowerW float64  `json:"mean_power_w"`
	BaselineW  *float64 `json:"baseline_w,omitempty"`
	Method     string   `json:"method"`
	Domain     string   `json:"domain,omitempty" doc:"accelerator, cpu, dram or platform"`
	Excluded   bool     `json:"excluded,omitempty" doc:"true when the domain is not in efficiency_domains: reported, not in raw_j"`
}

// CrossCheck compares two estimates of the same window energy.
type CrossCheck struct {
	CounterJ  float64 `json:"counter_j"`
	IntegralJ float64 `json:"integral_j"`
	RelDiff   float64 `json:"rel_diff" doc:"|counter − integral| / counter"`
}

// Throughput of the measured window. Input and output are separate: the
// Python original's single figure counted prompt tokens as throughput.
type Throughput struct {
	Requests           int     `json:"requests"`
	InputTokens        int     `json:"input_tokens"`
	OutputTokens       int     `json:"output_tokens"`
	InputTokensPerSec  float64 `json:"input_tokens_per_sec"`
	OutputTokensPerSec float64 `json:"output_tokens_per_sec"`
	RequestsPerSec     float64 `json:"requests_per_sec"`
}

// Efficiency: energy per unit of work, on raw window energy (what the
// hardware drew; the Python original's avg_energy_per_token_j and
// ML.ENERGY's J/token use the same basis); nil when energy is unavailable.
// The baseline-adjusted variant is reported beside it, never instead.
type Efficiency struct {
	Basis                         string   `json:"basis" doc:"raw: the ratios divide energy.raw_j; none when energy is unavailable"`
	EnergyPerOutputTokenJ         *float64 `json:"energy_per_output_token_j" doc:"the primary cross-config metric"`
	EnergyPerTokenJ               *float64 `json:"energy_per_token_j" doc:"energy / (input + output tokens)"`
	EnergyPerRequestJ             *float64 `json:"energy_per_request_j"`
	OutputTokensPerJ              *float64 `json:"output_tokens_per_j"`
	AdjustedEnergyPerOutputTokenJ *float64 `json:"adjusted_energy_per_output_token_j,omitempty" doc:"energy.baseline_adjusted_j / output tokens, when a baseline exists"`
}

// PhaseMetrics is one inference phase summed over the window's batches.
type PhaseMetrics struct {
	Tokens          int      `json:"tokens" doc:"prefill: prompt tokens; decode: generated tokens after the first"`
	TimeS           float64  `json:"time_s"`
	EnergyJ         *float64 `json:"energy_j" doc:"energy attributed to the phase's intervals; null when unavailable"`
	TokensPerSec    float64  `json:"tokens_per_sec"`
	EnergyPerTokenJ *float64 `json:"energy_per_token_j"`
}

// Latency of the window's requests.
type Latency struct {
	TTFT Dist `json:"ttft" doc:"time to first token per request"`
	ITL  Dist `json:"itl" doc:"inter-token latency, every gap of every request"`
	TPOT Dist `json:"tpot" doc:"time per output token after the first, per request: (e2e − ttft)/(out − 1)"`
	E2E  Dist `json:"e2e" doc:"end-to-end latency per request"`
	// PerRequest keeps every request's latencies (the distributions above
	// summarise them), for analyses the percentiles cannot answer.
	PerRequest []RequestLatency `json:"per_request,omitempty" doc:"each measured request's latencies, in request order"`
}

// RequestLatency is one request of the measured window.
type RequestLatency struct {
	Index        int      `json:"index"`
	Batch        int      `json:"batch"`
	InputTokens  int      `json:"input_tokens"`
	OutputTokens int      `json:"output_tokens"`
	TTFTMs       float64  `json:"ttft_ms"`
	E2EMs        float64  `json:"e2e_ms"`
	TPOTMs       *float64 `json:"tpot_ms" doc:"(e2e − ttft)/(output_tokens − 1); null for a single output token"`
	FinishReason string   `json:"finish_reason,omitempty" doc:"eos, length or stop"`
}

// Dist summarises a latency sample in milliseconds; N=0 means no samples.
type Dist struct {
	N      int     `json:"n"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P95Ms  float64 `json:"p95_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MinMs  float64 `json:"min_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Thermal state over the window, where a device reports temperature.
type Thermal struct {
	StartC    *float64 `json:"start_c"`
	EndC      *float64 `json:"end_c"`
	MaxC      *float64 `json:"max_c"`
	Throttled bool     `json:"throttled"`
	ThrottleS float64  `json:"throttle_s"`
	GapS      float64  `json:"gap_s" doc:"cool-down before this run"`
	GapReason string   `json:"gap_reason,omitempty" doc:"time, temperature, skipped or none"`
}

// Warmup before the measured window.
type Warmup struct {
	Prompts       int     `json:"prompts"`
	TimeS         float64 `json:"time_s"`
	ThermalFloorS float64 `json:"thermal_floor_s"`
}

// BackendMemory is the worker's own report of its memory (protocol.Memory):
// what its allocator held at peak during the measured requests, its KV
// cache and its weights. A field is absent when the backend does not know
// it. NVML's DeviceMemory sees the whole device instead (CUDA context,
// other processes, the allocator's cache).
type BackendMemory struct {
	PeakAllocatedBytes *int64 `json:"peak_allocated_bytes,omitempty" doc:"allocator peak of memory held by tensors in the measured requests (torch.cuda.max_memory_allocated, summed over devices)"`
	PeakReservedBytes  *int64 `json:"peak_reserved_bytes,omitempty" doc:"allocator peak of reserved memory (torch.cuda.max_memory_reserved, summed over devices)"`
	KVCacheBytes       *int64 `json:"kv_cache_bytes,omitempty" doc:"KV cache: preallocated capacity (vLLM, TensorRT-LLM) or the largest batch's cache (native)"`
	WeightsBytes       *int64 `json:"weights_bytes,omitempty" doc:"memory the weights occupy"`
	Source             string `json:"source" doc:"backend (beside memory.source nvml)"`
	Reporter           string `json:"reporter" doc:"what the worker read: torch.cuda, vllm cache_config, tensorrt_llm kvCacheStats, llem engine"`
}

// DeviceMemory is the measured window's device memory as NVML reports it:
// used memory of the whole GPU (every process on it, the CUDA context
// included), sampled with the power timeline.
type DeviceMemory struct {
	PeakUsedBytes int64            `json:"peak_used_bytes" doc:"sum over the measured GPUs of each one's highest used memory in the window"`
	PerDevice     map[string]int64 `json:"per_device_peak_bytes" doc:"highest used memory in the window per GPU channel"`
	Source        string           `json:"source" doc:"nvml (backend_memory has source backend)"`
}
