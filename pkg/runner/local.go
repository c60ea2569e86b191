package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llenergymeasure/llem/pkg/protocol"
)

// DefaultGrace is the SIGTERM → SIGKILL delay when Job.Grace is 0.
const DefaultGrace = 10 * time.Second

// maxProtocolErrs bounds how many bad lines an Outcome keeps; a worker that
// prints megabytes of garbage should not grow the parent without bound.
const maxProtocolErrs = 20

// Local runs workers as subprocesses of llem, each in its own process group
// so that a stop reaches everything the worker started (Python spawns
// helpers; a stray grandchild must not keep the GPU busy).
type Local struct{}

// NewLocal returns the local subprocess runner.
func NewLocal() *Local { return &Local{} }

var _ Runner = (*Local)(nil)

// Name implements Runner.
func (*Local) Name() string { return "local" }

// Run implements Runner: it starts job.Command, writes job.Spec as JSON to
// its stdin, decodes events from its stdout, keeps the tail of its stderr,
// and stops the process group on timeout or ctx cancel (SIGTERM, grace,
// SIGKILL). The worker's whole stderr is also kept in job.Dir/worker.stderr
// when job.Dir is set.
func (l *Local) Run(ctx context.Context, job Job, onEvent func(protocol.Event)) (Outcome, error) {
	if len(job.Command) == 0 {
		return Outcome{}, errors.New("start worker: empty command")
	}
	spec, err := json.Marshal(job.Spec)
	if err != nil {
		return Outcome{}, fmt.Errorf("encode run spec: %w", err)
	}
	grace := job.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}

	cmd := exec.Command(job.Command[0], job.Command[1:]...)
	// Setpgid: a stop reaches the worker's children too. Pdeathsig: if llem
	// itself is killed (kill -9), the worker dies with it instead of
	// running on, unmeasured, beside the next session.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Env = os.Environ()
	for k, v := range job.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}

	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return Outcome{}, fmt.Errorf("create stdin pipe: %w", err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		return Outcome{}, fmt.Errorf("create stdout pipe: %w", err)
	}
	tail := newTailBuffer(8 << 10)
	var stderrW io.Writer = tail
	var stderrLog *os.File
	if job.Dir != "" {
		if err := os.MkdirAll(job.Dir, 0o755); err == nil {
			if f, err := os.Create(filepath.Join(job.Dir, "worker.stderr")); err == nil {
				stderrLog = f
				stderrW = io.MultiWriter(tail, f)
			}
		}
	}
	cmd.Stdin = stdinR
	cmd.Stdout = stdoutW
	cmd.Stderr = stderrW
	// A grandchild holding stderr open must not block Wait forever.
	cmd.WaitDelay = grace + time.Second

	out := Outcome{Started: time.Now()}
	if err := cmd.Start(); err != nil {
		stdinR.Close()
		stdinW.Close()
		stdoutR.Close()
		stdoutW.Close()
		if stderrLog != nil {
			stderrLog.Close()
		}
		return Outcome{}, fmt.Errorf("start worker %q: %w", job.Command[0], err)
	}
	stdinR.Close()
	stdoutW.Close()
	pgid := cmd.Process.Pid

	// Spec on stdin, then EOF. A worker that exits without reading gives
	// EPIPE, which is the worker's failure to report, not ours.
	go func() {
		stdinW.Write(append(spec, '\n'))
		stdinW.Close()
	}()

	// Events from stdout, in order, on this one goroutine.
	var (
		protoMu   sync.Mutex
		protoErrs []error
		sawDone   bool
		sawError  bool
	)
	addProtoErr := func(err error) {
		protoMu.Lock()
		defer protoMu.Unlock()
		if len(protoErrs) < maxProtocolErrs {
			protoErrs = append(protoErrs, err)
		}
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		dec := protocol.NewDecoder(stdoutR)
		for {
			ev, err := dec.Next()
			if err == io.EOF {
				return
			}
			var lineErr *protocol.LineError
			if errors.As(err, &lineErr) {
				addProtoErr(err)
				continue
			}
			if err != nil { // e.g. a line over the scanner's limit
				addProtoErr(fmt.Errorf("read worker output: %w", err))
				io.Copy(io.Discard, stdoutR)
				return
			}
			switch ev.Kind {
			case protocol.KindDone:
				sawDone = true
			case protocol.KindError:
				sawError = true
			}
			if onEvent != nil {
				onEvent(ev)
			}
		}
	}()

	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()

	var timeout <-chan time.Time
	if job.Timeout > 0 {
		t := time.NewTimer(job.Timeout)
		defer t.Stop()
		timeout = t.C
	}

	var waitErr error
	var killTimer <-chan time.Time
	stopping := false
	stop := func() {
		if stopping {
			return
		}
		stopping = true
		syscall.Kill(-pgid, syscall.SIGTERM)
		kt := time.NewTimer(grace)
		killTimer = kt.C
	}
	ctxDone := ctx.Done()
loop:
	for {
		select {
		case waitErr = <-waitDone:
			break loop
		case <-timeout:
			out.TimedOut = true
			timeout = nil
			stop()
		case <-ctxDone:
			out.Interrupted = true
			ctxDone = nil
			stop()
		case <-killTimer:
			syscall.Kill(-pgid, syscall.SIGKILL)
			killTimer = nil
		}
	}
	// The worker is gone; anything left in its group goes too, so no stray
	// child keeps running (or keeps stdout open) after the run.
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-readDone:
	case <-time.After(grace):
		stdoutR.Close() // unblocks the reader
		<-readDone
	}
	stdoutR.Close()
	if stderrLog != nil {
		stderrLog.Close()
	}
	out.Ended = time.Now()
	out.StderrTail = tail.String()
	out.ExitCode = exitCode(cmd, waitErr)
	if out.ExitCode == 0 && !sawDone && !sawError && !out.TimedOut && !out.Interrupted {
		addProtoErr(errors.New("worker exited 0 without a done or error event"))
	}
	out.ProtocolErrs = protoErrs
	return out, nil
}

// exitCode is the worker's exit status, or 128+signal when a signal ended
// it (the shell's convention), or -1 when unknown.
func exitCode(cmd *exec.Cmd, waitErr error) int {
	st := cmd.ProcessState
	if st == nil {
		return -1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := st.ExitCode(); code >= 0 {
		return code
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// tailBuffer keeps the last max bytes written to it, cut at a line start.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	if len(t.buf) >= t.max {
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
	}
	return strings.TrimRight(s, "\n")
}
