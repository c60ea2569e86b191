package native

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/testmodel"
	"github.com/llenergymeasure/llem/pkg/engine"
	"github.com/llenergymeasure/llem/pkg/protocol"
)

// specJSON builds a run spec around config (a JSON object as a Go map).
func specJSON(t testing.TB, config map[string]any, prompts []protocol.Prompt) string {
	t.Helper()
	cj, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	s, err := json.Marshal(protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: "test", Config: cj, Prompts: prompts})
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

func baseConfig() map[string]any {
	return map[string]any{
		"model": "random:llama-15m", "backend": "native", "precision": "fp32", "n": 5,
		"dataset":           map[string]any{"source": "synthetic", "input_len": 6, "output_len": 3, "distribution": "fixed"},
		"dataset_order":     "interleaved",
		"max_input_tokens":  64,
		"max_output_tokens": 8,
		"decoder":           map[string]any{"temperature": 0.7, "do_sample": true, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.0},
		"warmup":            map[string]any{"enabled": true, "n_warmup": 1, "thermal_floor_seconds": 0},
		"energy":            map[string]any{"sensor": "none"},
		"random_seed":       42,
		"native":            map[string]any{"batch_size": 2, "threads": 2},
	}
}

// decodeAll reads every event strictly.
func decodeAll(t *testing.T, out []byte) []protocol.Event {
	t.Helper()
	dec := protocol.NewDecoder(bytes.NewReader(out))
	var evs []protocol.Event
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			return evs
		}
		if err != nil {
			t.Fatalf("worker output: %v\n%s", err, out)
		}
		evs = append(evs, ev)
	}
}

func TestRunPresetValidates(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), strings.NewReader(specJSON(t, baseConfig(), nil)), &out); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	sum, err := protocol.Validate(decodeAll(t, out.Bytes()))
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if sum.Hello.Backend != "native" || sum.Hello.Versions["go"] == "" || sum.Hello.Versions["llem"] == "" {
		t.Errorf("hello = %+v", sum.Hello)
	}
	if sum.Loaded.Parameters < 15e6 || sum.Loaded.Parameters > 16e6 || sum.Loaded.Layers != 6 || sum.Loaded.DType != "fp32" || sum.Loaded.MemoryBytes <= 0 {
		t.Errorf("loaded = %+v", sum.Loaded)
	}
	// 5 prompts in batches of 2: 3 batches; synthetic lengths are forced.
	d := sum.Done
	if sum.WarmupDone.Prompts != 1 || len(sum.Batches) != 3 || d.Requests != 5 || d.InputTokens != 30 || d.OutputTokens != 15 {
		t.Errorf("warmup %d, %d batches, done %+v", sum.WarmupDone.Prompts, len(sum.Batches), d)
	}
	// KV cache by hand: the largest batch is 2 requests of 6 prompt + 3
	// output tokens, 8 cached positions each; llama-15m caches 6 layers ×
	// K and V × 288 values (6 KV heads of 48) in fp32: 8·6·2·288·4 =
	// 110,592 bytes per request, 221,184 for the batch.
	if m := d.Memory; m == nil || m.KVCacheBytes != 221_184 || m.WeightsBytes != sum.Loaded.MemoryBytes || m.Reporter != "llem engine (host memory)" || m.PeakAllocatedBytes != 0 {
		t.Errorf("done.memory = %+v", m)
	}
	for _, r := range sum.Requests {
		if r.TTFTNs <= 0 || len(r.ITLNs) != 2 || r.FinishReason != "length" {
			t.Errorf("request %+v", r)
		}
	}
	for _, b := range sum.Batches {
		if !(b.PrefillStartNs < b.PrefillEndNs && b.PrefillEndNs <= b.DecodeStartNs && b.DecodeStartNs < b.DecodeEndNs) {
			t.Errorf("batch %d phases out of order: %+v", b.Index, b)
		}
	}
}

