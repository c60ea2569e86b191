package vllm

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

// TestPythonUnit runs test_harness_vllm.py (pure parts).
func TestPythonUnit(t *testing.T) {
	pyharnesstest.RunPythonUnitTests(t, ".", "../pyharness")
}

// fakeJob builds a Job whose python finds testdata/fakevllm (a FAKE vllm
// package: vLLM needs an NVIDIA GPU and cannot be installed here) and logs
// the calls the harness makes to the returned file.
func fakeJob(t *testing.T, spec protocol.RunSpec) (runner.Job, string) {
	t.Helper()
	py := pyharnesstest.Python3(t)
	job, err := Job(spec, py, pyharness.JobOptions{CacheRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fake, err := filepath.Abs("testdata/fakevllm")
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "calls.jsonl")
	job.Env["PYTHONPATH"] = fake
	job.Env["FAKE_VLLM_LOG"] = log
	return job, log
}

type call struct {
	Call string         `json:"call"`
	Args map[string]any `json:"args"`
}

func calls(t *testing.T, path string) []call {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []call
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c call
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestHarnessAgainstFake runs the whole vLLM harness (spec → engine →
// step loop → events) against the fake and validates the stream with the
// parent's own Checker: ordering, per-batch token sums, request indices.
func TestHarnessAgainstFake(t *testing.T) {
	cfg := `{"model":"random:llama-15m","backend":"vllm","precision":"bf16","n":3,
	  "dataset":{"source":"synthetic","input_len":8,"output_len":4,"distribution":"fixed"},
	  "max_input_tokens":512,"max_output_tokens":16,"random_seed":1,
	  "decoder":{"temperature":0,"do_sample":false},"warmup":{"enabled":true,"n_warmup":2}}`
	spec := protocol.RunSpec{
		RunID: "r1", Config: json.RawMessage(cfg),
		BackendArgs: map[string]any{"engine": map[string]any{"max_num_seqs": 8}, "env": map[string]any{"VLLM_X": "1"}},
		Prompts: []protocol.Prompt{
			{TokenIDs: []int{5, 6, 7}, MaxTokens: 4},
			{TokenIDs: []int{5, 6, 7, 8, 9}, MaxTokens: 3},
			{TokenIDs: []int{5, 6}, MaxTokens: 5},
		},
	}
	job, log := fakeJob(t, spec)
	events, out := pyharnesstest.RunJob(t, job)
	if out.ExitCode != 0 {
		t.Fatalf("exit %d; stderr:\n%s", out.ExitCode, out.StderrTail)
	}
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Error != nil {
		t.Fatalf("worker error: %+v", sum.Error)
	}
	if sum.Hello.Backend != "vllm" || sum.Hello.Versions["vllm"] != "" && sum.Hello.Versions["vllm"] == "x" {
		t.Errorf("hello = %+v", sum.Hello)
	}
	if sum.Loaded.Parameters == 0 || sum.Loaded.Architecture != "LlamaForCausalLM" || sum.Loaded.DType != "bf16" {
		t.Errorf("loaded = %+v", sum.Loaded)
	}
	if sum.WarmupDone.Prompts != 2 {
		t.Errorf("warmup prompts = %d", sum.WarmupDone.Prompts)
	}
	var method bool
	for _, l := range sum.Logs {
		method = method || strings.HasPrefix(l.Message, "phase_split_method=prefill-pass")
	}
	if !method {
		t.Errorf("no phase_split_method log in %+v", sum.Logs)
	}
	if sum.Done == nil || sum.Done.PhaseSplitMethod != protocol.PhaseSplitPrefillPass {
		t.Errorf("done = %+v, want phase_split_method prefill-pass", sum.Done)
	}
	if len(sum.Batches) != 1 || sum.Batches[0].Size != 3 || sum.Batches[0].InputTokens != 10 {
		t.Fatalf("batches = %+v", sum.Batches)
	}
	wantOut := []int{4, 3, 5}
	for i, r := range sum.Requests {
		if r.OutputTokens != wantOut[i] || len(r.ITLNs) != r.OutputTokens-1 || r.FinishReason != "length" {
			t.Errorf("request %d = %+v", i, r)
		}
		if r.StartNs+r.TTFTNs > r.EndNs {
			t.Errorf("request %d: start+ttft after end", i)
		}
	}
	if sum.Done.OutputTokens != 12 {
		t.Errorf("done = %+v", sum.Done)
	}
	// KV cache by hand: the fake engine's 1000 blocks of 16 tokens; a
	// llama-15m token caches K and V of 6 layers × 6 KV heads × 48 dims in
	// bf16: 2·6·6·48·2 = 6,912 bytes; 1000·16·6,912 = 110,592,000.
	if m := sum.Done.Memory; m == nil || m.KVCacheBytes != 110_592_000 || m.Reporter != "vllm cache_config" || m.PeakAllocatedBytes != 0 {
		t.Errorf("done.memory = %+v", m)
	}

	cs := calls(t, log)
	var llm, prefill, reset bool
	for _, c := range cs {
		switch c.Call {
		case "LLM":
			llm = c.Args["load_format"] == "dummy" && c.Args["dtype"] == "bfloat16" &&
				c.Args["max_num_seqs"] == float64(8) && c.Args["seed"] == float64(1)
		case "generate":
			mt, _ := c.Args["max_tokens"].([]any)
			if len(mt) == 3 && mt[0] == float64(1) && mt[1] == float64(1) {
				prefill = true
			}
		case "reset_prefix_cache":
			reset = prefill
		}
	}
	if !llm || !prefill || !reset {
		t.Errorf("calls: LLM args ok=%v, prefill pass=%v, prefix cache reset after it=%v\n%+v", llm, prefill, reset, cs)
	}
}

// TestEOSIsNotForcedForTextDatasets: a jsonl-style run (not synthetic)
// lets EOS end a request; the fake stops prompts ending in token 2.
func TestEOSFinish(t *testing.T) {
	cfg := `{"model":"random:llama-15m","backend":"vllm","n":1,"dataset":{"source":"jsonl","path":"x"},
	  "max_output_tokens":6,"warmup":{"enabled":false}}`
	job, _ := fakeJob(t, protocol.RunSpec{Config: json.RawMessage(cfg), Prompts: []protocol.Prompt{{TokenIDs: []int{9, 2}}}})
	events, _ := pyharnesstest.RunJob(t, job)
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Error != nil || sum.WarmupDone.Prompts != 0 {
		t.Fatalf("error %+v, warmup %+v", sum.Error, sum.WarmupDone)
	}
	if r := sum.Requests[0]; r.OutputTokens != 2 || r.FinishReason != "stop" {
		t.Errorf("request = %+v", r)
	}
}

func TestOOMHint(t *testing.T) {
	cfg := `{"model":"fake/oom","backend":"vllm","n":1}`
	job, _ := fakeJob(t, protocol.RunSpec{Config: json.RawMessage(cfg), Prompts: []protocol.Prompt{{Text: "hi"}}})
	events, out := pyharnesstest.RunJob(t, job)
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatal(err)
	}
	if out.ExitCode != 1 || sum.Error == nil || sum.Error.Kind != protocol.ErrKindOOM ||
		!strings.Contains(sum.Error.Hint, "gpu_memory_utilization") {
		t.Fatalf("exit %d, error %+v", out.ExitCode, sum.Error)
	}
}

// TestBeamSearchDriven: vllm.beam_search runs the workload through
// LLM.beam_search with BeamSearchParams built from the section (max_tokens
// filled from max_output_tokens, temperature from the decoder), and the
// event stream is valid.
func TestBeamSearchDriven(t *testing.T) {
	cfg := `{"model":"random:llama-15m","backend":"vllm","n":2,"max_output_tokens":6,
	  "decoder":{"temperature":0,"do_sample":false}}`
	job, log := fakeJob(t, protocol.RunSpec{Config: json.RawMessage(cfg),
		BackendArgs: map[string]any{"beam_search": map[string]any{"beam_width": 4, "length_penalty": 0.8}},
		Prompts:     []protocol.Prompt{{TokenIDs: []int{5, 6, 7}}, {TokenIDs: []int{5, 2}}}})
	events, out := pyharnesstest.RunJob(t, job)
	if out.ExitCode != 0 {
		t.Fatalf("exit %d; stderr:\n%s", out.ExitCode, out.StderrTail)
	}
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Error != nil {
		t.Fatalf("worker error: %+v", sum.Error)
	}
	var bs *call
	for _, c := range calls(t, log) {
		if c.Call == "beam_search" {
			c := c
			bs = &c
		}
	}
	if bs == nil {
		t.Fatal("LLM.beam_search was not called")
	}
	p := bs.Args["params"].(map[string]any)
	if p["beam_width"] != 4.0 || p["max_tokens"] != 6.0 || p["length_penalty"] != 0.8 || p["temperature"] != 0.0 {
		t.Errorf("BeamSearchParams = %v", p)
	}
	if sum.Done.OutputTokens != 6+2 {
		t.Errorf("output tokens = %d, want 8", sum.Done.OutputTokens)
	}
}

// TestFakeRejectsWhatUpstreamRejects: the fake builds its accepted names
// from the pinned snapshot, so an argument vLLM removed (swap_space's
// sibling truncate_prompt_tokens in SamplingParams) fails as it would.
func TestFakeRejectsWhatUpstreamRejects(t *testing.T) {
	cfg := `{"model":"random:llama-15m","backend":"vllm","n":1}`
	for _, args := range []map[string]any{
		{"sampling": map[string]any{"truncate_prompt_tokens": 8}},
		{"engine": map[string]any{"no_such_engine_arg": 1}},
		{"engine": map[string]any{"attention_config": map[string]any{"no_such_field": 1}}},
	} {
		job, _ := fakeJob(t, protocol.RunSpec{Config: json.RawMessage(cfg), BackendArgs: args,
			Prompts: []protocol.Prompt{{TokenIDs: []int{5, 6}}}})
		events, out := pyharnesstest.RunJob(t, job)
		sum, _ := protocol.Validate(events)
		if out.ExitCode == 0 || sum.Error == nil {
			t.Errorf("%v: accepted by the fake", args)
		}
	}
}

// TestFirstClassParamsReachTheFake: engine and sampling params added for
// measured coverage go from a study section through params.BackendArgs and
// the harness into vllm.LLM / SamplingParams, and the fake (built from the
// pinned snapshot) accepts every one of them.
func TestFirstClassParamsReachTheFake(t *testing.T) {
	var section map[string]any
	if err := json.Unmarshal([]byte(`{
		"engine": {"enable_lora": true, "max_loras": 2, "max_lora_rank": 32, "scheduling_policy": "fcfs",
			"enable_expert_parallel": true, "enable_eplb": true, "eplb_window_size": 500, "eplb_step_interval": 100,
			"enable_dbo": true, "dbo_decode_token_threshold": 64, "mamba_cache_dtype": "float32",
			"prefix_caching_hash_algo": "sha256_cbor", "hf_overrides": {"num_hidden_layers": 2},
			"disable_hybrid_kv_cache_manager": true, "kv_sharing_fast_prefill": false},
		"sampling": {"logit_bias": {"5": -1.5}, "skip_reading_prefix_cache": true, "thinking_token_budget": 16}}`), &section); err != nil {
		t.Fatal(err)
	}
	args, err := params.BackendArgs("vllm", section)
	if err != nil {
		t.Fatal(err)
	}
	cfg := `{"model":"random:llama-15m","backend":"vllm","n":1,"max_output_tokens":3}`
	job, log := fakeJob(t, protocol.RunSpec{Config: json.RawMessage(cfg), BackendArgs: args,
		Prompts: []protocol.Prompt{{TokenIDs: []int{5, 6}}}})
	events, out := pyharnesstest.RunJob(t, job)
	sum, err := protocol.Validate(events)
	if err != nil || sum.Error != nil {
		t.Fatalf("run failed: %v %+v\n%s", err, sum.Error, out.StderrTail)
	}
	var llm map[string]any
	for _, c := range calls(t, log) {
		if c.Call == "LLM" {
			llm = c.Args
		}
	}
	eplb, _ := llm["eplb_config"].(map[string]any)
	if llm["enable_lora"] != true || llm["max_lora_rank"] != 32.0 || eplb["window_size"] != 500.0 || eplb["step_interval"] != 100.0 {
		t.Errorf("LLM kwargs = %v", llm)
	}
}
