package schema_test

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"cuelabs.dev/go/oci/ociregistry/ocimem"
	"cuelabs.dev/go/oci/ociregistry/ociserver"
)

// TestPublishedModuleVetsUserStudies publishes this repository's CUE
// module (as committed: a clone of HEAD) with the real `cue mod publish`
// to an in-memory OCI registry (the CUE project's own ociregistry server),
// then, in a module of a user's own, `cue mod get`s it and `cue vet`s a
// study that imports the schema — the workflow docs/study-language.md
// shows — and a study with an unknown field, which must fail.
func TestPublishedModuleVetsUserStudies(t *testing.T) {
	cue, err := exec.LookPath("cue")
	if err != nil {
		t.Skip("no cue on PATH (make deps installs it in .tools/bin)")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not a git checkout")
	}
	srv := httptest.NewServer(ociserver.New(ocimem.New(), nil))
	defer srv.Close()
	tmp := t.TempDir()
	env := append(os.Environ(),
		"CUE_REGISTRY="+strings.TrimPrefix(srv.URL, "http://")+"+insecure",
		"CUE_CACHE_DIR="+filepath.Join(tmp, "cue-cache"), "HOME="+tmp)
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	clone := filepath.Join(tmp, "llem")
	if out, err := run(tmp, "git", "clone", "-q", root, clone); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	if out, err := run(clone, cue, "mod", "publish", "v0.0.1"); err != nil {
		t.Fatalf("cue mod publish: %v\n%s", err, out)
	}
	user := filepath.Join(tmp, "mystudies")
	os.MkdirAll(user, 0o755)
	for _, args := range [][]string{
		{cue, "mod", "init", "--source", "self", "example.org/mystudies@v0"},
		{cue, "mod", "get", "github.com/llenergymeasure/llem@v0.0.1"},
	} {
		if out, err := run(user, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args[1:], " "), err, out)
		}
	}
	study := `package mystudies

import "github.com/llenergymeasure/llem/schema"

schema.#Study & {
	name: "sweep"
	base: {model: "random:llama-15m", backend: "native", precision: "fp32"%s}
	grid: native: batch_size: [1, 4]
}
`
	os.WriteFile(filepath.Join(user, "sweep.cue"), []byte(strings.Replace(study, "%s", "", 1)), 0o644)
	if out, err := run(user, cue, "vet", "./sweep.cue"); err != nil {
		t.Fatalf("cue vet of a valid study: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(user, "sweep.cue"), []byte(strings.Replace(study, "%s", ", batchsize: 4", 1)), 0o644)
	out, err := run(user, cue, "vet", "./sweep.cue")
	if err == nil || !strings.Contains(out, "batchsize") {
		t.Fatalf("cue vet accepted an unknown field: %v\n%s", err, out)
	}
}
