package pyenv

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/errs"
)

// fakePython writes an executable shell script that answers the probe
// like a Python would (a FAKE interpreter: the precedence rules are tested
// without installing torch). has lists the modules it "has".
func fakePython(t *testing.T, dir, name string, has ...string) string {
	t.Helper()
	// The probe passes modules as $3 (after -c and the script).
	script := `#!/bin/sh
missing=""
IFS=,
for m in $3; do
  case ",` + strings.Join(has, ",") + `," in
    *",$m,"*) ;;
    *) missing="$missing${missing:+,}\"$m\"" ;;
  esac
done
echo "{\"version\": \"3.12.1\", \"missing\": [$missing], \"packages\": {\"torch\": \"2.11.0\"}}"
`
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func opts(env map[string]string, path map[string]string) Options {
	return Options{
		Getenv: func(k string) string { return env[k] },
		LookPath: func(n string) (string, error) {
			if p, ok := path[n]; ok {
				return p, nil
			}
			return "", exec.ErrNotFound
		},
	}
}

func TestCandidatesPrecedence(t *testing.T) {
	dir := t.TempDir()
	venv := filepath.Join(dir, "venv")
	os.MkdirAll(filepath.Join(venv, "bin"), 0o755)
	vpy := fakePython(t, filepath.Join(venv, "bin"), "python3")
	o := opts(map[string]string{"LLEM_PYTHON": "/env/py", "VIRTUAL_ENV": venv},
		map[string]string{"python3": "/usr/bin/python3", "python": "/usr/bin/python3"})
	o.Flag, o.Config = "/flag/py", "/cfg/py"
	got := Candidates(o)
	want := []Candidate{{"/flag/py", SourceFlag}, {"/cfg/py", SourceConfig}, {"/env/py", SourceEnv},
		{vpy, SourceVenv}, {"/usr/bin/python3", SourcePath}}
	if len(got) != len(want) {
		t.Fatalf("candidates = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("candidate %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestFindDiscoversFirstWithBackend(t *testing.T) {
	dir := t.TempDir()
	bare := fakePython(t, dir, "bare", "os")
	torch := fakePython(t, dir, "torchpy", "torch", "transformers")
	o := opts(nil, map[string]string{"python3": bare, "python": torch})
	p, err := Find(context.Background(), "pytorch", o)
	if err != nil {
		t.Fatal(err)
	}
	if p.Path != torch || p.Source != SourcePath || p.Version != "3.12.1" || p.Packages["torch"] != "2.11.0" || !p.OK() {
		t.Errorf("found %+v", p)
	}
	// vllm: nobody has it → ErrNotFound with the install hint and what was tried.
	_, err = Find(context.Background(), "vllm", o)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(errs.Hint(err), "pip install vllm") ||
		!strings.Contains(err.Error(), bare) {
		t.Errorf("vllm: err = %v, hint %q", err, errs.Hint(err))
	}
}

func TestExplicitInterpreterIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	bare := fakePython(t, dir, "bare")
	torch := fakePython(t, dir, "torchpy", "torch", "transformers")
	o := opts(map[string]string{"LLEM_PYTHON": bare}, map[string]string{"python3": torch})
	_, err := Find(context.Background(), "pytorch", o)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(errs.Hint(err), bare+" -m pip install torch") {
		t.Fatalf("err = %v, hint %q", err, errs.Hint(err))
	}
	o.Flag = filepath.Join(dir, "does-not-exist")
	_, err = Find(context.Background(), "pytorch", o)
	if err == nil || errs.ExitCode(err) != errs.ExitBadInput {
		t.Fatalf("missing --python: err = %v (exit %d)", err, errs.ExitCode(err))
	}
}

// TestProbeRealPython probes the system python3 for real.
func TestProbeRealPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	b, _ := Lookup("vllm")
	p, err := Probe(context.Background(), py, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Version, "3.") {
		t.Errorf("version = %q", p.Version)
	}
	if _, err := exec.Command(py, "-c", "import vllm").CombinedOutput(); err != nil && p.OK() {
		t.Errorf("python3 cannot import vllm but probe says OK: %+v", p)
	}
}

func TestProbeNotPython(t *testing.T) {
	b, _ := Lookup("pytorch")
	if _, err := Probe(context.Background(), "/bin/false", b, 0); err == nil {
		t.Error("want an error for an interpreter that fails")
	}
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte("#!/bin/sh\necho hello\n"), 0o755)
	if _, err := Probe(context.Background(), junk, b, 0); err == nil || !strings.Contains(err.Error(), "unexpected output") {
		t.Errorf("err = %v", err)
	}
	if _, err := Lookup("native"); err == nil {
		t.Error("native is not a Python backend")
	}
}

func TestReportAll(t *testing.T) {
	dir := t.TempDir()
	torch := fakePython(t, dir, "torchpy", "torch", "transformers")
	rs := ReportAll(context.Background(), opts(nil, map[string]string{"python3": torch}))
	if len(rs) != 3 || rs[0].Python == nil || rs[1].Error == "" || rs[1].Hint == "" {
		t.Fatalf("reports = %+v", rs)
	}
	if got := rs[0].Python.PackageList(); len(got) != 1 || got[0] != "torch 2.11.0" {
		t.Errorf("packages = %v", got)
	}
}
