package pytorch

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness/pyharnesstest"
	"github.com/llenergymeasure/llem/pkg/params"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// fakeJob builds a Job whose python finds testdata/faketorch: FAKE torch
// and transformers packages (no GPU and no PyTorch on the test machines)
// that let the whole harness control flow run on the CPU path. The real
// libraries are exercised by scripts/gpu-validate-pytorch.sh on a GPU.
func fakeJob(t *testing.T, spec protocol.RunSpec) (runner.Job, string) {
	t.Helper()
	py := pyharnesstest.Python3(t)
	job, err := Job(spec, py, pyharness.JobOptions{CacheRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fake, err := filepath.Abs("testdata/faketorch")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "calls.jsonl")
	job.Env["PYTHONPATH"] = fake
	job.Env["FAKE_HF_LOG"] = log
	return job, log
}

func generateCalls(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c struct {
			Call string         `json:"call"`
			Args map[string]any `json:"args"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if c.Call == "generate" {
			out = append(out, c.Args)
		}
	}
	return out
}

func runValid(t *testing.T, job runner.Job) (protocol.Summary, runner.Outcome) {
	t.Helper()
	events, out := pyharnesstest.RunJob(t, job)
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatalf("invalid stream: %v\nstderr: %s", err, out.StderrTail)
	}
	return sum, out
}

// TestHarnessAgainstFakeEOSAndPadding: a text-like dataset (EOS allowed)
// in sorted batches of 2; one prompt ends in token 2, so its row stops
// with EOS at its 2nd token while the other row runs on: the padding after
// EOS must not be counted, and every batch must satisfy the parent's
// consistency checks.
func TestHarnessAgainstFakeEOSAndPadding(t *testing.T) {
	cfg := `{"model":"random:llama-15m","backend":"pytorch","precision":"bf16","n":3,
	  "dataset":{"source":"jsonl","path":"x.jsonl"},"max_input_tokens":4,"max_output_tokens":5,
	  "decoder":{"temperature":0.7,"do_sample":true,"top_k":20,"top_p":0.9,"repetition_penalty":1.0},
	  "warmup":{"enabled":true,"n_warmup":3}}`
	spec := protocol.RunSpec{RunID: "r", Config: json.RawMessage(cfg),
		BackendArgs: map[string]any{
			"llem":     map[string]any{"batch_size": 2, "batching": "sorted", "torch_compile": false},
			"generate": map[string]any{"num_beams": 1},
			"torch":    map[string]any{"set_float32_matmul_precision": "high"},
		},
		Prompts: []protocol.Prompt{
			{TokenIDs: []int{5, 6, 2}},           // stops with EOS after 2 tokens
			{TokenIDs: []int{5, 6, 7, 8, 9, 10}}, // truncated to max_input_tokens 4
			{TokenIDs: []int{9}, MaxTokens: 3},   // its own, shorter output length
		}}
	job, log := fakeJob(t, spec)
	sum, out := runValid(t, job)
	if out.ExitCode != 0 || sum.Error != nil {
		t.Fatalf("exit %d, error %+v\n%s", out.ExitCode, sum.Error, out.StderrTail)
	}
	if sum.Loaded.Architecture != "LlamaForCausalLM" || sum.Loaded.DType != "bf16" || sum.Loaded.Parameters != 1234 {
		t.Errorf("loaded = %+v", sum.Loaded)
	}
	// No CUDA in the fake: no allocator peaks, the weights from
	// get_memory_footprint (the fake model's 4936 bytes).
	if m := sum.Done.Memory; m == nil || m.WeightsBytes != 4936 || m.PeakAllocatedBytes != 0 || m.Reporter != "transformers get_memory_footprint (CPU)" {
		t.Errorf("done.memory = %+v", m)
	}
	if sum.WarmupDone.Prompts != 3 {
		t.Errorf("warmup = %+v", sum.WarmupDone)
	}
	// sorted by length: [1 (4 tokens after truncation), 0 (3)], then [2].
	if len(sum.Batches) != 2 || sum.Batches[0].Size != 2 || sum.Batches[0].InputTokens != 7 || sum.Batches[1].InputTokens != 1 {
		t.Fatalf("batches = %+v", sum.Batches)
	}
	want := []struct {
		batch, in, out int
		reason         string
	}{{0, 3, 2, "eos"}, {0, 4, 5, "length"}, {1, 1, 3, "length"}}
	for i, w := range want {
		r := sum.Requests[i]
		if r.Batch != w.batch || r.InputTokens != w.in || r.OutputTokens != w.out || r.FinishReason != w.reason ||
			len(r.ITLNs) != r.OutputTokens-1 {
			t.Errorf("request %d = %+v, want %+v", i, r, w)
		}
	}
	calls := generateCalls(t, log)
	// 2 warmup batches (3 prompts at batch 2) + 2 measured batches.
	if len(calls) != 4 {
		t.Fatalf("generate calls = %d: %v", len(calls), calls)
	}
	for _, c := range calls {
		if c["do_sample"] != true || c["top_k"] != 20.0 || c["processors"] != 1.0 || c["min_new_tokens"] != 0.0 || c["num_beams"] != 1.0 {
			t.Errorf("generate kwargs = %v", c)
		}
	}
	if calls[3]["max_new_tokens"] != 3.0 {
		t.Errorf("last batch max_new_tokens = %v, want its prompt's 3", calls[3]["max_new_tokens"])
	}
}

// TestHarnessAgainstFakeSyntheticForced: the synthetic dataset built by
// the harness itself, greedy; output lengths are forced (min_new_tokens =
// max_new_tokens), so EOS cannot cut rows short.
func TestHarnessAgainstFakeSyntheticForced(t *testing.T) {
	cfg := `{"model":"random:llama-15m","backend":"pytorch","precision":"fp32","n":4,"random_seed":3,
	  "dataset":{"source":"synthetic","input_len":6,"output_len":4,"distribution":"fixed"},
	  "max_input_tokens":16,"max_output_tokens":8,"decoder":{"preset":"deterministic"},
	  "warmup":{"enabled":false},"pytorch":{"batch_size":4}}`
	job, log := fakeJob(t, protocol.RunSpec{RunID: "r", Config: json.RawMessage(cfg)})
	sum, out := runValid(t, job)
	if out.ExitCode != 0 || sum.Error != nil {
		t.Fatalf("exit %d, error %+v\n%s", out.ExitCode, sum.Error, out.StderrTail)
	}
	if sum.WarmupDone.Prompts != 0 || len(sum.Batches) != 1 || sum.Done.InputTokens != 24 || sum.Done.OutputTokens != 16 {
		t.Errorf("warmup %+v batches %+v done %+v", sum.WarmupDone, sum.Batches, sum.Done)
	}
	calls := generateCalls(t, log)
	if len(calls) != 1 || calls[0]["min_new_tokens"] != 4.0 || calls[0]["max_new_tokens"] != 4.0 || calls[0]["do_sample"] != false {
		t.Errorf("generate calls = %v", calls)
	}
	if _, ok := calls[0]["temperature"]; ok {
		t.Error("greedy run sent temperature")
	}
}

func TestHarnessAgainstFakeErrors(t *testing.T) {
	cases := []struct {
		model, kind, hint string
	}{
		{"org/gated", protocol.ErrKindGated, "HF_TOKEN"},
		{"org/nope", protocol.ErrKindModelNotFound, "model id"},
		{"random:gpt-9", protocol.ErrKindConfig, "llem params pytorch"},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			cfg := `{"model":"` + c.model + `","backend":"pytorch","n":1}`
			job, _ := fakeJob(t, protocol.RunSpec{Config: json.RawMessage(cfg), Prompts: []protocol.Prompt{{Text: "hi"}}})
			sum, out := runValid(t, job)
			if sum.Error == nil || sum.Error.Kind != c.kind || !strings.Contains(sum.Error.Hint, c.hint) {
				t.Fatalf("error = %+v", sum.Error)
			}
			wantExit := 1
			if c.kind == protocol.ErrKindConfig {
				wantExit = 2
			}
			if out.ExitCode != wantExit {
				t.Errorf("exit = %d, want %d", out.ExitCode, wantExit)
			}
		})
	}
}

// TestHarnessAgainstFakeRefusesWhatTransformersRejects: arguments built by
// params.BackendArgs from study sections that transformers cannot apply end
// the run with an error naming them, never a silent drop; the fake (whose
// argument names come from the pinned transformers snapshot) rejects an
// unknown generate() keyword as transformers does.
func TestHarnessAgainstFakeRefusesWhatTransformersRejects(t *testing.T) {
	cases := []struct {
		name, section, kind, msg string
	}{
		{"loading option on a random model", `{"revision": "v1"}`, protocol.ErrKindConfig, "from_pretrained arguments revision do not apply to random:<arch> models"},
		{"extra loading option on a random model", `{"extra": {"from_pretrained": {"key_mapping": {"a": "b"}}}}`, protocol.ErrKindConfig, "key_mapping do not apply"},
		{"kernels on a random model", `{"use_kernels": true}`, protocol.ErrKindConfig, "use_kernels do not apply"},
		{"non-bitsandbytes quantization on a random model", `{"extra": {"from_pretrained": {"quantization_config": {"quant_method": "torchao", "quant_type": "int8_weight_only"}}}}`, protocol.ErrKindConfig, "quantization needs a checkpoint"},
		{"quantization keys that ask for nothing", `{"extra": {"from_pretrained": {"quantization_config": {"llm_int8_skip_modules": ["lm_head"]}}}}`, protocol.ErrKindConfig, "ask for no quantization"},
		{"token healing without a tokenizer", `{"token_healing": true}`, protocol.ErrKindConfig, "token_healing needs the model's tokenizer"},
		{"unknown generate keyword", `{"extra": {"generate": {"no_such_knob": 1}}}`, "", "model_kwargs` are not used by the model: ['no_such_knob']"},
		{"a real GenerationConfig field through extra", `{"extra": {"generate": {"forced_eos_token_id": 2}}, "top_h": 0.9}`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var section map[string]any
			if err := json.Unmarshal([]byte(c.section), &section); err != nil {
				t.Fatal(err)
			}
			args, err := params.BackendArgs("pytorch", section)
			if err != nil {
				t.Fatal(err)
			}
			cfg := `{"model":"random:llama-15m","backend":"pytorch","n":1,"max_output_tokens":2}`
			job, _ := fakeJob(t, protocol.RunSpec{Config: json.RawMessage(cfg), BackendArgs: args,
				Prompts: []protocol.Prompt{{Text: "hi"}}})
			sum, out := runValid(t, job)
			if c.msg == "" {
				if sum.Error != nil {
					t.Fatalf("want a clean run, got %+v", sum.Error)
				}
				return
			}
			if sum.Error == nil || !strings.Contains(sum.Error.Message, c.msg) {
				t.Fatalf("error = %+v, want message containing %q\n%s", sum.Error, c.msg, out.StderrTail)
			}
			if c.kind != "" && sum.Error.Kind != c.kind {
				t.Errorf("kind = %q, want %q", sum.Error.Kind, c.kind)
			}
		})
	}
}
