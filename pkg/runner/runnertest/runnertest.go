// Package runnertest is the conformance suite every runner.Runner passes:
// the local runner, the Docker runner, and any later one (Slurm). Its
// workers are POSIX shell scripts that stand in for `llem worker` and the
// Python harnesses and misbehave on purpose; they use only shell builtins,
// sleep and printf, so they run in a busybox container too.
//
// A runner's test calls Run with a constructor:
//
//	func TestConformance(t *testing.T) {
//		runnertest.Run(t, func(t *testing.T) runner.Runner { return runner.NewLocal() }, runnertest.Options{})
//	}
package runnertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

// Options adapt the suite to where a runner runs its workers.
type Options struct {
	// Shell is the argv that runs the shell script given as one more
	// argument where the runner starts workers; nil means /bin/sh -c.
	Shell []string
	// AfterRun, when set, is called after every case's Run with its job, to
	// check what the runner must not leave behind (a container, a batch
	// job).
	AfterRun func(t *testing.T, job runner.Job)
	// Dir makes each case's Job.Dir; nil means t.TempDir(). A runner whose
	// workers run on another host needs a directory both can see.
	Dir func(t *testing.T) string
	// Timeout is the Job.Timeout of the stop cases: long enough for the
	// worker to start and print its hello; 0 means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout leaves a container seconds to start and print its hello.
// Grace is long enough to tell "killed after the grace" from "killed at
// once".
const (
	DefaultTimeout = 2 * time.Second
	Grace          = time.Second
	// hangGuard ends a case whose runner never stops its worker; the case
	// then fails (Interrupted instead of TimedOut, or the guard check).
	hangGuard = 2 * time.Minute
	// stopSlack bounds how late a stop may finish after it was due.
	stopSlack = 30 * time.Second
)

// Lines of fake worker output.
const (
	hello = `echo '{"event":"hello","t_ns":1,"backend":"fake","protocol_version":1,"versions":{}}'`
	done  = `echo '{"event":"done","t_ns":999999,"requests":0,"input_tokens":0,"output_tokens":0}'`
)

// caseT is one conformance case: a worker script, how the job is run, and
// what the Outcome must be.
type caseT struct {
	name   string
	script string
	// timeout is the job's Timeout (0: none).
	timeout time.Duration
	// cancelOnHello cancels the run's ctx when the hello event arrives.
	cancelOnHello bool
	check         func(t *testing.T, r result)
}

// result is what one Run produced.
type result struct {
	job    runner.Job
	out    runner.Outcome
	events []protocol.Event
}

func (r result) elapsed() time.Duration { return r.out.Ended.Sub(r.out.Started) }

func (r result) kinds() string {
	var ks []string
	for _, ev := range r.events {
		ks = append(ks, ev.Kind)
	}
	return strings.Join(ks, ",")
}

func (r result) stderrFile(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.job.Dir, runner.StderrFile))
	if err != nil {
		t.Fatalf("%s not written: %v", runner.StderrFile, err)
	}
	return string(data)
}

// Run runs every conformance case, in parallel, each against a runner from
// newRunner. Runners must therefore be safe for concurrent Run calls.
func Run(t *testing.T, newRunner func(t *testing.T) runner.Runner, opts Options) {
	shell := opts.Shell
	if shell == nil {
		shell = []string{"/bin/sh", "-c"}
	}
	newDir := opts.Dir
	if newDir == nil {
		newDir = func(t *testing.T) string { return t.TempDir() }
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	for _, tc := range cases(timeout) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRunner(t)
			guard, cancelGuard := context.WithTimeout(t.Context(), hangGuard)
			defer cancelGuard()
			ctx, cancel := context.WithCancel(guard)
			defer cancel()
			job := runner.Job{
				Backend: "fake",
				Spec:    protocol.RunSpec{ProtocolVersion: protocol.ProtocolVersion, RunID: runID(t), Cycle: 1, Config: json.RawMessage(`{}`)},
				Command: append(append([]string(nil), shell...), tc.script),
				Dir:     newDir(t),
				Timeout: tc.timeout,
				Grace:   Grace,
			}
			res := result{job: job}
			out, err := r.Run(ctx, job, func(ev protocol.Event) {
				res.events = append(res.events, ev)
				if tc.cancelOnHello && ev.Kind == protocol.KindHello {
					cancel()
				}
			})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if guard.Err() != nil {
				t.Fatalf("the runner did not stop the worker within %v: %+v", hangGuard, out)
			}
			res.out = out
			tc.check(t, res)
			if opts.AfterRun != nil {
				opts.AfterRun(t, job)
			}
		})
	}
}

// runID makes a run ID (and container label value) from the case's name.
func runID(t *testing.T) string {
	return "conformance-" + strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
}

// hugeStderrLines is how many lines the huge-stderr worker writes: about
// 2 MB, far more than a pipe buffer and than StderrTailBytes.
const hugeStderrLines = 20000

