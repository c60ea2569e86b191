package docker

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/llenergymeasure/llem/internal/dockertest"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/runner/runnertest"
)

func TestMain(m *testing.M) {
	if os.Getenv("LLEM_TEST_PERM_CHILD") != "" {
		os.Exit(permChild())
	}
	dockertest.Main(m)
}

const busyboxImage = "llem-test/busybox:latest"

// script runs a shell script as the worker; the script sees the spec on stdin.
func scriptJob(t *testing.T, script string) runner.Job {
	t.Helper()
	return runner.Job{
		Backend: "native",
		Spec:    protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: "run-" + strings.ToLower(t.Name()), Config: json.RawMessage(`{"model":"random:llama-15m"}`)},
		Command: []string{"/bin/sh", "-c", script},
		Dir:     t.TempDir(),
		Timeout: time.Minute,
		Grace:   2 * time.Second,
	}
}

func newRunner(t *testing.T, h string) *Runner {
	t.Helper()
	img := dockertest.Image(t, h, busyboxImage, false)
	r, err := New(context.Background(), Options{Host: h, Image: img, Network: "none", ShmSize: 256 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// runContainers lists the containers of one run, so parallel cases do not
// see each other's.
func runContainers(t *testing.T, h, runID string) []string {
	t.Helper()
	cli := dockertest.Client(t, h)
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", Label+".run_id="+runID)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

const events = `read spec; echo "$spec" > /llem/run/spec-seen.json
echo '{"event":"hello","t_ns":1,"backend":"native","protocol_version":1,"versions":{"sh":"busybox"}}'
echo '{"event":"done","t_ns":2,"requests":0,"input_tokens":0,"output_tokens":0}'
echo "worker log line" >&2`

func TestRunStreamsEventsAndRemovesContainer(t *testing.T) {
	t.Parallel()
	h := dockertest.Host(t)
	r := newRunner(t, h)
	job := scriptJob(t, events)
	var got []string
	out, err := r.Run(context.Background(), job, func(ev protocol.Event) { got = append(got, ev.Kind) })
	if err != nil {
		t.Fatal(err)
	}
	if !out.OK() {
		t.Fatalf("outcome not ok: %+v", out)
	}
	if strings.Join(got, ",") != "hello,done" {
		t.Fatalf("events = %v", got)
	}
	if !strings.Contains(out.StderrTail, "worker log line") {
		t.Errorf("stderr tail %q lacks the worker's stderr", out.StderrTail)
	}
	seen, err := os.ReadFile(filepath.Join(job.Dir, "spec-seen.json"))
	if err != nil {
		t.Fatalf("exchange dir not mounted or spec not on stdin: %v", err)
	}
	var spec protocol.RunSpec
	if err := json.Unmarshal(seen, &spec); err != nil || spec.RunID != job.Spec.RunID {
		t.Fatalf("spec seen by worker = %s (%v)", seen, err)
	}
	if ids := runContainers(t, h, job.Spec.RunID); len(ids) != 0 {
		t.Fatalf("containers left behind: %v", ids)
	}
}

// TestConformance runs the runner conformance suite in containers; after
// every case the run's container must be gone.
func TestConformance(t *testing.T) {
	t.Parallel()
	h := dockertest.Host(t)
	r := newRunner(t, h)
	runnertest.Run(t, func(*testing.T) runner.Runner { return r }, runnertest.Options{
		AfterRun: func(t *testing.T, job runner.Job) {
			if ids := runContainers(t, h, job.Spec.RunID); len(ids) != 0 {
				t.Fatalf("containers left behind: %v", ids)
			}
		},
	})
}

// TestStderrInExchangeDir: the crash hint points users to worker.stderr in
// the run's exchange directory, so the container's stderr lands there.
func TestStderrInExchangeDir(t *testing.T) {
	t.Parallel()
	h := dockertest.Host(t)
	r := newRunner(t, h)
	job := scriptJob(t, `echo 'Traceback: boom' >&2; exit 3`)
	out, err := r.Run(context.Background(), job, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(job.Dir, runner.StderrFile))
	if err != nil || string(data) != "Traceback: boom\n" || out.ExitCode != 3 {
		t.Fatalf("%s = %q (%v), exit %d", runner.StderrFile, data, err, out.ExitCode)
	}
}

func TestSecretsStayOutOfArgsAndLogs(t *testing.T) {
	t.Parallel()
	h := dockertest.Host(t)
	r := newRunner(t, h)
	const secret = "hf_SECRET_TOKEN_123"
	// The worker proves it received the token (by its length) without printing it.
	job := scriptJob(t, `[ -n "$HF_TOKEN" ] && [ ${#HF_TOKEN} -eq 19 ] && echo token-present >&2; sleep 2; echo '{"event":"hello","t_ns":1,"backend":"native","protocol_version":1,"versions":{}}'`)
	job.Env = map[string]string{"HF_TOKEN": secret}

	cli := dockertest.Client(t, h)
	inspected := make(chan string, 1)
	go func() {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", Label+".run_id="+job.Spec.RunID)})
			if err == nil && len(res.Items) > 0 {
				ins, err := cli.ContainerInspect(context.Background(), res.Items[0].ID, client.ContainerInspectOptions{})
				if err == nil {
					inspected <- ins.Container.Path + " " + strings.Join(ins.Container.Args, " ") + " " + strings.Join(ins.Container.Config.Cmd, " ")
					return
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		inspected <- ""
	}()
	out, err := r.Run(context.Background(), job, nil)
	if err != nil {
		t.Fatal(err)
	}
	args := <-inspected
	if args == "" {
		t.Fatal("never saw the container to inspect it")
	}
	if strings.Contains(args, secret) {
		t.Errorf("secret in container args: %s", args)
	}
	if !strings.Contains(out.StderrTail, "token-present") {
		t.Errorf("worker did not receive HF_TOKEN through its environment; stderr %q", out.StderrTail)
	}
	if strings.Contains(out.StderrTail, secret) {
		t.Errorf("secret in logs")
	}
}

func TestContainerCommandMapsExchangeDir(t *testing.T) {
	job := runner.Job{Dir: "/tmp/x/run1", Command: []string{"python3", "/tmp/x/run1/harness/harness_vllm.py", "/tmp/x/run10"}}
	got := strings.Join(containerCommand(job), " ")
	if got != "python3 /llem/run/harness/harness_vllm.py /tmp/x/run10" {
		t.Fatalf("got %s", got)
	}
}

func TestPreflightDaemonDown(t *testing.T) {
	err := Preflight(context.Background(), PreflightInput{Host: "unix:///nonexistent/llem/docker.sock", Images: map[string]string{"vllm": "x"}})
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(ps[0].What, "not reachable") || !strings.Contains(ps[0].Fix, "start") {
		t.Errorf("problem = %+v", ps[0])
	}
	if !strings.Contains(err.Error(), "1. ") {
		t.Errorf("problems are not numbered: %s", err)
	}
}

func TestPreflightMissingImageAndCUDAMismatch(t *testing.T) {
	h := dockertest.Host(t)
	img := dockertest.Image(t, h, busyboxImage, false)
	err := Preflight(context.Background(), PreflightInput{
		Host: h,
		Images: map[string]string{
			"native":   img,
			"pytorch":  "localhost:1/llem-test/missing:1", // no registry there: the pull fails at once
			"tensorrt": ImageRef("tensorrt", "0.1.0", 13),
		},
		HostCUDAMajor: 12,
		Pull:          true,
	})
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v", err)
	}
	text := err.Error()
	for _, want := range []string{"localhost:1/llem-test/missing:1", "could not be pulled", "docker/pytorch.Dockerfile", "needs a newer CUDA driver"} {
		if !strings.Contains(text, want) {
			t.Errorf("pre-flight report lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, img+" (backend native)") {
		t.Errorf("present image reported as a problem:\n%s", text)
	}
}

func TestPreflightBadSocketPermissions(t *testing.T) {
	h := dockertest.Host(t)
	sock := strings.TrimPrefix(h, "unix://")
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as an unprivileged user")
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o006 != 0 {
		t.Skipf("socket %s is world-accessible; cannot provoke permission denied", sock)
	}
	// Run this test binary again as nobody: it must get "permission denied".
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("/tmp", "llem-perm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "child")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	// The socket's directory must be traversable for the error to be about the socket.
	os.Chmod(filepath.Dir(sock), 0o755)
	cmd := exec.Command(bin)
	cmd.Env = []string{"LLEM_TEST_PERM_CHILD=1", "LLEM_TEST_SOCK=" + h}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "permission denied on the Docker socket") || !strings.Contains(string(out), "docker group") {
		t.Fatalf("child output: %s", out)
	}
}

// permChild runs Preflight as an unprivileged user and prints the result.
func permChild() int {
	err := Preflight(context.Background(), PreflightInput{Host: os.Getenv("LLEM_TEST_SOCK")})
	if err == nil {
		os.Stdout.WriteString("no problem found\n")
		return 1
	}
	os.Stdout.WriteString(err.Error() + "\n")
	return 0
}

func TestResolveImage(t *testing.T) {
	tests := []struct {
		name, pinned string
		host         int
		want         string
		wantErr      bool
	}{
		{"host cuda 12 gets cuda12", "", 12, "llenergymeasure/vllm:0.3.0-cuda12", false},
		{"host cuda 13 gets newest", "", 13, "llenergymeasure/vllm:0.3.0-cuda13", false},
		{"newer host runs newest built", "", 14, "llenergymeasure/vllm:0.3.0-cuda13", false},
		{"host cuda 11 has no image", "", 11, "", true},
		{"pinned wins even on old host", "registry.example/vllm@sha256:abc", 11, "registry.example/vllm@sha256:abc", false},
		{"unknown host gets newest", "", 0, "llenergymeasure/vllm:0.3.0-cuda13", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ResolveImage("vllm", "v0.3.0", tc.pinned, tc.host)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				var me *CUDAMismatchError
				if !errors.As(err, &me) || !strings.Contains(me.Fix(), "upgrade the NVIDIA driver") {
					t.Fatalf("want a CUDA mismatch with guidance, got %v", err)
				}
			}
			if got != tc.want {
				t.Errorf("got %q want %q", got, tc.want)
			}
		})
	}
	if CUDAMajorOfTag("llenergymeasure/vllm:0.3.0-cuda12") != 12 || CUDAMajorOfTag("vllm/vllm-openai:latest") != 0 {
		t.Error("CUDAMajorOfTag")
	}
}

// TestHubCacheAndLocalModelMounted: a run's container gets the host's hub
// cache read-write at ContainerHubCache (HF_HUB_CACHE points there) and a
// local model directory read-only at its own path.
func TestHubCacheAndLocalModelMounted(t *testing.T) {
	t.Parallel()
	h := dockertest.Host(t)
	img := dockertest.Image(t, h, busyboxImage, false)
	hub, model := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(hub, "from-host"), []byte("cached"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(model, "config.json"), []byte(`{"model_type":"llama"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := New(context.Background(), Options{Host: h, Image: img, Network: "none", HubCache: hub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	job := scriptJob(t, `echo "cache=$HF_HUB_CACHE" >&2
cat "$HF_HUB_CACHE/from-host" >&2; echo >&2
echo downloaded > "$HF_HUB_CACHE/from-container"
cat `+model+`/config.json >&2; echo >&2
if touch `+model+`/written 2>/dev/null; then echo model-writable >&2; else echo model-read-only >&2; fi
`+strings.ReplaceAll(events, "read spec; echo \"$spec\" > /llem/run/spec-seen.json\n", ""))
	job.Spec.Config = json.RawMessage(`{"model":"` + model + `"}`)
	out, err := r.Run(context.Background(), job, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cache=" + ContainerHubCache, "cached", `{"model_type":"llama"}`, "model-read-only"} {
		if !strings.Contains(out.StderrTail, want) {
			t.Errorf("worker stderr lacks %q:\n%s", want, out.StderrTail)
		}
	}
	if b, err := os.ReadFile(filepath.Join(hub, "from-container")); err != nil || string(b) != "downloaded\n" {
		t.Errorf("what the container wrote to the cache is not on the host: %q %v", b, err)
	}
	// A Hub id is not a path: nothing more is mounted.
	if binds, _ := hubMounts("", "meta-llama/Llama-3.1-8B"); len(binds) != 0 {
		t.Errorf("binds for a Hub id: %v", binds)
	}
}
