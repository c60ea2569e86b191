package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/result"
)

// isolateConfig points llem at a user config file of its own (content may
// be empty) and clears the environment overrides.
func isolateConfig(t *testing.T, content string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LLEM_CONFIG", path)
	for _, k := range []string{"LLEM_RESULTS_DIR", "LLEM_ENERGY_SENSOR", "LLEM_PYTHON", "LLEM_RUNNER_NATIVE", "LLEM_IMAGE_NATIVE"} {
		t.Setenv(k, "")
	}
}

func TestEvalDryRunShowsRunners(t *testing.T) {
	isolateConfig(t, "")
	code, out, errOut := runEval(t, "../../examples/quickstart.cue", "--dry-run")
	if code != 0 || !strings.Contains(out, "\nrunners:\n  native    local   auto: the native worker is llem itself\n") {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}

	// --runner docker with the image from the user config's environment
	// override: shown without touching Docker.
	t.Setenv("LLEM_IMAGE_NATIVE", "example/llem:static")
	code, out, errOut = runEval(t, "../../examples/quickstart.cue", "--dry-run", "--runner", "docker")
	if code != 0 || !strings.Contains(out, "native    docker  set by the --runner flag\n            image example/llem:static (user config)") {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}

	code, out, errOut = runEval(t, "../../examples/quickstart.cue", "--dry-run", "--json", "--runner", "docker")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var plan struct {
		Runs            []any `json:"runs"`
		ResolvedRunners []struct {
			Backend, Kind, Source, Reason, Image string
			ImageSource                          string `json:"image_source"`
		} `json:"resolved_runners"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	r := plan.ResolvedRunners
	if len(plan.Runs) != 2 || len(r) != 1 || r[0].Backend != "native" || r[0].Kind != "docker" || r[0].Source != "--runner flag" ||
		r[0].Image != "example/llem:static" || r[0].ImageSource != "user config" {
		t.Fatalf("resolved runners %+v", r)
	}

	code, _, errOut = runEval(t, "../../examples/quickstart.cue", "--dry-run", "--runner", "podman")
	if code != 2 || !strings.Contains(errOut, "unknown runner") {
		t.Fatalf("--runner podman: exit %d: %s", code, errOut)
	}
}

// A Docker backend that fails pre-flight stops the study before it starts:
// exit 2, the problems numbered with fixes, no results directory.
func TestEvalDockerPreflightFails(t *testing.T) {
	isolateConfig(t, "images:\n  native: example/llem:static\n")
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-docker.sock"))
	out := filepath.Join(t.TempDir(), "results")
	code, _, errOut := runEval(t, "../../examples/quickstart.cue", "--runner", "docker", "--out", out)
	if code != 2 || !strings.Contains(errOut, "1. the Docker daemon is not reachable") || !strings.Contains(errOut, "fix: start it") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("results directory created before pre-flight passed: %v", err)
	}
}

// Without --out, results go to the user config's results_dir; a study
// that leaves energy.sensor at auto measures with the user config's sensor,
// one that names a sensor keeps it; the environment says where it ran.
func TestEvalDefaultsFromUserConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the native engine")
	}
	dir := t.TempDir()
	resultsDir := filepath.Join(dir, "my-results")
	isolateConfig(t, "results_dir: "+resultsDir+"\nenergy:\n  sensor: none\n")
	t.Chdir(dir)

	studySrc := func(name, energy string) string {
		return `name: "` + name + `"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 1
	dataset: {source: "synthetic", input_len: 4, output_len: 2}
	max_output_tokens: 2
	` + energy + `
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
execution: cycles: 1
`
	}
	for _, tc := range []struct{ name, energy, sensor string }{
		{"sensor-auto", "", "none"},
		{"sensor-study", `energy: sensor: "estimate"`, "estimate"},
	} {
		path := filepath.Join(dir, tc.name+".cue")
		if err := os.WriteFile(path, []byte(studySrc(tc.name, tc.energy)), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), []string{"eval", path, "--quiet", "--json"}, IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr})
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", tc.name, code, stderr.String())
		}
		dirs, _ := filepath.Glob(filepath.Join(resultsDir, tc.name+"-*"))
		if len(dirs) != 1 {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("%s: study directories under results_dir: %v (working dir has %v)", tc.name, dirs, entries)
		}
		recs, err := result.ReadRecords(dirs[0])
		if err != nil || len(recs) != 1 {
			t.Fatalf("%s: records %d, %v", tc.name, len(recs), err)
		}
		if recs[0].Energy.Sensor != tc.sensor {
			t.Errorf("%s: measured with %q, want %q", tc.name, recs[0].Energy.Sensor, tc.sensor)
		}
		var env envinfo.Snapshot
		if err := json.Unmarshal(recs[0].Environment, &env); err != nil {
			t.Fatal(err)
		}
		if r := env.Runners["native"]; r.Kind != "local" || r.Source != "auto" {
			t.Errorf("%s: environment.runners = %+v", tc.name, env.Runners)
		}
	}
}
