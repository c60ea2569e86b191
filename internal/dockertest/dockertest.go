// Package dockertest gives tests a real Docker daemon and locally built
// images, with no registry: images are imported from root filesystem
// tarballs that hold a static busybox (for scripted fake workers) and a
// statically linked llem (CGO_ENABLED=0, for the real native worker).
//
// Daemon: $LLEM_TEST_DOCKER_HOST when set (.ci/run starts dockerd and sets
// it); otherwise, when running as root with dockerd on PATH, one is started
// for the test binary in a temporary directory and stopped at exit
// (call Main from TestMain). Without either, tests skip with the reason —
// unless CI is set, where a missing daemon is a failure.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

var (
	mu        sync.Mutex
	host      string
	hostErr   error
	daemon    *exec.Cmd
	daemonDir string
	imageOnce = map[string]*onceResult{}
)

type onceResult struct {
	once sync.Once
	ref  string
	err  error
}

// Main wraps testing.M so a daemon started by the package is stopped.
func Main(m *testing.M) {
	code := m.Run()
	stopDaemon()
	os.Exit(code)
}

// Stop stops a daemon the package started (a TestMain that does more than
// Main calls it after m.Run).
func Stop() { stopDaemon() }

// Host returns the address of a usable daemon or skips (fails under CI).
func Host(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if host == "" && hostErr == nil {
		host, hostErr = findOrStart()
	}
	if hostErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("docker integration tests need a daemon in CI: %v", hostErr)
		}
		t.Skipf("skipping: no Docker daemon (%v); set LLEM_TEST_DOCKER_HOST or run as root with docker.io installed", hostErr)
	}
	return host
}

func findOrStart() (string, error) {
	if h := os.Getenv("LLEM_TEST_DOCKER_HOST"); h != "" {
		if err := ping(h, 20*time.Second); err != nil {
			return "", fmt.Errorf("LLEM_TEST_DOCKER_HOST=%s: %w", h, err)
		}
		return h, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("not root, cannot start dockerd")
	}
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return "", fmt.Errorf("dockerd not installed")
	}
	// Unix socket paths are limited to ~108 bytes: keep the dir short.
	dir, err := os.MkdirTemp("/tmp", "llem-dockerd-")
	if err != nil {
		return "", err
	}
	sock := "unix://" + filepath.Join(dir, "docker.sock")
	cmd := exec.Command(bin, "--host", sock,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "--bridge", "none", "--iptables=false")
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return "", err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start dockerd: %w", err)
	}
	daemon, daemonDir = cmd, dir
	if err := ping(sock, 60*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
		stopDaemon()
		return "", fmt.Errorf("dockerd did not come up: %w\n%s", err, tail(string(log), 2000))
	}
	return sock, nil
}

func stopDaemon() {
	mu.Lock()
	defer mu.Unlock()
	if daemon != nil && daemon.Process != nil {
		_ = daemon.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = daemon.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = daemon.Process.Kill()
		}
		daemon = nil
	}
	if daemonDir != "" {
		_ = exec.Command("umount", "-R", filepath.Join(daemonDir, "data")).Run()
		_ = os.RemoveAll(daemonDir)
		daemonDir = ""
	}
}

func ping(h string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		cli, err := client.New(client.WithHost(h))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
			cancel()
			cli.Close()
			if err == nil {
				return nil
			}
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	return last
}

// Client returns a client for h.
func Client(t testing.TB, h string) *client.Client {
	t.Helper()
	cli, err := client.New(client.WithHost(h))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Ping(context.Background(), client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Image imports (once per test binary) an image named ref holding a static
// busybox at /bin (with sh, echo, sleep, cat…) and, when withLLEM, a
// CGO_ENABLED=0 build of ./cmd/llem at /usr/local/bin/llem.
func Image(t testing.TB, h, ref string, withLLEM bool) string {
	t.Helper()
	return ImageWithFiles(t, h, ref, withLLEM, nil)
}

// ImageWithFiles is Image with extra executable files (path in the image →
// content), e.g. a fake python3 script at usr/local/bin/python3. The extra
// files of the first call for a ref win.
func ImageWithFiles(t testing.TB, h, ref string, withLLEM bool, extra map[string]string) string {
	t.Helper()
	mu.Lock()
	r, ok := imageOnce[ref]
	if !ok {
		r = &onceResult{}
		imageOnce[ref] = r
	}
	mu.Unlock()
	r.once.Do(func() { r.ref, r.err = buildImage(h, ref, withLLEM, extra) })
	if r.err != nil {
		t.Fatalf("build test image %s: %v", ref, r.err)
	}
	return r.ref
}

func buildImage(h, ref string, withLLEM bool, extra map[string]string) (string, error) {
	files := map[string]string{} // path in image → host file
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox (static) is needed for test images: apt-get install busybox-static")
	}
	files["bin/busybox"] = bb
	if withLLEM {
		bin, err := buildStaticLLEM()
		if err != nil {
			return "", err
		}
		files["usr/local/bin/llem"] = bin
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin", "tmp", "etc", "usr", "usr/local", "usr/local/bin", "llem", "llem/run", "proc", "sys", "dev"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: mode}); err != nil {
			return "", err
		}
	}
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			return "", err
		}
		if _, err := tw.Write(data); err != nil {
			return "", err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(extra)) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(extra[name]))}); err != nil {
			return "", err
		}
		if _, err := tw.Write([]byte(extra[name])); err != nil {
			return "", err
		}
	}
	for _, applet := range []string{"sh", "echo", "sleep", "cat", "env", "printf", "head", "ls", "true", "false", "kill", "trap"} {
		_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777})
	}
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644, Size: int64(len("root:x:0:0:root:/:/bin/sh\n"))})
	_, _ = tw.Write([]byte("root:x:0:0:root:/:/bin/sh\n"))
	if err := tw.Close(); err != nil {
		return "", err
	}
	cli, err := client.New(client.WithHost(h))
	if err != nil {
		return "", err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return "", err
	}
	rc, err := cli.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: []string{`ENV PATH=/usr/local/bin:/bin`}})
	if err != nil {
		return "", fmt.Errorf("import image: %w", err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()
	return ref, nil
}

var (
	llemOnce sync.Once
	llemBin  string
	llemErr  error
)

// buildStaticLLEM builds ./cmd/llem with CGO_ENABLED=0 once per test binary.
func buildStaticLLEM() (string, error) {
	llemOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			llemErr = err
			return
		}
		dir, err := os.MkdirTemp("", "llem-static-")
		if err != nil {
			llemErr = err
			return
		}
		llemBin = filepath.Join(dir, "llem")
		cmd := exec.Command("go", "build", "-o", llemBin, "./cmd/llem")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			llemErr = fmt.Errorf("CGO_ENABLED=0 go build ./cmd/llem: %v\n%s", err, out)
		}
	})
	return llemBin, llemErr
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the llem module")
	}
	return filepath.Dir(gomod), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
