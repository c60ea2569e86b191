package quality

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "lm-eval-results", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseRealResultsFile reads a results file lm-eval itself wrote.
func TestParseRealResultsFile(t *testing.T) {
	r, err := ParseResults(readFixture(t, "results_2025-01-21T00-40-03.356274.json"))
	if err != nil {
		t.Fatal(err)
	}
	q := &study.Quality{Tasks: []string{"mmlu_abstract_algebra"}}
	tasks, err := Tasks(r, q)
	if err != nil {
		t.Fatal(err)
	}
	got := tasks[0]
	if got.Metric != "acc" || got.Filter != "none" || got.Value != 0.34 || got.Stderr == nil || *got.Stderr != 0.047609522856952344 {
		t.Fatalf("task = %+v", got)
	}
	if got.Version != "1.0" || got.NShot == nil || *got.NShot != 0 || *got.Samples != 100 || *got.SamplesTotal != 100 || !got.Scored {
		t.Fatalf("task facts = %+v", got)
	}
	if r.GitHash != "e16afa2f" || r.LMEvalVersion != "" {
		t.Fatalf("git %q version %q", r.GitHash, r.LMEvalVersion)
	}
	s, se, ok := Score(tasks)
	if !ok || s != 0.34 || se == nil || math.Abs(*se-0.047609522856952344) > 1e-15 {
		t.Fatalf("score %v ± %v (%v)", s, se, ok)
	}
}

