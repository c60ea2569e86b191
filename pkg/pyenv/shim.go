package pyenv

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
)

// A pyenv shim (~/.pyenv/shims/python3) is a bash script that runs
// `pyenv exec`, which spawns a dozen more bash processes to decide the
// version: about half a second per call on an idle machine, seconds on a
// busy one, and `llem env` probed python3 and python — both shims of the
// same interpreter — each through its shim. probeTarget reads the version
// the way pyenv does and returns the interpreter itself, so the probe runs
// Python directly and both shims come to one probe (ReportAll dedups by the
// real path).
//
// Only the plain case is resolved: one version selected by PYENV_VERSION, a
// .python-version file (PYENV_DIR or the working directory, then their
// parents) or $PYENV_ROOT/version, installed under $PYENV_ROOT/versions and
// having the command. Anything else — "system", several versions, no
// version file, a version without the command — is left to the shim. The
// rules follow pyenv 2.6 (libexec/pyenv-version-name,
// pyenv-version-file, pyenv-version-file-read; github.com/pyenv/pyenv). The
// run itself still goes through the shim: only the probe skips it.
func probeTarget(path string, getenv func(string) string) string {
	dir := filepath.Dir(path)
	if filepath.Base(dir) != "shims" {
		return path
	}
	root := filepath.Dir(dir)
	if st, err := os.Stat(filepath.Join(root, "libexec", "pyenv")); err != nil || st.IsDir() {
		return path
	}
	shim, err := os.ReadFile(path)
	if err != nil || len(shim) > 4096 || !bytes.Contains(shim, []byte(`libexec/pyenv" exec`)) {
		return path
	}
	versions := pyenvVersions(root, getenv)
	if len(versions) != 1 || versions[0] == "system" || strings.Contains(versions[0], "/") || versions[0] == ".." {
		return path
	}
	exe := filepath.Join(root, "versions", versions[0], "bin", filepath.Base(path))
	if st, err := os.Stat(exe); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return path
	}
	return exe
}

// pyenvVersions is the selected pyenv version list (as pyenv-version-name
// sees it before checking that the versions exist), or nil when none is set.
func pyenvVersions(root string, getenv func(string) string) []string {
	if v := getenv("PYENV_VERSION"); v != "" {
		return strings.Split(v, ":")
	}
	var starts []string
	if d := getenv("PYENV_DIR"); d != "" {
		starts = append(starts, d)
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, start := range starts {
		for d := start; ; d = filepath.Dir(d) {
			if vs := readVersionFile(filepath.Join(d, ".python-version")); vs != nil {
				return vs
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return readVersionFile(filepath.Join(root, "version"))
}

// readVersionFile reads the first word of each non-empty, non-comment line
// (pyenv-version-file-read); nil when the file is missing or names none.
func readVersionFile(name string) []string {
	f, err := os.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		out = append(out, fields[0])
	}
	return out
}
