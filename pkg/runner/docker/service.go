package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// NetworkHost is the host's network namespace: a server in the container
// listening on 127.0.0.1:P is the host's 127.0.0.1:P.
const NetworkHost = "host"

// ServiceOptions describe a long-running container that serves while llem
// on the host drives it: serving mode's server in its backend's image. It
// gets what a worker container gets (the GPUs by UUID, shm size, init,
// secrets in the environment only) but no stdin and no exchange mount.
type ServiceOptions struct {
	// Host is the daemon address; "" uses DOCKER_HOST or the default.
	Host string
	// Image is the image ID or reference to create the container from.
	Image string
	// Name is the container's name: a slot's name, so the parent can remove
	// a container its worker left (RemoveService). An existing container of
	// that name is a leftover of the same slot and is removed first.
	Name string
	// Command is the argv (never secrets).
	Command []string
	// Env is the container's environment (secrets travel only here).
	Env map[string]string
	// GPUs are the UUIDs of the GPUs to expose (those llem measures).
	GPUs []string
	// ShmSize in bytes; 0 keeps Docker's default.
	ShmSize int64
	// Network is the network mode; "" is NetworkHost.
	Network string
	// Files are host files bind-mounted read-only at the same path inside
	// (a config file Command names).
	Files []string
	// HubCache is the host's hub cache, mounted at ContainerHubCache
	// (HF_HUB_CACHE); Model a local model directory mounted read-only at
	// its path (see hubMounts).
	HubCache, Model string
	// Labels are added to the container's (Label=server).
	Labels map[string]string
	// Stdout and Stderr receive the container's output as it comes.
	Stdout, Stderr io.Writer
}

// Service is a started service container.
type Service struct {
	cli        *client.Client
	id         string
	ctx        context.Context // not cancelled with the starter's ctx
	attach     *client.HijackedResponse
	cancelWait context.CancelFunc
	exited     chan struct{}
	exitErr    error
}

// StartService creates, attaches to and starts a service container. Its
// output is copied to o.Stdout and o.Stderr until it exits; Exited is
// closed once it has exited and its output is drained. Stop it (Stop
// removes it) in every case.
func StartService(ctx context.Context, o ServiceOptions) (*Service, error) {
	if o.Image == "" || len(o.Command) == 0 {
		return nil, errors.New("docker service: no image or command")
	}
	cli, err := Connect(ctx, o.Host)
	if err != nil {
		return nil, err
	}
	if o.Network == "" {
		o.Network = NetworkHost
	}
	labels := map[string]string{Label: "server"}
	maps.Copy(labels, o.Labels)
	hc := &container.HostConfig{ShmSize: o.ShmSize, NetworkMode: container.NetworkMode(o.Network)}
	hc.DeviceRequests = gpuRequests(o.GPUs)
	for _, f := range o.Files {
		hc.Binds = append(hc.Binds, f+":"+f+":ro")
	}
	binds, hubEnv := hubMounts(o.HubCache, o.Model)
	hc.Binds = append(hc.Binds, binds...)
	env := mergeEnv(o.Env, hubEnv)
	init := true // forward signals to the server, reap its children
	hc.Init = &init
	cfg := &container.Config{Image: o.Image, Cmd: slices.Clone(o.Command), Env: envList(env), Labels: labels,
		AttachStdout: true, AttachStderr: true}
	if o.Name != "" {
		// A container of this slot's name is a leftover of a killed worker.
		_, _ = cli.ContainerRemove(ctx, o.Name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	}
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: o.Name, Config: cfg, HostConfig: hc})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("create the server container from %s: %w", o.Image, classifyDaemonErr(err))
	}
	s := &Service{cli: cli, id: created.ID, ctx: context.WithoutCancel(ctx), exited: make(chan struct{})}
	fail := func(err error) (*Service, error) {
		s.Stop(0)
		return nil, err
	}
	attach, err := cli.ContainerAttach(ctx, s.id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return fail(fmt.Errorf("attach to the server container: %w", err))
	}
	s.attach = &attach.HijackedResponse
	// Wait is registered before start so a fast exit is not missed.
	waitCtx, cancelWait := context.WithCancel(s.ctx)
	s.cancelWait = cancelWait
	wait := cli.ContainerWait(waitCtx, s.id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	stdout, stderr := o.Stdout, o.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	copied := make(chan struct{})
	go func() {
		_, _ = stdcopy.StdCopy(stdout, stderr, attach.Reader)
		close(copied)
	}()
	if _, err := cli.ContainerStart(ctx, s.id, client.ContainerStartOptions{}); err != nil {
		return fail(fmt.Errorf("start the server container: %w", classifyDaemonErr(err)))
	}
	go func() {
		select {
		case res := <-wait.Result:
			s.exitErr = exitError(int(res.StatusCode))
			if res.Error != nil && res.Error.Message != "" {
				s.exitErr = fmt.Errorf("%w: %s", s.exitErr, res.Error.Message)
			}
		case err := <-wait.Error:
			s.exitErr = fmt.Errorf("wait for the server container: %w", err)
		}
		// Its last output comes before the exit is reported.
		select {
		case <-copied:
		case <-time.After(5 * time.Second):
		}
		close(s.exited)
	}()
	return s, nil
}

// ExitStatusError is a service container's exit status.
type ExitStatusError struct{ Code int }

func (e *ExitStatusError) Error() string {
	if e.Code > 128 && e.Code < 128+65 {
		return fmt.Sprintf("the container exited with status %d (signal %d)", e.Code, e.Code-128)
	}
	return fmt.Sprintf("the container exited with status %d", e.Code)
}

func exitError(code int) error { return &ExitStatusError{Code: code} }

// ID is the container's ID.
func (s *Service) ID() string { return s.id }

// Exited is closed when the container has exited.
func (s *Service) Exited() <-chan struct{} { return s.exited }

// ExitErr is how the container ended (an *ExitStatusError, or the wait's
// error); only after Exited is closed.
func (s *Service) ExitErr() error { return s.exitErr }

// PID is the host PID of the container's init (0 when unknown).
func (s *Service) PID() int {
	if s.cli == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	res, err := s.cli.ContainerInspect(ctx, s.id, client.ContainerInspectOptions{})
	if err != nil || res.Container.State == nil {
		return 0
	}
	return res.Container.State.Pid
}

// Stop sends SIGTERM to the container's init (forwarded to the server),
// waits up to grace for it to exit, then removes the container (killing
// it if it still runs) and releases the client. Safe to call twice.
func (s *Service) Stop(grace time.Duration) {
	if s.cli == nil {
		return
	}
	if s.attach != nil && grace > 0 {
		select {
		case <-s.exited:
		default:
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			_, _ = s.cli.ContainerKill(ctx, s.id, client.ContainerKillOptions{Signal: "SIGTERM"})
			cancel()
			select {
			case <-s.exited:
			case <-time.After(grace):
			}
		}
	}
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	_, _ = s.cli.ContainerRemove(ctx, s.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	cancel()
	if s.attach != nil {
		s.attach.Close()
	}
	if s.cancelWait != nil {
		s.cancelWait()
	}
	s.cli.Close()
	s.cli = nil
}

// RemoveService removes the container called name, if there is one: the
// parent's sweep after a worker that may have died without stopping its
// server.
func RemoveService(ctx context.Context, host, name string) error {
	cli, err := Connect(ctx, host)
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
