package pyharness_test

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

	. "github.com/llenergymeasure/llem/pkg/backend/pyharness"
	"github.com/llenergymeasure/llem/pkg/backend/pyharness/pyharnesstest"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// TestPythonUnit runs the Python unit tests of llem_common.py with the
// system python3 (no torch or vLLM needed); skipped when there is none.
func TestPythonUnit(t *testing.T) {
	pyharnesstest.RunPythonUnitTests(t, ".", ".")
}

func TestMaterializeIdempotentAndContentAddressed(t *testing.T) {
	root := t.TempDir()
	files := map[string][]byte{"a.py": []byte("print(1)\n"), CommonName: Common}
	d1, err := Materialize(root, "x", files)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := Materialize(root, "x", files)
	if err != nil || d1 != d2 {
		t.Fatalf("second Materialize = %q, %v; want %q", d2, err, d1)
	}
	got, err := os.ReadFile(filepath.Join(d1, "a.py"))
	if err != nil || string(got) != "print(1)\n" {
		t.Fatalf("a.py = %q, %v", got, err)
	}
	files["a.py"] = []byte("print(2)\n")
	d3, err := Materialize(root, "x", files)
	if err != nil || d3 == d1 {
		t.Fatalf("changed content must give a new directory: %q, %v", d3, err)
	}
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temporary directory left behind: %s", e.Name())
		}
	}
}

func TestMaterializeRepairsTruncatedFile(t *testing.T) {
	root := t.TempDir()
	files := map[string][]byte{"a.py": []byte("print(1)\n")}
	d, err := Materialize(root, "x", files)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "a.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// A damaged directory (here: a truncated file) is replaced.
	d2, err := Materialize(root, "x", files)
	if err != nil || d2 != d {
		t.Fatalf("Materialize = %q, %v", d2, err)
	}
	got, err := os.ReadFile(filepath.Join(d, "a.py"))
	if err != nil || string(got) != "print(1)\n" {
		t.Fatalf("a.py after repair = %q, %v", got, err)
	}
}

func TestMaterializeConcurrent(t *testing.T) {
	root := t.TempDir()
	files := map[string][]byte{"a.py": bytes.Repeat([]byte("#\n"), 1<<16), CommonName: Common}
	var wg sync.WaitGroup
	dirs := make([]string, 8)
	errs := make([]error, 8)
	for i := range dirs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dirs[i], errs[i] = Materialize(root, "x", files)
		}(i)
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("worker %d: %q, %v (want %q)", i, dirs[i], errs[i], dirs[0])
		}
	}
}

func TestMaterializeRejectsPaths(t *testing.T) {
	if _, err := Materialize(t.TempDir(), "x", map[string][]byte{"../evil.py": nil}); err == nil {
		t.Fatal("want an error for a file name with a path")
	}
}

func TestJob(t *testing.T) {
	h := Harness{Backend: "pytorch", Script: "harness_pytorch.py", Source: []byte("#\n")}
	env := map[string]string{"HF_TOKEN": "secret", "CUDA_VISIBLE_DEVICES": "1"}
	job, err := Job(h, protocol.RunSpec{RunID: "r"}, "/usr/bin/python3", JobOptions{
		CacheRoot: t.TempDir(), Dir: "/x", Timeout: time.Minute,
		Getenv: func(k string) string { return env[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	if job.Backend != "pytorch" || job.Dir != "/x" || job.Timeout != time.Minute {
		t.Errorf("job = %+v", job)
	}
	if len(job.Command) != 3 || job.Command[0] != "/usr/bin/python3" || job.Command[1] != "-u" ||
		filepath.Base(job.Command[2]) != "harness_pytorch.py" {
		t.Errorf("command = %q", job.Command)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(job.Command[2]), CommonName)); err != nil {
		t.Errorf("llem_common.py not next to the harness: %v", err)
	}
	if job.Spec.ProtocolVersion != protocol.ProtocolVersion {
		t.Errorf("protocol version = %d", job.Spec.ProtocolVersion)
	}
	if job.Env["HF_TOKEN"] != "secret" || job.Env["CUDA_VISIBLE_DEVICES"] != "1" || job.Env["PYTHONUNBUFFERED"] != "1" {
		t.Errorf("env = %v", job.Env)
	}
	for _, a := range job.Command {
		if strings.Contains(a, "secret") {
			t.Error("a secret travelled in the command line")
		}
	}
	if _, err := Job(h, protocol.RunSpec{}, "", JobOptions{CacheRoot: t.TempDir()}); !errors.Is(err, ErrNoPython) {
		t.Errorf("no python: err = %v", err)
	}
}

func TestJobHarnessInDir(t *testing.T) {
	h := Harness{Backend: "vllm", Script: "harness_vllm.py", Source: []byte("#\n")}
	dir := filepath.Join(t.TempDir(), "run")
	job, err := Job(h, protocol.RunSpec{}, "python3", JobOptions{Dir: dir, HarnessInDir: true})
	if err != nil {
		t.Fatal(err)
	}
	if job.Command[2] != filepath.Join(dir, "harness_vllm.py") {
		t.Errorf("command = %q", job.Command)
	}
	for _, f := range []string{"harness_vllm.py", CommonName} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := Job(h, protocol.RunSpec{}, "python3", JobOptions{HarnessInDir: true}); err == nil {
		t.Error("HarnessInDir without Dir must fail")
	}
}

// TestCommonHelloBeforeSpec runs llem_common.run_main as a real worker
// through the local runner: with a spec of the wrong protocol version it
// must say hello first, then an error of kind protocol, and exit 2.
func TestCommonHelloBeforeSpec(t *testing.T) {
	py := pyharnesstest.Python3(t)
	h := Harness{Backend: "pytorch", Script: "w.py", Source: []byte(
		"import llem_common as lc\n" +
			"lc.run_main('pytorch', lambda: {}, lambda spec, em: em.done(0, 0, 0))\n")}
	job, err := Job(h, protocol.RunSpec{ProtocolVersion: 99, Config: []byte(`{}`)}, py, JobOptions{CacheRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	events, out := pyharnesstest.RunJob(t, job)
	if out.ExitCode != 2 {
		t.Errorf("exit = %d, want 2; stderr: %s", out.ExitCode, out.StderrTail)
	}
	sum, err := protocol.Validate(events)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Error == nil || sum.Error.Kind != protocol.ErrKindProtocol {
		t.Fatalf("error = %+v, want kind protocol", sum.Error)
	}
}

// TestCommonSIGTERM: a worker stopped by the parent reports interrupted
// and exits 130.
func TestCommonSIGTERM(t *testing.T) {
	py := pyharnesstest.Python3(t)
	h := Harness{Backend: "pytorch", Script: "w.py", Source: []byte(
		"import time, llem_common as lc\n" +
			"def body(spec, em):\n    em.log('sleeping')\n    time.sleep(30)\n" +
			"lc.run_main('pytorch', lambda: {}, body)\n")}
	job, err := Job(h, protocol.RunSpec{Config: []byte(`{}`)}, py, JobOptions{CacheRoot: t.TempDir(), Grace: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var events []protocol.Event
	out, err := runner.NewLocal().Run(ctx, job, func(ev protocol.Event) {
		events = append(events, ev)
		if ev.Log != nil {
			cancel()
		}
	})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if last.Error == nil || last.Error.Kind != protocol.ErrKindInterrupted {
		t.Fatalf("last event = %+v, want error interrupted (stderr %s)", last, out.StderrTail)
	}
	if out.ExitCode != 130 && !out.Interrupted {
		t.Errorf("exit = %d", out.ExitCode)
	}
}
