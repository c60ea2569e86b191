package engine

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/llenergymeasure/llem/internal/errs"
)

func TestParseConfig(t *testing.T) {
	qwen := `{"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","hidden_size":896,"intermediate_size":4864,
	"num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"vocab_size":151936,"max_position_embeddings":32768,
	"rms_norm_eps":1e-06,"rope_theta":1000000.0,"tie_word_embeddings":true,"bos_token_id":151643,"eos_token_id":[151645,151643],
	"hidden_act":"silu","sliding_window":32768,"use_sliding_window":false,"torch_dtype":"bfloat16"}`
	c, err := ParseConfig([]byte(qwen))
	if err != nil {
		t.Fatal(err)
	}
	if !c.AttentionBias || c.OutputBias || c.SlidingWindow != 0 || c.headDim() != 64 || c.RopeTheta != 1e6 ||
		!slices.Equal(c.EOSTokenIDs, []int{151645, 151643}) || !slices.Equal(c.BOSTokenID, []int{151643}) {
		t.Errorf("qwen2 config parsed as %+v", c)
	}
	// Qwen2.5-0.5B has 494M parameters.
	if n := c.NumParams(); n < 493e6 || n > 495e6 {
		t.Errorf("qwen2.5-0.5b params = %d", n)
	}

	llama31 := `{"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,"num_hidden_layers":1,
	"num_attention_heads":4,"vocab_size":100,"eos_token_id":null,
	"rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"}}`
	c, err = ParseConfig([]byte(llama31))
	if err != nil {
		t.Fatal(err)
	}
	if c.ModelType != "llama" || c.NumKVHeads != 4 || c.RMSNormEps != 1e-6 || c.RopeTheta != 10000 || c.MaxPositionEmbeddings != 2048 ||
		c.TieWordEmbeddings || c.EOSTokenIDs != nil || c.RopeScaling == nil || c.RopeScaling.Type != "llama3" {
		t.Errorf("llama defaults parsed as %+v", c)
	}

	for name, bad := range map[string]struct {
		json string
		want error
	}{
		"gpt2":       {`{"model_type":"gpt2"}`, ErrUnsupported},
		"gelu":       {`{"model_type":"llama","hidden_act":"gelu","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4}`, ErrUnsupported},
		"yarn":       {`{"model_type":"llama","rope_scaling":{"type":"yarn","factor":4},"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4}`, ErrUnsupported},
		"gqa":        {`{"model_type":"llama","hidden_size":12,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":3,"num_key_value_heads":2,"vocab_size":4}`, ErrBadCheckpoint},
		"zero layer": {`{"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":0,"num_attention_heads":2,"vocab_size":4}`, ErrBadCheckpoint},
		"eos range":  {`{"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4,"eos_token_id":4}`, ErrBadCheckpoint},
		"eos type":   {`{"model_type":"llama","eos_token_id":"x"}`, ErrBadCheckpoint},
		"not json":   {`{`, ErrBadCheckpoint},
	} {
		_, err := ParseConfig([]byte(bad.json))
		if !errors.Is(err, bad.want) {
			t.Errorf("%s: err = %v, want %v", name, err, bad.want)
		}
	}
	if _, err := ParseConfig([]byte(`{"model_type":"gpt2"}`)); errs.Hint(err) == "" {
		t.Error("unsupported architecture error has no hint")
	}
}

func TestPresets(t *testing.T) {
	if !slices.Equal(Presets(), []string{"llama-15m", "smollm-135m"}) {
		t.Fatalf("Presets() = %v", Presets())
	}
	for name, want := range map[string][2]int64{"llama-15m": {15e6, 15.5e6}, "smollm-135m": {134e6, 135e6}} {
		c, ok := Preset(name)
		if !ok {
			t.Fatalf("preset %s missing", name)
		}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if n := c.NumParams(); n < want[0] || n > want[1] {
			t.Errorf("%s has %d parameters, want %d..%d", name, n, want[0], want[1])
		}
		c.EOSTokenIDs[0] = 99 // a copy: must not alter the preset
	}
	if c, _ := Preset("llama-15m"); c.EOSTokenIDs[0] != 2 {
		t.Error("Preset returned shared slices")
	}
	if _, ok := Preset("gpt-5"); ok {
		t.Error("unknown preset found")
	}
}

