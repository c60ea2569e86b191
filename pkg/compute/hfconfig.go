package compute

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/pkg/engine"
)

// ErrUnsupportedArch is why FromHFConfig refuses a config.json: its layout
// is one the parameter count below does not describe, and a wrong FLOPs
// figure is worse than none.
var ErrUnsupportedArch = errors.New("architecture not counted by pkg/compute (FLOPs and memory estimates)")

// hfShape is the part of a Hugging Face config.json the count needs.
// Pointers tell an absent key from a zero.
type hfShape struct {
	ModelType         string   `json:"model_type"`
	Architectures     []string `json:"architectures"`
	HiddenSize        int      `json:"hidden_size"`
	IntermediateSize  int      `json:"intermediate_size"`
	NumHiddenLayers   int      `json:"num_hidden_layers"`
	NumAttentionHeads int      `json:"num_attention_heads"`
	NumKeyValueHeads  *int     `json:"num_key_value_heads"`
	HeadDim           *int     `json:"head_dim"`
	VocabSize         int      `json:"vocab_size"`
	TieWordEmbeddings *bool    `json:"tie_word_embeddings"`
	AttentionBias     *bool    `json:"attention_bias"`
	MLPBias           *bool    `json:"mlp_bias"`
	SlidingWindow     *int     `json:"sliding_window"`
	UseSlidingWindow  *bool    `json:"use_sliding_window"`
	LayerTypes        []string `json:"layer_types"`
	// Mixtral-style mixture of experts.
	NumLocalExperts  *int `json:"num_local_experts"`
	NumExpertsPerTok *int `json:"num_experts_per_tok"`
	// Other MoE layouts (refused): Qwen2/3-MoE, DeepSeek.
	NumExperts     *int `json:"num_experts"`
	NRoutedExperts *int `json:"n_routed_experts"`
}

// hfFamilies are the model types whose decoder layer is the Llama layout
// (transformers' modeling_<type>.py): q/k/v/o projections, a gated MLP
// (gate, up, down: 3·d·ffn), two RMSNorms; qwen2 adds q/k/v biases, qwen3
// per-head q/k RMSNorms (2·head_dim), mixtral replaces the MLP by experts
// of that shape and a router (d × experts, no bias). Each entry gives the
// class default of num_key_value_heads when the file leaves it out (0:
// num_attention_heads) and of tie_word_embeddings.
var hfFamilies = map[string]struct {
	kvHeads int
	tied    bool
}{
	"llama":   {0, false},
	"mistral": {8, false},
	"qwen2":   {32, false},
	"qwen3":   {8, false},
	"mixtral": {8, false},
}

