package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/backend"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/pyenv"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// probes fakes the two auto probes: which Python backends import locally
// (stands in for interpreters with torch/vLLM, which this machine lacks)
// and whether a daemon answers; it counts the daemon probes.
type probes struct {
	importable map[string]bool
	daemonUp   bool
	daemonRuns int
	pyRuns     int
}

func (p *probes) apply(in Input) Input {
	in.DaemonUp = func(context.Context) error {
		p.daemonRuns++
		if p.daemonUp {
			return nil
		}
		return errors.New("daemon down")
	}
	in.FindPython = func(_ context.Context, b string) (pyenv.Python, error) {
		p.pyRuns++
		if p.importable[b] {
			return pyenv.Python{Path: "/opt/" + b + "/bin/python3", Source: pyenv.SourcePath}, nil
		}
		return pyenv.Python{}, errs.WithHint(fmt.Errorf("find python for backend %s: %w", b, pyenv.ErrNotFound), "pip install "+b)
	}
	return in
}

func planWith(runners map[string]study.Runner) *study.Plan {
	return &study.Plan{Runners: runners}
}

func auto() study.Runner { return study.Runner{Kind: "auto"} }

func TestResolveAuto(t *testing.T) {
	for _, b := range []string{"NATIVE", "PYTORCH", "VLLM", "TENSORRT"} {
		t.Setenv("LLEM_RUNNER_"+b, "")
	}
	p := &probes{importable: map[string]bool{"pytorch": true}, daemonUp: true}
	res, err := Resolve(context.Background(), p.apply(Input{
		Plan:        planWith(map[string]study.Runner{"native": auto(), "pytorch": auto(), "vllm": auto(), "tensorrt": auto()}),
		LlemVersion: "0.3.0", HostCUDAMajor: 12,
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ kind, image, python string }{
		"native":   {"local", "", ""},
		"pytorch":  {"local", "", "/opt/pytorch/bin/python3"},
		"vllm":     {"docker", "llenergymeasure/vllm:0.3.0-cuda12", ""},
		"tensorrt": {"docker", "llenergymeasure/tensorrt:0.3.0-cuda12", ""},
	}
	if len(res.Backends) != 4 || res.Backends[0].Backend != "native" || res.Backends[3].Backend != "vllm" {
		t.Fatalf("backends not sorted: %+v", res.Backends)
	}
	for _, b := range res.Backends {
		w := want[b.Backend]
		if b.Kind != w.kind || b.Image != w.image || b.Python != w.python || b.Source != runner.SourceAuto || b.Problem != "" {
			t.Errorf("%s: %+v, want %+v", b.Backend, b, w)
		}
	}
	if b := res.Backend("vllm"); b.ImageSource != "release image for the host's CUDA 12" || b.ShmSize != DefaultShmSize {
		t.Errorf("vllm image source %q shm %d", b.ImageSource, b.ShmSize)
	}
	if p.daemonRuns != 1 {
		t.Errorf("daemon probed %d times, want once", p.daemonRuns)
	}
	if err := res.Problems(); err != nil {
		t.Errorf("problems: %v", err)
	}
	env := res.Environment()
	if env["vllm"].Kind != "docker" || env["vllm"].Image == "" || env["pytorch"].Python == "" {
		t.Errorf("environment: %+v", env)
	}
}

func TestResolveNoProbesWhenExplicit(t *testing.T) {
	t.Setenv("LLEM_RUNNER_NATIVE", "")
	t.Setenv("LLEM_RUNNER_VLLM", "")
	p := &probes{}
	res, err := Resolve(context.Background(), p.apply(Input{
		Plan:       planWith(map[string]study.Runner{"native": auto(), "vllm": {Kind: "docker", Image: "example/vllm@sha256:abc", ShmSize: "2g"}}),
		UserImages: map[string]string{"vllm": "ignored/by:study-pin"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if p.daemonRuns != 0 || p.pyRuns != 0 {
		t.Errorf("probes ran: daemon %d, python %d", p.daemonRuns, p.pyRuns)
	}
	b := res.Backend("vllm")
	if b.Kind != "docker" || b.Source != runner.SourceStudy || b.Image != "example/vllm@sha256:abc" || b.ImageSource != ImageFromStudy || b.ShmSize != 2<<30 {
		t.Errorf("vllm: %+v", b)
	}
}

func TestResolvePrecedenceAndPins(t *testing.T) {
	t.Setenv("LLEM_RUNNER_NATIVE", "")
	t.Setenv("LLEM_RUNNER_PYTORCH", "")
	t.Setenv("LLEM_RUNNER_VLLM", "local") // env beats study and user config
	p := &probes{importable: map[string]bool{"vllm": true}}
	res, err := Resolve(context.Background(), p.apply(Input{
		Plan:        planWith(map[string]study.Runner{"native": auto(), "pytorch": {Kind: "local"}, "vllm": {Kind: "docker"}}),
		RunnerFlag:  "",
		UserRunners: map[string]string{"native": "docker", "pytorch": "docker"},
		UserImages:  map[string]string{"native": "me/llem:static", "pytorch": "me/pytorch:1"},
		DockerHost:  "unix://" + t.TempDir() + "/no-docker.sock",
	}))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ backend, kind, source, image, imageSource string }{
		{"native", "docker", runner.SourceUserConfig, "me/llem:static", ImageFromUserConfig},
		{"pytorch", "local", runner.SourceStudy, "", ""},
		{"vllm", "local", runner.SourceEnv, "", ""},
	}
	for _, c := range checks {
		b := res.Backend(c.backend)
		if b.Kind != c.kind || b.Source != c.source || b.Image != c.image || b.ImageSource != c.imageSource {
			t.Errorf("%s: %+v, want %+v", c.backend, b, c)
		}
	}
	// pytorch is local but does not import: a problem, reported by
	// Problems and by Prepare (exit 2) together with the Docker pre-flight's
	// problems for native, all numbered.
	if b := res.Backend("pytorch"); b.Problem == "" || !strings.Contains(b.Hint, "pip install pytorch") {
		t.Errorf("pytorch problem: %+v", b)
	}
	err = res.Prepare(context.Background(), nil)
	if errs.ExitCode(err) != errs.ExitBadInput || !strings.Contains(err.Error(), "1. backend pytorch (local runner)") ||
		!strings.Contains(err.Error(), "2. the Docker daemon is not reachable") {
		t.Errorf("Prepare: exit %d, %v", errs.ExitCode(err), err)
	}

	// The flag beats everything, for every backend.
	res, err = Resolve(context.Background(), p.apply(Input{
		Plan:       planWith(map[string]study.Runner{"native": auto(), "vllm": {Kind: "docker"}}),
		RunnerFlag: "local",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range res.Backends {
		if b.Kind != "local" || b.Source != runner.SourceFlag {
			t.Errorf("%s: %+v", b.Backend, b)
		}
	}
}

func TestResolveProblems(t *testing.T) {
	t.Setenv("LLEM_RUNNER_NATIVE", "")
	t.Setenv("LLEM_RUNNER_TENSORRT", "")
	t.Setenv("LLEM_RUNNER_PYTORCH", "")
	p := &probes{}
	res, err := Resolve(context.Background(), p.apply(Input{
		Plan:          planWith(map[string]study.Runner{"native": {Kind: "docker"}, "pytorch": {Kind: "docker"}, "tensorrt": auto()}),
		LlemVersion:   "0.3.0",
		HostCUDAMajor: 11,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Backend("native"); !strings.Contains(b.Problem, "no release image") || !strings.Contains(b.Hint, "images.native") {
		t.Errorf("native in docker without an image: %+v", b)
	}
	if b := res.Backend("pytorch"); !strings.Contains(b.Problem, "CUDA 11") || !strings.Contains(b.Hint, "upgrade the NVIDIA driver") {
		t.Errorf("pytorch on a CUDA 11 host: %+v", b)
	}
	// auto, not importable, daemon down: local, with both ways out.
	if b := res.Backend("tensorrt"); b.Kind != "local" || b.Problem == "" || !strings.Contains(b.Hint, "--runner docker") {
		t.Errorf("tensorrt: %+v", b)
	}
	err = res.Problems()
	for _, want := range []string{"cannot start, 3 problem(s)", "1. backend native", "2. backend pytorch", "3. backend tensorrt"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q: %v", want, err)
		}
	}

	if _, err := Resolve(context.Background(), p.apply(Input{Plan: planWith(map[string]study.Runner{"native": auto()}), RunnerFlag: "podman"})); errs.ExitCode(err) != errs.ExitBadInput {
		t.Errorf("--runner podman: %v", err)
	}
	if _, err := Resolve(context.Background(), p.apply(Input{Plan: planWith(map[string]study.Runner{"pytorch": {Kind: "docker", ShmSize: "lots"}}), UserImages: map[string]string{"pytorch": "x"}})); errs.ExitCode(err) != errs.ExitBadInput {
		t.Errorf("bad shm_size: %v", err)
	}
}

// A serving run of a backend in Docker starts its server in the backend's
// image (no problem); --dry-run says where: in the image, on this machine,
// or the study's url.
func TestResolveServingInDocker(t *testing.T) {
	t.Setenv("LLEM_RUNNER_VLLM", "")
	plan := func(kind, url string) *study.Plan {
		cfg := study.Config{Serving: &study.Serving{Server: study.ServingServer{URL: url}}}
		return &study.Plan{Runners: map[string]study.Runner{"vllm": {Kind: kind, Image: "me/vllm:1"}},
			Runs: []study.Run{{ID: "r", Backend: "vllm", Config: cfg}}}
	}
	p := &probes{daemonUp: true}
	for _, c := range []struct{ kind, url, want string }{
		{"docker", "", "vllm serve in image me/vllm:1 (a container on the host network"},
		{"local", "", "vllm serve on this machine"},
		{"docker", "http://127.0.0.1:8000", "the existing server at serving.server.url"},
	} {
		res, err := Resolve(context.Background(), p.apply(Input{Plan: plan(c.kind, c.url)}))
		if err != nil {
			t.Fatal(err)
		}
		b := res.Backend("vllm")
		if c.kind == "docker" && b.Problem != "" {
			t.Errorf("%s %q: problem %q", c.kind, c.url, b.Problem)
		}
		if !strings.HasPrefix(b.Server, c.want) {
			t.Errorf("%s %q: server %q, want %q…", c.kind, c.url, b.Server, c.want)
		}
	}
	// The router gets the image to start the server from.
	res, err := Resolve(context.Background(), p.apply(Input{Plan: plan("docker", ""), GPUs: []string{"GPU-1"}}))
	if err != nil {
		t.Fatal(err)
	}
	d, ok := res.ServerPlacements()["vllm"]
	if !ok || d.Image != "me/vllm:1" || len(d.GPUs) != 1 || d.ShmSize != DefaultShmSize {
		t.Errorf("placements: %+v", res.ServerPlacements())
	}
}

// Python backends in Docker run python3 on the harness written into the
// exchange directory, without the host's path and GPU-index variables.
func TestDockerPythonJob(t *testing.T) {
	t.Setenv("LLEM_RUNNER_PYTORCH", "")
	t.Setenv("HF_TOKEN", "hf_x")
	t.Setenv("HF_HOME", "/home/me/.cache/huggingface")
	t.Setenv("CUDA_VISIBLE_DEVICES", "1")
	plan := loadStudy(t, `name: "py"
base: {model: "random:llama-15m", backend: "pytorch", precision: "fp32", n: 1}
runners: pytorch: {kind: "docker", image: "me/pytorch:1"}
`)
	p := &probes{}
	res, err := Resolve(context.Background(), p.apply(Input{Plan: plan}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	jf, err := res.jobFunc(res.Backend("pytorch"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := jf(backend.JobRequest{Run: plan.Runs[0], Cycle: 1, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if job.Command[0] != "python3" || !strings.HasPrefix(job.Command[len(job.Command)-1], dir+"/") {
		t.Errorf("command %q: want python3 on a harness under %s", job.Command, dir)
	}
	if job.Env["HF_TOKEN"] != "hf_x" || job.Env["HF_HOME"] != "" || job.Env["CUDA_VISIBLE_DEVICES"] != "" {
		t.Errorf("env %v", job.Env)
	}
}

func TestHostFactsAndParseSize(t *testing.T) {
	major, gpus := HostFacts(energy.NVMLInfo{CUDADriverVersion: "12.4", GPUs: []energy.GPUInfo{
		{UUID: "GPU-a", Selected: true}, {UUID: "GPU-b"}, {UUID: "GPU-c", Selected: true},
	}})
	if major != 12 || strings.Join(gpus, ",") != "GPU-a,GPU-c" {
		t.Errorf("HostFacts = %d %v", major, gpus)
	}
	if major, gpus := HostFacts(energy.NVMLInfo{}); major != 0 || gpus != nil {
		t.Errorf("no NVML: %d %v", major, gpus)
	}
	for in, want := range map[string]int64{"8g": 8 << 30, "512m": 512 << 20, "64K": 64 << 10, "100b": 100, "1000": 1000} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v", in, got, err)
		}
	}
	if _, err := ParseSize("8x"); err == nil {
		t.Error("ParseSize(8x) accepted")
	}
}

// A local model directory given by a relative path cannot be mounted into
// a Docker run where the study names it: a problem with the absolute path
// to write. An absolute path, a Hub id and a preset are fine.
func TestResolveRelativeLocalModelInDocker(t *testing.T) {
	t.Setenv("LLEM_RUNNER_PYTORCH", "")
	t.Chdir(t.TempDir())
	if err := os.MkdirAll("models/tiny", 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("models/tiny")
	plan := func(model string) *study.Plan {
		return &study.Plan{Runners: map[string]study.Runner{"pytorch": {Kind: "docker", Image: "me/pytorch:1"}},
			Runs: []study.Run{{ID: "r", Backend: "pytorch", Config: study.Config{Model: model}}}}
	}
	p := &probes{daemonUp: true}
	for model, want := range map[string]string{"models/tiny": "relative path", abs: "", "org/name": "", "random:llama-15m": ""} {
		res, err := Resolve(context.Background(), p.apply(Input{Plan: plan(model)}))
		if err != nil {
			t.Fatal(err)
		}
		b := res.Backend("pytorch")
		if want == "" && b.Problem != "" || want != "" && (!strings.Contains(b.Problem, want) || !strings.Contains(b.Hint, abs)) {
			t.Errorf("model %q: problem %q hint %q", model, b.Problem, b.Hint)
		}
	}
}
