// Package docker runs backend workers in containers through the Docker Engine
// API (github.com/moby/moby/client), one fresh container per run, while the
// llem process on the host keeps measuring energy.
//
// The container gets the run's exchange directory bind-mounted at
// ExchangeMount (harness files, logs), the run spec on its stdin, the GPUs
// being measured by UUID, and secrets such as HF_TOKEN through its
// environment — never in its command line. The container's attached
// streams are supervised by runner.Supervise like a local worker's: events
// read live from stdout, stderr kept in the exchange directory's
// worker.stderr and its tail in the Outcome, the same timeout and grace
// (SIGTERM, then SIGKILL, to the container's init). The container is always
// removed; the exchange directory of a failed run is kept.
//
// StartService (service.go) runs a long-running container instead of a
// worker: serving mode's server in its backend's image, on the host's
// network, with the same GPUs, shm size and init, its output streamed and
// its exit watched; Stop removes it.
package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/llenergymeasure/llem/internal/redact"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// ExchangeMount is where a run's exchange directory appears in the container.
const ExchangeMount = "/llem/run"

// Label marks containers created by llem, so leftovers can be found.
const Label = "io.llenergymeasure.llem"

// Options configure a Runner.
type Options struct {
	// Host is the daemon address (unix:///var/run/docker.sock); "" uses
	// DOCKER_HOST or the platform default.
	Host string
	// Image is the image reference to run (tag or digest).
	Image string
	// GPUs are the UUIDs of the GPUs to expose (and that the parent
	// measures); empty exposes none.
	GPUs []string
	// ShmSize in bytes (PyTorch/vLLM data loaders and NCCL need more than
	// Docker's 64 MiB default); 0 keeps the default.
	ShmSize int64
	// Network mode; "" is the daemon default (bridge). "none" isolates.
	Network string
	// HubCache is the host's Hugging Face hub cache, mounted read-write
	// at ContainerHubCache; "" mounts none.
	HubCache string
}

// Runner runs workers in containers. It implements runner.Runner.
type Runner struct {
	cli  *client.Client
	opts Options
}

var _ runner.Runner = (*Runner)(nil)

// Connect opens a client to the daemon, negotiating the API version.
func Connect(ctx context.Context, host string) (*client.Client, error) {
	ops := []client.Opt{client.FromEnv}
	if host != "" {
		ops = append(ops, client.WithHost(host))
	}
	cli, err := client.New(ops...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %s", redact.Text(err.Error()))
	}
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, classifyDaemonErr(err)
	}
	return cli, nil
}

// New connects to the daemon and returns a Runner for opts.Image.
func New(ctx context.Context, opts Options) (*Runner, error) {
	if opts.Image == "" {
		return nil, errors.New("docker runner: no image")
	}
	cli, err := Connect(ctx, opts.Host)
	if err != nil {
		return nil, err
	}
	return &Runner{cli: cli, opts: opts}, nil
}

// Close releases the client.
func (r *Runner) Close() error { return r.cli.Close() }

// Name is "docker".
func (r *Runner) Name() string { return "docker" }

// Image is the image reference this runner starts.
func (r *Runner) Image() string { return r.opts.Image }

// Run starts one container for job, streams its events to onEvent and
// returns how it ended (runner.Supervise over a container). The container is
// removed in every case.
func (r *Runner) Run(ctx context.Context, job runner.Job, onEvent func(protocol.Event)) (runner.Outcome, error) {
	return runner.Supervise(ctx, job, r.launch, onEvent)
}

// launch creates, attaches to and starts the container for job. Its
// streams are the attach connection's, demultiplexed.
func (r *Runner) launch(ctx context.Context, job runner.Job) (runner.Worker, error) {
	binds, hubEnv := hubMounts(r.opts.HubCache, specModel(job.Spec))
	created, err := r.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     r.containerConfig(job, hubEnv),
		HostConfig: r.hostConfig(job, binds),
	})
	if err != nil {
		return nil, fmt.Errorf("create container from %s: %w", r.opts.Image, classifyDaemonErr(err))
	}
	// Calls after the start (signals, wait, removal) must work even once
	// ctx is cancelled: cancelling is what asks for them.
	w := &containerWorker{cli: r.cli, id: created.ID, ctx: context.WithoutCancel(ctx)}
	fail := func(err error) (runner.Worker, error) {
		w.Close()
		return nil, err
	}

	attach, err := r.cli.ContainerAttach(ctx, w.id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fail(fmt.Errorf("attach to container: %w", err))
	}
	w.attach = &attach.HijackedResponse

	// Wait is registered before start so a fast exit is not missed.
	waitCtx, cancelWait := context.WithCancel(w.ctx)
	w.cancelWait = cancelWait
	w.wait = r.cli.ContainerWait(waitCtx, w.id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})

	if _, err := r.cli.ContainerStart(ctx, w.id, client.ContainerStartOptions{}); err != nil {
		return fail(fmt.Errorf("start container: %w", err))
	}

	stdoutR, stdoutW := io.Pipe()
	stderrR, stderrW := io.Pipe()
	w.stdout, w.stderr = stdoutR, stderrR
	go func() {
		_, err := stdcopy.StdCopy(stdoutW, stderrW, attach.Reader)
		stdoutW.CloseWithError(err)
		stderrW.CloseWithError(err)
	}()
	return w, nil
}

