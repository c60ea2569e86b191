package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/hfcache"
	"github.com/llenergymeasure/llem/pkg/engine/safetensors"
)

// HubCacheDir is where the Hugging Face hub cache lives (hfcache.HubDir).
func HubCacheDir() string { return hfcache.HubDir() }

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// snapshot picks the snapshot of a hub cache repo folder
// (models--org--name): the revision refs/main points at, else the only (or
// most recently modified) snapshot holding a config.json.
func snapshot(repoDir string) (string, bool) {
	if ref, err := os.ReadFile(filepath.Join(repoDir, "refs", "main")); err == nil {
		d := filepath.Join(repoDir, "snapshots", strings.TrimSpace(string(ref)))
		if isFile(filepath.Join(d, "config.json")) {
			return d, true
		}
	}
	ents, err := os.ReadDir(filepath.Join(repoDir, "snapshots"))
	if err != nil {
		return "", false
	}
	best, bestT := "", int64(0)
	for _, e := range ents {
		d := filepath.Join(repoDir, "snapshots", e.Name())
		st, err := os.Stat(filepath.Join(d, "config.json"))
		if err != nil {
			continue
		}
		if t := st.ModTime().UnixNano(); best == "" || t > bestT {
			best, bestT = d, t
		}
	}
	return best, best != ""
}

// ResolveModelDir finds the directory holding config.json for model: a local
// model directory, a hub cache repo folder (models--org--name), or a hub id
// ("org/name", looked up in HubCacheDir; nothing is downloaded).
func ResolveModelDir(model string) (string, error) {
	if model == "" {
		return "", errs.BadInput(errors.New("resolve model: empty model name"), "set model to a local directory or a Hugging Face id")
	}
	if st, err := os.Stat(model); err == nil && st.IsDir() {
		if isFile(filepath.Join(model, "config.json")) {
			return model, nil
		}
		if d, ok := snapshot(model); ok {
			return d, nil
		}
		return "", errs.BadInput(fmt.Errorf("resolve model %s: %w: no config.json in the directory", model, ErrBadCheckpoint),
			"point model at a directory with config.json and *.safetensors")
	}
	cache := HubCacheDir()
	if strings.Count(model, "/") == 1 && !strings.HasPrefix(model, ".") && !strings.HasPrefix(model, "/") {
		repo := filepath.Join(cache, "models--"+strings.ReplaceAll(model, "/", "--"))
		if d, ok := snapshot(repo); ok {
			return d, nil
		}
	}
	if looksLikePath(model) {
		return "", errs.BadInput(fmt.Errorf("resolve model %q: no such directory", model),
			"check the path (relative paths are resolved from where llem runs), or use a Hugging Face id or a random:<preset> model")
	}
	return "", errs.BadInput(fmt.Errorf("resolve model %q: not a local directory and not in the Hugging Face cache %s", model, cache),
		fmt.Sprintf("download it first (huggingface-cli download %s), set HF_HOME, or use a random:<preset> model", model))
}

// looksLikePath tells a file system path from a Hugging Face id (owner/name):
// a download hint makes no sense for /data/models/x or ./ckpt.
func looksLikePath(model string) bool {
	return strings.HasPrefix(model, "/") || strings.HasPrefix(model, ".") || strings.HasPrefix(model, "~") ||
		strings.Count(model, "/") > 1
}

// tensorSource maps tensor names to the open file holding them.
type tensorSource struct {
	files map[string]*safetensors.File
	where map[string]*safetensors.File
}

func (s *tensorSource) close() {
	for _, f := range s.files {
		f.Close()
	}
}

