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
)

// runFake runs the real harness against testdata/faketrt (a FAKE
// tensorrt_llm: TensorRT-LLM cannot be installed here) and validates the
// stream with the parent's checker. It returns the summary and the calls
// log's text.
func runFake(t *testing.T, cacheDir string, spec protocol.RunSpec) (protocol.Summary, string) {
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
	job.Env["LLEM_TRT_ENGINE_CACHE"] = cacheDir
	events, out := pyharnesstest.RunJob(t, job)
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatalf("invalid stream: %v\n%s", err, out.StderrTail)
	}
	if out.ExitCode != 0 || sum.Error != nil {
		t.Fatalf("exit %d, error %+v\n%s", out.ExitCode, sum.Error, out.StderrTail)
	}
	calls, _ := os.ReadFile(log)
	return sum, string(calls)
}

func spec(runtime string) protocol.RunSpec {
	cfg := `{"model":"random:llama-15m","backend":"tensorrt","precision":"fp16","n":3,
	  "dataset":{"source":"synthetic","input_len":5,"output_len":4,"distribution":"fixed"},
	  "max_input_tokens":64,"max_output_tokens":8,"decoder":{"preset":"deterministic"},
	  "warmup":{"enabled":true,"n_warmup":1}}`
	return protocol.RunSpec{RunID: "r", Config: json.RawMessage(cfg), BackendArgs: map[string]any{
		"llm": map[string]any{"backend": runtime, "max_batch_size": 8,
			"kv_cache_config": map[string]any{"free_gpu_memory_fraction": 0.5}},
		"llem": map[string]any{"engine_cache": true},
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
	sum, calls := runFake(t, t.TempDir(), spec("pytorch"))
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
	if !strings.Contains(logs, "phase_split_method=prefill-pass") || !strings.Contains(logs, "enable_block_reuse=false") {
		t.Errorf("logs:\n%s", logs)
	}
	if strings.Contains(logs, "engine") && strings.Contains(logs, "cache") {
		t.Errorf("pytorch runtime must not build or cache an engine:\n%s", logs)
	}
	if !strings.Contains(calls, "KvCacheConfig(enable_block_reuse=False, free_gpu_memory_fraction=0.5)") ||
		!strings.Contains(calls, `"load_format": "dummy"`) || !strings.Contains(calls, `"dtype": "float16"`) {
		t.Errorf("LLM calls:\n%s", calls)
	}
}

func TestHarnessAgainstFakeEngineCache(t *testing.T) {
	cache := t.TempDir()
	sum, calls := runFake(t, cache, spec("tensorrt"))
	if !strings.Contains(logsText(sum), "building a tensorrt engine") || !strings.Contains(calls, `"call": "save"`) {
		t.Fatalf("first run did not build and save:\n%s\n%s", logsText(sum), calls)
	}
	ents, _ := os.ReadDir(cache)
	if len(ents) != 1 {
		t.Fatalf("cache holds %d entries", len(ents))
	}
	dir := filepath.Join(cache, ents[0].Name())
	if _, err := os.Stat(filepath.Join(dir, "cache_metadata.json")); err != nil {
		t.Fatal(err)
	}
	sum, calls = runFake(t, cache, spec("tensorrt"))
	if !strings.Contains(logsText(sum), "tensorrt engine cache hit") || strings.Contains(calls, `"call": "save"`) ||
		!strings.Contains(calls, `"model": "`+dir+`"`) {
		t.Fatalf("second run did not load the cached engine:\n%s\n%s", logsText(sum), calls)
	}
	// A changed build argument is a different engine.
	s := spec("tensorrt")
	s.BackendArgs["llm"].(map[string]any)["max_batch_size"] = 16
	runFake(t, cache, s)
	if ents, _ := os.ReadDir(cache); len(ents) != 2 {
		t.Errorf("cache holds %d entries after a changed argument, want 2", len(ents))
	}
}

// With llm.enable_iter_perf_stats, the KV cache capacity comes from
// get_stats' kvCacheStats: the fake's 64 blocks × 32 tokens × a llama-15m
// token in fp16 (K and V of 6 layers × 6 KV heads × 48 dims × 2 bytes =
// 6,912) = 14,155,776 bytes.
func TestHarnessAgainstFakeKVCacheStats(t *testing.T) {
	sp := spec("pytorch")
	sp.BackendArgs["llm"].(map[string]any)["enable_iter_perf_stats"] = true
	sum, _ := runFake(t, t.TempDir(), sp)
	if m := sum.Done.Memory; m == nil || m.KVCacheBytes != 14_155_776 || m.Reporter != "tensorrt_llm kvCacheStats" {
		t.Errorf("done.memory = %+v", m)
	}
}