// containerWorker is a started container, as runner.Supervise drives it.
type containerWorker struct {
	cli        *client.Client
	id         string
	ctx        context.Context // not cancelled with the run's ctx
	attach     *client.HijackedResponse
	wait       client.ContainerWaitResult
	cancelWait context.CancelFunc
	stdout     io.Reader
	stderr     io.Reader
}

func (w *containerWorker) Stdin() io.WriteCloser { return attachStdin{w.attach} }
func (w *containerWorker) Stdout() io.Reader     { return w.stdout }
func (w *containerWorker) Stderr() io.Reader     { return w.stderr }

func (w *containerWorker) Wait() (int, error) {
	select {
	case res := <-w.wait.Result:
		return int(res.StatusCode), nil
	case err := <-w.wait.Error:
		return -1, fmt.Errorf("wait for container: %w", err)
	}
}

// Terminate and Kill signal the container's init, which forwards the
// signal to the worker; a container that already stopped ignores them.
func (w *containerWorker) Terminate() { w.signal("SIGTERM") }
func (w *containerWorker) Kill()      { w.signal("SIGKILL") }

func (w *containerWorker) signal(sig string) {
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	defer cancel()
	_, _ = w.cli.ContainerKill(ctx, w.id, client.ContainerKillOptions{Signal: sig})
}

// Close ends the attach connection (pending reads return) and removes the
// container with its anonymous volumes.
func (w *containerWorker) Close() error {
	if w.attach != nil {
		w.attach.Close()
	}
	if w.cancelWait != nil {
		w.cancelWait()
	}
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	defer cancel()
	_, _ = w.cli.ContainerRemove(ctx, w.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	return nil
}

// attachStdin is the container's stdin: closing it half-closes the attach
// connection, which the worker reads as EOF.
type attachStdin struct{ attach *client.HijackedResponse }

func (s attachStdin) Write(p []byte) (int, error) { return s.attach.Conn.Write(p) }
func (s attachStdin) Close() error                { return s.attach.CloseWrite() }

// containerConfig is job's container; extraEnv (hubMounts') is added to
// the job's environment.
func (r *Runner) containerConfig(job runner.Job, extraEnv map[string]string) *container.Config {
	env := envList(mergeEnv(job.Env, extraEnv))
	labels := map[string]string{Label: "worker", Label + ".backend": job.Backend}
	if job.Spec.RunID != "" {
		labels[Label+".run_id"] = job.Spec.RunID
	}
	return &container.Config{
		Image:        r.opts.Image,
		Cmd:          containerCommand(job),
		Env:          env,
		OpenStdin:    true,
		StdinOnce:    true,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		Labels:       labels,
	}
}

// containerCommand rewrites host paths under the exchange directory (the
// harness files a backend wrote there) to where the directory is mounted.
func containerCommand(job runner.Job) []string {
	cmd := slices.Clone(job.Command)
	if job.Dir == "" {
		return cmd
	}
	for i, arg := range cmd {
		if arg == job.Dir || strings.HasPrefix(arg, job.Dir+"/") {
			cmd[i] = ExchangeMount + strings.TrimPrefix(arg, job.Dir)
		}
	}
	return cmd
}

// hostConfig is job's host configuration; binds (hubMounts') are added
// to the exchange directory's.
func (r *Runner) hostConfig(job runner.Job, binds []string) *container.HostConfig {
	hc := &container.HostConfig{ShmSize: r.opts.ShmSize}
	if r.opts.Network != "" {
		hc.NetworkMode = container.NetworkMode(r.opts.Network)
	}
	if job.Dir != "" {
		hc.Binds = []string{job.Dir + ":" + ExchangeMount}
	}
	hc.Binds = append(hc.Binds, binds...)
	hc.DeviceRequests = gpuRequests(r.opts.GPUs)
	init := true // reap zombies and forward signals to the worker
	hc.Init = &init
	return hc
}

// gpuRequests asks the NVIDIA runtime for the GPUs with these UUIDs (nil
// for none): the container sees exactly the GPUs llem measures.
func gpuRequests(gpus []string) []container.DeviceRequest {
	if len(gpus) == 0 {
		return nil
	}
	return []container.DeviceRequest{{
		Driver:       "nvidia",
		DeviceIDs:    slices.Clone(gpus),
		Capabilities: [][]string{{"gpu"}},
	}}
}

// classifyDaemonErr turns connection problems into errors with a fix.
func classifyDaemonErr(err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "permission denied"):
		return &DaemonError{Err: err, Reason: "permission denied on the Docker socket",
			Fix: "add your user to the docker group (sudo usermod -aG docker $USER, then log in again), or run llem as root"}
	case client.IsErrConnectionFailed(err) || strings.Contains(msg, "no such file") || strings.Contains(msg, "connection refused"):
		return &DaemonError{Err: err, Reason: "the Docker daemon is not reachable",
			Fix: "start it (sudo systemctl start docker, or dockerd &) and check DOCKER_HOST"}
	}
	return err
}

// DaemonError is a daemon that cannot be used, with the fix.
type DaemonError struct {
	Err    error
	Reason string
	Fix    string
}

// Error never shows a password the daemon address carried (DOCKER_HOST
// may hold one; the client's messages quote the address).
func (e *DaemonError) Error() string { return redact.Text(e.Reason + ": " + e.Err.Error()) }
func (e *DaemonError) Unwrap() error { return e.Err }
