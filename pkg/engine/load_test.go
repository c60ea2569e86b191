package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/engine/safetensors"
)

// writeCheckpoint writes m's weights as a HF checkpoint in dir, stored as
// dtype, in one file or split over shards with model.safetensors.index.json.
func writeCheckpoint(t *testing.T, m *Model, dir, dtype string, shards int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cj, _ := json.Marshal(m.cfg.HFConfig())
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cj, 0o644); err != nil {
		t.Fatal(err)
	}
	var names []string
	ts := m.tensors()
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	weightMap := map[string]string{}
	for s := 0; s < shards; s++ {
		file := "model.safetensors"
		if shards > 1 {
			file = "model-0000" + itoa(s+1) + "-of-0000" + itoa(shards) + ".safetensors"
		}
		var part []safetensors.WriteTensor
		for i, n := range names {
			if i%shards == s {
				part = append(part, safetensors.WriteTensor{Name: n, DType: dtype, Shape: ts[n].shape, Data: ts[n].data})
				weightMap[n] = file
			}
		}
		f, err := os.Create(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := safetensors.Write(f, part, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if shards > 1 {
		idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
		if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), idx, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckpointRoundTrip writes tiny real checkpoints (bf16, fp16, fp32
// sharded), loads them, and checks the weights are the originals rounded to
// the stored dtype and that generation is deterministic.
func TestCheckpointRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, arch := range []string{"qwen2-bias-untied", "llama-gqa-tied"} {
		orig := tinyModel(t, arch)
		for _, c := range []struct {
			dtype  string
			shards int
		}{{"BF16", 1}, {"F16", 1}, {"F32", 3}} {
			t.Run(arch+"/"+c.dtype, func(t *testing.T) {
				dir := t.TempDir()
				writeCheckpoint(t, orig, dir, c.dtype, c.shards)
				m, err := Load(dir)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(m.cfg.EOSTokenIDs, orig.cfg.EOSTokenIDs) || m.cfg.HiddenSize != orig.cfg.HiddenSize || m.cfg.AttentionBias != orig.cfg.AttentionBias || m.NumParams() != orig.NumParams() {
					t.Fatalf("config %+v, want %+v", m.cfg, orig.cfg)
				}
				lt := m.tensors()
				for name, ot := range orig.tensors() {
					for i, v := range ot.data {
						want := v
						switch c.dtype {
						case "BF16":
							want = safetensors.BF16ToF32(safetensors.F32ToBF16(v))
						case "F16":
							want = safetensors.F16ToF32(safetensors.F32ToF16(v))
						}
						if lt[name].data[i] != want {
							t.Fatalf("%s[%d] = %v, want %v", name, i, lt[name].data[i], want)
						}
					}
				}
				req := []Request{{Prompt: []int{1, 4, 9}, MaxNewTokens: 6}}
				a, err := m.Generate(ctx, req, Sampling{Temperature: 0.7, Seed: 3, IgnoreEOS: true}, Hooks{})
				if err != nil {
					t.Fatal(err)
				}
				again, _ := Load(dir)
				b, _ := again.Generate(ctx, req, Sampling{Temperature: 0.7, Seed: 3, IgnoreEOS: true}, Hooks{})
				if !slices.Equal(a[0].Tokens, b[0].Tokens) || len(a[0].Tokens) != 6 {
					t.Errorf("two loads generate %v and %v", a[0].Tokens, b[0].Tokens)
				}
				if c.dtype == "F32" {
					o, _ := orig.Generate(ctx, req, Sampling{Temperature: 0.7, Seed: 3, IgnoreEOS: true}, Hooks{})
					if !slices.Equal(a[0].Tokens, o[0].Tokens) {
						t.Errorf("fp32 checkpoint generates %v, original %v", a[0].Tokens, o[0].Tokens)
					}
				}
			})
		}
	}
}

func TestSaveAndHubCache(t *testing.T) {
	orig := tinyModel(t, "mistral-window")
	hf := t.TempDir()
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_HOME", hf)
	snap := filepath.Join(hf, "hub", "models--acme--tiny", "snapshots", "0123abcd")
	if err := orig.Save(snap, "F32"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(hf, "hub", "models--acme--tiny", "refs"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(hf, "hub", "models--acme--tiny", "refs", "main"), []byte("0123abcd\n"), 0o644)
	for _, ref := range []string{"acme/tiny", filepath.Join(hf, "hub", "models--acme--tiny"), snap} {
		d, err := ResolveModelDir(ref)
		if err != nil || d != snap {
			t.Errorf("ResolveModelDir(%s) = %s, %v; want %s", ref, d, err, snap)
		}
	}
	m, err := Load("acme/tiny")
	if err != nil {
		t.Fatal(err)
	}
	if m.cfg.SlidingWindow != orig.cfg.SlidingWindow || m.cfg.ModelType != "mistral" {
		t.Errorf("loaded config %+v", m.cfg)
	}
	if _, err := ResolveModelDir("acme/missing"); err == nil || !strings.Contains(errs.Hint(err), "huggingface-cli download acme/missing") {
		t.Errorf("missing hub model: %v (hint %q)", err, errs.Hint(err))
	}
	// A missing local path gets no download hint (there is nothing to download).
	for _, p := range []string{"/nonexistent/model", "./ckpt", "models/a/b"} {
		_, err := ResolveModelDir(p)
		if err == nil || !strings.Contains(err.Error(), "no such directory") || strings.Contains(errs.Hint(err), "huggingface-cli") {
			t.Errorf("missing path %s: %v (hint %q)", p, err, errs.Hint(err))
		}
	}
}

func TestLoadErrors(t *testing.T) {
	orig := tinyModel(t, "llama-gqa-tied")
	good := t.TempDir()
	writeCheckpoint(t, orig, good, "F32", 1)

	noWeights := t.TempDir()
	os.WriteFile(filepath.Join(noWeights, "config.json"), mustRead(t, filepath.Join(good, "config.json")), 0o644)

	wrongShape := t.TempDir()
	big := tinyConfigs()["llama-gqa-tied"]
	big.IntermediateSize = 40
	other, _ := NewRandom(big, 1)
	writeCheckpoint(t, other, wrongShape, "F32", 1)
	os.WriteFile(filepath.Join(wrongShape, "config.json"), mustRead(t, filepath.Join(good, "config.json")), 0o644)

	missing := t.TempDir()
	writeCheckpoint(t, orig, missing, "F32", 1)
	cfg := orig.cfg
	cfg.TieWordEmbeddings = false // now lm_head.weight is required
	cj, _ := json.Marshal(cfg.HFConfig())
	os.WriteFile(filepath.Join(missing, "config.json"), cj, 0o644)

	corrupt := t.TempDir()
	os.WriteFile(filepath.Join(corrupt, "config.json"), mustRead(t, filepath.Join(good, "config.json")), 0o644)
	os.WriteFile(filepath.Join(corrupt, "model.safetensors"), []byte("\xff\xff\xff\xff\xff\xff\xff\xffjunk"), 0o644)

	unsupported := t.TempDir()
	os.WriteFile(filepath.Join(unsupported, "config.json"), []byte(`{"model_type":"gpt2","architectures":["GPT2LMHeadModel"],"n_embd":8}`), 0o644)

	badShard := t.TempDir()
	writeCheckpoint(t, orig, badShard, "F32", 2)
	os.WriteFile(filepath.Join(badShard, "model.safetensors.index.json"), []byte(`{"weight_map":{"model.norm.weight":"../evil.safetensors"}}`), 0o644)

	for name, c := range map[string]struct {
		dir  string
		want error
	}{
		"no weights":  {noWeights, ErrBadCheckpoint},
		"wrong shape": {wrongShape, ErrBadCheckpoint},
		"missing":     {missing, ErrBadCheckpoint},
		"corrupt":     {corrupt, ErrBadCheckpoint},
		"unsupported": {unsupported, ErrUnsupported},
		"bad shard":   {badShard, ErrBadCheckpoint},
	} {
		if _, err := Load(c.dir); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpen(t *testing.T) {
	m, err := Open("random:llama-15m", 1, WithStorage("bf16"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Config().HiddenSize != 288 || m.DType() != "bf16" || m.NumParams() < 15e6 {
		t.Errorf("random:llama-15m gave %+v, %s", m.Config(), m.DType())
	}
	if _, err := Open("random:gpt-9", 1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown preset: %v", err)
	}
	dir := t.TempDir()
	if err := tinyModel(t, "llama-gqa-tied").Save(dir, "BF16"); err != nil {
		t.Fatal(err)
	}
	if m, err := Open(dir, 0); err != nil || m.Config().VocabSize != 64 {
		t.Errorf("Open(dir) = %v", err)
	}
}

// TestLoadBF16Storage: loading an fp32 checkpoint into bf16 storage rounds
// each weight straight into place, giving exactly the model NewRandom builds
// with bf16 storage from the same seed.
func TestLoadBF16Storage(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfigs()["qwen2-bias-untied"]
	orig, _ := NewRandom(cfg, 3)
	dir := t.TempDir()
	if err := orig.Save(dir, "F32"); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir, WithStorage("bf16"))
	if err != nil {
		t.Fatal(err)
	}
	direct, _ := NewRandom(cfg, 3, WithStorage("bf16"))
	if loaded.DType() != "bf16" || loaded.MemoryBytes() != direct.MemoryBytes() || loaded.layers[0].wqkv.f32 != nil {
		t.Fatalf("loaded %s model holds %d bytes (fp32 matrices: %v), direct %d", loaded.DType(), loaded.MemoryBytes(), loaded.layers[0].wqkv.f32 != nil, direct.MemoryBytes())
	}
	a, _ := loaded.Forward(ctx, nil, []int{1, 2, 3, 4})
	b, _ := direct.Forward(ctx, nil, []int{1, 2, 3, 4})
	for p := range a {
		if !slices.Equal(a[p], b[p]) {
			t.Fatalf("position %d: loaded-bf16 and random-bf16 logits differ", p)
		}
	}
	if err := loaded.Save(t.TempDir(), "F32"); err == nil {
		t.Error("saving a bf16-stored model succeeded")
	}
}
