package serving_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/llenergymeasure/llem/internal/dockertest"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner/docker"
	"github.com/llenergymeasure/llem/pkg/serving"
)

// vllmStandinImage is a test image whose `vllm` is a STAND-IN, not vLLM: a
// busybox script that checks it got `serve MODEL --host 127.0.0.1 --port P
// --dtype D --seed S --max-num-seqs N` as llem's ServerCommand builds it
// (vLLM's CLI spelling; argparse's last --port wins, as server.args
// appends one), then execs the image's static llem as `llem serve` on that
// port, so the server really answers OpenAI completions with streaming.
const vllmStandinImage = "llem-test/vllm-standin:latest"

const vllmStandin = `#!/bin/sh
# STAND-IN for vLLM's CLI (test image only): checks the arguments, serves with llem serve.
[ "$1" = serve ] || { echo "vllm stand-in: want 'vllm serve', got '$1'" >&2; exit 2; }
model=$2; shift 2
host= port= dtype= seed= seqs= other=
while [ $# -gt 0 ]; do
	case $1 in
	--host) host=$2; shift 2;;
	--port) port=$2; shift 2;;
	--dtype) dtype=$2; shift 2;;
	--seed) seed=$2; shift 2;;
	--max-num-seqs) seqs=$2; shift 2;;
	--*) other="$other $1"; shift;; # vLLM's other engine flags, e.g. --no-trust-remote-code
	*) other="$other $1"; shift;;
	esac
done
if [ "$host" != 127.0.0.1 ] || [ -z "$port" ] || [ "$dtype" != bfloat16 ] || [ -z "$seed" ] || [ "$seqs" != 4 ]; then
	echo "vllm stand-in: bad arguments: host=$host port=$port dtype=$dtype seed=$seed max-num-seqs=$seqs" >&2; exit 2
fi
echo "vllm stand-in: other arguments:$other" >&2
echo "vllm stand-in: serve $model on $host:$port; HF_TOKEN ${HF_TOKEN:+set}; HF_HOME ${HF_HOME:-unset}; CUDA_VISIBLE_DEVICES ${CUDA_VISIBLE_DEVICES:-unset}" >&2
exec llem serve "$model" --host "$host" --port "$port" --threads 1 --max-batch "$seqs" --seed "$seed"
`

// dockerStudy writes a vllm serving study whose runner is Docker with the
// stand-in image; the server listens on a free port of this machine.
func dockerStudy(t *testing.T, name, load string, cycles int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	src := fmt.Sprintf(`name: %q
base: {
	model:   "random:llama-15m"
	backend: "vllm"
	n:       8
	dataset: {source: "synthetic", input_len: 16, output_len: 24}
	max_output_tokens: 24
	baseline: enabled: false
	energy: sensor: "estimate"
	vllm: engine: max_num_seqs: 4
	serving: {
		server: args: ["--port", "%d"]
		load: %s
		steady_state: {bin_seconds: 0.25, tolerance: 0.5, min_span_seconds: 0.5}
	}
}
runners: vllm: {kind: "docker", image: %q, shm_size: "96m"}
execution: {cycles: %d, order: "sequential"}
`, name, port, load, vllmStandinImage, cycles)
	p := filepath.Join(t.TempDir(), name+".cue")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// serverContainers lists llem's server containers, running or not.
func serverContainers(t *testing.T, cli *client.Client) []string {
	t.Helper()
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.Label+"=server")})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range res.Items {
		out = append(out, c.ID[:12]+" "+string(c.State))
	}
	return out
}

// waitLoad waits until cycle's load has started and returns its work
// directory.
func waitLoad(t *testing.T, out string, cycle int) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		started, _ := filepath.Glob(filepath.Join(out, "*", "work", "*", fmt.Sprintf("cycle-%d", cycle), serving.LoadStartedFile))
		if len(started) == 1 {
			return filepath.Dir(started[0])
		}
		if done, _ := filepath.Glob(filepath.Join(out, "*", "records", "*", fmt.Sprintf("cycle-%d.json", cycle))); len(done) > 0 {
			break // it ended without a load
		}
		time.Sleep(20 * time.Millisecond) // poll for the load to start
	}
	t.Errorf("cycle %d's load never started", cycle)
	return ""
}

