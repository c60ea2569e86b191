// Package study loads a study file (CUE), validates it against llem's
// embedded schema and expands it into a Plan of concrete runs.
//
// The expansion is done in Go rather than in CUE: CUE type-checks the study
// as written (one pass, every error at once), then Go builds the grid's
// Cartesian product and validates each run on its own by unifying it with
// #Experiment. That keeps one bad combination from failing the study (it is
// skipped and reported with its grid coordinates), lets grids have any
// number of dimensions, and is the frugal route measured in
// docs/study-language.md (about 10k runs in well under half a second).
package study

import (
	"encoding/json"
	"path/filepath"

	"github.com/llenergymeasure/llem/pkg/carbon"
)

// Plan is a study expanded into concrete runs and their execution order.
type Plan struct {
	// Name is the study's name (the file's base name if it has none).
	Name string `json:"name"`
	// Source is the study file's path as given to Load.
	Source string `json:"source"`
	// Kind is "study" or "experiment" (a single-experiment file).
	Kind string `json:"kind"`
	// Runs are the valid, unique runs in expansion order.
	Runs []Run `json:"runs"`
	// Skipped are the generated configs that were invalid, excluded or
	// duplicates, each with why.
	Skipped []Skipped `json:"skipped"`
	// Dims are the grid dimensions (dotted paths) in product order; the
	// "varied params" of the plan.
	Dims []string `json:"dims"`
	// Execution is the study's execution block with defaults filled in.
	Execution Execution `json:"execution"`
	// Carbon is the study's carbon block (schema #Carbon) as written, nil
	// when the study has none. It is study-level: no run's config or hash
	// depends on it. `llem results` reads it from plan.json.
	Carbon *carbon.Config `json:"carbon,omitempty"`
	// Slurm is the study's slurm block (schema #Slurm) as written, nil
	// when the study has none: the sbatch options of `llem eval --on
	// slurm`, over the user config's, under the flags'. Study-level: no
	// run's config or hash depends on it.
	Slurm *Slurm `json:"slurm,omitempty"`
	// Runners maps each backend in the plan to where its worker runs.
	Runners map[string]Runner `json:"runners"`
	// Order lists, per cycle, the indexes into Runs executed in that cycle
	// in that order. For order "sequential" every cycle is 0..n-1 and the
	// cycles of one run execute back to back (see Schedule).
	Order [][]int `json:"order"`
	// Schedule is the exact execution sequence: every (run, cycle) slot in
	// the order the executor runs them.
	Schedule []Slot `json:"schedule"`
	// DesignHash identifies the set of runs (not the execution block), so
	// adding cycles keeps the hash: sha256 over the run hashes in order,
	// 16 hex digits.
	DesignHash string `json:"design_hash"`
	// Seed is the seed actually used for the shuffled order.
	Seed uint64 `json:"seed"`
	// Estimate forecasts the study's wall time (see Estimate); it follows
	// SetCycles.
	Estimate Estimate `json:"estimate"`
	// Warnings are non-fatal remarks (e.g. more than half the grid invalid).
	Warnings []string `json:"warnings,omitempty"`
	// gpuPos locates each gpu value in the study file (see GPUDiag).
	gpuPos map[string]Diagnostic
}

// Slot is one execution of one run.
type Slot struct {
	Run   int `json:"run"`   // index into Plan.Runs
	Cycle int `json:"cycle"` // 1-based
}

// Run is one concrete, valid experiment config.
type Run struct {
	// ID is the first 12 hex digits of Hash: short enough for tables and
	// directory names, long enough not to collide in a study.
	ID string `json:"id"`
	// Hash is the sha256 (hex) of ConfigJSON: the same effective config
	// gives the same hash on any machine.
	Hash    string `json:"hash"`
	Backend string `json:"backend"`
	Model   string `json:"model"`
	// Name is the experiments entry's name (`experiments: [{name: "…"}]`),
	// "" for an unnamed entry and for grid runs. It labels the run (see
	// Plan.Label); it is not part of the config or the hash.
	Name string `json:"name,omitempty"`
	// Origin says where the run came from: "grid", "experiments[i]",
	// "base" or "file".
	Origin string `json:"origin"`
	// Coordinates are the grid values (dotted path → value) that made this
	// run; for an experiments entry, {"experiment": i}.
	Coordinates map[string]any `json:"coordinates"`
	// ConfigJSON is the canonical JSON of the full effective config
	// (sorted keys, defaults filled in, numbers normalised).
	ConfigJSON json.RawMessage `json:"config"`
	// Config is ConfigJSON decoded into Go types.
	Config Config `json:"-"`
}

