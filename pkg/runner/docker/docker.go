// Package docker runs backend workers in containers through the Docker Engine
// API (github.com/moby/moby/client), one fresh container per run, while the
// llem process on the host keeps measuring energy.
//
// The container gets the run's exchange directory bind-mounted at
// ExchangeMount (harness files, logs), the run spec on its stdin, the GPUs
// being measured by UUID, and secrets such as HF_TOKEN through its
// environment — never in its command line. Events are read live from the
// attached stdout; stderr is kept (tail) for error reports. The container is
// always removed; the exchange directory of a failed run is kept.
package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

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
		return nil, fmt.Errorf("docker client: %w", err)
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
// returns how it ended. The container is removed in every case.
func (r *Runner) Run(ctx context.Context, job runner.Job, onEvent func(protocol.Event)) (runner.Outcome, error) {
	out := runner.Outcome{Started: time.Now()}
	if len(job.Command) == 0 {
		return out, errors.New("docker runner: empty worker command")
	}
	spec, err := json.Marshal(job.Spec)
	if err != nil {
		return out, fmt.Errorf("encode run spec: %w", err)
	}
	grace := job.Grace
	if grace <= 0 {
		grace = 10 * time.Second
	}

	created, err := r.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     r.containerConfig(job),
		HostConfig: r.hostConfig(job),
	})
	if err != nil {
		return out, fmt.Errorf("create container from %s: %w", r.opts.Image, classifyDaemonErr(err))
	}
	id := created.ID
	// Removal must happen even when ctx is already cancelled.
	defer func() {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = r.cli.ContainerRemove(rmCtx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}()

	attach, err := r.cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return out, fmt.Errorf("attach to container: %w", err)
	}
	defer attach.Close()

	// Wait is registered before start so a fast exit is not missed.
	waitCtx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWait()
	wait := r.cli.ContainerWait(waitCtx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})

	if _, err := r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return out, fmt.Errorf("start container: %w", err)
	}

	// The spec goes in on stdin; closing our write side is the worker's EOF.
	go func() {
		_, _ = attach.Conn.Write(append(spec, '\n'))
		_ = attach.CloseWrite()
	}()

	stdoutR, stdoutW := io.Pipe()
	stderr := &tailBuffer{max: 8 << 10}
	copyDone := make(chan struct{})
	go func() {
		_, err := stdcopy.StdCopy(stdoutW, stderr, attach.Reader)
		stdoutW.CloseWithError(err)
		close(copyDone)
	}()
	decodeDone := make(chan []error, 1)
	go func() { decodeDone <- decodeEvents(stdoutR, onEvent) }()

	var timeout <-chan time.Time
	if job.Timeout > 0 {
		t := time.NewTimer(job.Timeout)
		defer t.Stop()
		timeout = t.C
	}

	stop := func() {
		secs := int(grace.Round(time.Second) / time.Second)
		if secs < 1 {
			secs = 1
		}
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+30*time.Second)
		defer cancel()
		// docker stop: SIGTERM, then SIGKILL after the grace period.
		_, _ = r.cli.ContainerStop(stopCtx, id, client.ContainerStopOptions{Timeout: &secs})
	}

	exitCode := -1
	select {
	case res := <-wait.Result:
		exitCode = int(res.StatusCode)
	case err := <-wait.Error:
		return out, fmt.Errorf("wait for container: %w", err)
	case <-timeout:
		out.TimedOut = true
		stop()
	case <-ctx.Done():
		out.Interrupted = true
		stop()
	}
	if exitCode < 0 {
		select {
		case res := <-wait.Result:
			exitCode = int(res.StatusCode)
		case <-wait.Error:
		case <-time.After(5 * time.Second):
		}
	}
	// The output stream ends when the container's streams close.
	select {
	case <-copyDone:
	case <-time.After(10 * time.Second):
		attach.Close()
		<-copyDone
	}
	out.ProtocolErrs = <-decodeDone
	out.ExitCode = exitCode
	out.StderrTail = stderr.String()
	out.Ended = time.Now()
	return out, nil
}

func (r *Runner) containerConfig(job runner.Job) *container.Config {
	env := make([]string, 0, len(job.Env))
	for _, k := range slices.Sorted(maps.Keys(job.Env)) {
		env = append(env, k+"="+job.Env[k])
	}
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

func (r *Runner) hostConfig(job runner.Job) *container.HostConfig {
	hc := &container.HostConfig{ShmSize: r.opts.ShmSize}
	if r.opts.Network != "" {
		hc.NetworkMode = container.NetworkMode(r.opts.Network)
	}
	if job.Dir != "" {
		hc.Binds = []string{job.Dir + ":" + ExchangeMount}
	}
	if len(r.opts.GPUs) > 0 {
		hc.DeviceRequests = []container.DeviceRequest{{
			Driver:       "nvidia",
			DeviceIDs:    slices.Clone(r.opts.GPUs),
			Capabilities: [][]string{{"gpu"}},
		}}
	}
	init := true // reap zombies and forward signals to the worker
	hc.Init = &init
	return hc
}

// decodeEvents feeds every event to onEvent and collects protocol errors; a
// malformed line does not stop the stream.
func decodeEvents(r io.Reader, onEvent func(protocol.Event)) []error {
	dec := protocol.NewDecoder(r)
	var errs []error
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			return errs
		}
		if err != nil {
			var le *protocol.LineError
			if !errors.As(err, &le) {
				return append(errs, err)
			}
			errs = append(errs, err)
			continue
		}
		if onEvent != nil {
			onEvent(ev)
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, nil))
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

func (e *DaemonError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *DaemonError) Unwrap() error { return e.Err }
