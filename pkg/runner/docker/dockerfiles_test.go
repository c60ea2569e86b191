package docker

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repo root not found from %s", dir)
	}
	return dir
}

// Every backend with images has a Dockerfile, the release workflow builds
// exactly backends × CUDAMajors, and the Dockerfiles pass dockerfilelint.
func TestDockerfilesAndReleaseMatrix(t *testing.T) {
	root := repoRoot(t)
	workflow, err := os.ReadFile(filepath.Join(root, ".github/workflows/images.yml"))
	if err != nil {
		t.Fatal(err)
	}
	wf := string(workflow)
	for _, b := range ImageBackends {
		df := filepath.Join(root, "docker", b+".Dockerfile")
		data, err := os.ReadFile(df)
		if err != nil {
			t.Errorf("backend %s has no Dockerfile: %v", b, err)
			continue
		}
		for _, want := range []string{"ARG BASE_IMAGE=", "io.llenergymeasure.llem.cuda_major", "ENTRYPOINT [\"/usr/local/bin/llem-worker-entrypoint\"]"} {
			if !strings.Contains(string(data), want) {
				t.Errorf("%s lacks %q", df, want)
			}
		}
		for _, m := range CUDAMajors {
			if !strings.Contains(wf, fmt.Sprintf("{backend: %s, cuda: %d, base:", b, m)) {
				t.Errorf("release workflow does not build %s for CUDA %d", b, m)
			}
		}
	}
	lint := filepath.Join(root, "tools/lint/node_modules/.bin/dockerfilelint")
	if _, err := os.Stat(lint); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("dockerfilelint missing in CI (make deps installs it): %v", err)
		}
		t.Skip("dockerfilelint not installed; run make deps")
	}
	files, _ := filepath.Glob(filepath.Join(root, "docker", "*.Dockerfile"))
	args := append([]string{"-c", filepath.Join(root, "docker")}, files...)
	out, err := exec.Command(lint, args...).CombinedOutput()
	if err != nil || strings.Contains(string(out), "Issues: ") && !allClean(string(out)) {
		t.Fatalf("dockerfilelint: %v\n%s", err, out)
	}
}

func allClean(out string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Issues: ") && !strings.Contains(line, "None found") {
			return false
		}
	}
	return true
}