// stderrPad makes each huge-stderr line about 100 bytes.
var stderrPad = strings.Repeat("x", 80)

func hugeStderr() string {
	var b strings.Builder
	for i := range hugeStderrLines {
		fmt.Fprintf(&b, "stderr line %05d %s\n", i, stderrPad)
	}
	return b.String()
}

// killedBy reports whether the worker was ended by signal sig (143: SIGTERM,
// 137: SIGKILL).
func killedBy(out runner.Outcome, sig int) bool { return out.ExitCode == 128+sig }

func cases(timeout time.Duration) []caseT {
	return []caseT{
		{
			name: "normal run delivers events in order and the spec on stdin",
			// The worker echoes the run ID it read from stdin, then 50
			// numbered logs.
			script: `read -r spec; id=${spec#*\"run_id\":\"}; id=${id%%\"*}; ` + hello + `
echo "{\"event\":\"log\",\"t_ns\":2,\"level\":\"info\",\"message\":\"$id\"}"
i=1; while [ $i -le 50 ]; do echo "{\"event\":\"log\",\"t_ns\":3,\"level\":\"info\",\"message\":\"m$i\"}"; i=$((i+1)); done
echo 'worker log line' >&2
` + done,
			check: func(t *testing.T, r result) {
				if !r.out.OK() {
					t.Fatalf("outcome not OK: %+v", r.out)
				}
				if len(r.events) != 53 || r.events[0].Kind != protocol.KindHello || r.events[52].Kind != protocol.KindDone {
					t.Fatalf("events = %s", r.kinds())
				}
				if got := r.events[1].Log.Message; got != r.job.Spec.RunID {
					t.Fatalf("worker read run ID %q from stdin, want %q", got, r.job.Spec.RunID)
				}
				for i := 1; i <= 50; i++ {
					if got := r.events[i+1].Log.Message; got != fmt.Sprintf("m%d", i) {
						t.Fatalf("event %d = %q, want m%d: events out of order", i+1, got, i)
					}
				}
				if r.out.StderrTail != "worker log line" || r.stderrFile(t) != "worker log line\n" {
					t.Fatalf("stderr tail %q, file %q", r.out.StderrTail, r.stderrFile(t))
				}
				if r.out.Started.IsZero() || r.out.Ended.Before(r.out.Started) {
					t.Fatalf("started %v, ended %v", r.out.Started, r.out.Ended)
				}
			},
		},
		{
			name:   "non-zero exit keeps the code, the stderr tail and worker.stderr",
			script: hello + `; echo 'Traceback: CUDA out of memory' >&2; exit 3`,
			check: func(t *testing.T, r result) {
				if r.out.OK() || r.out.ExitCode != 3 {
					t.Fatalf("exit = %d (OK %v), want 3", r.out.ExitCode, r.out.OK())
				}
				if !strings.Contains(r.out.StderrTail, "CUDA out of memory") {
					t.Fatalf("stderr tail = %q", r.out.StderrTail)
				}
				if f := r.stderrFile(t); f != "Traceback: CUDA out of memory\n" {
					t.Fatalf("%s = %q", runner.StderrFile, f)
				}
				if r.kinds() != "hello" {
					t.Fatalf("events = %s", r.kinds())
				}
			},
		},
		{
			name:   "malformed lines are protocol errors naming the line, good lines still arrive",
			script: hello + `; echo 'Loading checkpoint shards: 100%'; echo '{"event":"bogus","t_ns":1}'; ` + done,
			check: func(t *testing.T, r result) {
				if r.out.OK() || len(r.out.ProtocolErrs) != 2 {
					t.Fatalf("protocol errors = %v, want 2", r.out.ProtocolErrs)
				}
				if !strings.Contains(r.out.ProtocolErrs[0].Error(), "line 2") || !strings.Contains(r.out.ProtocolErrs[1].Error(), "line 3") {
					t.Fatalf("errors do not name their lines: %v", r.out.ProtocolErrs)
				}
				if r.kinds() != "hello,done" || r.out.ExitCode != 0 {
					t.Fatalf("events = %s, exit %d", r.kinds(), r.out.ExitCode)
				}
			},
		},
		{
			name:   "protocol errors are capped",
			script: hello + `; i=0; while [ $i -lt 500 ]; do echo "garbage $i"; i=$((i+1)); done; ` + done,
			check: func(t *testing.T, r result) {
				if len(r.out.ProtocolErrs) != runner.MaxProtocolErrs {
					t.Fatalf("kept %d protocol errors, want the cap %d", len(r.out.ProtocolErrs), runner.MaxProtocolErrs)
				}
				if !strings.Contains(r.out.ProtocolErrs[0].Error(), "garbage 0") {
					t.Fatalf("first kept error = %v, want the first bad line", r.out.ProtocolErrs[0])
				}
				if r.kinds() != "hello,done" || r.out.OK() {
					t.Fatalf("events = %s, OK %v", r.kinds(), r.out.OK())
				}
			},
		},
		{
			name:   "exit 0 without done or error is a protocol error",
			script: hello,
			check: func(t *testing.T, r result) {
				if r.out.OK() || len(r.out.ProtocolErrs) != 1 || !strings.Contains(r.out.ProtocolErrs[0].Error(), "without a done") {
					t.Fatalf("outcome = %+v", r.out)
				}
			},
		},
		{
			name:    "timeout stops the worker with SIGTERM",
			script:  hello + `; exec sleep 300`,
			timeout: timeout,
			check: func(t *testing.T, r result) {
				if !r.out.TimedOut || r.out.Interrupted || r.out.OK() || !killedBy(r.out, 15) {
					t.Fatalf("want timed out and ended by SIGTERM (143), got %+v", r.out)
				}
				if r.kinds() != "hello" {
					t.Fatalf("events = %s, want the hello sent before the timeout", r.kinds())
				}
				if d := r.elapsed(); d < timeout || d > timeout+stopSlack {
					t.Fatalf("stopped after %v, want %v (+ up to %v)", d, timeout, stopSlack)
				}
			},
		},
		{
			name:          "cancelling ctx interrupts the worker",
			script:        hello + `; exec sleep 300`,
			cancelOnHello: true,
			check: func(t *testing.T, r result) {
				if !r.out.Interrupted || r.out.TimedOut || r.out.OK() || !killedBy(r.out, 15) {
					t.Fatalf("want interrupted and ended by SIGTERM (143), got %+v", r.out)
				}
				if d := r.elapsed(); d > stopSlack {
					t.Fatalf("stopped after %v", d)
				}
			},
		},
		{
			name:    "a worker ignoring SIGTERM is killed after the grace",
			script:  `trap '' TERM; ` + hello + `; while :; do sleep 0.05; done`,
			timeout: timeout,
			check: func(t *testing.T, r result) {
				if !r.out.TimedOut || !killedBy(r.out, 9) {
					t.Fatalf("want timed out and ended by SIGKILL (137), got %+v", r.out)
				}
				if d := r.elapsed(); d < timeout+Grace || d > timeout+Grace+stopSlack {
					t.Fatalf("killed after %v, want the timeout %v + the grace %v", d, timeout, Grace)
				}
			},
		},
		{
			name: "a worker that closes stdout but keeps running is waited for",
			// The exit code proves the runner waited for the exit, not
			// for the end of stdout.
			script: hello + `; ` + done + `; exec >&-; sleep 1; exit 4`,
			check: func(t *testing.T, r result) {
				if r.out.ExitCode != 4 || r.out.TimedOut || r.out.Interrupted {
					t.Fatalf("want exit 4 after stdout closed, got %+v", r.out)
				}
				if r.kinds() != "hello,done" || len(r.out.ProtocolErrs) != 0 {
					t.Fatalf("events = %s, protocol errors %v", r.kinds(), r.out.ProtocolErrs)
				}
				if d := r.elapsed(); d < time.Second {
					t.Fatalf("returned after %v, before the worker exited", d)
				}
			},
		},
		{
			name: "a grandchild holding stdout does not keep the run open",
			// sleep inherits stdout; the runner ends it once the worker exited.
			script: hello + `; sleep 300 & ` + done,
			check: func(t *testing.T, r result) {
				if !r.out.OK() {
					t.Fatalf("outcome = %+v", r.out)
				}
				if d := r.elapsed(); d > Grace+stopSlack {
					t.Fatalf("run took %v: the grandchild kept it open", d)
				}
			},
		},
		{
			name: "huge stderr is drained, kept whole in worker.stderr and bounded in the tail",
			script: `i=0; while [ $i -lt ` + fmt.Sprint(hugeStderrLines) + ` ]; do printf 'stderr line %05d %s\n' $i ` + stderrPad + ` >&2; i=$((i+1)); done; ` +
				hello + `; ` + done,
			check: func(t *testing.T, r result) {
				if !r.out.OK() || r.kinds() != "hello,done" {
					t.Fatalf("outcome = %+v, events %s", r.out, r.kinds())
				}
				want := hugeStderr()
				if got := r.stderrFile(t); got != want {
					t.Fatalf("%s has %d bytes, want %d", runner.StderrFile, len(got), len(want))
				}
				tail := r.out.StderrTail
				if len(tail) > runner.StderrTailBytes || !strings.HasSuffix(want, tail+"\n") || !strings.HasPrefix(tail, "stderr line ") {
					t.Fatalf("tail (%d bytes) is not the last whole lines of stderr within %d bytes: %.100q…", len(tail), runner.StderrTailBytes, tail)
				}
				if !strings.HasSuffix(tail, fmt.Sprintf("stderr line %05d %s", hugeStderrLines-1, stderrPad)) {
					t.Fatalf("tail does not end with the last line: …%q", tail[max(0, len(tail)-120):])
				}
			},
		},
	}
}