// TestRandomWeightsDeterministic pins the seeded initialisation: the same
// seed gives the same weights, another seed others, the statistics are those
// of N(0, 0.02²), and a golden value catches any change of the generator
// (results from different llem versions stay comparable).
func TestRandomWeightsDeterministic(t *testing.T) {
	cfg := tinyConfigs()["llama-gqa-tied"]
	a, _ := NewRandom(cfg, 42)
	b, _ := NewRandom(cfg, 42)
	c, _ := NewRandom(cfg, 43)
	if !slices.Equal(a.embed.f32, b.embed.f32) || !slices.Equal(a.layers[1].wgu.f32, b.layers[1].wgu.f32) {
		t.Fatal("same seed, different weights")
	}
	if slices.Equal(a.embed.f32, c.embed.f32) {
		t.Fatal("different seeds, same weights")
	}
	big := make([]float32, 1<<18)
	fillNormal(big, 1, "x", 0, InitStd)
	var sum, sq float64
	for _, v := range big {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	mean := sum / float64(len(big))
	std := sq/float64(len(big)) - mean*mean
	if mean > 2e-4 || mean < -2e-4 || std < 0.98*InitStd*InitStd || std > 1.02*InitStd*InitStd {
		t.Errorf("mean %g, variance %g, want 0 and %g", mean, std, InitStd*InitStd)
	}
	for i, n := range a.layers[0].attnNorm[:4] {
		if n < 0.9 || n > 1.1 {
			t.Errorf("norm weight %d = %v, want about 1", i, n)
		}
	}
	golden := []float32{-0.006771109533, -0.0264252983, 0.004456457682}
	for i, g := range golden {
		if d := a.embed.f32[i] - g; d > 1e-9 || d < -1e-9 {
			t.Errorf("embed[%d] = %.10g, golden %.10g (random init changed)", i, a.embed.f32[i], g)
		}
	}
}

// FuzzParseConfig: config.json comes from downloaded checkpoints; parsing
// must never panic, and whatever it accepts must be runnable (Validate
// passes and the derived sizes are positive).
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4}`))
	f.Add([]byte(`{"model_type":"qwen2","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":4,"eos_token_id":[1,2],"use_sliding_window":true,"sliding_window":3}`))
	f.Add([]byte(`{"model_type":"llama","head_dim":0,"hidden_size":8,"num_attention_heads":0,"rope_scaling":{"rope_type":"llama3","factor":8}}`))
	f.Add([]byte(`{"model_type":"qwen2","hidden_size":8,"intermediate_size":8,"num_hidden_layers":2,"num_attention_heads":2,"num_key_value_heads":1,"vocab_size":4,"use_sliding_window":true,"sliding_window":2,"layer_types":["sliding_attention","full_attention"],"rope_parameters":{"full_attention":{"rope_theta":1e6},"sliding_attention":{"rope_theta":1e6}}}`))
	f.Add([]byte(`{"model_type":"llama","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4,"rope_parameters":{"rope_type":"llama3","rope_theta":5e5,"factor":8,"low_freq_factor":1,"high_freq_factor":4},"original_max_position_embeddings":16}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config Validate rejects: %v", err)
		}
		if c.headDim() <= 0 || c.NumHeads%c.NumKVHeads != 0 {
			t.Fatalf("accepted config has head_dim %d, heads %d/%d", c.headDim(), c.NumHeads, c.NumKVHeads)
		}
		for l := range c.NumLayers {
			if w := c.layerWindow(l); w < 0 {
				t.Fatalf("layer %d has window %d", l, w)
			}
		}
	})
}

// tinyJSON is a minimal config.json body; callers add their keys.
const tinyJSON = `"hidden_size":16,"intermediate_size":8,"num_hidden_layers":3,"num_attention_heads":2,"vocab_size":8`

func mustParse(t *testing.T, js string) Config {
	t.Helper()
	c, err := ParseConfig([]byte(js))
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", js, err)
	}
	return c
}

