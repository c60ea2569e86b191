package compute

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/engine"
)

func hfArch(t *testing.T, file string) Arch {
	t.Helper()
	b, err := os.ReadFile("testdata/hf/" + file)
	if err != nil {
		t.Fatal(err)
	}
	a, err := FromHFConfig(b)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return a
}

// TestFromHFConfigByHand: Llama-3.1-8B and Mixtral-8x7B from their
// published config.json, counted by hand; the totals are the authors'
// published parameter counts (testdata/hf/README.md).
func TestFromHFConfigByHand(t *testing.T) {
	// Llama-3.1-8B: d 4096, 32 heads of 128, 8 KV heads (kv dim 1024),
	// FFN 14336, 32 layers, vocabulary 128256, untied.
	// Per layer: q,k,v 4096·(4096+1024+1024) = 25,165,824; o 4096·4096 =
	// 16,777,216; gate, up, down 3·4096·14336 = 176,160,768; two norms
	// 8,192 → 218,112,000.
	// Params = 32·218,112,000 + 2·128256·4096 (embedding and LM head) +
	// 4096 (final norm) = 6,979,584,000 + 1,050,673,152 + 4,096
	//        = 8,030,261,248 (the published count).
	a := hfArch(t, "llama-3.1-8b.json")
	if a.Params != 8_030_261_248 {
		t.Fatalf("Llama-3.1-8B params = %d, want 8,030,261,248", a.Params)
	}
	// N = Params − the untied input embedding (a lookup) = 7,504,924,672.
	if a.MatmulParams() != 7_504_924_672 || a.HeadDim != 128 || a.KVHeads != 8 || a.SlidingWindow != 0 {
		t.Fatalf("Llama-3.1-8B arch %+v (N %d)", a, a.MatmulParams())
	}
	// P = 512, O = 128, T = 639; n_layer·d_attn = 32·4096 = 131,072.
	// prefill = 2·N·512 + 131,072·512·513 = 7,685,042,864,128 + 34,426,847,232
	//         = 7,719,469,711,360
	// total   = 2·N·639 + 131,072·639·640 = 9,591,293,730,816 + 53,603,205,120
	//         = 9,644,896,935,936
	// decode  = 1,925,427,224,576; per output token = decode / 127
	f := a.RequestFLOPs(512, 128)
	if f.Prefill != 7_719_469_711_360 || f.Total != 9_644_896_935_936 || f.Decode != 1_925_427_224_576 {
		t.Errorf("Llama-3.1-8B 512+128: %+v", f)
	}
	if f.PerOutputToken != 1_925_427_224_576.0/127 {
		t.Errorf("per output token %v", f.PerOutputToken)
	}
	// The engine's own count agrees (it parses the same file for the
	// native backend).
	b, _ := os.ReadFile("testdata/hf/llama-3.1-8b.json")
	if c, err := engine.ParseConfig(b); err != nil || FromEngine(c).Params != a.Params {
		t.Errorf("engine count %d (%v), compute %d", FromEngine(c).Params, err, a.Params)
	}

	// Mixtral-8x7B: Llama-3-like attention (41,943,040 per layer), 8
	// experts of gate/up/down 176,160,768 each, a router 4096·8 = 32,768,
	// norms 8,192, vocabulary 32000, untied.
	// Per layer, all experts: 41,943,040 + 1,409,286,144 + 32,768 + 8,192
	//   = 1,451,270,144; Params = 32·that + 2·32000·4096 + 4096
	//   = 46,440,644,608 + 262,144,000 + 4,096 = 46,702,792,704 (46.7B).
	// Active (top 2): 41,943,040 + 352,321,536 + 32,768 + 8,192 =
	//   394,305,536 per layer; 32·that + 262,148,096 = 12,879,925,248 (12.9B).
	m := hfArch(t, "mixtral-8x7b.json")
	if m.Params != 46_702_792_704 || m.ActiveParams != 12_879_925_248 {
		t.Fatalf("Mixtral params %d active %d", m.Params, m.ActiveParams)
	}
	// FLOPs use the active parameters less the input embedding:
	// N = 12,879,925,248 − 131,072,000 = 12,748,853,248; one token at
	// t = 1: 2N + 2·32·1·4096 = 25,497,706,496 + 262,144.
	if g := m.RequestFLOPs(1, 1); g.Total != 25_497_706_496+262_144 {
		t.Errorf("Mixtral one token: %v", g.Total)
	}
	// Memory holds every expert.
	if mem := m.EstimateMemory(Shape{Batch: 1, InputTokens: 1, OutputTokens: 1, WeightBytes: 2, KVBytes: 2}, 0); mem.WeightsBytes != 2*46_702_792_704 {
		t.Errorf("Mixtral weights bytes %d", mem.WeightsBytes)
	}
}

