package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// frontDir builds the start-up front (cmd/llem-front) once into a
// directory where llem-core is this test binary (which runs as llem with
// LLEM_TEST_EXEC_MAIN=1, see TestMain): the layout make build installs.
var frontDir = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "llem-front-")
	if err != nil {
		return "", err
	}
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "llem"), "../llem-front")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build
	out, err := build.CombinedOutput()
	if err != nil {
		return "", errors.New("go build ../llem-front: " + err.Error() + "\n" + string(out))
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return dir, os.Symlink(self, filepath.Join(dir, "llem-core"))
})

type ran struct {
	stdout, stderr string
	code           int
}

// runBin runs bin with args in dir, env added to a clean llem's.
func runBin(t *testing.T, bin, dir string, args []string, env ...string) ran {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LLEM_TEST_EXEC_MAIN=1", "LLEM_CONFIG="+filepath.Join(dir, "none.yaml"),
		"LLEM_CACHE_DIR="+filepath.Join(dir, ".cache"), "LLEM_RESULTS_DIR="+filepath.Join(dir, "results"))
	cmd.Env = append(cmd.Env, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return ran{o.String(), e.String(), code}
}

// TestFrontMatchesCore: what the start-up front answers itself
// (--version, params, completion queries) is byte for byte what the full
// program answers, and everything else reaches the full program with its
// arguments, environment, streams and exit status.
func TestFrontMatchesCore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/llem-front")
	}
	t.Parallel()
	dir, err := frontDir()
	if err != nil {
		t.Fatal(err)
	}
	front, core := filepath.Join(dir, "llem"), filepath.Join(dir, "llem-core")
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "study.cue"), []byte("base: {}\n"), 0o644)
	os.WriteFile(filepath.Join(work, "notes.txt"), []byte("not a study\n"), 0o644)
	same := func(t *testing.T, args []string, env ...string) ran {
		t.Helper()
		f, c := runBin(t, front, work, args, env...), runBin(t, core, work, args, env...)
		if len(env) > 0 { // completions: a set, printed in map order
			f.stdout, c.stdout = sortedLines(f.stdout), sortedLines(c.stdout)
		}
		if f != c {
			t.Errorf("llem %q %v:\nfront: %+v\ncore:  %+v", args, env, f, c)
		}
		return f
	}
	answered := [][]string{{"--version"}, {"version"}, {"params"}, {"params", "--json"}, {"params", "NATIVE"}}
	for _, b := range []string{"pytorch", "vllm", "tensorrt", "native"} {
		answered = append(answered, []string{"params", b}, []string{"params", b, "--json"}, []string{"params", "--json", b})
	}
	for _, args := range answered {
		if r := same(t, args); r.code != 0 || r.stdout == "" {
			t.Errorf("llem %q: %+v", args, r)
		}
	}
	for _, line := range []string{"llem ", "llem ev", "llem params ", "llem params n", "llem eval ", "llem eval s",
		"llem eval study.cue --set base.native.ba", "llem run --set native.ba", "llem run --backend ", "llem run --dataset ",
		"llem results ", "llem results show ", "llem eval study.cue -o ", "llem eval --", "llem completion ", "llem -"} {
		if r := same(t, nil, "COMP_LINE="+line, "COMP_POINT="+strconv.Itoa(len(line))); r.code != 0 {
			t.Errorf("completion %q: %+v", line, r)
		}
	}
	// Left to llem-core: a backend to correct, other flags, other commands.
	quickstart, err := filepath.Abs(filepath.Join("..", "..", "examples", "quickstart.cue"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"params", "nativ"}, 2, "did you mean native"},
		{[]string{"params", "--markdown"}, 0, "# Backend parameters"},
		{[]string{"params", "native", "--json", "--json"}, 0, `"backends"`},
		{[]string{"eval", "--dry-run", quickstart}, 0, "quickstart"},
		{[]string{"eval", "missing.cue"}, 2, "missing.cue"},
		{[]string{"nosuchcommand"}, 2, "unexpected argument"},
		{nil, 0, "Usage: llem"},
		{[]string{"help", "eval"}, 0, "Usage: llem eval"},
	} {
		r := same(t, c.args)
		if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.want) {
			t.Errorf("llem %q: exit %d, want %d with %q:\n%s%s", c.args, r.code, c.code, c.want, r.stdout, r.stderr)
		}
	}
	// The completion hook names the front, so the shell asks the front.
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := runBin(t, front, work, []string{"completion", shell})
		if r.code != 0 || !strings.Contains(r.stdout, front) || strings.Contains(r.stdout, "llem-core") {
			t.Errorf("completion %s through the front: %+v", shell, r)
		}
	}
	// In a real bash, through the hook the front prints.
	if _, err := exec.LookPath("bash"); err == nil {
		script := `set -e
source <("$FRONT" completion bash)
eval "bin=$(complete -p llem | sed 's/^complete -C \(.*\) llem$/\1/')"
[ "$bin" = "$FRONT" ] || { echo "hook names $bin"; exit 1; }
q() { COMP_LINE="$1" COMP_POINT=${#1} "$bin" llem "" "" ; }
q 'llem ev'
q 'llem params nat'
q 'llem eval '
q 'llem run --set native.ba'
`
		cmd := exec.Command("bash", "-c", script)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "FRONT="+front, "LLEM_TEST_EXEC_MAIN=1")
		out, err := cmd.CombinedOutput()
		got := string(out)
		for _, want := range []string{"eval\n", "native\n", "study.cue\n", "native.batch_size=\n"} {
			if err != nil || !strings.Contains(got, want) {
				t.Errorf("bash completion through the front: %v, missing %q in:\n%s", err, want, got)
			}
		}
		if strings.Contains(got, "notes.txt") {
			t.Errorf("bash completion offers a non-study file:\n%s", got)
		}
	}
	// A front without llem-core still answers its own; the rest says what to install.
	alone := filepath.Join(t.TempDir(), "llem")
	if b, err := os.ReadFile(front); err != nil || os.WriteFile(alone, b, 0o755) != nil {
		t.Fatal("copy the front:", err)
	}
	if r := runBin(t, alone, work, []string{"--version"}); r.code != 0 {
		t.Errorf("--version without llem-core: %+v", r)
	}
	if r := runBin(t, alone, work, []string{"env"}); r.code != 1 || !strings.Contains(r.stderr, "llem-core") || !strings.Contains(r.stderr, "make build") {
		t.Errorf("env without llem-core: %+v", r)
	}
	// go install ./cmd/... puts the front as llem-front beside the full llem.
	installed := t.TempDir()
	self, _ := os.Executable()
	if b, err := os.ReadFile(front); err != nil || os.WriteFile(filepath.Join(installed, "llem-front"), b, 0o755) != nil || os.Symlink(self, filepath.Join(installed, "llem")) != nil {
		t.Fatal("install the front as llem-front:", err)
	}
	if r := runBin(t, filepath.Join(installed, "llem-front"), work, []string{"eval", "missing.cue"}); r.code != 2 || !strings.Contains(r.stderr, "missing.cue") {
		t.Errorf("llem-front beside llem: %+v", r)
	}
}

func sortedLines(s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
