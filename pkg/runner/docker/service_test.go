package docker

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/llenergymeasure/llem/internal/dockertest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A service container: its output streamed, the host file it names
// mounted at the same path read-only, the environment in Env only, the
// host network; its exit seen with the status; Stop removes it.
func TestServiceOutputFilesExit(t *testing.T) {
	t.Parallel()
	h := dockertest.Host(t)
	img := dockertest.Image(t, h, busyboxImage, false)
	f := filepath.Join(t.TempDir(), "extra.yaml")
	if err := os.WriteFile(f, []byte("kv_cache_config: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errw syncBuffer
	name := "llem-test-service-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	s, err := StartService(context.Background(), ServiceOptions{Host: h, Image: img, Name: name,
		Command: []string{"/bin/sh", "-c", `cat "$0"; echo "token ${TOKEN:+set}" >&2; echo x > "$0" || echo read-only >&2; exit 3`, f},
		Env:     map[string]string{"TOKEN": "secret"}, Files: []string{f}, ShmSize: 32 << 20, Stdout: &out, Stderr: &errw})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Second)
	select {
	case <-s.Exited():
	case <-time.After(time.Minute):
		t.Fatal("the container did not exit")
	}
	var ee *ExitStatusError
	if !errors.As(s.ExitErr(), &ee) || ee.Code != 3 {
		t.Errorf("exit: %v, want status 3", s.ExitErr())
	}
	if out.String() != "kv_cache_config: {}\n" || !strings.Contains(errw.String(), "token set") || !strings.Contains(errw.String(), "read-only") {
		t.Errorf("stdout %q, stderr %q", out.String(), errw.String())
	}
	cli := dockertest.Client(t, h)
	res, err := cli.ContainerInspect(context.Background(), s.ID(), client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hc := res.Container.HostConfig; hc.NetworkMode != "host" || hc.ShmSize != 32<<20 || res.Container.Config.Labels[Label] != "server" {
		t.Errorf("network %q shm %d labels %v", hc.NetworkMode, hc.ShmSize, res.Container.Config.Labels)
	}
	s.Stop(time.Second)
	if _, err := cli.ContainerInspect(context.Background(), s.ID(), client.ContainerInspectOptions{}); err == nil {
		t.Error("the container is still there after Stop")
	}
}

// Stop of a running service: SIGTERM (forwarded by init), then removal;
// RemoveService removes a container by name and ignores a missing one.
func TestServiceStopAndRemove(t *testing.T) {
	t.Parallel()
	h := dockertest.Host(t)
	img := dockertest.Image(t, h, busyboxImage, false)
	cli := dockertest.Client(t, h)
	start := func(name string) *Service {
		s, err := StartService(context.Background(), ServiceOptions{Host: h, Image: img, Name: name,
			Command: []string{"/bin/sh", "-c", "trap 'echo term >&2; exit 0' TERM; while true; do sleep 0.1; done"}})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := start("llem-test-service-stop")
	t0 := time.Now()
	s.Stop(10 * time.Second)
	if d := time.Since(t0); d > 8*time.Second {
		t.Errorf("Stop took %s: SIGTERM did not reach the server", d)
	}
	if _, err := cli.ContainerInspect(context.Background(), s.ID(), client.ContainerInspectOptions{}); err == nil {
		t.Error("the container is still there after Stop")
	}
	// A leftover (a worker killed before its Stop) goes by name, and a new
	// service of the same name replaces it.
	left := start("llem-test-service-left")
	again := start("llem-test-service-left")
	defer again.Stop(0)
	if _, err := cli.ContainerInspect(context.Background(), left.ID(), client.ContainerInspectOptions{}); err == nil {
		t.Error("the leftover of the same name was not replaced")
	}
	if err := RemoveService(context.Background(), h, "llem-test-service-left"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveService(context.Background(), h, "llem-test-service-left"); err != nil {
		t.Errorf("removing a missing container: %v", err)
	}
	if _, err := cli.ContainerInspect(context.Background(), again.ID(), client.ContainerInspectOptions{}); err == nil {
		t.Error("RemoveService left the container")
	}
}
