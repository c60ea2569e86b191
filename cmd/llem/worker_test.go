package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/llenergymeasure/llem/pkg/protocol"
)

// workerSpec is a small run of the 15M-parameter preset: 6 synthetic prompts
// of 8 tokens, 4 output tokens each, batches of 4 (so the last is partial).
func workerSpec(t *testing.T) []byte {
	t.Helper()
	cfg := map[string]any{
		"model": "random:llama-15m", "backend": "native", "precision": "fp32", "n": 6,
		"dataset":           map[string]any{"source": "synthetic", "input_len": 8, "output_len": 4, "distribution": "fixed"},
		"dataset_order":     "interleaved",
		"max_input_tokens":  512,
		"max_output_tokens": 128,
		"decoder":           map[string]any{"temperature": 1.0, "do_sample": true, "top_k": 50, "top_p": 1.0, "repetition_penalty": 1.0},
		"warmup":            map[string]any{"enabled": true, "n_warmup": 2, "thermal_floor_seconds": 0},
		"baseline":          map[string]any{"enabled": false},
		"energy":            map[string]any{"sensor": "none"},
		"random_seed":       42,
		"native":            map[string]any{"batch_size": 4, "threads": 0},
	}
	cj, _ := json.Marshal(cfg)
	spec, err := json.Marshal(protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: "r1", Config: cj})
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func TestWorkerCommand15M(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the 15M-parameter model")
	}
	specFile := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(specFile, workerSpec(t), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin io.Reader
	}{
		{"stdin", []string{"worker"}, bytes.NewReader(workerSpec(t))},
		{"--spec", []string{"worker", "--spec", specFile}, strings.NewReader("")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tc.args, IO{Stdin: tc.stdin, Stdout: &stdout, Stderr: &stderr})
			if code != 0 {
				t.Fatalf("exit %d\nstderr: %s\nstdout: %s", code, stderr.String(), stdout.String())
			}
			dec := protocol.NewDecoder(&stdout) // strict
			c := protocol.NewChecker()
			for {
				ev, err := dec.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Add(ev); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := c.Finish()
			if err != nil {
				t.Fatal(err)
			}
			if d := sum.Done; d.Requests != 6 || d.InputTokens != 48 || d.OutputTokens != 24 || len(sum.Batches) != 2 || sum.Batches[1].Size != 2 {
				t.Errorf("done %+v, batches %+v", d, sum.Batches)
			}
			if sum.WarmupDone.Prompts != 2 || sum.Loaded.Model != "random:llama-15m" {
				t.Errorf("warmup %+v loaded %+v", sum.WarmupDone, sum.Loaded)
			}
		})
	}
}

func TestWorkerCommandFailures(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		ctx        func() context.Context
		exit       int
		kind       string
	}{
		{"protocol", `{"protocol_version": 0, "run_id": "", "cycle": 0, "config": {}}`, context.Background, 2, protocol.ErrKindProtocol},
		{"missing model", `{"protocol_version": 1, "run_id": "", "cycle": 0, "config": {"model": "random:nope"}}`, context.Background, 1, protocol.ErrKindModelNotFound},
		{"interrupted", string(workerSpec(t)), func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, 130, protocol.ErrKindInterrupted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(tc.ctx(), []string{"worker"}, IO{Stdin: strings.NewReader(tc.spec), Stdout: &stdout, Stderr: &stderr})
			if code != tc.exit {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.exit, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			ev, err := protocol.DecodeLine([]byte(lines[len(lines)-1]))
			if err != nil || ev.Error == nil || ev.Error.Kind != tc.kind {
				t.Fatalf("last event %+v, %v; want error %s", ev, err, tc.kind)
			}
			if !strings.Contains(stderr.String(), "llem:") {
				t.Errorf("stderr has no error message: %q", stderr.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"worker", "--spec", "/does/not/exist.json"}, IO{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}); code != 2 {
		t.Errorf("missing --spec file: exit %d, want 2", code)
	}
}

// TestWorkerHelperProcess is not a test: TestWorkerSIGTERM re-executes the
// test binary with LLEM_WORKER_HELPER=1 to run main() itself (its signal
// handling included) as `llem worker`.
func TestWorkerHelperProcess(t *testing.T) {
	if os.Getenv("LLEM_WORKER_HELPER") != "1" {
		t.Skip("helper process for TestWorkerSIGTERM")
	}
	os.Args = []string{"llem", "worker"}
	main()
}

func TestWorkerSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the 15M-parameter model in a subprocess")
	}
	var cfg map[string]any
	var spec protocol.RunSpec
	json.Unmarshal(workerSpec(t), &spec)
	json.Unmarshal(spec.Config, &cfg)
	cfg["n"] = 10000 // far more than finishes before the signal
	cfg["warmup"] = map[string]any{"enabled": false}
	spec.Config, _ = json.Marshal(cfg)
	raw, _ := json.Marshal(spec)

	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerHelperProcess$")
	cmd.Env = append(os.Environ(), "LLEM_WORKER_HELPER=1")
	cmd.Stdin = bytes.NewReader(raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := protocol.NewDecoder(out)
	c := protocol.NewChecker()
	signalled := false
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Add(ev); err != nil {
			t.Fatal(err)
		}
		// Signal once the first measured batch is under way.
		if ev.Phase != nil && !signalled {
			signalled = true
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("worker exit: %v, want status 130; stderr:\n%s", err, stderr.String())
	}
	sum, err := c.Finish()
	if err != nil || sum.Error == nil || sum.Error.Kind != protocol.ErrKindInterrupted {
		t.Fatalf("stream: %v, error event %+v", err, sum.Error)
	}
}