// TestParseConfigStyles: transformers 5 keeps rope_theta and the scaling
// inside rope_parameters and writes dtype and Qwen2's layer_types;
// transformers 4 wrote top-level rope_theta/rope_scaling, torch_dtype and
// derived the layers from max_window_layers. Each pair means one model and
// must give one Config (the semantics of RotaryEmbeddingConfigMixin and
// Qwen2Config.__post_init__).
func TestParseConfigStyles(t *testing.T) {
	for name, pair := range map[string][2]string{
		"llama3.1": {
			`{"model_type":"llama",` + tinyJSON + `,"dtype":"bfloat16","rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}`,
			`{"model_type":"llama",` + tinyJSON + `,"torch_dtype":"bfloat16","rope_theta":500000,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":8192}}`,
		},
		"qwen2 theta": {
			`{"model_type":"qwen2",` + tinyJSON + `,"num_key_value_heads":1,"rope_parameters":{"rope_type":"default","rope_theta":1000000.0},"sliding_window":null,"use_sliding_window":false,"layer_types":["full_attention","full_attention","full_attention"]}`,
			`{"model_type":"qwen2",` + tinyJSON + `,"num_key_value_heads":1,"rope_theta":1000000.0,"rope_scaling":null,"sliding_window":32768,"use_sliding_window":false,"max_window_layers":1}`,
		},
		"qwen2 window": {
			`{"model_type":"qwen2",` + tinyJSON + `,"num_key_value_heads":1,"rope_parameters":{"rope_theta":1e6},"sliding_window":4,"use_sliding_window":true,"layer_types":["full_attention","sliding_attention","sliding_attention"]}`,
			`{"model_type":"qwen2",` + tinyJSON + `,"num_key_value_heads":1,"rope_theta":1e6,"sliding_window":4,"use_sliding_window":true,"max_window_layers":1}`,
		},
		"linear with old type key": {
			`{"model_type":"llama",` + tinyJSON + `,"rope_parameters":{"rope_type":"linear","factor":2.0,"rope_theta":10000.0}}`,
			`{"model_type":"llama",` + tinyJSON + `,"rope_scaling":{"type":"linear","factor":2}}`,
		},
		// rope_theta inside the parameters wins over the top-level key.
		"theta precedence": {
			`{"model_type":"mistral",` + tinyJSON + `,"num_key_value_heads":1,"rope_theta":10000,"rope_parameters":{"rope_theta":1e6}}`,
			`{"model_type":"mistral",` + tinyJSON + `,"num_key_value_heads":1,"rope_theta":1e6}`,
		},
		// A non-empty legacy rope_scaling replaces rope_parameters.
		"rope_scaling wins": {
			`{"model_type":"llama",` + tinyJSON + `,"rope_theta":5,"rope_scaling":{"type":"linear","factor":3},"rope_parameters":{"rope_type":"llama3","rope_theta":7,"factor":8,"low_freq_factor":1,"high_freq_factor":4}}`,
			`{"model_type":"llama",` + tinyJSON + `,"rope_theta":5,"rope_scaling":{"type":"linear","factor":3}}`,
		},
		// llama3 without original_max_position_embeddings uses
		// max_position_embeddings; a top-level key overrides the dict's.
		"llama3 original max": {
			`{"model_type":"llama",` + tinyJSON + `,"max_position_embeddings":512,"rope_parameters":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4}}`,
			`{"model_type":"llama",` + tinyJSON + `,"max_position_embeddings":512,"original_max_position_embeddings":512,"rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":64}}`,
		},
		"nested per layer type": {
			`{"model_type":"qwen2",` + tinyJSON + `,"num_key_value_heads":1,"rope_parameters":{"full_attention":{"rope_type":"default","rope_theta":1e6},"sliding_attention":{"rope_theta":1e6}}}`,
			`{"model_type":"qwen2",` + tinyJSON + `,"num_key_value_heads":1,"rope_theta":1e6}`,
		},
		"partial_rotary_factor 1": {
			`{"model_type":"llama",` + tinyJSON + `,"rope_parameters":{"rope_theta":10000,"partial_rotary_factor":1.0}}`,
			`{"model_type":"llama",` + tinyJSON + `,"partial_rotary_factor":1}`,
		},
	} {
		a, b := mustParse(t, pair[0]), mustParse(t, pair[1])
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: the two styles parse differently:\n%+v\n%+v", name, a, b)
		}
	}
	c := mustParse(t, `{"model_type":"llama",`+tinyJSON+`,"dtype":"bfloat16","rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}`)
	if c.RopeTheta != 500000 || c.TorchDType != "bfloat16" ||
		!reflect.DeepEqual(c.RopeScaling, &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}) {
		t.Errorf("llama 3.1 v5 config parsed as %+v (scaling %+v)", c, c.RopeScaling)
	}
	if c := mustParse(t, `{"model_type":"llama",`+tinyJSON+`,"max_position_embeddings":512,"rope_parameters":{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4}}`); c.RopeScaling.OriginalMaxPositionEmbeddings != 512 {
		t.Errorf("llama3 original_max_position_embeddings defaulted to %d, want max_position_embeddings 512", c.RopeScaling.OriginalMaxPositionEmbeddings)
	}
	w := mustParse(t, `{"model_type":"qwen2",`+tinyJSON+`,"num_key_value_heads":1,"sliding_window":4,"use_sliding_window":true,"layer_types":["sliding_attention","full_attention","sliding_attention"],"max_window_layers":2}`)
	if w.SlidingWindow != 4 || !slices.Equal(w.LayerTypes, []string{SlidingAttention, FullAttention, SlidingAttention}) {
		t.Errorf("explicit layer_types (which win over max_window_layers) parsed as window %d, layers %v", w.SlidingWindow, w.LayerTypes)
	}
	for l, want := range []int{4, 0, 4} {
		if got := w.layerWindow(l); got != want {
			t.Errorf("layer %d window %d, want %d", l, got, want)
		}
	}
}

