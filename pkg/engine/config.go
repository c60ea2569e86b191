// Package engine is llem's embedded inference engine: a llama-family
// decoder-only transformer (Llama, Mistral, Qwen2, SmolLM) in pure Go, so the
// native backend runs on any machine without Python or a GPU.
//
// It implements what the HF reference implementation (transformers'
// modeling_llama/modeling_qwen2) does, in float32: RMSNorm, rotary position
// embeddings with the rotate_half convention, grouped-query attention,
// SwiGLU MLP, optional q/k/v bias, tied embeddings, a per-sequence KV cache,
// batched prefill and batched decode, and HF-compatible sampling. Weights are
// either seeded random values (like vLLM's load_format=dummy) or a real
// safetensors checkpoint.
package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/internal/errs"
)

// ErrUnsupported is wrapped by errors about a checkpoint the engine cannot run
// (architecture, activation, rope scaling type); the worker reports it as
// such.
var ErrUnsupported = errors.New("unsupported model")

// ErrBadCheckpoint is wrapped by errors about a malformed or incomplete
// checkpoint (missing tensor, wrong shape, unreadable config).
var ErrBadCheckpoint = errors.New("bad checkpoint")

// RopeScaling is HF's rope_scaling block. Supported types: "linear" (positions
// divided by Factor) and "llama3" (Llama 3.1's frequency-dependent scaling).
type RopeScaling struct {
	Type                          string  `json:"type"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// Config is the part of a HF config.json the engine needs.
type Config struct {
	Architecture          string `json:"architecture"` // e.g. "LlamaForCausalLM"
	ModelType             string `json:"model_type"`   // "llama", "mistral", "qwen2"
	HiddenSize            int    `json:"hidden_size"`
	IntermediateSize      int    `json:"intermediate_size"`
	NumLayers             int    `json:"num_hidden_layers"`
	NumHeads              int    `json:"num_attention_heads"`
	NumKVHeads            int    `json:"num_key_value_heads"`
	VocabSize             int    `json:"vocab_size"`
	MaxPositionEmbeddings int    `json:"max_position_embeddings"`
	HeadDim               int    `json:"head_dim"`

	RMSNormEps        float64 `json:"rms_norm_eps"`
	RopeTheta         float64 `json:"rope_theta"`
	TieWordEmbeddings bool    `json:"tie_word_embeddings"`

	// BOSTokenID holds the BOS id (one element) or is empty when the model
	// has none; HF allows null. EOSTokenIDs lists every id that ends a
	// sequence (HF allows an int or a list).
	BOSTokenID  []int `json:"bos_token_id"`
	EOSTokenIDs []int `json:"eos_token_id"`

	RopeScaling *RopeScaling `json:"rope_scaling,omitempty"`
	// AttentionBias: q/k/v projections carry a bias (always for qwen2; llama's
	// attention_bias also puts one on o_proj, see OutputBias).
	AttentionBias bool `json:"attention_bias"`
	OutputBias    bool `json:"output_bias"`
	// SlidingWindow limits attention to the last SlidingWindow positions
	// (Mistral); 0 means full attention.
	SlidingWindow int `json:"sliding_window"`
	// TorchDType is the checkpoint's declared dtype, for information only.
	TorchDType string `json:"torch_dtype,omitempty"`
}

// hfConfig mirrors config.json with pointers so absent keys take HF defaults.
type hfConfig struct {
	Architectures         []string        `json:"architectures"`
	ModelType             string          `json:"model_type"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	VocabSize             int             `json:"vocab_size"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	HeadDim               *int            `json:"head_dim"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	BOSTokenID            json.RawMessage `json:"bos_token_id"`
	EOSTokenID            json.RawMessage `json:"eos_token_id"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               *bool           `json:"mlp_bias"`
	HiddenAct             *string         `json:"hidden_act"`
	SlidingWindow         *int            `json:"sliding_window"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`
	TorchDType            string          `json:"torch_dtype"`
}

var supportedTypes = map[string]string{
	"llama":   "LlamaForCausalLM",
	"mistral": "MistralForCausalLM",
	"qwen2":   "Qwen2ForCausalLM",
}

// intOrList decodes HF's "int, list of ints, or null" token id fields.
func intOrList(raw json.RawMessage, field string) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if err := json.Unmarshal(raw, &one); err == nil {
		return []int{one}, nil
	}
	var many []int
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("parse %s: want an integer or a list of integers, got %s", field, raw)
	}
	return many, nil
}

// ParseConfig parses a HF config.json, applying the transformers defaults for
// absent keys, and validates it.
func ParseConfig(data []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, fmt.Errorf("parse config.json: %w: %w", ErrBadCheckpoint, err)
	}
	c := Config{
		ModelType:        h.ModelType,
		HiddenSize:       h.HiddenSize,
		IntermediateSize: h.IntermediateSize,
		NumLayers:        h.NumHiddenLayers,
		NumHeads:         h.NumAttentionHeads,
		NumKVHeads:       h.NumAttentionHeads,
		VocabSize:        h.VocabSize,
		// transformers' defaults for LlamaConfig/Qwen2Config/MistralConfig.
		MaxPositionEmbeddings: 2048,
		RMSNormEps:            1e-6,
		RopeTheta:             10000,
		TorchDType:            h.TorchDType,
	}
	if len(h.Architectures) > 0 {
		c.Architecture = h.Architectures[0]
	}
	if c.ModelType == "" {
		for t, a := range supportedTypes {
			if a == c.Architecture {
				c.ModelType = t
			}
		}
	}
	if c.Architecture == "" {
		c.Architecture = supportedTypes[c.ModelType]
	}
	if h.NumKeyValueHeads != nil {
		c.NumKVHeads = *h.NumKeyValueHeads
	}
	if h.MaxPositionEmbeddings != nil {
		c.MaxPositionEmbeddings = *h.MaxPositionEmbeddings
	}
	if h.HeadDim != nil {
		c.HeadDim = *h.HeadDim
	}
	if h.RMSNormEps != nil {
		c.RMSNormEps = *h.RMSNormEps
	}
	if h.RopeTheta != nil {
		c.RopeTheta = *h.RopeTheta
	}
	if h.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *h.TieWordEmbeddings
	}
	var err error
	if c.BOSTokenID, err = intOrList(h.BOSTokenID, "bos_token_id"); err != nil {
		return Config{}, fmt.Errorf("parse config.json: %w: %w", ErrBadCheckpoint, err)
	}
	if c.EOSTokenIDs, err = intOrList(h.EOSTokenID, "eos_token_id"); err != nil {
		return Config{}, fmt.Errorf("parse config.json: %w: %w", ErrBadCheckpoint, err)
	}
	switch c.ModelType {
	case "qwen2":
		c.AttentionBias = true
		if h.UseSlidingWindow != nil && *h.UseSlidingWindow && h.SlidingWindow != nil {
			c.SlidingWindow = *h.SlidingWindow
		}
	case "mistral":
		if h.SlidingWindow != nil {
			c.SlidingWindow = *h.SlidingWindow
		}
	case "llama":
		if h.AttentionBias != nil && *h.AttentionBias {
			c.AttentionBias, c.OutputBias = true, true
		}
	}
	if h.HiddenAct != nil && *h.HiddenAct != "silu" {
		return Config{}, errs.WithHint(fmt.Errorf("parse config.json: %w: hidden_act %q (the engine implements silu only)", ErrUnsupported, *h.HiddenAct), "use a Llama, Mistral, Qwen2 or SmolLM checkpoint, or another backend")
	}
	if h.MLPBias != nil && *h.MLPBias {
		return Config{}, errs.WithHint(fmt.Errorf("parse config.json: %w: mlp_bias=true", ErrUnsupported), "use another backend for this checkpoint")
	}
	if len(h.RopeScaling) > 0 && string(h.RopeScaling) != "null" {
		var rs struct {
			RopeScaling
			RopeType string `json:"rope_type"`
		}
		if err := json.Unmarshal(h.RopeScaling, &rs); err != nil {
			return Config{}, fmt.Errorf("parse rope_scaling: %w: %w", ErrBadCheckpoint, err)
		}
		if rs.Type == "" {
			rs.Type = rs.RopeType
		}
		if rs.Type != "default" {
			sc := rs.RopeScaling
			c.RopeScaling = &sc
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// headDim is HeadDim, or HiddenSize/NumHeads when the config leaves it out.
func (c Config) headDim() int {
	if c.HeadDim > 0 {
		return c.HeadDim
	}
	if c.NumHeads == 0 {
		return 0
	}
	return c.HiddenSize / c.NumHeads
}

// Validate checks that the engine can run the config.
func (c Config) Validate() error {
	if _, ok := supportedTypes[c.ModelType]; !ok {
		names := make([]string, 0, len(supportedTypes))
		for k := range supportedTypes {
			names = append(names, k)
		}
		sort.Strings(names)
		return errs.WithHint(fmt.Errorf("check model config: %w: model_type %q (architecture %q)", ErrUnsupported, c.ModelType, c.Architecture),
			"the native backend runs model types "+strings.Join(names, ", ")+"; use the pytorch or vllm backend for others")
	}
	pos := map[string]int{
		"hidden_size": c.HiddenSize, "intermediate_size": c.IntermediateSize, "num_hidden_layers": c.NumLayers,
		"num_attention_heads": c.NumHeads, "num_key_value_heads": c.NumKVHeads, "vocab_size": c.VocabSize,
		"max_position_embeddings": c.MaxPositionEmbeddings,
	}
	for _, k := range slices.Sorted(maps.Keys(pos)) {
		if pos[k] <= 0 {
			return fmt.Errorf("check model config: %w: %s must be positive, got %d", ErrBadCheckpoint, k, pos[k])
		}
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("check model config: %w: num_attention_heads %d is not a multiple of num_key_value_heads %d", ErrBadCheckpoint, c.NumHeads, c.NumKVHeads)
	}
	hd := c.headDim()
	if hd <= 0 || hd%2 != 0 || (c.HeadDim == 0 && c.HiddenSize%c.NumHeads != 0) {
		return fmt.Errorf("check model config: %w: head dimension %d must be a positive even number", ErrBadCheckpoint, hd)
	}
	if c.RMSNormEps <= 0 || c.RopeTheta <= 0 || math.IsInf(c.RopeTheta, 0) {
		return fmt.Errorf("check model config: %w: rms_norm_eps and rope_theta must be positive", ErrBadCheckpoint)
	}
	for _, id := range append(append([]int(nil), c.BOSTokenID...), c.EOSTokenIDs...) {
		if id < 0 || id >= c.VocabSize {
			return fmt.Errorf("check model config: %w: special token id %d outside the vocabulary of %d", ErrBadCheckpoint, id, c.VocabSize)
		}
	}
	if c.ModelType == "llama" && c.AttentionBias != c.OutputBias {
		return fmt.Errorf("check model config: %w: llama's attention_bias covers q/k/v and o_proj together", ErrBadCheckpoint)
	}
	if c.SlidingWindow < 0 {
		return fmt.Errorf("check model config: %w: sliding_window %d is negative", ErrBadCheckpoint, c.SlidingWindow)
	}
	if rs := c.RopeScaling; rs != nil {
		switch rs.Type {
		case "linear":
			if rs.Factor <= 0 {
				return fmt.Errorf("check model config: %w: rope_scaling factor must be positive", ErrBadCheckpoint)
			}
		case "llama3":
			if rs.Factor <= 0 || rs.LowFreqFactor <= 0 || rs.HighFreqFactor <= rs.LowFreqFactor || rs.OriginalMaxPositionEmbeddings <= 0 {
				return fmt.Errorf("check model config: %w: llama3 rope_scaling needs factor, low_freq_factor < high_freq_factor and original_max_position_embeddings", ErrBadCheckpoint)
			}
		default:
			return errs.WithHint(fmt.Errorf("check model config: %w: rope_scaling type %q", ErrUnsupported, rs.Type),
				"the native backend supports linear and llama3 rope scaling; use the pytorch or vllm backend")
		}
	}
	return nil
}

// NumParams counts the parameters the config implies (the LM head once when
// tied), as HF's num_parameters() does.
func (c Config) NumParams() int64 {
	d, hd := int64(c.HiddenSize), int64(c.headDim())
	q, kv := int64(c.NumHeads)*hd, int64(c.NumKVHeads)*hd
	perLayer := d*(q+2*kv) + q*d + 3*d*int64(c.IntermediateSize) + 2*d
	if c.AttentionBias {
		perLayer += q + 2*kv
	}
	if c.OutputBias {
		perLayer += d
	}
	n := int64(c.NumLayers)*perLayer + int64(c.VocabSize)*d + d
	if !c.TieWordEmbeddings {
		n += int64(c.VocabSize) * d
	}
	return n
}

var presets = map[string]Config{
	// Karpathy's llama2.c "stories15M" shape: 15.2M parameters, Llama-2
	// 32000-token vocabulary. The context is widened to 2048 (RoPE has no
	// learned positions) so default 512+128-token runs fit.
	"llama-15m": {
		Architecture: "LlamaForCausalLM", ModelType: "llama",
		HiddenSize: 288, IntermediateSize: 768, NumLayers: 6, NumHeads: 6, NumKVHeads: 6,
		VocabSize: 32000, MaxPositionEmbeddings: 2048, RMSNormEps: 1e-5, RopeTheta: 10000,
		TieWordEmbeddings: true, BOSTokenID: []int{1}, EOSTokenIDs: []int{2}, TorchDType: "float32",
	},
	// HuggingFaceTB/SmolLM-135M's config.json: 134.5M parameters, GQA 9:3.
	"smollm-135m": {
		Architecture: "LlamaForCausalLM", ModelType: "llama",
		HiddenSize: 576, IntermediateSize: 1536, NumLayers: 30, NumHeads: 9, NumKVHeads: 3,
		VocabSize: 49152, MaxPositionEmbeddings: 2048, RMSNormEps: 1e-5, RopeTheta: 10000,
		TieWordEmbeddings: true, BOSTokenID: []int{0}, EOSTokenIDs: []int{0}, TorchDType: "float32",
	},
}

// Preset returns a built-in architecture for random-weight runs
// ("random:<name>" models). The returned Config is a copy.
func Preset(name string) (Config, bool) {
	c, ok := presets[name]
	if !ok {
		return Config{}, false
	}
	c.BOSTokenID = slices.Clone(c.BOSTokenID)
	c.EOSTokenIDs = slices.Clone(c.EOSTokenIDs)
	return c, true
}

// Presets lists the preset names, sorted.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for k := range presets {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
