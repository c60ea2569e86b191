package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/llenergymeasure/llem/internal/dockertest"
	"github.com/llenergymeasure/llem/internal/testworker"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/runner/docker"
	"github.com/llenergymeasure/llem/pkg/study"
)

// The test binary doubles as `llem worker` for the local runner's native
// workers (os.Executable is this binary); containers run a CGO_ENABLED=0
// llem built by dockertest.
func TestMain(m *testing.M) {
	testworker.RunIfWorker("LLEM_SETUP_TEST_NATIVE")
	os.Setenv("LLEM_SETUP_TEST_NATIVE", "1")
	dockertest.Main(m)
}

const nativeImage = "llem-test/native:latest"

// tinyStudy is 2 runs × 2 cycles of the native engine on a random 15M
// Llama: small enough for a 2-core machine, real enough to produce tokens.
const tinyStudy = `name: "docker-vs-local"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 3
	dataset: {source: "synthetic", input_len: 8, output_len: 4}
	max_output_tokens: 4
	decoder: preset: "deterministic"
	energy: {sensor: "estimate", sample_interval_ms: 50}
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: %v}
}
grid: native: batch_size: [1, 3]
execution: {cycles: %d, order: "interleaved"%s}
`

func loadStudy(t *testing.T, src string) *study.Plan {
	t.Helper()
	path := filepath.Join(t.TempDir(), "study.cue")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := study.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// requestLog records the request events of every slot, keyed run/cycle.
type requestLog struct {
	mu   sync.Mutex
	reqs map[string][]string
}

// recording wraps a runner so the worker's request events are kept.
type recording struct {
	runner.Runner
	log *requestLog
}

func (r recording) Run(ctx context.Context, job runner.Job, onEvent func(protocol.Event)) (runner.Outcome, error) {
	key := fmt.Sprintf("%s/%d", job.Spec.RunID, job.Spec.Cycle)
	return r.Runner.Run(ctx, job, func(ev protocol.Event) {
		if ev.Kind == protocol.KindRequest && ev.Request != nil {
			r.log.mu.Lock()
			r.log.reqs[key] = append(r.log.reqs[key], fmt.Sprintf("req %d batch %d: in %d out %d %s",
				ev.Request.Index, ev.Request.Batch, ev.Request.InputTokens, ev.Request.OutputTokens, ev.Request.FinishReason))
			r.log.mu.Unlock()
		}
		onEvent(ev)
	})
}

// runStudy resolves, prepares and builds the runners for plan with the
// given --runner, then executes it.
func runStudy(ctx context.Context, t *testing.T, plan *study.Plan, h, kind string, onEvent func(execute.Event)) (*execute.Report, *requestLog, *Resolution) {
	t.Helper()
	in := Input{
		Plan: plan, RunnerFlag: kind, DockerHost: h, Network: "none", LlemVersion: "0.0.0-test",
		UserImages: map[string]string{"native": nativeImage},
	}
	res, err := Resolve(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Prepare(ctx, nil); err != nil {
		t.Fatal(err)
	}
	routes, err := res.Build(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	log := &requestLog{reqs: map[string][]string{}}
	for b, rt := range routes {
		rt.Runner = recording{Runner: rt.Runner, log: log}
		routes[b] = rt
	}
	snap := envinfo.Collect(envinfo.Options{SkipNVML: true})
	snap.Runners = res.Environment()
	envJSON, _ := json.Marshal(snap)
	rep, err := execute.Run(ctx, execute.Options{
		Plan: res.ResolvedPlan(), OutRoot: t.TempDir(), Routes: routes,
		Environment: envJSON, Fingerprint: snap.Fingerprint, Grace: 2 * time.Second,
		OnEvent: onEvent,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep, log, res
}

func llemContainers(t *testing.T, h string) []string {
	t.Helper()
	cli := dockertest.Client(t, h)
	res, err := cli.ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", docker.Label)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID[:12]+" "+string(c.State))
	}
	return ids
}

// TestStudyInDockerMatchesLocal runs the same study through the local
// runner and the Docker runner (the real native worker, a static llem in
// the container) and compares the records.
func TestStudyInDockerMatchesLocal(t *testing.T) {
	h := dockertest.Host(t)
	dockertest.Image(t, h, nativeImage, true)
	ctx := context.Background()

	src := fmt.Sprintf(tinyStudy, 0, 2, "")
	local, localReqs, _ := runStudy(ctx, t, loadStudy(t, src), h, "local", nil)
	dk, dockerReqs, res := runStudy(ctx, t, loadStudy(t, src), h, "docker", nil)
	if left := llemContainers(t, h); len(left) > 0 {
		t.Fatalf("containers left behind: %v", left)
	}

	b := res.Backend("native")
	if b == nil || b.Kind != runner.KindDocker || b.Source != runner.SourceFlag || b.Image != nativeImage || b.ImageSource != ImageFromUserConfig {
		t.Fatalf("resolution: %+v", b)
	}
	if !strings.HasPrefix(b.ImageID, "sha256:") {
		t.Fatalf("image ID not resolved: %+v", b)
	}

	t.Logf("native in docker: image %s, id %s", b.Image, b.ImageID)
	read := func(rep *execute.Report) map[string]*result.Record {
		recs, err := result.ReadRecords(rep.Dir)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*result.Record{}
		for _, r := range recs {
			out[fmt.Sprintf("%s/%d", r.RunID, r.Cycle)] = r
		}
		return out
	}
	lr, dr := read(local), read(dk)
	if len(lr) != 4 || len(dr) != 4 {
		t.Fatalf("records: local %d, docker %d; want 4 each", len(lr), len(dr))
	}
	if local.Failed != 0 || dk.Failed != 0 {
		for _, rs := range []map[string]*result.Record{lr, dr} {
			for k, r := range rs {
				if r.Error != nil {
					t.Logf("%s: %s: %s\n%s", k, r.Error.Kind, r.Error.Message, r.Error.StderrTail)
				}
			}
		}
		t.Fatalf("failed runs: local %d, docker %d", local.Failed, dk.Failed)
	}
	for _, key := range slices.Sorted(func(yield func(string) bool) {
		for k := range lr {
			if !yield(k) {
				return
			}
		}
	}) {
		l, d := lr[key], dr[key]
		if d == nil {
			t.Errorf("%s: no docker record (docker has %v)", key, keys(dr))
			continue
		}
		if l.Status != result.StatusOK || d.Status != l.Status {
			t.Errorf("%s: status local %s, docker %s (%+v)", key, l.Status, d.Status, d.Error)
		}
		if l.Throughput.Requests != d.Throughput.Requests || l.Throughput.InputTokens != d.Throughput.InputTokens || l.Throughput.OutputTokens != d.Throughput.OutputTokens {
			t.Errorf("%s: throughput local %+v, docker %+v", key, l.Throughput, d.Throughput)
		}
		t.Logf("%s: %s; docker %q", key, d.Status, dockerReqs.reqs[key])
		if !slices.Equal(localReqs.reqs[key], dockerReqs.reqs[key]) || len(localReqs.reqs[key]) != 3 {
			t.Errorf("%s: requests differ\nlocal  %q\ndocker %q", key, localReqs.reqs[key], dockerReqs.reqs[key])
		}
		if d.Worker == nil || d.Worker.Runner != "docker" || l.Worker == nil || l.Worker.Runner != "local" {
			t.Errorf("%s: worker runner local %+v docker %+v", key, l.Worker, d.Worker)
		}
		if d.Energy.RawJ == nil || d.Timeseries == "" || d.Timing.WindowS <= 0 || d.ModelInfo == nil {
			t.Errorf("%s: docker record incomplete: energy %v timeseries %q window %v model %+v", key, d.Energy.RawJ, d.Timeseries, d.Timing.WindowS, d.ModelInfo)
		}
		// Where it ran, with the image actually used.
		var env envinfo.Snapshot
		if err := json.Unmarshal(d.Environment, &env); err != nil {
			t.Fatal(err)
		}
		if r := env.Runners["native"]; r.Kind != "docker" || r.Image != nativeImage || r.ImageID != b.ImageID {
			t.Errorf("%s: environment.runners.native = %+v", key, r)
		}
		json.Unmarshal(l.Environment, &env)
		if r := env.Runners["native"]; r.Kind != "local" || r.Image != "" {
			t.Errorf("%s: local environment.runners.native = %+v", key, r)
		}
	}
	if dk.Manifest.Status != result.StudyCompleted {
		t.Errorf("docker study status %s", dk.Manifest.Status)
	}
}

// TestStudyInDockerInterruptAndTimeout: Ctrl-C (ctx cancelled) while a
// container runs puts the slot back to pending and leaves no container; a
// run past its timeout is recorded as a timeout and its container removed.
func TestStudyInDockerInterruptAndTimeout(t *testing.T) {
	h := dockertest.Host(t)
	dockertest.Image(t, h, nativeImage, true)

	// The worker sleeps the thermal floor after warmup: a container that is
	// surely running when the cancel lands.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	rep, _, _ := runStudy(ctx, t, loadStudy(t, fmt.Sprintf(tinyStudy, 30, 1, "")), h, "docker", func(ev execute.Event) {
		if ev.Kind == execute.EventPhase && strings.HasPrefix(ev.Phase, "thermal floor") {
			once.Do(func() {
				if len(llemContainers(t, h)) == 0 {
					t.Error("no container running at warmup_done")
				}
				cancel()
			})
		}
	})
	if !rep.Interrupted || rep.Manifest.Status != result.StudyInterrupted {
		t.Fatalf("interrupted = %v, status %s", rep.Interrupted, rep.Manifest.Status)
	}
	for _, e := range rep.Manifest.Entries {
		if e.Status != result.EntryPending {
			t.Errorf("slot %s/%d is %s after Ctrl-C, want pending", e.RunID, e.Cycle, e.Status)
		}
	}
	if left := llemContainers(t, h); len(left) > 0 {
		t.Fatalf("containers left behind after Ctrl-C: %v", left)
	}

	// Each run would sleep its 30 s thermal floor after warmup; the 2 s
	// run timeout must end it there. Hang guard only: a timeout that never
	// fired would run into it and the study would end interrupted.
	guard, cancelGuard := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancelGuard()
	var batches int
	rep, _, _ = runStudy(guard, t, loadStudy(t, fmt.Sprintf(tinyStudy, 30, 1, ", run_timeout_seconds: 2")), h, "docker", func(ev execute.Event) {
		if ev.Kind == execute.EventPhase && (ev.Phase == protocol.PhasePrefill || ev.Phase == protocol.PhaseDecode) {
			batches++
		}
	})
	if rep.Interrupted || guard.Err() != nil {
		t.Fatalf("hang guard: the timed-out study was cut off (status %s)", rep.Manifest.Status)
	}
	if rep.Failed != 2 || rep.Manifest.Status != result.StudyFailed {
		t.Fatalf("failed = %d, status %s; want 2 timeouts", rep.Failed, rep.Manifest.Status)
	}
	if batches != 0 {
		t.Errorf("%d measured batch phase(s) started: the timeout did not end the runs in their 30 s thermal floor", batches)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Status != result.StatusFailed || r.Error == nil || r.Error.Kind != "timeout" {
			t.Errorf("record %s: status %s error %+v, want a timeout", r.RunID, r.Status, r.Error)
		}
	}
	for _, e := range rep.Manifest.Entries {
		if e.Status != result.EntryFailed || !strings.HasPrefix(e.Error, "timeout") {
			t.Errorf("slot %s/%d: %s %q", e.RunID, e.Cycle, e.Status, e.Error)
		}
	}
	if left := llemContainers(t, h); len(left) > 0 {
		t.Fatalf("containers left behind after timeouts: %v", left)
	}
}

// fakePython is a python3 for a busybox image: it checks that it was
// started as llem starts a harness in a container (python3 -u on a harness
// file visible under the exchange mount), that the spec arrives on stdin
// with the backend's mapped arguments, and then replays a recorded event
// stream (events) on stdout.
const fakePython = `#!/bin/sh
[ "$1" = "-u" ] || { echo "fake python3: want -u, got $*" >&2; exit 2; }
case "$2" in /llem/run/*) ;; *) echo "fake python3: harness $2 is not under /llem/run" >&2; exit 3;; esac
[ -f "$2" ] || { echo "fake python3: harness $2 not visible in the container" >&2; exit 4; }
read -r spec
case "$spec" in *'"backend_args"'*) ;; *) echo "fake python3: no backend_args in the spec: $spec" >&2; exit 5;; esac
[ -z "$HF_HOME" ] || { echo "fake python3: host HF_HOME leaked: $HF_HOME" >&2; exit 6; }
[ -z "$CUDA_VISIBLE_DEVICES" ] || { echo "fake python3: host CUDA_VISIBLE_DEVICES leaked: $CUDA_VISIBLE_DEVICES" >&2; exit 7; }
[ "$HF_TOKEN" = "hf_fake" ] || { echo "fake python3: HF_TOKEN not passed" >&2; exit 8; }
cat /llem/events.jsonl
`

// TestPythonBackendInDocker runs a pytorch study through the Docker runner
// with a fake python3 in the image: the harness path mapping, the spec on
// stdin and the environment are checked inside a real container.
func TestPythonBackendInDocker(t *testing.T) {
	h := dockertest.Host(t)
	t.Setenv("LLEM_RUNNER_PYTORCH", "")
	t.Setenv("HF_TOKEN", "hf_fake")
	t.Setenv("CUDA_VISIBLE_DEVICES", "3")
	t.Setenv("HF_HOME", "/home/someone/.cache/huggingface")

	var ev strings.Builder
	enc := protocol.NewEncoder(&ev)
	tNs := int64(1_000_000_000)
	emit := func(p any) {
		tNs += 1_000_000
		if err := enc.EmitAt(tNs, p); err != nil {
			t.Fatal(err)
		}
	}
	emit(protocol.Hello{Backend: "pytorch", ProtocolVersion: protocol.ProtocolVersion, Versions: map[string]string{"torch": "fake"}})
	emit(protocol.Loaded{Model: "random:llama-15m", Parameters: 15_000_000, Layers: 6, DType: "float32", LoadTimeNs: 1000})
	emit(protocol.WarmupDone{Prompts: 1})
	emit(protocol.Phase{Name: protocol.PhasePrefill, State: "start", Batch: 0, BatchSize: 2})
	emit(protocol.Phase{Name: protocol.PhasePrefill, State: "end", Batch: 0, BatchSize: 2, InputTokens: 8, OutputTokens: 2})
	emit(protocol.Phase{Name: protocol.PhaseDecode, State: "start", Batch: 0, BatchSize: 2})
	emit(protocol.Phase{Name: protocol.PhaseDecode, State: "end", Batch: 0, BatchSize: 2, OutputTokens: 4})
	for i := range 2 {
		emit(protocol.Request{Index: i, Batch: 0, InputTokens: 4, OutputTokens: 3, StartNs: tNs - 3_000_000, TTFTNs: 1_000_000, EndNs: tNs, ITLNs: []int64{1_000_000, 1_000_000}, FinishReason: "length"})
	}
	emit(protocol.Done{Requests: 2, InputTokens: 8, OutputTokens: 6})
	img := dockertest.ImageWithFiles(t, h, "llem-test/fakepython:latest", false, map[string]string{
		"usr/local/bin/python3": fakePython,
		"llem/events.jsonl":     ev.String(),
	})

	plan := loadStudy(t, `name: "py-in-docker"
base: {
	model: "random:llama-15m", backend: "pytorch", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 4, output_len: 3}
	energy: sensor: "none"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
runners: pytorch: {kind: "docker", image: "`+img+`", shm_size: "128m"}
execution: cycles: 1
`)
	rep, _, res := runStudy(context.Background(), t, plan, h, "", nil)
	if b := res.Backend("pytorch"); b.Kind != "docker" || b.Source != runner.SourceStudy || b.ImageSource != ImageFromStudy || b.ShmSize != 128<<20 {
		t.Fatalf("resolution %+v", b)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records %d: %v", len(recs), err)
	}
	r := recs[0]
	if r.Status != result.StatusOK {
		t.Fatalf("status %s: %+v", r.Status, r.Error)
	}
	if r.Worker == nil || r.Worker.Runner != "docker" || r.Worker.Versions["torch"] != "fake" || r.Throughput.OutputTokens != 6 {
		t.Errorf("record: worker %+v throughput %+v", r.Worker, r.Throughput)
	}
	if left := llemContainers(t, h); len(left) > 0 {
		t.Fatalf("containers left behind: %v", left)
	}
}

// A worker container still running when a study starts (kill -9 of an
// llem cannot stop its container) is named in a warning.
func TestPrepareWarnsAboutRunningWorkers(t *testing.T) {
	h := dockertest.Host(t)
	img := dockertest.Image(t, h, nativeImage, true)
	t.Setenv("LLEM_RUNNER_NATIVE", "")
	cli := dockertest.Client(t, h)
	ctx := context.Background()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: img, Cmd: []string{"sleep", "60"}, Labels: map[string]string{docker.Label: "worker", docker.Label + ".run_id": "stale-run"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := Resolve(ctx, Input{
		Plan: loadStudy(t, fmt.Sprintf(tinyStudy, 0, 1, "")), RunnerFlag: "docker", DockerHost: h,
		UserImages: map[string]string{"native": nativeImage},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Prepare(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], created.ID[:12]+" (run stale-run)") {
		t.Fatalf("warnings %q", res.Warnings)
	}
}

func keys(m map[string]*result.Record) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
