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
	"reflect"
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

// RopeScaling is the rotary scaling of a checkpoint (transformers'
// rope_type other than "default", with its parameters). Supported types:
// "linear" (frequencies divided by Factor) and "llama3" (Llama 3.1's
// frequency-dependent scaling).
type RopeScaling struct {
	Type                          string  `json:"type"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// Layer attention kinds, as transformers' layer_types names them.
const (
	FullAttention    = "full_attention"
	SlidingAttention = "sliding_attention"
)

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
	// (the current one included); 0 means full attention everywhere.
	SlidingWindow int `json:"sliding_window"`
	// LayerTypes says, per layer, whether SlidingWindow applies
	// (SlidingAttention) or not (FullAttention), like transformers'
	// layer_types. Nil means every layer alike: all windowed when
	// SlidingWindow > 0 (Mistral). ParseConfig sets it only when layers
	// differ (Qwen2 with max_window_layers or mixed layer_types), so two
	// config.json files meaning the same model give equal Configs.
	LayerTypes []string `json:"layer_types,omitempty"`
	// TorchDType is the checkpoint's declared dtype (dtype, or the older
	// torch_dtype), for information only: compute is fp32.
	TorchDType string `json:"torch_dtype,omitempty"`
}

// hfConfig mirrors config.json with pointers so absent keys take HF defaults.
// Keys whose absence and null mean different things are read from the raw
// key map instead (see ParseConfig).
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
	RopeParameters        json.RawMessage `json:"rope_parameters"`
	PartialRotaryFactor   *float64        `json:"partial_rotary_factor"`
	OrigMaxPositions      *float64        `json:"original_max_position_embeddings"`
	AttentionBias         *bool           `json:"attention_bias"`
	MLPBias               *bool           `json:"mlp_bias"`
	HiddenAct             *string         `json:"hidden_act"`
	SlidingWindow         *int            `json:"sliding_window"`
	UseSlidingWindow      *bool           `json:"use_sliding_window"`
	MaxWindowLayers       *int            `json:"max_window_layers"`
	LayerTypes            []string        `json:"layer_types"`
	QuantizationConfig    json.RawMessage `json:"quantization_config"`
	DType                 string          `json:"dtype"`
	TorchDType            string          `json:"torch_dtype"`
}

var supportedTypes = map[string]string{
	"llama":   "LlamaForCausalLM",
	"mistral": "MistralForCausalLM",
	"qwen2":   "Qwen2ForCausalLM",
}

// typeDefaults are the transformers (4 and 5) config-class defaults that
// differ between the supported model types: what a config.json that leaves
// the key out means.
type typeDefaults struct {
	maxPositions int
	kvHeads      int   // num_key_value_heads when absent; 0: num_attention_heads
	bos, eos     []int // when absent (null stays none)
}

var defaultsOf = map[string]typeDefaults{
	// LlamaConfig: max_position_embeddings 2048, bos 1, eos 2.
	"llama": {maxPositions: 2048, bos: []int{1}, eos: []int{2}},
	// MistralConfig: 4096*32 positions, 8 KV heads, bos 1, eos 2 (and a
	// 4096-token window, see parseWindows).
	"mistral": {maxPositions: 4096 * 32, kvHeads: 8, bos: []int{1}, eos: []int{2}},
	// Qwen2Config: 32768 positions, 32 KV heads, no bos/eos.
	"qwen2": {maxPositions: 32768, kvHeads: 32},
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

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// ParseConfig parses a HF config.json as transformers 4 or 5 wrote it,
// applying the transformers defaults for absent keys, and validates it. A
// key that changes what the model computes is either honoured or refused
// (ErrUnsupported); it is never ignored, unless transformers' own class for
// the model type ignores it too.
func ParseConfig(data []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(data, &h); err != nil {
		return Config{}, fmt.Errorf("parse config.json: %w: %w", ErrBadCheckpoint, err)
	}
	// keys tells an absent key from an explicit null where transformers
	// does (a default versus None).
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
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
		// transformers' default for LlamaConfig/Qwen2Config/MistralConfig.
		RMSNormEps: 1e-6,
		TorchDType: h.DType,
	}
	if c.TorchDType == "" {
		c.TorchDType = h.TorchDType
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
	def := defaultsOf[c.ModelType]
	c.MaxPositionEmbeddings = def.maxPositions
	if _, ok := keys["num_key_value_heads"]; !ok && def.kvHeads > 0 {
		c.NumKVHeads = def.kvHeads
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
	if h.TieWordEmbeddings != nil {
		c.TieWordEmbeddings = *h.TieWordEmbeddings
	}
	var err error
	c.BOSTokenID, c.EOSTokenIDs = slices.Clone(def.bos), slices.Clone(def.eos)
	if _, ok := keys["bos_token_id"]; ok {
		if c.BOSTokenID, err = intOrList(h.BOSTokenID, "bos_token_id"); err != nil {
			return Config{}, fmt.Errorf("parse config.json: %w: %w", ErrBadCheckpoint, err)
		}
	}
	if _, ok := keys["eos_token_id"]; ok {
		if c.EOSTokenIDs, err = intOrList(h.EOSTokenID, "eos_token_id"); err != nil {
			return Config{}, fmt.Errorf("parse config.json: %w: %w", ErrBadCheckpoint, err)
		}
	}
	switch c.ModelType {
	case "qwen2":
		c.AttentionBias = true
	case "llama":
		if h.AttentionBias != nil && *h.AttentionBias {
			c.AttentionBias, c.OutputBias = true, true
		}
	}
	if h.HiddenAct != nil && *h.HiddenAct != "silu" && *h.HiddenAct != "swish" {
		return Config{}, errs.WithHint(fmt.Errorf("parse config.json: %w: hidden_act %q (the engine implements silu only)", ErrUnsupported, *h.HiddenAct), "use a Llama, Mistral, Qwen2 or SmolLM checkpoint, or another backend")
	}
	if h.MLPBias != nil && *h.MLPBias {
		return Config{}, errs.WithHint(fmt.Errorf("parse config.json: %w: mlp_bias=true", ErrUnsupported), "use another backend for this checkpoint")
	}
	if !isNull(h.QuantizationConfig) {
		var q struct {
			Method string `json:"quant_method"`
		}
		_ = json.Unmarshal(h.QuantizationConfig, &q)
		return Config{}, errs.WithHint(fmt.Errorf("parse config.json: %w: quantized checkpoint (quantization_config, quant_method %q)", ErrUnsupported, q.Method),
			"the native backend runs unquantized F32/F16/BF16 checkpoints; use the unquantized model or the pytorch or vllm backend")
	}
	if err := parseRope(&c, &h); err != nil {
		return Config{}, err
	}
	if err := parseWindows(&c, &h, keys); err != nil {
		return Config{}, err
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// ropeDict is one rope_parameters (or legacy rope_scaling) object.
type ropeDict map[string]json.RawMessage

// number reads a numeric entry; ok is false when it is absent or null.
func (d ropeDict) number(key string) (v float64, ok bool, err error) {
	raw, found := d[key]
	if !found || isNull(raw) {
		return 0, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, false, fmt.Errorf("parse rope parameters: %w: %s is %s, not a number", ErrBadCheckpoint, key, raw)
	}
	return v, true, nil
}

// ropeType is rope_type, else the older type, else "default", as
// transformers' standardize_rope_params picks it.
func (d ropeDict) ropeType() (string, error) {
	for _, k := range []string{"rope_type", "type"} {
		if raw, ok := d[k]; ok && !isNull(raw) {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return "", fmt.Errorf("parse rope parameters: %w: %s is %s, not a string", ErrBadCheckpoint, k, raw)
			}
			return s, nil
		}
	}
	return "default", nil
}

// parseRope reads the rotary embedding the way transformers 5 standardizes
// it (RotaryEmbeddingConfigMixin in modeling_rope_utils.py), which also
// covers transformers 4 files:
//
//   - the parameters are the legacy rope_scaling object when it is non-empty,
//     else rope_parameters (transformers 5 writes only the latter);
//   - rope_theta is the one inside those parameters, else the top-level
//     rope_theta, else 10000;
//   - the type is rope_type, else type, else "default";
//   - llama3 (and yarn/longrope) take original_max_position_embeddings from a
//     top-level key of that name when present, else from the parameters,
//     else max_position_embeddings;
//   - parameters nested per layer type ({"full_attention": {...},
//     "sliding_attention": {...}}) are accepted only when every layer type
//     has the same rope, since the engine has one rope for all layers.
//
// Types the engine does not implement (dynamic, yarn, longrope, ...) and a
// partial_rotary_factor other than 1 are refused: running them as plain
// rope would silently generate other tokens.
func parseRope(c *Config, h *hfConfig) error {
	var d ropeDict
	for _, raw := range []json.RawMessage{h.RopeScaling, h.RopeParameters} {
		// Python's `rope_scaling or rope_parameters`: null and {} fall through.
		if isNull(raw) {
			continue
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("parse rope parameters: %w: want an object, got %.80s", ErrBadCheckpoint, raw)
		}
		if len(d) > 0 {
			break
		}
	}
	var nested []string
	for k := range d {
		if k == FullAttention || k == SlidingAttention || slices.Contains(h.LayerTypes, k) {
			nested = append(nested, k)
		}
	}
	if len(nested) == 0 {
		theta, rs, err := ropeOf(d, c, h)
		if err != nil {
			return err
		}
		c.RopeTheta, c.RopeScaling = theta, rs
		return nil
	}
	sort.Strings(nested)
	for i, k := range nested {
		var sub ropeDict
		if isNull(d[k]) {
			return errs.WithHint(fmt.Errorf("parse rope parameters: %w: layer type %q has no rope (NoPE layers)", ErrUnsupported, k),
				"the native backend applies rope on every layer; use the pytorch or vllm backend")
		}
		if err := json.Unmarshal(d[k], &sub); err != nil {
			return fmt.Errorf("parse rope parameters: %w: %s: want an object, got %.80s", ErrBadCheckpoint, k, d[k])
		}
		theta, rs, err := ropeOf(sub, c, h)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if i > 0 && (theta != c.RopeTheta || !reflect.DeepEqual(rs, c.RopeScaling)) {
			return errs.WithHint(fmt.Errorf("parse rope parameters: %w: layer types %s and %s use different rope", ErrUnsupported, nested[0], k),
				"the native backend has one rope for all layers; use the pytorch or vllm backend")
		}
		c.RopeTheta, c.RopeScaling = theta, rs
	}
	return nil
}

// ropeOf resolves one flat rope parameter object (see parseRope).
func ropeOf(d ropeDict, c *Config, h *hfConfig) (theta float64, rs *RopeScaling, err error) {
	theta, ok, err := d.number("rope_theta")
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		theta = 10000
		if h.RopeTheta != nil {
			theta = *h.RopeTheta
		}
	}
	prf, ok, err := d.number("partial_rotary_factor")
	if err != nil {
		return 0, nil, err
	}
	if !ok && h.PartialRotaryFactor != nil {
		prf, ok = *h.PartialRotaryFactor, true
	}
	if ok && prf != 1 {
		return 0, nil, errs.WithHint(fmt.Errorf("parse rope parameters: %w: partial_rotary_factor %g (the engine rotates whole heads)", ErrUnsupported, prf),
			"use the pytorch or vllm backend for this checkpoint")
	}
	typ, err := d.ropeType()
	if err != nil {
		return 0, nil, err
	}
	need := func(key string) (float64, error) {
		v, ok, err := d.number(key)
		if err == nil && !ok {
			err = fmt.Errorf("parse rope parameters: %w: %s rope needs %s", ErrBadCheckpoint, typ, key)
		}
		return v, err
	}
	switch typ {
	case "default":
		return theta, nil, nil
	case "linear":
		f, err := need("factor")
		if err != nil {
			return 0, nil, err
		}
		return theta, &RopeScaling{Type: typ, Factor: f}, nil
	case "llama3":
		rs := &RopeScaling{Type: typ}
		for _, f := range []struct {
			key string
			dst *float64
		}{{"factor", &rs.Factor}, {"low_freq_factor", &rs.LowFreqFactor}, {"high_freq_factor", &rs.HighFreqFactor}} {
			if *f.dst, err = need(f.key); err != nil {
				return 0, nil, err
			}
		}
		orig, ok, err := d.number("original_max_position_embeddings")
		if err != nil {
			return 0, nil, err
		}
		switch {
		case h.OrigMaxPositions != nil: // Phi-3 style top-level key wins in transformers
			orig = *h.OrigMaxPositions
		case !ok:
			orig = float64(c.MaxPositionEmbeddings)
		}
		if orig != math.Trunc(orig) || orig < 1 || orig > math.MaxInt32 {
			return 0, nil, fmt.Errorf("parse rope parameters: %w: original_max_position_embeddings %g is not a positive integer", ErrBadCheckpoint, orig)
		}
		rs.OriginalMaxPositionEmbeddings = int(orig)
		return theta, rs, nil
	}
	return 0, nil, errs.WithHint(fmt.Errorf("parse rope parameters: %w: rope type %q", ErrUnsupported, typ),
		"the native backend implements default, linear and llama3 rope; use the pytorch or vllm backend for "+typ)
}

// parseWindows decides which layers attend through a sliding window, as
// transformers' config and model classes do:
//
//   - llama: never (LlamaModel has no window; it ignores sliding_window and
//     layer_types);
//   - mistral: every layer, with sliding_window, which defaults to 4096 when
//     the key is absent (null: no window). MistralModel ignores layer_types
//     (with a warning that the checkpoint may need Ministral), so layer_types
//     that would mix window and full layers are refused rather than
//     guessed;
//   - qwen2: the window is sliding_window (default 4096) only when
//     use_sliding_window is true (Qwen2Config sets it to None otherwise); a
//     layer uses it when layer_types says "sliding_attention", or, without
//     layer_types, when its index is >= max_window_layers (default 28).
func parseWindows(c *Config, h *hfConfig, keys map[string]json.RawMessage) error {
	window := 4096
	if _, ok := keys["sliding_window"]; ok {
		window = 0
		if h.SlidingWindow != nil {
			window = *h.SlidingWindow
		}
	}
	if c.ModelType == "llama" {
		return nil
	}
	for i, t := range h.LayerTypes {
		if t != FullAttention && t != SlidingAttention {
			return errs.WithHint(fmt.Errorf("parse config.json: %w: layer_types[%d] is %q", ErrUnsupported, i, t),
				"the native backend implements full_attention and sliding_attention layers; use the pytorch or vllm backend")
		}
	}
	switch c.ModelType {
	case "mistral":
		want := FullAttention
		if window > 0 {
			want = SlidingAttention
		}
		for i, t := range h.LayerTypes {
			if t != want {
				return errs.WithHint(fmt.Errorf("parse config.json: %w: mistral layer_types[%d] is %q but sliding_window makes every layer %s; transformers' MistralForCausalLM ignores layer_types", ErrUnsupported, i, t, want),
					"this looks like a Ministral-style checkpoint with alternating attention; use the pytorch or vllm backend")
			}
		}
		c.SlidingWindow = window
	case "qwen2":
		if h.UseSlidingWindow == nil || !*h.UseSlidingWindow {
			window = 0
		}
		types := h.LayerTypes
		if types != nil && len(types) != c.NumLayers {
			return fmt.Errorf("parse config.json: %w: layer_types has %d entries for %d layers", ErrBadCheckpoint, len(types), c.NumLayers)
		}
		if types == nil {
			first := 28
			if h.MaxWindowLayers != nil {
				first = *h.MaxWindowLayers
			}
			types = make([]string, c.NumLayers)
			for i := range types {
				types[i] = FullAttention
				if window > 0 && i >= first {
					types[i] = SlidingAttention
				}
			}
		}
		nSliding := 0
		for _, t := range types {
			if t == SlidingAttention {
				nSliding++
			}
		}
		switch {
		case nSliding > 0 && window <= 0:
			return fmt.Errorf("parse config.json: %w: layer_types has sliding_attention layers but there is no sliding_window (use_sliding_window %v, sliding_window %v)",
				ErrBadCheckpoint, h.UseSlidingWindow != nil && *h.UseSlidingWindow, string(keys["sliding_window"]))
		case nSliding == 0:
			c.SlidingWindow = 0
		case nSliding == len(types):
			c.SlidingWindow = window
		default:
			c.SlidingWindow, c.LayerTypes = window, slices.Clone(types)
		}
	}
	return nil
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
	if c.LayerTypes != nil {
		if len(c.LayerTypes) != c.NumLayers {
			return fmt.Errorf("check model config: %w: %d layer types for %d layers", ErrBadCheckpoint, len(c.LayerTypes), c.NumLayers)
		}
		for i, t := range c.LayerTypes {
			if t != FullAttention && t != SlidingAttention {
				return fmt.Errorf("check model config: %w: layer type %d is %q", ErrUnsupported, i, t)
			}
			if t == SlidingAttention && c.SlidingWindow == 0 {
				return fmt.Errorf("check model config: %w: layer %d is %s but sliding_window is 0", ErrBadCheckpoint, i, t)
			}
		}
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

// layerWindow is the attention window of layer l: SlidingWindow when that
// layer is windowed, 0 (the whole context) otherwise.
func (c Config) layerWindow(l int) int {
	if c.SlidingWindow <= 0 || (c.LayerTypes != nil && c.LayerTypes[l] != SlidingAttention) {
		return 0
	}
	return c.SlidingWindow
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
