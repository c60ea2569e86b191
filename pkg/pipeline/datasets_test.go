package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/dataset"
	"github.com/llenergymeasure/llem/pkg/hub/hubtest"
	"github.com/llenergymeasure/llem/pkg/study"
)

// The AI Energy Score set comes from the Hugging Face Hub; these tests use
// hubtest, a local server standing in for huggingface.co (HF_ENDPOINT).

// synthStudy needs no dataset download (synthetic prompts).
const synthStudy = `name: "synth"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 2}
	max_output_tokens: 2
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
execution: {cycles: 2, order: "sequential"}
`

// aesStudy runs model (a checkpoint with a tokenizer: the set is text) on
// the AI Energy Score set, two runs (max_output_tokens 2 and 3).
func aesStudy(t *testing.T, model string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "study.cue")
	body := fmt.Sprintf(`name: "aes"
base: {
	model: %q, backend: "native", precision: "fp32", n: 3
	dataset: {source: "aienergyscore"}
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
grid: max_output_tokens: [2, 3]
execution: {cycles: 1}
`, model)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// aesHub serves the pinned commit of AIEnergyScore/text_generation.
func aesHub(t *testing.T) *hubtest.Server {
	return hubtest.New(t, hubtest.Repo{Type: "dataset", ID: dataset.AIEnergyScoreName, SHA: dataset.AIEnergyScoreRevision,
		Files: map[string][]byte{
			"README.md":           []byte("---\nlicense: apache-2.0\n---\n"),
			"text_generation.csv": []byte("text\nhello there\n\n  \nthe weather\nhe said hello\nextra\n"),
		}})
}

// hubEnv points the Hub client at endpoint with a fresh cache.
func hubEnv(t *testing.T, endpoint string) string {
	cache := t.TempDir()
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_ENDPOINT", endpoint)
	t.Setenv("HF_HUB_OFFLINE", "")
	t.Setenv("HF_TOKEN", "")
	return cache
}

// TestFetchDatasets: one download per distinct set, however many runs use
// it; progress on the writer; nothing for a synthetic study.
func TestFetchDatasets(t *testing.T) {
	s := aesHub(t)
	cache := hubEnv(t, s.URL)
	plan, err := study.Load(context.Background(), aesStudy(t, "acme/never-loaded"))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Runs) != 2 {
		t.Fatalf("%d runs", len(plan.Runs))
	}
	var prog bytes.Buffer
	if err := FetchDatasets(context.Background(), plan, &prog); err != nil {
		t.Fatal(err)
	}
	if reqs := s.Requests(); len(reqs) != 2 {
		t.Errorf("requests %v, want the revision and one file", reqs)
	}
	if !strings.Contains(prog.String(), "downloading dataset AIEnergyScore/text_generation") {
		t.Errorf("progress:\n%s", prog.String())
	}
	if _, err := os.Stat(filepath.Join(cache, "datasets--AIEnergyScore--text_generation", "snapshots", dataset.AIEnergyScoreRevision, "text_generation.csv")); err != nil {
		t.Error(err)
	}
	// Cached: no request, no output.
	prog.Reset()
	if err := FetchDatasets(context.Background(), plan, &prog); err != nil || len(s.Requests()) != 2 || prog.Len() != 0 {
		t.Errorf("second fetch: %v, %d requests, %q", err, len(s.Requests()), prog.String())
	}
	// Ctrl-C during a download is an interrupt, not bad input.
	hubEnv(t, s.URL)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := FetchDatasets(ctx, plan, nil); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled: %v", err)
	}
	// A synthetic study needs nothing.
	synth := filepath.Join(t.TempDir(), "s.cue")
	os.WriteFile(synth, []byte(synthStudy), 0o644)
	sp, err := study.Load(context.Background(), synth)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	if err := FetchDatasets(context.Background(), sp, nil); err != nil {
		t.Errorf("synthetic: %v", err)
	}
}