// TestParseRegressionResults: "N/A" stderrs, lower-is-better metrics and
// several tasks, from lm-eval's CPU regression fixture.
func TestParseRegressionResults(t *testing.T) {
	r, err := ParseResults(readFixture(t, "cpu_regression_expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	q := &study.Quality{Tasks: []string{"arc_easy", "lambada_openai", "wikitext"}, Weights: map[string]float64{"arc_easy": 3}}
	tasks, err := Tasks(r, q)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]result.QualityTask{}
	for _, tk := range tasks {
		byName[tk.Task] = tk
	}
	if a := byName["arc_easy"]; a.Metric != "acc_norm" || a.Value != 0.1 || a.Stderr != nil || a.Weight != 3 || *a.Samples != 10 || *a.SamplesTotal != 2376 {
		t.Fatalf("arc_easy = %+v", a)
	}
	if l := byName["lambada_openai"]; l.Metric != "acc" || l.Value != 0.1 || !l.Scored {
		t.Fatalf("lambada = %+v", l)
	}
	if w := byName["wikitext"]; w.Scored || w.Metric != "" || w.Version != "2.0" || w.Metrics["word_perplexity,none"] != 130.4813590639406 {
		t.Fatalf("wikitext = %+v", w)
	}
	s, se, ok := Score(tasks)
	if !ok || math.Abs(s-(3*0.1+0.1)/4) > 1e-15 || se != nil {
		t.Fatalf("score %v ± %v", s, se)
	}
	// An explicit metric wins; an absent one is an error, not a silent default.
	q.Metrics = map[string]string{"arc_easy": "acc"}
	tasks, _ = Tasks(r, q)
	if tasks[0].Metric != "acc" || tasks[0].Value != 0.3 {
		t.Fatalf("metric override: %+v", tasks[0])
	}
	q.Metrics = map[string]string{"arc_easy": "exact_match"}
	if _, err := Tasks(r, q); err == nil || !strings.Contains(err.Error(), "no metric exact_match") {
		t.Fatalf("missing metric: %v", err)
	}
	if _, err := Tasks(r, &study.Quality{Tasks: []string{"hellaswag"}}); err == nil || !strings.Contains(err.Error(), "no result for task hellaswag") {
		t.Fatalf("unreported task: %v", err)
	}
}

func TestScoreWeightsAndStderr(t *testing.T) {
	se1, se2 := 0.01, 0.02
	tasks := []result.QualityTask{
		{Task: "a", Value: 0.5, Stderr: &se1, Weight: 1, Scored: true},
		{Task: "b", Value: 0.8, Stderr: &se2, Weight: 3, Scored: true},
		{Task: "c", Value: 99, Weight: 5, Scored: false},
	}
	s, se, ok := Score(tasks)
	want := (0.5 + 3*0.8) / 4
	wantSE := math.Sqrt(math.Pow(0.25*0.01, 2) + math.Pow(0.75*0.02, 2))
	if !ok || math.Abs(s-want) > 1e-15 || math.Abs(*se-wantSE) > 1e-15 {
		t.Fatalf("score %v ± %v, want %v ± %v", s, *se, want, wantSE)
	}
	if _, _, ok := Score(tasks[2:]); ok {
		t.Fatal("no scored task must give no score")
	}
}

func TestFindResultsNewest(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindResults(dir); err == nil {
		t.Fatal("empty dir: want ErrNoResults")
	}
	sub := filepath.Join(dir, "org__model")
	os.MkdirAll(sub, 0o755)
	for _, n := range []string{"results_2025-01-01T00-00-00.1.json", "results_2025-02-01T00-00-00.1.json", "samples_x_2025-03-01.jsonl"} {
		os.WriteFile(filepath.Join(sub, n), []byte("{}"), 0o644)
	}
	p, err := FindResults(dir)
	if err != nil || filepath.Base(p) != "results_2025-02-01T00-00-00.1.json" {
		t.Fatalf("FindResults = %s, %v", p, err)
	}
}

func config(backend, model, precision string, section map[string]any) *study.Config {
	n := 5
	l := 10.0
	c := &study.Config{Model: model, Backend: backend, Precision: precision, RandomSeed: 42,
		Quality: &study.Quality{Tasks: []string{"hellaswag", "arc_easy"}, NumFewshot: &n, Limit: &l,
			BatchSize: json.RawMessage(`"auto:4"`), Source: "auto", Seed: 1234}}
	switch backend {
	case "pytorch":
		c.PyTorch = section
	case "vllm":
		c.VLLM = section
	case "native":
		c.Native = section
	}
	return c
}

func TestArgs(t *testing.T) {
	c := config("vllm", "Qwen/Qwen2.5-0.5B", "bf16", map[string]any{"engine": map[string]any{"tensor_parallel_size": 2.0, "gpu_memory_utilization": 0.8, "revision": "abc123", "enforce_eager": true}})
	args, err := Args(ModelVLLM, c, "/out")
	if err != nil {
		t.Fatal(err)
	}
	want := "--model vllm --model_args pretrained=Qwen/Qwen2.5-0.5B,revision=abc123,dtype=bfloat16,tensor_parallel_size=2,gpu_memory_utilization=0.8,enforce_eager=true,seed=42 --tasks hellaswag,arc_easy --batch_size auto:4 --num_fewshot 5 --limit 10 --seed 1234 --output_path /out"
	if got := strings.Join(args, " "); got != want {
		t.Fatalf("args\n got %s\nwant %s", got, want)
	}
	c.Model = "org/a,b"
	if _, err := Args(ModelVLLM, c, "/out"); err == nil {
		t.Fatal("a comma in a model_args value must be refused")
	}
}

func TestModel(t *testing.T) {
	for _, tc := range []struct{ backend, src, want string }{
		{"pytorch", "auto", "hf"}, {"vllm", "auto", "vllm"}, {"native", "auto", "local-completions"},
		{"tensorrt", "hf", "hf"}, {"pytorch", "none", ""},
	} {
		got, err := Model(tc.backend, tc.src)
		if err != nil || got != tc.want {
			t.Errorf("Model(%s, %s) = %q, %v; want %q", tc.backend, tc.src, got, err, tc.want)
		}
	}
	if _, err := Model("tensorrt", "auto"); err == nil {
		t.Error("tensorrt auto must have no model")
	}
}

// fakeLMEval is the FAKE lm_eval package (internal/fakelmeval) on
// PYTHONPATH, with python3; the test skips without python3.
func fakeLMEval(t *testing.T) (python string, env []string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("python3 is needed for the fake lm-eval")
		}
		t.Skip("no python3")
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "internal", "fakelmeval"))
	if err != nil {
		t.Fatal(err)
	}
	return py, append(os.Environ(), "PYTHONPATH="+dir)
}

