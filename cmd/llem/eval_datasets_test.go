package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/testmodel"
	"github.com/llenergymeasure/llem/pkg/dataset"
	"github.com/llenergymeasure/llem/pkg/hub/hubtest"
	"github.com/llenergymeasure/llem/pkg/result"
)

// The AI Energy Score set comes from the Hugging Face Hub; these tests use
// hubtest, a local server standing in for huggingface.co (HF_ENDPOINT).

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

// TestEvalAIEnergyScoreOffline: the set is not cached and cannot be
// downloaded: exit 2 with the fix, before any results directory exists.
func TestEvalAIEnergyScoreOffline(t *testing.T) {
	s := aesHub(t)
	for _, tc := range []struct {
		name, offline, endpoint, want, hint string
	}{
		{"HF_HUB_OFFLINE", "1", s.URL, "HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE"},
		{"server down", "", "http://127.0.0.1:1", "refused", "connect this machine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hubEnv(t, tc.endpoint)
			t.Setenv("HF_HUB_OFFLINE", tc.offline)
			out := filepath.Join(t.TempDir(), "results")
			var stderr bytes.Buffer
			code := Main(context.Background(), []string{"eval", aesStudy(t, "acme/never-loaded"), "--out", out},
				IO{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr})
			if code != 2 {
				t.Fatalf("exit %d, want 2\n%s", code, stderr.String())
			}
			for _, want := range []string{"AIEnergyScore/text_generation", tc.want, tc.hint,
				"huggingface-cli download --repo-type dataset AIEnergyScore/text_generation --revision " + dataset.AIEnergyScoreRevision,
				"synthetic or jsonl dataset"} {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a results directory was created")
			}
		})
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("HF_HUB_OFFLINE: %d requests", n)
	}
}

func TestEvalDryRunDoesNotDownload(t *testing.T) {
	s := aesHub(t)
	cache := hubEnv(t, s.URL)
	code := Main(context.Background(), []string{"eval", aesStudy(t, "acme/never-loaded"), "--dry-run"},
		IO{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("--dry-run made %d requests", n)
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("--dry-run wrote to the cache: %v", entries)
	}
}

// TestEvalAIEnergyScore runs a study on the set end to end: llem eval
// downloads it (progress on stderr), the runs use its prompts, and a second
// eval finds it in the cache with no network at all.
func TestEvalAIEnergyScore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the native engine")
	}
	s := aesHub(t)
	hubEnv(t, s.URL)
	model := testmodel.TinyCheckpoint(t)
	studyPath := aesStudy(t, model)
	out := filepath.Join(t.TempDir(), "results")
	var stderr bytes.Buffer
	code := Main(context.Background(), []string{"eval", studyPath, "--out", out}, IO{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr})
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "llem: downloaded text_generation.csv") {
		t.Errorf("no download progress:\n%s", stderr.String())
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "aes-*"))
	if len(dirs) != 1 {
		t.Fatalf("results %v", dirs)
	}
	m, err := result.ReadManifest(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != result.StudyCompleted || m.Counts.Done != 2 {
		t.Fatalf("manifest %s %+v\n%s", m.Status, m.Counts, stderr.String())
	}
	// The first three non-empty rows, stripped, are the prompts: "hello
	// there" is he,l,l,o,Ġ,t,he,r,e (9 tokens with the "he" merge), "the
	// weather" t,he,Ġ,w,e,a,t,he,r (9), "he said hello" he,Ġ,s,a,i,d,Ġ,he,l,l,o (11).
	recs, _ := filepath.Glob(filepath.Join(dirs[0], "records", "*", "cycle-1.json"))
	if len(recs) != 2 {
		t.Fatalf("records %v", recs)
	}
	for _, p := range recs {
		var rec result.Record
		b, err := os.ReadFile(p)
		if err != nil || json.Unmarshal(b, &rec) != nil {
			t.Fatal(p, err)
		}
		if rec.Throughput.Requests != 3 || rec.Throughput.InputTokens != 29 {
			t.Errorf("%s: %d requests, %d input tokens; want 3, 29", p, rec.Throughput.Requests, rec.Throughput.InputTokens)
		}
	}

	// Again, offline: from the cache.
	t.Setenv("HF_HUB_OFFLINE", "1")
	n := len(s.Requests())
	stderr.Reset()
	code = Main(context.Background(), []string{"eval", studyPath, "--out", filepath.Join(t.TempDir(), "r2"), "--quiet"},
		IO{Stdin: strings.NewReader(""), Stdout: &bytes.Buffer{}, Stderr: &stderr})
	if code != 0 || len(s.Requests()) != n {
		t.Fatalf("cached eval: exit %d, %d new requests\n%s", code, len(s.Requests())-n, stderr.String())
	}
}
