package serving

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/study"
)

// A serving run of a backend placed in Docker gets a serving worker told
// the image, GPUs, shm size and the slot's container name (the daemon
// address in its environment, never argv); a url run and a backend
// without a placement get none of it.
func TestRouterDockerPlacement(t *testing.T) {
	r := NewRouter(nil, "/bin/llem")
	r.Docker = map[string]DockerServer{"vllm": {Host: "tcp://user:pw@dockerhost:2376", Image: "sha256:abc", GPUs: []string{"GPU-1", "GPU-2"}, ShmSize: 8 << 30}}
	run := func(backend, url string) study.Run {
		cfg := study.Config{Backend: backend, Model: "m", Serving: &study.Serving{Server: study.ServingServer{URL: url}}}
		b, _ := json.Marshal(cfg)
		return study.Run{ID: "r1", Backend: backend, Config: cfg, ConfigJSON: b}
	}
	dir := t.TempDir()
	job := func(run study.Run) []string {
		t.Helper()
		rt, err := r.Route(run)
		if err != nil {
			t.Fatal(err)
		}
		j, err := rt.Job(execute.JobRequest{Run: run, Cycle: 1, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.Join(j.Command, " "), "pw@") {
			t.Errorf("the daemon address is in argv: %q", j.Command)
		}
		if slices.Contains(j.Command, "--server-image") != (j.Env["DOCKER_HOST"] != "") {
			t.Errorf("command %q with env %v", j.Command, j.Env)
		}
		return j.Command
	}
	got := strings.Join(job(run("vllm", "")), " ")
	want := "/bin/llem serving-worker --dir " + dir + " --server-image sha256:abc --server-container " + ContainerName(dir) +
		" --server-gpus GPU-1,GPU-2 --server-shm-size 8589934592"
	if got != want {
		t.Errorf("docker placement:\n got %s\nwant %s", got, want)
	}
	for _, run := range []study.Run{run("vllm", "http://127.0.0.1:8000"), run("tensorrt", "")} {
		if got := job(run); slices.Contains(got, "--server-image") {
			t.Errorf("%s %q: %q", run.Backend, run.Config.Serving.Server.URL, got)
		}
	}
	if a, b := ContainerName(dir), ContainerName(dir+"/x"); a == b || !strings.HasPrefix(a, "llem-server-") {
		t.Errorf("container names %s, %s", a, b)
	}
}