func TestFromHFConfigRefuses(t *testing.T) {
	for name, cfg := range map[string]string{
		"qwen3-moe (shared/fine-grained experts)": `{"model_type":"qwen3_moe","hidden_size":2048,"intermediate_size":6144,"num_hidden_layers":48,"num_attention_heads":32,"num_key_value_heads":4,"vocab_size":151936,"num_experts":128,"num_experts_per_tok":8,"moe_intermediate_size":768}`,
		"deepseek (routed experts)":               `{"model_type":"deepseek_v3","hidden_size":7168,"intermediate_size":18432,"num_hidden_layers":61,"num_attention_heads":128,"vocab_size":129280,"n_routed_experts":256}`,
		"gpt2 (another layout)":                   `{"model_type":"gpt2","n_embd":768,"n_layer":12,"n_head":12,"vocab_size":50257}`,
		"mlp bias":                                `{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"mlp_bias":true}`,
		"qwen2 window on some layers":             `{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"num_key_value_heads":2,"use_sliding_window":true,"sliding_window":32}`,
	} {
		if _, err := FromHFConfig([]byte(cfg)); !errors.Is(err, ErrUnsupportedArch) {
			t.Errorf("%s: err = %v, want ErrUnsupportedArch", name, err)
		}
	}
	for name, cfg := range map[string]string{
		"not json":         `{`,
		"no hidden size":   `{"model_type":"llama","intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100}`,
		"kv heads":         `{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3,"vocab_size":100}`,
		"mixtral no top-k": `{"model_type":"mixtral","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"num_local_experts":4}`,
	} {
		if _, err := FromHFConfig([]byte(cfg)); err == nil || errors.Is(err, ErrUnsupportedArch) {
			t.Errorf("%s: err = %v, want a parse error", name, err)
		}
	}
	_, err := FromHFConfig([]byte(`{"model_type":"gpt2"}`))
	if err == nil || !strings.Contains(err.Error(), "llama, mistral, mixtral, qwen2, qwen3") {
		t.Errorf("refusal does not list the counted types: %v", err)
	}
}

// Qwen2 (q/k/v biases), Qwen3 (q/k norms) and Mistral (window, default 8
// KV heads) layouts, by hand on a small shape: d 64, 4 heads of 16, FFN
// 128, 2 layers, vocabulary 100, tied.
func TestFromHFConfigFamilies(t *testing.T) {
	base := `"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"vocab_size":100,"tie_word_embeddings":true`
	// Per layer (KV heads 2, kv dim 32): 64·(64+32+32) = 8,192; o 4,096;
	// MLP 3·64·128 = 24,576; norms 128 → 36,992. Tied: + 100·64 + 64.
	perLayer := int64(36_992)
	for _, c := range []struct {
		json  string
		extra int64
		win   int
	}{
		{`{"model_type":"llama","num_key_value_heads":2,` + base + `}`, 0, 0},
		{`{"model_type":"qwen2","num_key_value_heads":2,` + base + `}`, 64 + 32 + 32, 0},              // q/k/v biases
		{`{"model_type":"qwen3","num_key_value_heads":2,"head_dim":16,` + base + `}`, 2 * 16, 0},      // q_norm, k_norm
		{`{"model_type":"llama","num_key_value_heads":2,"attention_bias":true,` + base + `}`, 192, 0}, // + o bias
		{`{"model_type":"mistral","num_key_value_heads":2,"sliding_window":32,` + base + `}`, 0, 32},
	} {
		a, err := FromHFConfig([]byte(c.json))
		if err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		want := 2*(perLayer+c.extra) + 100*64 + 64
		if a.Params != want || a.MatmulParams() != want || a.SlidingWindow != c.win {
			t.Errorf("%s: params %d window %d, want %d, %d", c.json, a.Params, a.SlidingWindow, want, c.win)
		}
	}
}

// FuzzFromHFConfig: no input panics, and an accepted one has a positive
// shape whose FLOPs are positive.
func FuzzFromHFConfig(f *testing.F) {
	for _, file := range []string{"llama-3.1-8b.json", "mixtral-8x7b.json"} {
		b, err := os.ReadFile("testdata/hf/" + file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"model_type":"qwen2","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2,"vocab_size":4}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := FromHFConfig(b)
		if err != nil {
			return
		}
		if a.Params <= 0 || a.Layers <= 0 || a.HeadDim <= 0 {
			t.Fatalf("accepted a degenerate shape %+v", a)
		}
	})
}

// ForCheckpoint reads config.json from a local model directory.
func TestForCheckpoint(t *testing.T) {
	dir := t.TempDir()
	b, _ := os.ReadFile("testdata/hf/llama-3.1-8b.json")
	if err := os.WriteFile(dir+"/config.json", b, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := ForCheckpoint(dir)
	if err != nil || a.Params != 8_030_261_248 {
		t.Fatalf("ForCheckpoint: %+v %v", a, err)
	}
	if _, err := ForCheckpoint(t.TempDir()); err == nil {
		t.Error("a directory without config.json was accepted")
	}
}