// standinDocker gives a test the daemon with the vllm stand-in image
// built, a client, and the server containers that exist before it runs.
func standinDocker(t *testing.T) (host string, cli *client.Client, before []string) {
	t.Helper()
	if llemBin == "" {
		t.Skip("-short: no llem build")
	}
	host = dockertest.Host(t)
	dockertest.ImageWithFiles(t, host, vllmStandinImage, true, map[string]string{"usr/local/bin/vllm": vllmStandin})
	cli = dockertest.Client(t, host)
	return host, cli, serverContainers(t, cli)
}

// The vllm backend on the Docker runner: the serving worker runs here and
// starts `vllm serve …` as a container of the backend's image on the host
// network, with the Hub token in its environment only and the study's shm
// size; the record has the steady state, latency percentiles and requests;
// the container is gone afterwards.
func TestServingServerInDocker(t *testing.T) {
	h, cli, before := standinDocker(t)
	p := dockerStudy(t, "indocker", `{duration_seconds: 2.5, rate: 10, arrivals: "constant", warmup_requests: 2}`, 1)
	const token = "hf_llemtestsecret"
	var inspected bool
	hub := t.TempDir()
	_, recs := evalEnv(t, p, []string{"DOCKER_HOST=" + h, "HF_TOKEN=" + token, "HF_HOME=/host/hf", "HF_HUB_CACHE=" + hub, "CUDA_VISIBLE_DEVICES="}, func(out string) {
		dir := waitLoad(t, out, 1)
		if dir == "" {
			return
		}
		res, err := cli.ContainerInspect(context.Background(), serving.ContainerName(dir), client.ContainerInspectOptions{})
		if err != nil {
			t.Errorf("the server's container while its load runs: %v", err)
			return
		}
		c := res.Container
		inspected = true
		// The server's output comes through the container's logs.
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		if !strings.Contains(string(log), "vllm stand-in: serve random:llama-15m on 127.0.0.1:") ||
			!strings.Contains(string(log), "HF_TOKEN set; HF_HOME unset; CUDA_VISIBLE_DEVICES unset") {
			t.Errorf("server.log lacks the stand-in's line (arguments and environment as vLLM would get them):\n%s", log)
		}
		if c.HostConfig.NetworkMode != "host" || c.HostConfig.ShmSize != 96<<20 || c.HostConfig.Init == nil || !*c.HostConfig.Init {
			t.Errorf("host config: network %q, shm %d, init %v; want host, 96m, init", c.HostConfig.NetworkMode, c.HostConfig.ShmSize, c.HostConfig.Init)
		}
		if c.Config.Image != vllmStandinImage && !strings.HasPrefix(c.Image, "sha256:") {
			t.Errorf("image %q / %q", c.Config.Image, c.Image)
		}
		if len(c.Config.Cmd) < 4 || c.Config.Cmd[0] != "vllm" || c.Config.Cmd[1] != "serve" {
			t.Errorf("command %q, want vllm serve …", c.Config.Cmd)
		}
		if !slices.Contains(c.Config.Env, "HF_TOKEN="+token) {
			t.Errorf("HF_TOKEN not in the container's environment: %q", c.Config.Env)
		}
		for _, e := range c.Config.Env {
			if strings.HasPrefix(e, "HF_HOME=") || strings.HasPrefix(e, "CUDA_VISIBLE_DEVICES=") {
				t.Errorf("host-path variable passed into the container: %s", e)
			}
		}
		// The host's hub cache is the server's (as vLLM's docs mount it).
		if !slices.Contains(c.Config.Env, "HF_HUB_CACHE="+docker.ContainerHubCache) || !slices.Contains(c.HostConfig.Binds, hub+":"+docker.ContainerHubCache) {
			t.Errorf("hub cache: env %q, binds %q; want %s mounted at %s", c.Config.Env, c.HostConfig.Binds, hub, docker.ContainerHubCache)
		}
		if strings.Contains(strings.Join(append(c.Config.Cmd, c.Args...), " "), token) {
			t.Errorf("the token is in the container's command: %q", c.Config.Cmd)
		}
	})
	if !inspected {
		t.Error("the server's container was never seen running")
	}
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	r := recs[0]
	if r.Status != result.StatusOK || r.Serving == nil {
		t.Fatalf("status %s, error %+v", r.Status, r.Error)
	}
	s := r.Serving
	t.Logf("server %+v; window %.2fs steady=%v (%s); %d/%d requests in the window; TTFT p50 %.1f ms p99 %.1f ms",
		s.Server, r.Timing.WindowS, s.SteadyState != nil, s.NoSteadyState, s.WindowRequests, s.Requests, r.Latency.TTFT.P50Ms, r.Latency.TTFT.P99Ms)
	if s.Server.Kind != "vllm" || len(s.Server.Command) < 2 || s.Server.Command[0] != "vllm" {
		t.Errorf("server %+v, want the vllm server's command", s.Server)
	}
	if s.SteadyState == nil {
		t.Errorf("no steady state: %s", s.NoSteadyState)
	}
	if s.Requests == 0 || s.Completed == 0 || s.WindowRequests == 0 || r.Throughput.Requests == 0 {
		t.Errorf("requests: sent %d, completed %d, in the window %d, throughput %d", s.Requests, s.Completed, s.WindowRequests, r.Throughput.Requests)
	}
	if r.Latency.TTFT.N == 0 || r.Latency.E2E.N == 0 || r.Latency.TPOT.N == 0 || r.Latency.TTFT.P99Ms <= 0 {
		t.Errorf("latency percentiles missing: %+v", r.Latency)
	}
	if after := serverContainers(t, cli); len(after) != len(before) {
		t.Errorf("server containers left: %v (before: %v)", after, before)
	}
}