// Skipped is a generated config that does not run.
type Skipped struct {
	Origin      string         `json:"origin"`
	Name        string         `json:"name,omitempty"`
	Coordinates map[string]any `json:"coordinates"`
	// Kind is "invalid", "excluded" or "duplicate".
	Kind string `json:"kind"`
	// Reasons are one line each ("precision: fp32 is not supported ...").
	Reasons []string `json:"reasons"`
}

// Execution is the study's execution block (schema #Execution).
type Execution struct {
	Cycles            int      `json:"cycles"`
	Order             string   `json:"order"`
	Seed              *int64   `json:"seed,omitempty"`
	GapSeconds        float64  `json:"gap_seconds"`
	CooldownSeconds   float64  `json:"cooldown_seconds"`
	CooldownMaxTempC  *float64 `json:"cooldown_max_temp_c,omitempty"`
	SteadyState       any      `json:"steady_state"` // false, true or a CV threshold
	RunTimeoutSeconds *float64 `json:"run_timeout_seconds,omitempty"`
}

// SteadyStateCV returns the CV threshold for steady-state early stopping,
// or 0 when it is off (steady_state: false).
func (e Execution) SteadyStateCV() float64 {
	switch v := e.SteadyState.(type) {
	case bool:
		if v {
			return 0.05
		}
	case float64:
		return v
	}
	return 0
}

// Runner says where a backend's worker runs (schema #Runner).
type Runner struct {
	Kind    string `json:"kind"`
	Image   string `json:"image,omitempty"`
	ShmSize string `json:"shm_size,omitempty"`
}

// Config is a run's effective experiment config (schema #Experiment).
// Backend sections stay maps: their params belong to pkg/params.
type Config struct {
	Model           string         `json:"model"`
	Backend         string         `json:"backend"`
	Precision       string         `json:"precision"`
	N               int            `json:"n"`
	Dataset         Dataset        `json:"dataset"`
	DatasetOrder    string         `json:"dataset_order"`
	MaxInputTokens  int            `json:"max_input_tokens"`
	MaxOutputTokens int            `json:"max_output_tokens"`
	Decoder         Decoder        `json:"decoder"`
	Warmup          Warmup         `json:"warmup"`
	Baseline        Baseline       `json:"baseline"`
	Energy          Energy         `json:"energy"`
	RandomSeed      int64          `json:"random_seed"`
	GPU             *GPU           `json:"gpu,omitempty"`
	Quality         *Quality       `json:"quality,omitempty"`
	Serving         *Serving       `json:"serving,omitempty"`
	PyTorch         map[string]any `json:"pytorch,omitempty"`
	VLLM            map[string]any `json:"vllm,omitempty"`
	TensorRT        map[string]any `json:"tensorrt,omitempty"`
	Native          map[string]any `json:"native,omitempty"`
}

// Section returns the config's backend section (nil when absent).
func (c *Config) Section() map[string]any {
	switch c.Backend {
	case "pytorch":
		return c.PyTorch
	case "vllm":
		return c.VLLM
	case "tensorrt":
		return c.TensorRT
	case "native":
		return c.Native
	}
	return nil
}

// Dataset is schema #Dataset; which fields are set depends on Source.
type Dataset struct {
	Source       string  `json:"source"` // synthetic | jsonl | aienergyscore
	InputLen     int     `json:"input_len,omitempty"`
	OutputLen    int     `json:"output_len,omitempty"`
	Distribution string  `json:"distribution,omitempty"`
	Spread       float64 `json:"spread,omitempty"`
	Path         string  `json:"path,omitempty"`
	Field        string  `json:"field,omitempty"`
	Name         string  `json:"name,omitempty"`
	Split        string  `json:"split,omitempty"`
	Revision     string  `json:"revision,omitempty"`
}

// Decoder is schema #Decoder with the preset already applied.
type Decoder struct {
	Preset            string   `json:"preset,omitempty"`
	Temperature       float64  `json:"temperature"`
	DoSample          bool     `json:"do_sample"`
	TopK              int      `json:"top_k"`
	TopP              float64  `json:"top_p"`
	MinP              *float64 `json:"min_p,omitempty"`
	RepetitionPenalty float64  `json:"repetition_penalty"`
	MinNewTokens      *int     `json:"min_new_tokens,omitempty"`
}

// Greedy reports whether decoding is greedy (temperature 0 or no sampling).
func (d Decoder) Greedy() bool { return d.Temperature == 0 || !d.DoSample }

// Warmup is schema #Warmup.
type Warmup struct {
	Enabled             bool    `json:"enabled"`
	NWarmup             int     `json:"n_warmup"`
	ThermalFloorSeconds float64 `json:"thermal_floor_seconds"`
}

