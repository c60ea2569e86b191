package tensorrt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness/pyharnesstest"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/tools/upstream"
)

// snapshotPath is the pinned TensorRT-LLM snapshot the FAKE builds its
// argument checks from (tools/upstream/targets.json).
func snapshotPath(t testing.TB) string {
	t.Helper()
	ts, err := upstream.Targets()
	if err != nil {
		t.Fatal(err)
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "..", "tools", "upstream", "snapshots", ts[Name].Snapshot))
	if ts[Name].Snapshot == "" {
		t.Fatal("tensorrt has no upstream snapshot")
	}
	return p
}

// runFake runs the real harness against testdata/faketrt (a FAKE
// tensorrt_llm built from the pinned snapshot: TensorRT-LLM cannot be
// installed here) and returns the summary, the calls log's text and the
// exit code; the stream is validated with the parent's checker.
func runFake(t *testing.T, spec protocol.RunSpec) (protocol.Summary, string, int) {
	t.Helper()
	py := pyharnesstest.Python3(t)
	job, err := Job(spec, py, pyharness.JobOptions{CacheRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	fake, _ := filepath.Abs("testdata/faketrt")
	log := filepath.Join(t.TempDir(), "calls.jsonl")
	job.Env["PYTHONPATH"] = fake
	job.Env["FAKE_TRT_LOG"] = log
	job.Env["FAKE_TRT_SNAPSHOT"] = snapshotPath(t)
	events, out := pyharnesstest.RunJob(t, job)
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatalf("invalid stream: %v\n%s", err, out.StderrTail)
	}
	calls, _ := os.ReadFile(log)
	return sum, string(calls), out.ExitCode
}

func spec(llm map[string]any) protocol.RunSpec {
	cfg := `{"model":"random:llama-15m","backend":"tensorrt","precision":"fp16","n":3,
	  "dataset":{"source":"synthetic","input_len":5,"output_len":4,"distribution":"fixed"},
	  "max_input_tokens":64,"max_output_tokens":8,"decoder":{"preset":"deterministic"},
	  "warmup":{"enabled":true,"n_warmup":1}}`
	return protocol.RunSpec{RunID: "r", Config: json.RawMessage(cfg), BackendArgs: map[string]any{
		"llm":  llm,
		"llem": map[string]any{"runtime": "pytorch"},
	}}
}

func logsText(sum protocol.Summary) string {
	var b strings.Builder
	for _, l := range sum.Logs {
		b.WriteString(l.Message + "\n")
	}
	return b.String()
}

func TestHarnessAgainstFakePyTorchRuntime(t *testing.T) {
	sum, calls, code := runFake(t, spec(map[string]any{"max_batch_size": 8,
		"kv_cache_config": map[string]any{"free_gpu_memory_fraction": 0.5}}))
	if code != 0 || sum.Error != nil {
		t.Fatalf("exit %d, error %+v", code, sum.Error)
	}
	if sum.Done.Requests != 3 || sum.Done.InputTokens != 15 || sum.Done.OutputTokens != 12 || sum.Done.PhaseSplitMethod != "prefill-pass" {
		t.Errorf("done = %+v", sum.Done)
	}
	// Without enable_iter_perf_stats the LLM API keeps no iteration stats:
	// no KV cache to report.
	if sum.Done.Memory != nil {
		t.Errorf("done.memory = %+v without iteration stats", sum.Done.Memory)
	}
	for _, r := range sum.Requests {
		if len(r.ITLNs) != 3 || r.FinishReason != "length" {
			t.Errorf("request = %+v", r)
		}
	}
	logs := logsText(sum)
	if !strings.Contains(logs, "phase_split_method=prefill-pass") || !strings.Contains(logs, "enable_block_reuse=false") ||
		!strings.Contains(logs, "tensorrt_llm 1.2.0, PyTorch runtime") {
		t.Errorf("logs:\n%s", logs)
	}
	if !strings.Contains(calls, "KvCacheConfig(enable_block_reuse=False, free_gpu_memory_fraction=0.5)") ||
		!strings.Contains(calls, `"load_format": "dummy"`) || !strings.Contains(calls, `"dtype": "float16"`) ||
		strings.Contains(calls, `"backend"`) {
		t.Errorf("LLM calls:\n%s", calls)
	}
}

// TestFakeRejectsWhatUpstreamRejects: the fake, built from the snapshot,
// refuses what TorchLlmArgs (extra="forbid", Literal types) and the
// decoding configs refuse, so a harness that sent such arguments fails
// here as it would on a GPU. Each case is one the old fake accepted.
func TestFakeRejectsWhatUpstreamRejects(t *testing.T) {
	cases := []struct {
		name string
		llm  map[string]any
		want string
	}{
		{"TrtLlmArgs-only key", map[string]any{"quant_config": map[string]any{"quant_algo": "FP8"}}, "Extra inputs are not permitted: 'quant_config'"},
		{"engine build key", map[string]any{"extended_runtime_perf_knob_config": map[string]any{"multi_block_mode": true}}, "'extended_runtime_perf_knob_config'"},
		{"unknown KvCacheConfig field", map[string]any{"kv_cache_config": map[string]any{"fraction": 0.5}}, "KvCacheConfig: Extra inputs are not permitted: 'fraction'"},
		{"value outside Literal", map[string]any{"allreduce_strategy": "MIN_LATENCY"}, "allreduce_strategy: input should be one of"},
		{"MoE backend outside Literal", map[string]any{"moe_config": map[string]any{"backend": "AUTO"}}, "MoeConfig.backend: input should be one of"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sum, _, code := runFake(t, spec(c.llm))
			if code == 0 || sum.Error == nil || !strings.Contains(sum.Error.Message+sum.Error.Hint, c.want) {
				t.Fatalf("exit %d, error %+v; want an error containing %q", code, sum.Error, c.want)
			}
		})
	}
	// Medusa: the harness itself refuses it before TensorRT-LLM would.
	sum, _, code := runFake(t, spec(map[string]any{"speculative_config": map[string]any{"decoding_type": "Medusa", "max_draft_len": 4}}))
	if code == 0 || sum.Error == nil || !strings.Contains(sum.Error.Message, "not one the PyTorch runtime runs") {
		t.Fatalf("Medusa: exit %d, error %+v", code, sum.Error)
	}
}

// With llm.enable_iter_perf_stats, the KV cache capacity comes from
// get_stats' kvCacheStats: the fake's 64 blocks × 32 tokens × a llama-15m
// token in fp16 (K and V of 6 layers × 6 KV heads × 48 dims × 2 bytes =
// 6,912) = 14,155,776 bytes.
func TestHarnessAgainstFakeKVCacheStats(t *testing.T) {
	sum, _, code := runFake(t, spec(map[string]any{"enable_iter_perf_stats": true}))
	if code != 0 {
		t.Fatalf("exit %d, error %+v", code, sum.Error)
	}
	if m := sum.Done.Memory; m == nil || m.KVCacheBytes != 14_155_776 || m.Reporter != "tensorrt_llm kvCacheStats" {
		t.Errorf("done.memory = %+v", m)
	}
}
