package pyenv

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakePyenv lays out a pyenv root as pyenv 2.6 does (shims/, libexec/pyenv,
// versions/<v>/bin/, version) with FAKE programs that log each run to the
// returned file: "shim" for a run through a shim, "probe <path>" for an
// interpreter run. The shims have the text pyenv writes
// (pyenv-rehash's shim template: exec "$PYENV_ROOT/libexec/pyenv" exec
// "$program" "$@").
func fakePyenv(t *testing.T, version string) (root, log string) {
	t.Helper()
	root = t.TempDir()
	log = filepath.Join(root, "runs.log")
	bin := filepath.Join(root, "versions", version, "bin")
	for _, d := range []string{filepath.Join(root, "shims"), filepath.Join(root, "libexec"), bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, text string) {
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(bin, "python3"), `#!/bin/sh
echo "probe $0" >> `+log+`
echo '{"version": "3.11.7", "missing": ["torch", "transformers", "vllm", "tensorrt_llm"], "packages": {}}'
`)
	if err := os.Symlink("python3", filepath.Join(bin, "python")); err != nil {
		t.Fatal(err)
	}
	// libexec/pyenv exec PROGRAM ARGS: log, then run the version's program
	// (what pyenv-exec does once it has resolved the version).
	write(filepath.Join(root, "libexec", "pyenv"), `#!/bin/sh
echo shim >> `+log+`
shift
prog=$1; shift
exec `+bin+`/$prog "$@"
`)
	for _, name := range []string{"python3", "python"} {
		write(filepath.Join(root, "shims", name), `#!/usr/bin/env bash
set -e
program="${0##*/}"
export PYENV_ROOT="`+root+`"
exec "`+root+`/libexec/pyenv" exec "$program" "$@"
`)
	}
	write(filepath.Join(root, "version"), "# the global version\n"+version+"\n")
	return root, log
}

func runs(t *testing.T, log string) (shims int, probes []string) {
	t.Helper()
	b, _ := os.ReadFile(log)
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		switch {
		case l == "shim":
			shims++
		case strings.HasPrefix(l, "probe "):
			probes = append(probes, strings.TrimPrefix(l, "probe "))
		}
	}
	return shims, probes
}

// TestReportAllProbesEachInterpreterOnce is what made `llem env` take
// seconds: python3 and python are two pyenv shims of one interpreter, and
// each probe went through its shim. Now neither shim runs and the
// interpreter is probed once.
func TestReportAllProbesEachInterpreterOnce(t *testing.T) {
	root, log := fakePyenv(t, "3.11.7")
	shims := filepath.Join(root, "shims")
	o := opts(nil, map[string]string{"python3": filepath.Join(shims, "python3"), "python": filepath.Join(shims, "python")})
	rs := ReportAll(context.Background(), o)
	n, probes := runs(t, log)
	if n != 0 || len(probes) != 1 || probes[0] != filepath.Join(root, "versions", "3.11.7", "bin", "python3") {
		t.Fatalf("shim runs %d, probes %q; want 0 and one of the 3.11.7 interpreter", n, probes)
	}
	// Reports still name what the user has on PATH: the shims.
	if !strings.Contains(rs[0].Error, filepath.Join(shims, "python3")+" (no torch, transformers)") ||
		!strings.Contains(rs[0].Error, filepath.Join(shims, "python")+" (no torch, transformers)") {
		t.Errorf("pytorch report: %s", rs[0].Error)
	}
}

// TestProbeTargetLeavesUnusualPyenvToTheShim: a version pyenv would treat
// specially (system, several versions, not installed, no version file) or a
// directory that is not pyenv's is probed through the shim, as before.
func TestProbeTargetLeavesUnusualPyenvToTheShim(t *testing.T) {
	root, log := fakePyenv(t, "3.11.7")
	shim := filepath.Join(root, "shims", "python3")
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	direct := filepath.Join(root, "versions", "3.11.7", "bin", "python3")
	for _, c := range []struct {
		name   string
		getenv func(string) string
		want   string
	}{
		{"global version file", env(), direct},
		{"PYENV_VERSION", env("PYENV_VERSION", "3.11.7"), direct},
		{"system", env("PYENV_VERSION", "system"), shim},
		{"several versions", env("PYENV_VERSION", "3.11.7:3.10.1"), shim},
		{"not installed", env("PYENV_VERSION", "3.9.0"), shim},
		{"path traversal", env("PYENV_VERSION", "../3.11.7"), shim},
	} {
		if got := probeTarget(shim, c.getenv); got != c.want {
			t.Errorf("%s: probeTarget = %s, want %s", c.name, got, c.want)
		}
	}
	// A .python-version in PYENV_DIR (or a parent) wins over the global file.
	proj := filepath.Join(t.TempDir(), "proj", "sub")
	os.MkdirAll(proj, 0o755)
	os.WriteFile(filepath.Join(filepath.Dir(proj), ".python-version"), []byte("system\n"), 0o644)
	if got := probeTarget(shim, env("PYENV_DIR", proj)); got != shim {
		t.Errorf("local .python-version system: probeTarget = %s, want the shim", got)
	}
	os.Remove(filepath.Join(root, "version"))
	if got := probeTarget(shim, env()); got != shim {
		t.Errorf("no version file: probeTarget = %s, want the shim", got)
	}
	// Not a pyenv shims directory.
	if got := probeTarget(direct, env()); got != direct {
		t.Errorf("plain interpreter: probeTarget = %s", got)
	}
	// Through the shim, the shim really runs (and is probed once per shim).
	o := opts(map[string]string{"PYENV_VERSION": "system"}, map[string]string{"python3": shim})
	ReportAll(context.Background(), o)
	if n, probes := runs(t, log); n != 1 || len(probes) != 1 {
		t.Errorf("system: shim runs %d, probes %d; want 1 and 1", n, len(probes))
	}
}

// TestReportAllKeepsVenvApart: a virtual environment's python3 is a
// symlink to the base interpreter but a different environment; both are
// probed.
func TestReportAllKeepsVenvApart(t *testing.T) {
	root, log := fakePyenv(t, "3.11.7")
	base := filepath.Join(root, "versions", "3.11.7", "bin", "python3")
	venv := filepath.Join(t.TempDir(), "venv")
	os.MkdirAll(filepath.Join(venv, "bin"), 0o755)
	if err := os.Symlink(base, filepath.Join(venv, "bin", "python3")); err != nil {
		t.Fatal(err)
	}
	ReportAll(context.Background(), opts(map[string]string{"VIRTUAL_ENV": venv}, map[string]string{"python3": base, "python": filepath.Join(filepath.Dir(base), "python")}))
	if _, probes := runs(t, log); len(probes) != 2 {
		t.Errorf("probes %q; want the venv's and the base's", probes)
	}
}