// TestParseConfigDefaults: absent keys take the defaults of transformers'
// class for the model type (absent and null differ where HF's do).
func TestParseConfigDefaults(t *testing.T) {
	m := mustParse(t, `{"model_type":"mistral","hidden_size":64,"intermediate_size":8,"num_hidden_layers":2,"num_attention_heads":16,"vocab_size":8}`)
	if m.SlidingWindow != 4096 || m.LayerTypes != nil || m.NumKVHeads != 8 || m.MaxPositionEmbeddings != 131072 ||
		!slices.Equal(m.BOSTokenID, []int{1}) || !slices.Equal(m.EOSTokenIDs, []int{2}) || m.RopeTheta != 10000 {
		t.Errorf("mistral defaults parsed as %+v", m)
	}
	m = mustParse(t, `{"model_type":"mistral",`+tinyJSON+`,"sliding_window":null,"num_key_value_heads":null,"bos_token_id":null,"eos_token_id":null}`)
	if m.SlidingWindow != 0 || m.NumKVHeads != 2 || m.BOSTokenID != nil || m.EOSTokenIDs != nil {
		t.Errorf("mistral nulls parsed as %+v", m)
	}
	// Qwen2: the window needs use_sliding_window, and without layer_types
	// only layers >= max_window_layers (default 28) use it.
	for js, want := range map[string]int{
		`"use_sliding_window":true`:                        4096,
		`"use_sliding_window":true,"sliding_window":8`:     8,
		`"use_sliding_window":false,"sliding_window":8`:    0,
		`"sliding_window":8`:                               0,
		`"use_sliding_window":true,"max_window_layers":28`: 0,
		`"use_sliding_window":true,"sliding_window":null`:  0,
	} {
		q := mustParse(t, `{"model_type":"qwen2",`+tinyJSON+`,"num_key_value_heads":1,"max_window_layers":0,`+js+`}`)
		if q.SlidingWindow != want || q.LayerTypes != nil {
			t.Errorf("qwen2 %s: window %d, layers %v; want %d on every layer", js, q.SlidingWindow, q.LayerTypes, want)
		}
	}
	q := mustParse(t, `{"model_type":"qwen2","hidden_size":64,"intermediate_size":8,"num_hidden_layers":2,"num_attention_heads":32,"vocab_size":8,"use_sliding_window":true,"max_window_layers":1}`)
	if q.NumKVHeads != 32 || q.MaxPositionEmbeddings != 32768 || q.BOSTokenID != nil || q.EOSTokenIDs != nil || q.SlidingWindow != 4096 ||
		!slices.Equal(q.LayerTypes, []string{FullAttention, SlidingAttention}) || q.RMSNormEps != 1e-6 {
		t.Errorf("qwen2 defaults parsed as %+v", q)
	}
	// Llama has no window: transformers' LlamaModel ignores these keys.
	l := mustParse(t, `{"model_type":"llama",`+tinyJSON+`,"sliding_window":4,"use_sliding_window":true,"layer_types":["sliding_attention"]}`)
	if l.SlidingWindow != 0 || l.LayerTypes != nil || l.NumKVHeads != 2 || l.MaxPositionEmbeddings != 2048 || !slices.Equal(l.EOSTokenIDs, []int{2}) {
		t.Errorf("llama parsed as %+v", l)
	}
}