func TestRunDeterministic(t *testing.T) {
	cfg := baseConfig()
	cfg["n"] = 2
	cfg["warmup"] = map[string]any{"enabled": false}
	cfg["decoder"] = map[string]any{"preset": "deterministic"}
	cfg["native"] = map[string]any{"batch_size": 1, "storage": "bf16"}
	cfg["model"] = testmodel.TinyCheckpoint(t)
	var a bytes.Buffer
	if err := Run(context.Background(), strings.NewReader(specJSON(t, cfg, nil)), &a); err != nil {
		t.Fatal(err)
	}
	sum, err := protocol.Validate(decodeAll(t, a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if sum.WarmupDone.Prompts != 0 || sum.Loaded.DType != "bf16" || len(sum.Batches) != 2 {
		t.Errorf("warmup %d dtype %s batches %d", sum.WarmupDone.Prompts, sum.Loaded.DType, len(sum.Batches))
	}
	// Greedy decoding and seeded synthetic prompts: a second run emits the
	// same requests (token counts; the tokens themselves are not in events,
	// so compare the prompts' effect through finish reasons and lengths).
	var b bytes.Buffer
	if err := Run(context.Background(), strings.NewReader(specJSON(t, cfg, nil)), &b); err != nil {
		t.Fatal(err)
	}
	sum2, _ := protocol.Validate(decodeAll(t, b.Bytes()))
	for i := range sum.Requests {
		r1, r2 := sum.Requests[i], sum2.Requests[i]
		if r1.InputTokens != r2.InputTokens || r1.OutputTokens != r2.OutputTokens || r1.FinishReason != r2.FinishReason {
			t.Errorf("request %d differs between identical runs: %+v vs %+v", i, r1, r2)
		}
	}
}

func TestRunPromptsFromSpec(t *testing.T) {
	cfg := baseConfig()
	cfg["model"] = testmodel.TinyCheckpoint(t)
	prompts := []protocol.Prompt{{TokenIDs: []int{5, 6, 7}, MaxTokens: 2}, {TokenIDs: make([]int, 100)}}
	var out bytes.Buffer
	if err := Run(context.Background(), strings.NewReader(specJSON(t, cfg, prompts)), &out); err != nil {
		t.Fatal(err)
	}
	sum, err := protocol.Validate(decodeAll(t, out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// The second prompt is truncated to max_input_tokens (64) and asks for
	// max_output_tokens (8).
	if sum.Done.InputTokens != 3+64 || sum.Done.OutputTokens != 2+8 {
		t.Errorf("done = %+v", sum.Done)
	}
}

func TestRunCheckpointWithTokenizer(t *testing.T) {
	dir := testmodel.TinyCheckpoint(t)
	prompts := filepath.Join(t.TempDir(), "p.jsonl")
	os.WriteFile(prompts, []byte("{\"prompt\": \"hello\"}\n{\"text\": \"naïve\"}\n"), 0o644)
	cfg := baseConfig()
	cfg["model"] = dir
	cfg["n"] = 2
	cfg["dataset"] = map[string]any{"source": "jsonl", "path": prompts}
	var out bytes.Buffer
	if err := Run(context.Background(), strings.NewReader(specJSON(t, cfg, nil)), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	sum, err := protocol.Validate(decodeAll(t, out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	// "hello" = he,l,l,o (4 tokens); "naïve" = 6 bytes.
	if sum.Requests[0].InputTokens != 4 || sum.Requests[1].InputTokens != 6 {
		t.Errorf("input tokens %d, %d; want 4, 6", sum.Requests[0].InputTokens, sum.Requests[1].InputTokens)
	}
	if sum.Loaded.Architecture != "LlamaForCausalLM" || sum.Loaded.Layers != 2 {
		t.Errorf("loaded = %+v", sum.Loaded)
	}
}

func TestRunFailures(t *testing.T) {
	unsupported := t.TempDir()
	os.WriteFile(filepath.Join(unsupported, "config.json"), []byte(`{"architectures":["GPT2LMHeadModel"],"model_type":"gpt2","n_embd":8}`), 0o644)
	missingWeights := t.TempDir()
	m, _ := engine.NewRandom(engine.Config{Architecture: "LlamaForCausalLM", ModelType: "llama", HiddenSize: 8, IntermediateSize: 8, NumLayers: 1,
		NumHeads: 2, NumKVHeads: 1, VocabSize: 16, MaxPositionEmbeddings: 32, RMSNormEps: 1e-5, RopeTheta: 10000, TieWordEmbeddings: true}, 1)
	m.Save(missingWeights, "F32")
	os.Remove(filepath.Join(missingWeights, "model.safetensors"))

	with := func(mut func(map[string]any)) string {
		c := baseConfig()
		mut(c)
		return specJSON(t, c, nil)
	}
	tiny := func(int64, error) func() (int64, error) { return func() (int64, error) { return 1 << 20, nil } }
	for _, tc := range []struct {
		name     string
		spec     string
		opts     []Option
		kind     string
		exit     int
		wantHint string
	}{
		{"protocol", `{"protocol_version": 99, "run_id": "x", "cycle": 0, "config": {}}`, nil, protocol.ErrKindProtocol, 2, "same version"},
		{"garbage spec", `{"protocol_version": 1,`, nil, protocol.ErrKindProtocol, 2, "RunSpec"},
		{"two specs", `{"protocol_version": 1, "run_id": "x", "cycle": 0, "config": {}} {}`, nil, protocol.ErrKindProtocol, 2, ""},
		{"unknown spec field", `{"protocol_version": 1, "run_id": "x", "cycle": 0, "config": {}, "gpu": 1}`, nil, protocol.ErrKindProtocol, 2, ""},
		{"wrong backend", with(func(c map[string]any) { c["backend"] = "vllm" }), nil, protocol.ErrKindConfig, 2, ""},
		{"fp16", with(func(c map[string]any) { c["precision"] = "fp16" }), nil, protocol.ErrKindConfig, 2, "bf16"},
		{"extra", with(func(c map[string]any) {
			c["native"] = map[string]any{"extra": map[string]any{"engine": map[string]any{"x": 1}}}
		}), nil, protocol.ErrKindConfig, 2, ""},
		{"unknown preset", with(func(c map[string]any) { c["model"] = "random:gpt-5" }), nil, protocol.ErrKindModelNotFound, 1, "random:llama-15m"},
		{"no such model", with(func(c map[string]any) { c["model"] = "nobody/nothing-here" }), nil, protocol.ErrKindModelNotFound, 1, "huggingface-cli download"},
		{"unsupported", with(func(c map[string]any) { c["model"] = unsupported }), nil, protocol.ErrKindUnsupported, 1, ""},
		{"bad checkpoint", with(func(c map[string]any) { c["model"] = missingWeights }), nil, protocol.ErrKindBadCheckpoint, 1, ""},
		{"oom", specJSON(t, baseConfig(), nil), []Option{WithAvailableMemory(tiny(0, nil))}, protocol.ErrKindOOM, 1, "bf16"},
		{"text on random weights", with(func(c map[string]any) {
			p := filepath.Join(t.TempDir(), "p.jsonl")
			os.WriteFile(p, []byte(`{"prompt":"hi"}`+"\n"), 0o644)
			c["dataset"], c["n"] = map[string]any{"source": "jsonl", "path": p}, 1
		}), nil, protocol.ErrKindConfig, 2, "synthetic"},
		{"too few prompts", with(func(c map[string]any) {
			p := filepath.Join(t.TempDir(), "p.jsonl")
			os.WriteFile(p, []byte(`{"prompt":"hi"}`+"\n"), 0o644)
			c["dataset"] = map[string]any{"source": "jsonl", "path": p}
		}), nil, protocol.ErrKindDataset, 1, "lower n"},
		{"context too long", with(func(c map[string]any) {
			c["max_input_tokens"], c["dataset"] = 4000, map[string]any{"source": "synthetic", "input_len": 3000, "output_len": 4}
		}), nil, protocol.ErrKindConfig, 2, "lower max_input_tokens"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), strings.NewReader(tc.spec), &out, tc.opts...)
			if err == nil {
				t.Fatalf("Run succeeded:\n%s", out.String())
			}
			if code := errs.ExitCode(err); code != tc.exit {
				t.Errorf("exit code %d, want %d (%v)", code, tc.exit, err)
			}
			sum, verr := protocol.Validate(decodeAll(t, out.Bytes()))
			if verr != nil {
				t.Fatalf("error stream invalid: %v\n%s", verr, out.String())
			}
			if sum.Error == nil || sum.Error.Kind != tc.kind {
				t.Fatalf("error event %+v, want kind %s (%v)", sum.Error, tc.kind, err)
			}
			if !strings.Contains(sum.Error.Hint, tc.wantHint) || (tc.wantHint != "" && errs.Hint(err) == "") {
				t.Errorf("hint %q, want it to contain %q", sum.Error.Hint, tc.wantHint)
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := baseConfig()
	cfg["model"] = testmodel.TinyCheckpoint(t)
	var out bytes.Buffer
	err := Run(ctx, strings.NewReader(specJSON(t, cfg, nil)), &out)
	if errs.ExitCode(err) != errs.ExitInterrupted || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: %v (exit %d)", err, errs.ExitCode(err))
	}
	sum, verr := protocol.Validate(decodeAll(t, out.Bytes()))
	if verr != nil || sum.Error == nil || sum.Error.Kind != protocol.ErrKindInterrupted {
		t.Fatalf("stream: %v, %+v", verr, sum.Error)
	}
}

func TestThermalFloor(t *testing.T) {
	dir := testmodel.TinyCheckpoint(t)
	for _, enabled := range []bool{true, false} {
		cfg := baseConfig()
		cfg["model"], cfg["n"] = dir, 1
		cfg["warmup"] = map[string]any{"enabled": enabled, "n_warmup": 1, "thermal_floor_seconds": 0.2}
		var out bytes.Buffer
		if err := Run(context.Background(), strings.NewReader(specJSON(t, cfg, nil)), &out); err != nil {
			t.Fatal(err)
		}
		sum, err := protocol.Validate(decodeAll(t, out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		gap := sum.Batches[0].PrefillStartNs - sum.WarmupDoneNs
		slept := strings.Contains(out.String(), "thermal floor")
		if enabled && (gap < 200e6 || !slept) {
			t.Errorf("warmup enabled: gap %d ns after warmup_done, want ≥ 200 ms with a log", gap)
		}
		if !enabled && slept {
			t.Error("warmup disabled: the thermal floor must be skipped too")
		}
	}
}
