package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/exporters/exportertest"
)

func runResults(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	t.Setenv("LLEM_CONFIG", filepath.Join(t.TempDir(), "none.yaml"))
	for _, k := range []string{"LLEM_RESULTS_DIR", "LLEM_CARBON_REGION", "LLEM_CARBON_INTENSITY", "LLEM_PUE"} {
		t.Setenv(k, "")
	}
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"results"}, args...), IO{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func precisionConfigs(p string) []map[string]any {
	var out []map[string]any
	for _, bs := range []int{1, 8} {
		out = append(out, map[string]any{"model": "random:llama-15m", "backend": "native", "precision": p, "n": 50,
			"native": map[string]any{"batch_size": bs, "threads": 2}})
	}
	return out
}

func writeStudies(t *testing.T) (root, a, b string) {
	t.Helper()
	root = t.TempDir()
	a, b = filepath.Join(root, "study-a"), filepath.Join(root, "study-b")
	if _, _, err := exportertest.WriteStudy(a, exportertest.Spec{Study: "study-a", Runs: 2, Cycles: 5, Seed: 1, Configs: precisionConfigs("fp32")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := exportertest.WriteStudy(b, exportertest.Spec{Study: "study-b", Runs: 2, Cycles: 5, Seed: 2, Configs: precisionConfigs("bf16"), EnergyScale: 0.5}); err != nil {
		t.Fatal(err)
	}
	return root, a, b
}

func TestResultsShow(t *testing.T) {
	_, a, _ := writeStudies(t)
	code, out, errOut := runResults(t, "show", a, "--carbon-region", "FRA")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"study study-a (completed): 2 runs, 10 records", "J/OUT-TOKEN", "5/5", "bca CI", "CO2 (raw energy", "regional_average"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runResults(t, "show", a, "--json")
	var js struct {
		Stats struct {
			Runs []struct {
				NValid int `json:"n_valid_cycles"`
			} `json:"runs"`
			Methodology map[string]any `json:"measurement_methodology"`
		} `json:"stats"`
		CO2 struct {
			Absent string `json:"absent_reason"`
		} `json:"co2"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || len(js.Stats.Runs) != 2 || js.Stats.Runs[0].NValid != 5 ||
		js.Stats.Methodology["resamples"] != float64(1000) || !strings.Contains(js.CO2.Absent, "no carbon intensity") {
		t.Errorf("show --json (exit %d):\n%s", code, out)
	}
	if code, _, errOut := runResults(t, "show", t.TempDir()); code != 2 || !strings.Contains(errOut, "hint:") {
		t.Errorf("show on a non-study: exit %d, %s", code, errOut)
	}
}

func TestResultsCompareOneParameter(t *testing.T) {
	_, a, b := writeStudies(t)
	code, out, errOut := runResults(t, "compare", a, b)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(out, "config "); n != 2 || strings.Count(out, `config precision: "fp32" → "bf16"`) != 2 {
		t.Errorf("want exactly the precision difference once per run pair:\n%s", out)
	}
	if !strings.Contains(out, "NO") || !strings.Contains(out, "-50.") {
		t.Errorf("want a ~-50%% energy change with non-overlapping CIs:\n%s", out)
	}
	code, out, _ = runResults(t, "compare", a, b, "--json")
	var js []struct {
		Pairs []struct {
			ConfigDiff []map[string]string `json:"config_diff"`
		} `json:"pairs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || len(js) != 1 || len(js[0].Pairs) != 2 || len(js[0].Pairs[0].ConfigDiff) != 1 {
		t.Errorf("compare --json (exit %d):\n%.600s", code, out)
	}
	if code, _, _ := runResults(t, "compare", a); code != 2 {
		t.Errorf("compare with one dir: exit %d, want 2", code)
	}
}

func TestResultsLs(t *testing.T) {
	root, _, _ := writeStudies(t)
	code, out, errOut := runResults(t, "ls", "--root", root)
	if code != 0 || !strings.Contains(out, "study-a") || !strings.Contains(out, "study-b") || !strings.Contains(out, "10/10") {
		t.Errorf("ls exit %d:\n%s%s", code, out, errOut)
	}
	t.Setenv("LLEM_RESULTS_DIR", root) // default root from the environment
	var o, e bytes.Buffer
	if c := Main(context.Background(), []string{"results", "ls", "--json"}, IO{Stdout: &o, Stderr: &e}); c != 0 || !strings.Contains(o.String(), `"runs": 2`) {
		t.Errorf("ls --json from LLEM_RESULTS_DIR: exit %d\n%s%s", c, o.String(), e.String())
	}
}

func TestResultsExport(t *testing.T) {
	_, a, _ := writeStudies(t)
	out := t.TempDir()
	code, stdout, errOut := runResults(t, "export", a, "--format", "json", "--jsonl")
	if code != 0 || strings.Count(stdout, "\n") != 10 {
		t.Errorf("json export exit %d, %d lines: %s", code, strings.Count(stdout, "\n"), errOut)
	}
	pq := filepath.Join(out, "a.parquet")
	if code, _, errOut := runResults(t, "export", a, "--format", "parquet", "--out", pq, "--carbon-intensity", "250"); code != 0 || !strings.Contains(errOut, "wrote 10 records") {
		t.Fatalf("parquet export exit %d: %s", code, errOut)
	}
	got := exportertest.ReadParquet(t, pq, "SELECT count(co2_g)::INTEGER AS n FROM t")
	if got.DuckDB.Count != 10 || got.DuckDB.Query[0]["n"].(float64) != 10 {
		t.Errorf("parquet: %d rows, co2 %v", got.DuckDB.Count, got.DuckDB.Query)
	}
	hfDir := filepath.Join(out, "hf")
	if code, _, errOut := runResults(t, "export", a, "--format", "hf-datasets", "--out", hfDir, "--license", "mit"); code != 0 {
		t.Fatalf("hf export exit %d: %s", code, errOut)
	}
	card, err := os.ReadFile(filepath.Join(hfDir, "README.md"))
	if err != nil || !strings.Contains(string(card), "license: mit") {
		t.Errorf("card: %v\n%.300s", err, card)
	}
	if _, err := os.Stat(filepath.Join(hfDir, "data", "train-00000-of-00001.parquet")); err != nil {
		t.Error(err)
	}
	if code, _, _ := runResults(t, "export", a, "--format", "xml"); code != 2 {
		t.Errorf("unknown format: exit %d, want 2", code)
	}
}

func TestResultsStudyCarbonFromPlan(t *testing.T) {
	_, a, _ := writeStudies(t)
	if err := os.WriteFile(filepath.Join(a, "plan.json"), []byte(`{"name":"study-a","carbon":{"intensity_g_per_kwh":100,"source":"test grid"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runResults(t, "show", a)
	if code != 0 || !strings.Contains(out, "user_intensity, 100 g/kWh") || !strings.Contains(out, "test grid") {
		t.Errorf("exit %d: study carbon block not used:\n%s%s", code, out, errOut)
	}
	// A flag wins over the study.
	_, out, _ = runResults(t, "show", a, "--carbon-region", "NOR")
	if !strings.Contains(out, "regional_average") {
		t.Errorf("flag did not override the study:\n%s", out)
	}
}

// TestResultsOnRealStudy runs the quickstart study with the native engine
// and reads its directory back: the records pkg/execute writes, not fakes.
func TestResultsOnRealStudy(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the quickstart study")
	}
	root := t.TempDir()
	var o, e bytes.Buffer
	if code := Main(context.Background(), []string{"eval", "../../examples/quickstart.cue", "--out", root, "--cycles", "3"}, IO{Stdout: &o, Stderr: &e}); code != 0 {
		t.Fatalf("eval exit %d: %s", code, e.String())
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "quickstart-*"))
	if len(dirs) != 1 {
		t.Fatalf("study dirs: %v", dirs)
	}
	code, out, errOut := runResults(t, "show", dirs[0], "--json")
	var js struct {
		Stats struct {
			Runs []struct {
				NValid  int `json:"n_valid_cycles"`
				Metrics []struct {
					Name string `json:"name"`
					N    int    `json:"n_valid_cycles"`
				} `json:"metrics"`
			} `json:"runs"`
		} `json:"stats"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || len(js.Stats.Runs) != 2 || js.Stats.Runs[0].NValid != 3 {
		t.Fatalf("show --json exit %d: %s\n%.400s", code, errOut, out)
	}
	names := map[string]bool{}
	for _, m := range js.Stats.Runs[0].Metrics {
		names[m.Name] = m.N == 3
	}
	for _, want := range []string{"energy_per_output_token_j", "output_tokens_per_sec", "ttft_p50_ms", "itl_p50_ms", "prefill_energy_j", "decode_tokens_per_sec"} {
		if !names[want] {
			t.Errorf("metric %s missing or not from 3 cycles (have %v)", want, names)
		}
	}
	pq := filepath.Join(t.TempDir(), "q.parquet")
	if code, _, errOut := runResults(t, "export", dirs[0], "--format", "parquet", "--out", pq); code != 0 {
		t.Fatalf("export exit %d: %s", code, errOut)
	}
	got := exportertest.ReadParquet(t, pq, "SELECT count(energy_raw_j)::INTEGER AS e, count(ttft_p50_ms)::INTEGER AS l FROM t")
	if got.DuckDB.Count != 6 || got.DuckDB.Query[0]["e"].(float64) != 6 || got.DuckDB.Query[0]["l"].(float64) != 6 {
		t.Errorf("parquet of the real study: %d rows, %v", got.DuckDB.Count, got.DuckDB.Query)
	}
}

// TestStudyCarbonEndToEnd: a study's carbon block goes through the plan
// into plan.json, and `llem results show` estimates CO2 from it with no
// flag, environment variable or user config.
func TestStudyCarbonEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the native engine")
	}
	dir := t.TempDir()
	studyPath := filepath.Join(dir, "study.cue")
	src := strings.Replace(evalStudy, `execution: {cycles: 2, order: "sequential"}`, `execution: {cycles: 1, order: "sequential"}
carbon: {region: "FR", pue: 1.5}`, 1)
	if err := os.WriteFile(studyPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LLEM_CONFIG", filepath.Join(dir, "none.yaml"))
	var o, e bytes.Buffer
	if code := Main(context.Background(), []string{"eval", studyPath, "--out", filepath.Join(dir, "results"), "--quiet"}, IO{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e}); code != 0 {
		t.Fatalf("eval exit %d: %s", code, e.String())
	}
	dirs, _ := filepath.Glob(filepath.Join(dir, "results", "cmdtest-*"))
	if len(dirs) != 1 {
		t.Fatalf("study dirs: %v", dirs)
	}
	plan, err := os.ReadFile(filepath.Join(dirs[0], "plan.json"))
	if err != nil || !strings.Contains(string(plan), `"carbon": {`) || !strings.Contains(string(plan), `"region": "FR"`) {
		t.Fatalf("plan.json lacks the study's carbon block (%v):\n%.600s", err, plan)
	}
	code, out, errOut := runResults(t, "show", dirs[0], "--json")
	var js struct {
		CO2 struct {
			CO2G      *float64 `json:"co2_g"`
			EnergyJ   float64  `json:"energy_j"`
			Intensity *float64 `json:"intensity_g_per_kwh"`
			PUE       float64  `json:"pue"`
			Region    string   `json:"region"`
			Method    string   `json:"estimation_method"`
		} `json:"co2"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil {
		t.Fatalf("show --json exit %d: %s\n%s", code, errOut, out)
	}
	c := js.CO2
	if c.CO2G == nil || c.Intensity == nil || c.Region != "FRA" || c.Method != "regional_average" || c.PUE != 1.5 || c.EnergyJ <= 0 {
		t.Fatalf("co2 = %+v", c)
	}
	if want := c.EnergyJ / 3.6e6 * 1.5 * *c.Intensity; *c.CO2G != want {
		t.Errorf("co2_g = %g, want %g", *c.CO2G, want)
	}
	if _, out, _ := runResults(t, "show", dirs[0]); !strings.Contains(out, "regional_average") {
		t.Errorf("show without --json has no CO2 line:\n%s", out)
	}
}