// Baseline is schema #Baseline.
type Baseline struct {
	Enabled         bool    `json:"enabled"`
	DurationSeconds float64 `json:"duration_seconds"`
	CacheTTLSeconds float64 `json:"cache_ttl_seconds"`
}

// Quality is schema #Quality: what lm-eval scores for the run (nil when
// the study asks for no scoring).
type Quality struct {
	Tasks          []string           `json:"tasks"`
	Weights        map[string]float64 `json:"weights,omitempty"`
	Metrics        map[string]string  `json:"metrics,omitempty"`
	NumFewshot     *int               `json:"num_fewshot,omitempty"`
	Limit          *float64           `json:"limit,omitempty"`
	BatchSize      json.RawMessage    `json:"batch_size"` // a count or "auto", "auto:N"
	Source         string             `json:"source"`
	Seed           int64              `json:"seed"`
	TimeoutSeconds float64            `json:"timeout_seconds"`
	// Scope is how often the run is scored: empty (absent, or "run",
	// which is dropped before hashing) once after all its cycles, "cycle"
	// once after each cycle.
	Scope string `json:"scope,omitempty"`
}

// Quality scopes (schema #Quality.scope).
const (
	QualityScopeRun   = "run"
	QualityScopeCycle = "cycle"
)

// PerCycle reports whether the run is scored after each of its cycles
// (quality.scope "cycle") rather than once.
func (q *Quality) PerCycle() bool { return q != nil && q.Scope == QualityScopeCycle }

// Scored reports whether the run is scored (a quality section whose source
// is not none).
func (c *Config) Scored() bool { return c.Quality != nil && c.Quality.Source != "none" }

// Energy is schema #Energy.
type Energy struct {
	Sensor           string `json:"sensor"`
	SampleIntervalMs int    `json:"sample_interval_ms,omitempty"`
	// Domains are the energy domains efficiency ratios count (empty: the
	// default, accelerators + CPU + DRAM where measured).
	Domains []string `json:"domains,omitempty"`
}

// ResolvePath resolves a path written in the study (e.g. dataset.path of a
// jsonl dataset) against the study file's directory. Configs keep the path
// as written, so run IDs do not depend on where the study lives.
func (p *Plan) ResolvePath(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(p.Source), path)
}

// Slurm is a study's slurm block: per-task sbatch options (schema #Slurm).
type Slurm struct {
	Partition   string   `json:"partition,omitempty"`
	Account     string   `json:"account,omitempty"`
	QOS         string   `json:"qos,omitempty"`
	GPUs        string   `json:"gpus,omitempty"`
	CPUs        int      `json:"cpus,omitempty"`
	Mem         string   `json:"mem,omitempty"`
	Time        string   `json:"time,omitempty"`
	Constraint  string   `json:"constraint,omitempty"`
	Extra       []string `json:"extra,omitempty"`
	MaxParallel int      `json:"max_parallel,omitempty"`
}

// Serving is schema #Serving: a serving run's server, load, SLO and
// steady-state rule (docs/serving.md).
type Serving struct {
	Server      ServingServer   `json:"server"`
	Load        ServingLoad     `json:"load"`
	SLO         *SLO            `json:"slo,omitempty"`
	SteadyState SteadyStateRule `json:"steady_state"`
	API         string          `json:"api"`
}

// ServingServer is schema #ServingServer.
type ServingServer struct {
	URL                 string   `json:"url,omitempty"`
	StartTimeoutSeconds float64  `json:"start_timeout_seconds"`
	Args                []string `json:"args,omitempty"`
}

// ServingLoad is schema #ServingLoad.
type ServingLoad struct {
	Rate            float64 `json:"rate,omitempty"`
	Arrivals        string  `json:"arrivals"`
	Burstiness      float64 `json:"burstiness,omitempty"`
	Concurrency     int     `json:"concurrency,omitempty"`
	Requests        int     `json:"requests,omitempty"`
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	TimeoutSeconds  float64 `json:"timeout_seconds"`
	WarmupRequests  int     `json:"warmup_requests"`
}

// SLO is schema #SLO, in milliseconds (0: no bound).
type SLO struct {
	TTFTMs float64 `json:"ttft_ms,omitempty"`
	TPOTMs float64 `json:"tpot_ms,omitempty"`
	E2EMs  float64 `json:"e2e_ms,omitempty"`
}

// SteadyStateRule is schema #SteadyStateRule.
type SteadyStateRule struct {
	BinSeconds     float64 `json:"bin_seconds"`
	Tolerance      float64 `json:"tolerance"`
	MinSpanSeconds float64 `json:"min_span_seconds"`
}