// TestParseConfigRefuses: what the engine does not implement is refused
// with ErrUnsupported and a hint (never run as something else), and
// inconsistent configs transformers itself would reject are bad
// checkpoints.
func TestParseConfigRefuses(t *testing.T) {
	for name, bad := range map[string]struct {
		json string
		want error
	}{
		"yarn v5":          {`{"model_type":"qwen2",` + tinyJSON + `,"rope_parameters":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32768,"rope_theta":1e6}}`, ErrUnsupported},
		"yarn legacy":      {`{"model_type":"qwen2",` + tinyJSON + `,"rope_scaling":{"type":"yarn","factor":4.0,"original_max_position_embeddings":32768}}`, ErrUnsupported},
		"dynamic":          {`{"model_type":"llama",` + tinyJSON + `,"rope_scaling":{"type":"dynamic","factor":2.0}}`, ErrUnsupported},
		"longrope":         {`{"model_type":"llama",` + tinyJSON + `,"rope_parameters":{"rope_type":"longrope","short_factor":[1],"long_factor":[1]}}`, ErrUnsupported},
		"unknown rope":     {`{"model_type":"llama",` + tinyJSON + `,"rope_parameters":{"rope_type":"ntk-by-parts"}}`, ErrUnsupported},
		"partial rotary":   {`{"model_type":"llama",` + tinyJSON + `,"partial_rotary_factor":0.5}`, ErrUnsupported},
		"partial in dict":  {`{"model_type":"llama",` + tinyJSON + `,"rope_parameters":{"rope_theta":1e4,"partial_rotary_factor":0.25}}`, ErrUnsupported},
		"nested differ":    {`{"model_type":"qwen2",` + tinyJSON + `,"rope_parameters":{"full_attention":{"rope_theta":1e6},"sliding_attention":{"rope_theta":1e4}}}`, ErrUnsupported},
		"nested NoPE":      {`{"model_type":"qwen2",` + tinyJSON + `,"rope_parameters":{"full_attention":{"rope_theta":1e6},"sliding_attention":null}}`, ErrUnsupported},
		"quantized":        {`{"model_type":"llama",` + tinyJSON + `,"quantization_config":{"quant_method":"awq","bits":4}}`, ErrUnsupported},
		"chunked layers":   {`{"model_type":"qwen2",` + tinyJSON + `,"use_sliding_window":true,"layer_types":["full_attention","chunked_attention","full_attention"]}`, ErrUnsupported},
		"mistral mixed":    {`{"model_type":"mistral",` + tinyJSON + `,"num_key_value_heads":1,"sliding_window":4,"layer_types":["full_attention","sliding_attention","sliding_attention"]}`, ErrUnsupported},
		"gelu":             {`{"model_type":"llama",` + tinyJSON + `,"hidden_act":"gelu"}`, ErrUnsupported},
		"linear no factor": {`{"model_type":"llama",` + tinyJSON + `,"rope_scaling":{"type":"linear"}}`, ErrBadCheckpoint},
		"llama3 no low":    {`{"model_type":"llama",` + tinyJSON + `,"rope_parameters":{"rope_type":"llama3","factor":8,"high_freq_factor":4}}`, ErrBadCheckpoint},
		"factor string":    {`{"model_type":"llama",` + tinyJSON + `,"rope_parameters":{"rope_type":"linear","factor":"2"}}`, ErrBadCheckpoint},
		"rope not object":  {`{"model_type":"llama",` + tinyJSON + `,"rope_parameters":[1]}`, ErrBadCheckpoint},
		"layer count":      {`{"model_type":"qwen2",` + tinyJSON + `,"use_sliding_window":true,"layer_types":["full_attention"]}`, ErrBadCheckpoint},
		"window missing":   {`{"model_type":"qwen2",` + tinyJSON + `,"use_sliding_window":false,"layer_types":["full_attention","sliding_attention","full_attention"]}`, ErrBadCheckpoint},
	} {
		_, err := ParseConfig([]byte(bad.json))
		if !errors.Is(err, bad.want) {
			t.Errorf("%s: err = %v, want %v", name, err, bad.want)
			continue
		}
		if errors.Is(err, ErrUnsupported) && errs.Hint(err) == "" {
			t.Errorf("%s: %v has no hint", name, err)
		}
	}
}

// TestHFConfigRoundTrip: the config.json Save writes parses back to the
// same Config (absent keys would mean transformers' defaults, so "none" is
// written as null).
func TestHFConfigRoundTrip(t *testing.T) {
	cfgs := tinyConfigs()
	none := cfgs["llama-gqa-tied"]
	none.BOSTokenID, none.EOSTokenIDs = nil, nil
	cfgs["no-special"] = none
	m := cfgs["mistral-window"]
	m.SlidingWindow = 0
	cfgs["mistral-full"] = m
	q := cfgs["qwen2-bias-untied"]
	q.SlidingWindow = 6
	cfgs["qwen2-all-windowed"] = q
	lin := cfgs["llama-gqa-tied"]
	lin.RopeScaling = &RopeScaling{Type: "linear", Factor: 2}
	cfgs["llama-linear"] = lin
	for name, cfg := range cfgs {
		js, err := json.Marshal(cfg.HFConfig())
		if err != nil {
			t.Fatal(err)
		}
		got := mustParse(t, string(js))
		cfg.HeadDim, cfg.TorchDType = cfg.headDim(), "float32"
		if !reflect.DeepEqual(got, cfg) {
			t.Errorf("%s: round trip gives\n%+v, want\n%+v", name, got, cfg)
		}
	}
}
