package runner

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/protocol"
)

// Fake workers are small shell scripts: they stand in for `llem worker` and
// the Python harnesses, and misbehave on purpose.
const (
	hello = `echo '{"event":"hello","t_ns":1,"backend":"fake","protocol_version":1,"versions":{}}'`
	done  = `echo '{"event":"done","t_ns":3,"requests":1,"input_tokens":2,"output_tokens":3}'`
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestLocalRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		script      string
		timeout     time.Duration
		cancelAfter time.Duration
		check       func(t *testing.T, o Outcome, evs []protocol.Event)
	}{
		{
			name: "clean run receives the spec",
			// The worker echoes the run id it read from stdin in a log event.
			script: hello + `; id=$(sed -n 's/.*"run_id":"\([^"]*\)".*/\1/p'); ` +
				`echo "{\"event\":\"log\",\"t_ns\":2,\"level\":\"info\",\"message\":\"$id\"}"; ` + done,
			check: func(t *testing.T, o Outcome, evs []protocol.Event) {
				if !o.OK() {
					t.Fatalf("outcome not OK: %+v", o)
				}
				if len(evs) != 3 || evs[0].Kind != "hello" || evs[2].Kind != "done" {
					t.Fatalf("events = %+v", evs)
				}
				if evs[1].Log.Message != "run-7" {
					t.Fatalf("worker read run id %q, want run-7", evs[1].Log.Message)
				}
			},
		},
		{
			name:   "crash keeps exit code and stderr tail",
			script: hello + `; echo 'Traceback: CUDA out of memory' >&2; exit 3`,
			check: func(t *testing.T, o Outcome, evs []protocol.Event) {
				if o.OK() || o.ExitCode != 3 {
					t.Fatalf("exit = %d, want 3", o.ExitCode)
				}
				if !strings.Contains(o.StderrTail, "CUDA out of memory") {
					t.Fatalf("stderr tail = %q", o.StderrTail)
				}
			},
		},
		{
			name:    "hang is stopped by the timeout with SIGTERM",
			script:  hello + `; exec sleep 60`,
			timeout: 200 * time.Millisecond,
			check: func(t *testing.T, o Outcome, evs []protocol.Event) {
				if !o.TimedOut || o.ExitCode != 128+15 {
					t.Fatalf("timed out = %v, exit = %d; want true, 143", o.TimedOut, o.ExitCode)
				}
			},
		},
		{
			name:    "a worker ignoring SIGTERM is killed after the grace",
			script:  `trap '' TERM; ` + hello + `; while :; do sleep 0.05; done`,
			timeout: 200 * time.Millisecond,
			check: func(t *testing.T, o Outcome, evs []protocol.Event) {
				if !o.TimedOut || o.ExitCode != 128+9 {
					t.Fatalf("timed out = %v, exit = %d; want true, 137", o.TimedOut, o.ExitCode)
				}
			},
		},
		{
			name:        "cancel interrupts",
			script:      hello + `; exec sleep 60`,
			cancelAfter: 200 * time.Millisecond,
			check: func(t *testing.T, o Outcome, evs []protocol.Event) {
				if !o.Interrupted || o.TimedOut {
					t.Fatalf("outcome = %+v, want interrupted", o)
				}
			},
		},
		{
			name:   "garbage lines are protocol errors, good lines still arrive",
			script: hello + `; echo 'Loading checkpoint shards: 100%'; echo '{"event":"bogus","t_ns":1}'; ` + done,
			check: func(t *testing.T, o Outcome, evs []protocol.Event) {
				if o.OK() || len(o.ProtocolErrs) != 2 {
					t.Fatalf("protocol errors = %v, want 2", o.ProtocolErrs)
				}
				if !strings.Contains(o.ProtocolErrs[0].Error(), "line 2") {
					t.Fatalf("error does not name the line: %v", o.ProtocolErrs[0])
				}
				if len(evs) != 2 {
					t.Fatalf("events = %d, want 2", len(evs))
				}
			},
		},
		{
			name:   "exit 0 without done is a protocol error",
			script: hello,
			check: func(t *testing.T, o Outcome, evs []protocol.Event) {
				if o.OK() || len(o.ProtocolErrs) != 1 || !strings.Contains(o.ProtocolErrs[0].Error(), "without a done") {
					t.Fatalf("outcome = %+v", o)
				}
			},
		},
		{
			name: "a grandchild holding stdout does not block the run",
			// sleep inherits stdout; the group kill after the worker exits ends it.
			script: hello + `; sleep 60 & ` + done,
			check: func(t *testing.T, o Outcome, evs []protocol.Event) {
				if !o.OK() {
					t.Fatalf("outcome = %+v", o)
				}
				if d := o.Ended.Sub(o.Started); d > 5*time.Second {
					t.Fatalf("run took %v: the grandchild kept it open", d)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelAfter > 0 {
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			dir := t.TempDir()
			job := Job{
				Backend: "fake",
				Spec:    protocol.RunSpec{ProtocolVersion: 1, RunID: "run-7", Cycle: 1, Config: json.RawMessage(`{}`)},
				Command: sh(tc.script),
				Dir:     dir,
				Timeout: tc.timeout,
				Grace:   300 * time.Millisecond,
			}
			var evs []protocol.Event
			o, err := NewLocal().Run(ctx, job, func(ev protocol.Event) { evs = append(evs, ev) })
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o, evs)
			if _, err := os.Stat(filepath.Join(dir, "worker.stderr")); err != nil {
				t.Errorf("worker.stderr not kept: %v", err)
			}
		})
	}
}

func TestLocalRunMissingCommand(t *testing.T) {
	t.Parallel()
	_, err := NewLocal().Run(context.Background(), Job{Command: []string{"/nonexistent/llem-worker"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "start worker") {
		t.Fatalf("err = %v, want a start error", err)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(16)
	tb.Write([]byte("line one\nline two\nline three\n"))
	if got := tb.String(); got != "line three" {
		t.Fatalf("tail = %q", got)
	}
}