// TestArgsAcceptedByLMEvalParser runs every model's command line through
// the fake lm-eval, whose parser is lm-eval's own argparse definition.
func TestArgsAcceptedByLMEvalParser(t *testing.T) {
	py, env := fakeLMEval(t)
	cases := map[string]*study.Config{
		ModelHF:               config("pytorch", "gpt2", "fp16", map[string]any{"revision": "main", "attn_implementation": "sdpa"}),
		ModelVLLM:             config("vllm", "Qwen/Qwen2.5-0.5B", "bf16", map[string]any{"engine": map[string]any{"max_model_len": 2048.0}}),
		ModelLocalCompletions: config("native", "HuggingFaceTB/SmolLM-135M", "fp32", map[string]any{}),
	}
	for model, c := range cases {
		args, err := Args(model, c, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range args {
			args[i] = strings.ReplaceAll(a, BaseURLPlaceholder, "http://127.0.0.1:1/v1/completions")
		}
		cmd := exec.Command(py, append([]string{"-m", "lm_eval"}, args...)...)
		cmd.Env = append(env, "FAKE_LMEVAL_PARSE_ONLY=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: lm-eval's parser refused %q: %v\n%s", model, args, err, out)
		}
		var got struct {
			Model     string         `json:"model"`
			ModelArgs map[string]any `json:"model_args"`
		}
		if err := json.Unmarshal(out, &got); err != nil || got.Model != model {
			t.Fatalf("%s: parsed %s (%v)", model, out, err)
		}
		if model != ModelLocalCompletions && got.ModelArgs["pretrained"] != c.Model {
			t.Fatalf("%s: model_args %v", model, got.ModelArgs)
		}
	}
	// And the parser does reject what lm-eval rejects.
	for _, bad := range [][]string{
		{"--model", "hf", "--bogus_flag", "1", "--tasks", "hellaswag"},
		{"--model", "no-such-model", "--tasks", "hellaswag"},
		{"--model", "hf", "--model_args", "pretrained", "--tasks", "hellaswag"},
		{"--model", "hf", "--model_args", "pretrained=gpt2", "--tasks", "no_such_task"},
		{"--model", "hf", "--limit", "ten", "--tasks", "hellaswag"},
	} {
		cmd := exec.Command(py, append([]string{"-m", "lm_eval"}, bad...)...)
		cmd.Env = append(env, "FAKE_LMEVAL_PARSE_ONLY=1")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("%q accepted:\n%s", bad, out)
		}
	}
}

// TestJobThroughLocalRunner runs the wrapper around the fake lm-eval under
// the real local runner: the protocol stream, the results file, a crash.
func TestJobThroughLocalRunner(t *testing.T) {
	py, env := fakeLMEval(t)
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == "PYTHONPATH" {
			t.Setenv("PYTHONPATH", v)
		}
	}
	c := config("pytorch", "gpt2", "fp32", map[string]any{})
	for _, crash := range []bool{false, true} {
		dir := t.TempDir()
		args, err := Args(ModelHF, c, OutputDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		j, err := Job("pytorch", args, JobOptions{Python: py, Dir: dir, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if crash {
			j.Env["FAKE_LMEVAL_CRASH"] = "1"
		}
		var kinds []string
		var errEv *protocol.Error
		out, err := runner.NewLocal().Run(context.Background(), j, func(ev protocol.Event) {
			kinds = append(kinds, ev.Kind)
			if ev.Error != nil {
				errEv = ev.Error
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.ProtocolErrs) > 0 {
			t.Fatalf("protocol errors: %v", out.ProtocolErrs)
		}
		if kinds[0] != protocol.KindHello {
			t.Fatalf("events %v", kinds)
		}
		if crash {
			if out.ExitCode != 1 || errEv == nil || !strings.Contains(out.StderrTail, "FAKE_LMEVAL_CRASH") {
				t.Fatalf("crash: exit %d, error %+v, tail %q", out.ExitCode, errEv, out.StderrTail)
			}
			continue
		}
		if out.ExitCode != 0 || kinds[len(kinds)-1] != protocol.KindDone {
			t.Fatalf("exit %d, events %v, stderr %s", out.ExitCode, kinds, out.StderrTail)
		}
		p, err := FindResults(OutputDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(filepath.Dir(p)) != "gpt2" {
			t.Fatalf("results at %s, want under <output>/gpt2/", p)
		}
		data, _ := os.ReadFile(p)
		q := &result.QualityRecord{}
		if err := Fill(q, data, c.Quality); err != nil {
			t.Fatal(err)
		}
		if q.Score == nil || q.LMEvalVersion == "" || len(q.Tasks) != 2 || *q.Tasks[0].Samples != 10 {
			t.Fatalf("record %+v", q)
		}
	}
}
