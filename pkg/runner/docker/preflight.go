package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Problem is one thing that stops a study from running in Docker, with its fix.
type Problem struct {
	What string
	Fix  string
}

// Problems is every problem found by pre-flight; its Error lists them numbered.
type Problems []Problem

func (ps Problems) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "docker pre-flight found %d problem(s):", len(ps))
	for i, p := range ps {
		fmt.Fprintf(&b, "\n  %d. %s\n     fix: %s", i+1, p.What, p.Fix)
	}
	return b.String()
}

// PreflightInput is what a study needs from Docker.
type PreflightInput struct {
	Host string
	// Images maps backend → resolved image reference.
	Images map[string]string
	// GPUs to expose; when non-empty the NVIDIA runtime (or CDI) must exist
	// and a test container must see them.
	GPUs []string
	// HostCUDAMajor is the host driver's CUDA major (0 = unknown).
	HostCUDAMajor int
	// Pull missing images (with progress on Progress); false reports them.
	Pull     bool
	Progress io.Writer
}

// Preflight checks everything before a study starts and returns all the
// problems at once (nil when Docker is ready). It never stops at the first.
func Preflight(ctx context.Context, in PreflightInput) error {
	var ps Problems
	cli, err := Connect(ctx, in.Host)
	if err != nil {
		var de *DaemonError
		if errors.As(err, &de) {
			return Problems{{What: de.Reason + " (" + de.Err.Error() + ")", Fix: de.Fix}}
		}
		return Problems{{What: "cannot talk to the Docker daemon: " + err.Error(), Fix: "check DOCKER_HOST and that dockerd is running"}}
	}
	defer cli.Close()

	if len(in.GPUs) > 0 {
		info, err := cli.Info(ctx, client.InfoOptions{})
		if err != nil {
			ps = append(ps, Problem{What: "docker info failed: " + err.Error(), Fix: "check the daemon's logs"})
		} else if _, ok := info.Info.Runtimes["nvidia"]; !ok && len(info.Info.CDISpecDirs) == 0 {
			ps = append(ps, Problem{
				What: "the NVIDIA container runtime is not configured (no 'nvidia' runtime and no CDI spec directories)",
				Fix:  "install the NVIDIA Container Toolkit and run: sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker (see docs/docker.md)",
			})
		}
	}

	ready := map[string]bool{}
	for _, backend := range slices.Sorted(maps.Keys(in.Images)) {
		ref := in.Images[backend]
		if _, err := cli.ImageInspect(ctx, ref); err == nil {
			ready[ref] = true
		} else if in.Pull {
			if perr := pull(ctx, cli, ref, in.Progress); perr != nil {
				ps = append(ps, Problem{
					What: fmt.Sprintf("image %s (backend %s) is not present and could not be pulled: %v", ref, backend, perr),
					Fix:  fmt.Sprintf("check the registry is reachable and the tag exists, or build it: docker build -f docker/%s.Dockerfile -t %s . (then pin it in the study: runners: %s: image: %q)", backend, ref, backend, ref),
				})
			} else {
				ready[ref] = true
			}
		} else {
			ps = append(ps, Problem{
				What: fmt.Sprintf("image %s (backend %s) is not present", ref, backend),
				Fix:  fmt.Sprintf("docker pull %s, or build it from docker/%s.Dockerfile", ref, backend),
			})
		}
		if m := CUDAMajorOfTag(ref); m > 0 && in.HostCUDAMajor > 0 && m > in.HostCUDAMajor {
			e := &CUDAMismatchError{Backend: backend, HostMajor: in.HostCUDAMajor, ImageTag: ref}
			ps = append(ps, Problem{What: e.Error(), Fix: e.Fix()})
		}
	}

	if len(in.GPUs) > 0 && len(ps) == 0 {
		for _, backend := range slices.Sorted(maps.Keys(in.Images)) {
			ref := in.Images[backend]
			if !ready[ref] {
				continue
			}
			if err := gpuVisible(ctx, cli, ref, in.GPUs); err != nil {
				ps = append(ps, Problem{
					What: fmt.Sprintf("no GPU visible inside a test container of %s: %v", ref, err),
					Fix:  "check the NVIDIA Container Toolkit (docker run --rm --gpus all " + ref + " nvidia-smi -L) and that the GPU UUIDs exist",
				})
			}
			break // one image is enough to prove the runtime works
		}
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

func pull(ctx context.Context, cli *client.Client, ref string, progress io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	resp, err := cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return err
		}
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
		if progress != nil && msg.Status != "" {
			line := msg.Status
			if msg.ID != "" {
				line = msg.ID + ": " + line
			}
			if msg.Progress != nil && msg.Progress.Total > 0 {
				line += fmt.Sprintf(" %d/%d MB", msg.Progress.Current>>20, msg.Progress.Total>>20)
			}
			fmt.Fprintln(progress, "pull", ref+":", line)
		}
	}
	return nil
}

// gpuVisible runs nvidia-smi -L in a throwaway container with the GPUs.
func gpuVisible(ctx context.Context, cli *client.Client, ref string, gpus []string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: ref, Entrypoint: []string{"nvidia-smi"}, Cmd: []string{"-L"}, Labels: map[string]string{Label: "preflight"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{DeviceRequests: []container.DeviceRequest{{
			Driver: "nvidia", DeviceIDs: gpus, Capabilities: [][]string{{"gpu"}},
		}}}},
	})
	if err != nil {
		return err
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true})
	wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			return fmt.Errorf("nvidia-smi exited %d", res.StatusCode)
		}
	case err := <-wait.Error:
		return err
	}
	logs, err := cli.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true})
	if err != nil {
		return err
	}
	defer logs.Close()
	var out strings.Builder
	_, _ = stdcopy.StdCopy(&out, io.Discard, logs)
	if !strings.Contains(out.String(), "GPU") {
		return errors.New("nvidia-smi -L listed no GPU")
	}
	return nil
}

// RunningWorkers lists llem worker containers that are running on the
// daemon at host (short ID and the run they belong to). Containers are
// always removed by the runner, so a running one was left by an llem that
// was killed (kill -9 cannot stop a container) or belongs to another study:
// either way it loads the GPUs a new study would measure.
func RunningWorkers(ctx context.Context, host string) ([]string, error) {
	cli, err := Connect(ctx, host)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{Filters: make(client.Filters).Add("label", Label+"=worker")})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range res.Items {
		id := c.ID
		if len(id) > 12 {
			id = id[:12]
		}
		if run := c.Labels[Label+".run_id"]; run != "" {
			id += " (run " + run + ")"
		}
		out = append(out, id)
	}
	return out, nil
}