// A server container that exits mid-run (killed once cycle 1's load has
// started) fails that slot with kind server, the exit status and the
// server's last output; the study goes on to cycle 2, which starts a fresh
// container; no container is left.
func TestServingServerInDockerExits(t *testing.T) {
	h, cli, before := standinDocker(t)
	p := dockerStudy(t, "dockercrash", `{requests: 40, rate: 20, arrivals: "constant", warmup_requests: 1}`, 2)
	killed := false
	_, recs := evalEnv(t, p, []string{"DOCKER_HOST=" + h}, func(out string) {
		dir := waitLoad(t, out, 1)
		if dir == "" {
			return
		}
		if _, err := cli.ContainerKill(context.Background(), serving.ContainerName(dir), client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
			t.Errorf("kill the server container: %v", err)
			return
		}
		killed = true
	})
	if !killed {
		t.Fatal("the server container was never killed")
	}
	c1, c2 := crashedThenNext(t, recs)
	t.Logf("cycle 1: %s", c1.Error.Message)
	if !strings.Contains(c1.Error.Message, "exited mid-run") || !strings.Contains(c1.Error.Message, "status 137") ||
		!strings.Contains(c1.Error.StderrTail, "llem serve:") {
		t.Errorf("cycle 1: message %q, stderr tail %q: want the crash, its status and the server's output", c1.Error.Message, c1.Error.StderrTail)
	}
	if c2.Status != result.StatusOK || c2.Serving == nil {
		t.Errorf("cycle 2: status %s error %+v, want a fresh server and a record", c2.Status, c2.Error)
	}
	if after := serverContainers(t, cli); len(after) != len(before) {
		t.Errorf("server containers left: %v (before: %v)", after, before)
	}
}
