package native

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/pkg/engine"
)

// runConfig is the part of the effective experiment config the native worker
// reads. Unknown keys are ignored: the config also carries what only the
// parent uses (energy, baseline, …).
type runConfig struct {
	Model           string          `json:"model"`
	Backend         string          `json:"backend"`
	Precision       string          `json:"precision"`
	N               int             `json:"n"`
	MaxInputTokens  int             `json:"max_input_tokens"`
	MaxOutputTokens int             `json:"max_output_tokens"`
	RandomSeed      int64           `json:"random_seed"`
	Dataset         json.RawMessage `json:"dataset"`
	Decoder         decoderConfig   `json:"decoder"`
	Warmup          warmupConfig    `json:"warmup"`
	Native          nativeConfig    `json:"native"`
}

// decoderConfig uses pointers so that a preset fills only what the user
// did not set (the schema expands presets too; this keeps a hand-written
// spec honest).
type decoderConfig struct {
	Preset            string   `json:"preset"`
	Temperature       *float64 `json:"temperature"`
	DoSample          *bool    `json:"do_sample"`
	TopK              *int     `json:"top_k"`
	TopP              *float64 `json:"top_p"`
	MinP              *float64 `json:"min_p"`
	RepetitionPenalty *float64 `json:"repetition_penalty"`
	MinNewTokens      int      `json:"min_new_tokens"`
}

type warmupConfig struct {
	Enabled             *bool   `json:"enabled"`
	NWarmup             *int    `json:"n_warmup"`
	ThermalFloorSeconds float64 `json:"thermal_floor_seconds"`
}

type nativeConfig struct {
	BatchSize int    `json:"batch_size"`
	Threads   int    `json:"threads"`
	Storage   string `json:"storage"`
	Extra     struct {
		Engine map[string]any `json:"engine"`
		Worker map[string]any `json:"worker"`
	} `json:"extra"`
}

// presets mirrors schema/decoder.cue's #DecoderPresets: temperature,
// do_sample (1 = true), top_k, top_p, repetition_penalty.
var presets = map[string][5]float64{
	"":              {1.0, 1, 50, 1.0, 1.0},
	"deterministic": {0.0, 0, 50, 1.0, 1.0},
	"standard":      {1.0, 1, 50, 0.95, 1.0},
	"creative":      {0.8, 1, 50, 0.9, 1.1},
	"factual":       {0.3, 1, 50, 1.0, 1.0},
}

func parseConfig(raw []byte) (runConfig, error) {
	c := runConfig{N: 100, MaxInputTokens: 512, MaxOutputTokens: 128, RandomSeed: 42, Precision: "fp32"}
	if len(raw) == 0 || string(raw) == "null" {
		return c, errors.New("the run spec has no config")
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("parse config: %w", err)
	}
	switch {
	case c.Backend != "" && c.Backend != "native":
		return c, fmt.Errorf("config is for backend %q, this is the native worker", c.Backend)
	case c.Model == "":
		return c, errors.New("config has no model")
	case c.N < 1:
		return c, fmt.Errorf("n is %d, want ≥ 1", c.N)
	case c.MaxInputTokens < 1 || c.MaxOutputTokens < 1:
		return c, errors.New("max_input_tokens and max_output_tokens must be ≥ 1")
	case c.Warmup.ThermalFloorSeconds < 0 || c.Warmup.ThermalFloorSeconds > 3600:
		return c, fmt.Errorf("warmup.thermal_floor_seconds %g is outside [0, 3600]", c.Warmup.ThermalFloorSeconds)
	case c.Native.BatchSize < 0 || c.Native.Threads < 0:
		return c, errors.New("native.batch_size and native.threads must not be negative")
	}
	if c.Native.BatchSize == 0 {
		c.Native.BatchSize = 1
	}
	var extra []string
	for k := range c.Native.Extra.Engine {
		extra = append(extra, "engine."+k)
	}
	for k := range c.Native.Extra.Worker {
		extra = append(extra, "worker."+k)
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return c, fmt.Errorf("native.extra has %s, but the native engine and worker have no options beyond the first-class ones", strings.Join(extra, ", "))
	}
	if _, ok := presets[c.Decoder.Preset]; !ok {
		return c, fmt.Errorf("unknown decoder preset %q", c.Decoder.Preset)
	}
	return c, nil
}

// storage is the engine's weight storage: native.storage, else it follows
// precision. The engine computes in fp32 and stores fp32 or bf16; fp16 has
// no native kernel.
func (c runConfig) storage() (string, error) {
	if c.Native.Storage != "" {
		return c.Native.Storage, nil
	}
	switch c.Precision {
	case "", "fp32":
		return "fp32", nil
	case "bf16":
		return "bf16", nil
	}
	return "", fmt.Errorf("precision %q is not available in the native engine (it stores fp32 or bf16)", c.Precision)
}

// sampling maps the decoder config onto the engine: greedy when temperature
// is 0 or do_sample is false (the original's rule); top_k 0 = off.
func (c runConfig) sampling(ignoreEOS bool) engine.Sampling {
	p := presets[c.Decoder.Preset]
	d := c.Decoder
	temp, doSample, topK, topP, rep := p[0], p[1] == 1, int(p[2]), p[3], p[4]
	if d.Temperature != nil {
		temp = *d.Temperature
	}
	if d.DoSample != nil {
		doSample = *d.DoSample
	}
	if d.TopK != nil {
		topK = *d.TopK
	}
	if d.TopP != nil {
		topP = *d.TopP
	}
	if d.RepetitionPenalty != nil {
		rep = *d.RepetitionPenalty
	}
	s := engine.Sampling{
		Greedy:            temp == 0 || !doSample,
		Temperature:       float32(temp),
		TopK:              topK,
		TopP:              float32(topP),
		RepetitionPenalty: float32(rep),
		Seed:              c.RandomSeed,
		MinNewTokens:      d.MinNewTokens,
		IgnoreEOS:         ignoreEOS,
	}
	if d.MinP != nil {
		s.MinP = float32(*d.MinP)
	}
	return s
}

// thermalFloor is the sleep between warmup and the measured window: none
// when warmup is disabled (as in the original).
func (c runConfig) thermalFloor() time.Duration {
	if enabled, _ := c.warmup(); !enabled {
		return 0
	}
	return time.Duration(c.Warmup.ThermalFloorSeconds * float64(time.Second))
}

func (c runConfig) warmup() (enabled bool, n int) {
	enabled, n = true, 5
	if c.Warmup.Enabled != nil {
		enabled = *c.Warmup.Enabled
	}
	if c.Warmup.NWarmup != nil {
		n = *c.Warmup.NWarmup
	}
	if !enabled || n < 0 {
		n = 0
	}
	return enabled, n
}