// FromHFConfig is the Arch of a checkpoint from its config.json, for
// FLOPs and memory estimates of models that are not random presets. It
// counts parameters the way transformers builds the model (see
// hfFamilies) and refuses, with ErrUnsupportedArch and the reason, a
// layout it does not count exactly: other model types, MoE other than
// Mixtral's, MLP biases. For Mixtral, Params are all experts (memory) and
// ActiveParams the router's top-k (FLOPs: a token runs k experts).
// Quantization does not change the count (the matmuls are the same).
func FromHFConfig(data []byte) (Arch, error) {
	var h hfShape
	if err := json.Unmarshal(data, &h); err != nil {
		return Arch{}, fmt.Errorf("parse config.json: %w", err)
	}
	if h.NRoutedExperts != nil || h.NumExperts != nil {
		return Arch{}, fmt.Errorf("%w: model_type %q is a mixture of experts with shared or fine-grained experts (num_experts / n_routed_experts); only Mixtral's layout (num_local_experts × a full MLP, top num_experts_per_tok) is counted", ErrUnsupportedArch, h.ModelType)
	}
	fam, ok := hfFamilies[h.ModelType]
	if !ok {
		known := make([]string, 0, len(hfFamilies))
		for k := range hfFamilies {
			known = append(known, k)
		}
		sort.Strings(known)
		return Arch{}, fmt.Errorf("%w: model_type %q (counted: %s, whose layers are the Llama layout)", ErrUnsupportedArch, h.ModelType, strings.Join(known, ", "))
	}
	if h.MLPBias != nil && *h.MLPBias {
		return Arch{}, fmt.Errorf("%w: mlp_bias=true", ErrUnsupportedArch)
	}
	for k, v := range map[string]int{"hidden_size": h.HiddenSize, "intermediate_size": h.IntermediateSize,
		"num_hidden_layers": h.NumHiddenLayers, "num_attention_heads": h.NumAttentionHeads, "vocab_size": h.VocabSize} {
		if v <= 0 {
			return Arch{}, fmt.Errorf("parse config.json: %s is %d, want a positive number", k, v)
		}
	}
	// Shapes far beyond any model would overflow the count: refuse them
	// (the float product bounds the largest term of the count).
	experts := 1.0
	if h.NumLocalExperts != nil {
		experts = float64(max(*h.NumLocalExperts, 1))
	}
	hdim := 1.0
	if h.HeadDim != nil {
		hdim = float64(max(*h.HeadDim, 1))
	}
	if f := float64(h.NumHiddenLayers)*float64(h.HiddenSize)*(experts*3*float64(h.IntermediateSize)+4*float64(h.HiddenSize)+4*float64(h.NumAttentionHeads)*hdim) + 2*float64(h.VocabSize)*float64(h.HiddenSize); f > 1e15 {
		return Arch{}, fmt.Errorf("parse config.json: a shape of about %.3g parameters is not a model", f)
	}
	a := Arch{Layers: h.NumHiddenLayers, DModel: h.HiddenSize, Heads: h.NumAttentionHeads, KVHeads: h.NumAttentionHeads,
		Vocab: h.VocabSize, FFN: h.IntermediateSize}
	if fam.kvHeads > 0 {
		a.KVHeads = fam.kvHeads
	}
	if h.NumKeyValueHeads != nil {
		a.KVHeads = *h.NumKeyValueHeads
	}
	if a.KVHeads <= 0 || a.Heads%a.KVHeads != 0 {
		return Arch{}, fmt.Errorf("parse config.json: num_key_value_heads %d does not divide num_attention_heads %d", a.KVHeads, a.Heads)
	}
	a.HeadDim = h.HiddenSize / h.NumAttentionHeads
	if h.HeadDim != nil && *h.HeadDim > 0 {
		a.HeadDim = *h.HeadDim
	}
	tied := fam.tied
	if h.TieWordEmbeddings != nil {
		tied = *h.TieWordEmbeddings
	}
	d, hd := int64(a.DModel), int64(a.HeadDim)
	q, kv := int64(a.Heads)*hd, int64(a.KVHeads)*hd
	attn := d*(q+2*kv) + q*d
	switch {
	case h.ModelType == "qwen2":
		attn += q + 2*kv // q/k/v biases, always
	case h.AttentionBias != nil && *h.AttentionBias:
		attn += q + 2*kv + d // llama, mistral, qwen3: q/k/v/o biases
	}
	if h.ModelType == "qwen3" {
		attn += 2 * hd // q_norm, k_norm over head_dim
	}
	mlp := 3 * d * int64(a.FFN)
	norms := 2 * d
	perLayer, activeLayer := attn+mlp+norms, attn+mlp+norms
	if h.ModelType == "mixtral" {
		if h.NumLocalExperts == nil || h.NumExpertsPerTok == nil || *h.NumLocalExperts <= 0 || *h.NumExpertsPerTok <= 0 || *h.NumExpertsPerTok > *h.NumLocalExperts {
			return Arch{}, fmt.Errorf("parse config.json: mixtral needs num_local_experts ≥ num_experts_per_tok > 0")
		}
		e, k := int64(*h.NumLocalExperts), int64(*h.NumExpertsPerTok)
		router := d * e
		perLayer = attn + e*mlp + router + norms
		activeLayer = attn + k*mlp + router + norms
	}
	embed := int64(a.Vocab) * d
	head := embed
	if tied {
		head = 0
	} else {
		a.EmbeddingLookupParams = embed
	}
	a.Params = int64(a.Layers)*perLayer + embed + head + d
	a.ActiveParams = int64(a.Layers)*activeLayer + embed + head + d
	if a.ActiveParams == a.Params {
		a.ActiveParams = 0
	}
	// A window on every layer only: mistral's sliding_window, or qwen's
	// when use_sliding_window is set and no layer_types mix them.
	if h.SlidingWindow != nil && *h.SlidingWindow > 0 && len(h.LayerTypes) == 0 {
		switch h.ModelType {
		case "mistral", "mixtral":
			a.SlidingWindow = *h.SlidingWindow
		case "qwen2", "qwen3":
			if h.UseSlidingWindow != nil && *h.UseSlidingWindow {
				return Arch{}, fmt.Errorf("%w: use_sliding_window on some layers (max_window_layers)", ErrUnsupportedArch)
			}
		}
	}
	return a, nil
}

// ForCheckpoint is the Arch of a checkpoint whose config.json is on this
// machine: a local model directory or a Hugging Face id already in the hub
// cache (engine.ResolveModelDir; nothing is downloaded).
func ForCheckpoint(model string) (Arch, error) {
	dir, err := engine.ResolveModelDir(model)
	if err != nil {
		return Arch{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return Arch{}, fmt.Errorf("read %s: %w", model, err)
	}
	a, err := FromHFConfig(b)
	if err != nil {
		return Arch{}, fmt.Errorf("%s: %w", model, err)
	}
	return a, nil
}
