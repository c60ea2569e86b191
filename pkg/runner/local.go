package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/llenergymeasure/llem/pkg/protocol"
)

// Local runs workers as subprocesses of llem, each in its own process group
// so that a stop reaches everything the worker started (Python spawns
// helpers; a stray grandchild must not keep the GPU busy).
type Local struct{}

// NewLocal returns the local subprocess runner.
func NewLocal() *Local { return &Local{} }

var _ Runner = (*Local)(nil)

// Name implements Runner.
func (*Local) Name() string { return "local" }

// Run implements Runner: Supervise over a subprocess started by launchLocal.
func (l *Local) Run(ctx context.Context, job Job, onEvent func(protocol.Event)) (Outcome, error) {
	return Supervise(ctx, job, launchLocal, onEvent)
}

// launchLocal starts job.Command in a new process group with job.Env added
// to llem's environment, its three streams on pipes.
func launchLocal(_ context.Context, job Job) (Worker, error) {
	cmd := exec.Command(job.Command[0], job.Command[1:]...)
	cmd.SysProcAttr = workerProcAttr()
	cmd.Env = os.Environ()
	for k, v := range job.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}

	// Our own pipes (not cmd's): Wait then returns when the worker exits,
	// even while a grandchild still holds stdout or stderr open.
	var parentEnds, childEnds []*os.File
	closeAll := func() {
		for _, f := range append(parentEnds, childEnds...) {
			f.Close()
		}
	}
	for _, name := range []string{"stdin", "stdout", "stderr"} {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("create %s pipe: %w", name, err)
		}
		if name == "stdin" {
			parentEnds, childEnds = append(parentEnds, w), append(childEnds, r)
		} else {
			parentEnds, childEnds = append(parentEnds, r), append(childEnds, w)
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = childEnds[0], childEnds[1], childEnds[2]
	if err := cmd.Start(); err != nil {
		closeAll()
		return nil, fmt.Errorf("start worker %q: %w", job.Command[0], err)
	}
	for _, f := range childEnds {
		f.Close()
	}
	return &localWorker{cmd: cmd, pgid: cmd.Process.Pid, stdin: parentEnds[0], stdout: parentEnds[1], stderr: parentEnds[2]}, nil
}

// localWorker is a subprocess and its process group.
type localWorker struct {
	cmd                   *exec.Cmd
	pgid                  int
	stdin, stdout, stderr *os.File
}

func (w *localWorker) Stdin() io.WriteCloser { return w.stdin }
func (w *localWorker) Stdout() io.Reader     { return w.stdout }
func (w *localWorker) Stderr() io.Reader     { return w.stderr }

func (w *localWorker) Wait() (int, error) {
	return exitCode(w.cmd, w.cmd.Wait()), nil
}

func (w *localWorker) Terminate() { syscall.Kill(-w.pgid, syscall.SIGTERM) }
func (w *localWorker) Kill()      { syscall.Kill(-w.pgid, syscall.SIGKILL) }

// Close closes llem's ends of the pipes; a read still pending returns.
func (w *localWorker) Close() error {
	w.stdin.Close()
	w.stdout.Close()
	w.stderr.Close()
	return nil
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