func openTensors(dir string) (*tensorSource, error) {
	src := &tensorSource{files: map[string]*safetensors.File{}, where: map[string]*safetensors.File{}}
	open := func(name string) (*safetensors.File, error) {
		if f, ok := src.files[name]; ok {
			return f, nil
		}
		if strings.Contains(name, "/") || strings.Contains(name, `\`) || name == ".." {
			return nil, fmt.Errorf("%w: shard name %q escapes the model directory", ErrBadCheckpoint, name)
		}
		f, err := safetensors.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
		}
		src.files[name] = f
		return f, nil
	}
	if data, err := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json")); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		if err := json.Unmarshal(data, &idx); err != nil {
			return nil, fmt.Errorf("parse model.safetensors.index.json: %w: %w", ErrBadCheckpoint, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("parse model.safetensors.index.json: %w: empty weight_map", ErrBadCheckpoint)
		}
		names := make([]string, 0, len(idx.WeightMap))
		for n := range idx.WeightMap {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			f, err := open(idx.WeightMap[n])
			if err != nil {
				src.close()
				return nil, err
			}
			if _, ok := f.Header.Find(n); !ok {
				src.close()
				return nil, fmt.Errorf("%w: index maps %q to %s, which does not contain it", ErrBadCheckpoint, n, idx.WeightMap[n])
			}
			src.where[n] = f
		}
		return src, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read model index: %w", err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	sort.Strings(matches)
	if len(matches) == 0 {
		return nil, errs.WithHint(fmt.Errorf("%w: no *.safetensors in %s", ErrBadCheckpoint, dir),
			"the native backend reads safetensors only; convert .bin/.pt checkpoints or use the pytorch backend")
	}
	for _, p := range matches {
		f, err := open(filepath.Base(p))
		if err != nil {
			src.close()
			return nil, err
		}
		for _, t := range f.Header.Tensors {
			src.where[t.Name] = f
		}
	}
	return src, nil
}

// Load reads a checkpoint: config.json plus safetensors weights (one file,
// several, or shards listed in model.safetensors.index.json), converting
// F32/F16/BF16 to the engine's storage. dir may be anything ResolveModelDir
// accepts.
func Load(dir string, opts ...Option) (*Model, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	dir, err = ResolveModelDir(dir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("load model: %w: %w", ErrBadCheckpoint, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	src, err := openTensors(dir)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	defer src.close()
	m := newModel(cfg, o)
	prefix := "model."
	if _, ok := src.where["model.embed_tokens.weight"]; !ok {
		if _, ok := src.where["embed_tokens.weight"]; ok {
			prefix = ""
		}
	}
	for name, t := range m.tensors() {
		stored := name
		if prefix == "" && strings.HasPrefix(name, "model.") {
			stored = strings.TrimPrefix(name, "model.")
		}
		f, ok := src.where[stored]
		if !ok {
			return nil, errs.WithHint(fmt.Errorf("load model %s: %w: tensor %s missing", dir, ErrBadCheckpoint, stored),
				"check that the download is complete and the architecture is llama, mistral or qwen2")
		}
		info, _ := f.Header.Find(stored)
		if !slices.Equal(info.Shape, t.shape) {
			return nil, fmt.Errorf("load model %s: %w: tensor %s has shape %v, config.json implies %v", dir, ErrBadCheckpoint, stored, info.Shape, t.shape)
		}
		vals, err := f.Float32(info)
		if err != nil {
			return nil, fmt.Errorf("load model %s: %w: %w", dir, ErrBadCheckpoint, err)
		}
		t.set(vals)
	}
	return m, nil
}

// Save writes the model as a HF checkpoint (config.json and
// model.safetensors, tensors stored as dtype "F32", "F16" or "BF16"), which
// transformers and Load can read back. It needs fp32 storage.
func (m *Model) Save(dir, dtype string) error {
	if m.opts.storage != "fp32" {
		return fmt.Errorf("save model: weights are stored as %s; build the model with fp32 storage to save it", m.opts.storage)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	hc := m.cfg.HFConfig()
	hc["torch_dtype"] = map[string]string{"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
	cj, err := json.MarshalIndent(hc, "", "  ")
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	var ts []safetensors.WriteTensor
	for name, t := range m.tensors() {
		ts = append(ts, safetensors.WriteTensor{Name: name, DType: dtype, Shape: t.shape, Data: t.data})
	}
	f, err := os.Create(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := safetensors.Write(f, ts, map[string]string{"format": "pt"}); err != nil {
		f.Close()
		return fmt.Errorf("save model: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

// HFConfig renders the config as a transformers config.json object.
func (c Config) HFConfig() map[string]any {
	h := map[string]any{
		"architectures":           []string{c.Architecture},
		"model_type":              c.ModelType,
		"hidden_size":             c.HiddenSize,
		"intermediate_size":       c.IntermediateSize,
		"num_hidden_layers":       c.NumLayers,
		"num_attention_heads":     c.NumHeads,
		"num_key_value_heads":     c.NumKVHeads,
		"vocab_size":              c.VocabSize,
		"max_position_embeddings": c.MaxPositionEmbeddings,
		"head_dim":                c.headDim(),
		"rms_norm_eps":            c.RMSNormEps,
		"rope_theta":              c.RopeTheta,
		"tie_word_embeddings":     c.TieWordEmbeddings,
		"hidden_act":              "silu",
		"torch_dtype":             "float32",
	}
	// Absent ids mean transformers' defaults (1 and 2 for llama and
	// mistral), so "none" is written as null.
	h["bos_token_id"], h["eos_token_id"] = nil, nil
	if len(c.BOSTokenID) > 0 {
		h["bos_token_id"] = c.BOSTokenID[0]
	}
	if len(c.EOSTokenIDs) == 1 {
		h["eos_token_id"] = c.EOSTokenIDs[0]
	} else if len(c.EOSTokenIDs) > 1 {
		h["eos_token_id"] = c.EOSTokenIDs
	}
	if rs := c.RopeScaling; rs != nil {
		sc := map[string]any{"rope_type": rs.Type, "factor": rs.Factor}
		if rs.Type == "llama3" {
			sc["low_freq_factor"], sc["high_freq_factor"] = rs.LowFreqFactor, rs.HighFreqFactor
			sc["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings
		}
		h["rope_scaling"] = sc
	}
	switch c.ModelType {
	case "llama":
		h["attention_bias"] = c.AttentionBias && c.OutputBias
	case "qwen2":
		// layer_types for transformers >= 4.53, and max_window_layers (the
		// leading full-attention layers) for older versions, which read
		// only that; they agree unless full layers follow windowed ones.
		h["use_sliding_window"] = c.SlidingWindow > 0
		h["sliding_window"] = nil
		if c.SlidingWindow > 0 {
			types := make([]string, c.NumLayers)
			lead := -1
			for i := range types {
				types[i] = FullAttention
				if c.layerWindow(i) > 0 {
					types[i] = SlidingAttention
					if lead < 0 {
						lead = i
					}
				}
			}
			h["sliding_window"], h["layer_types"], h["max_window_layers"] = c.SlidingWindow, types, lead
		}
	case "mistral":
		// An absent sliding_window means 4096 to transformers.
		h["sliding_window"] = nil
		if c.SlidingWindow > 0 {
			h["sliding_window"] = c.SlidingWindow
		}
	}
	return h
}

// RandomPrefix marks a built-in random-weight model: "random:llama-15m".
const RandomPrefix = "random:"

// Open builds the model a run's `model` field names: "random:<preset>" gives
// seeded random weights of a built-in architecture (seed is the run's
// random_seed), anything else is loaded as a checkpoint (see Load).
func Open(model string, seed int64, opts ...Option) (*Model, error) {
	if name, ok := strings.CutPrefix(model, RandomPrefix); ok {
		cfg, ok := Preset(name)
		if !ok {
			return nil, errs.BadInput(fmt.Errorf("open model %q: %w: no built-in preset %q", model, ErrUnsupported, name),
				"the native backend's presets are random:"+strings.Join(Presets(), ", random:"))
		}
		return NewRandom(cfg, seed, opts...)
	}
	return Load(model, opts...)
}
