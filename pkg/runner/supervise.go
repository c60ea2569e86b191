package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/pkg/protocol"
)

// DefaultGrace is the SIGTERM → SIGKILL delay when Job.Grace is 0.
const DefaultGrace = 10 * time.Second

// MaxProtocolErrs bounds how many bad lines an Outcome keeps; a worker that
// prints megabytes of garbage should not grow the parent without bound.
const MaxProtocolErrs = 20

// StderrTailBytes bounds Outcome.StderrTail; the whole stderr goes to
// StderrFile.
const StderrTailBytes = 8 << 10

// StderrFile is the name, in Job.Dir, of the file that keeps the worker's
// whole stderr (error reports point users to it).
const StderrFile = "worker.stderr"

// killWait bounds how long Supervise waits for a worker to exit once it has
// been sent SIGKILL; past it the exit code is reported as unknown (-1).
const killWait = 30 * time.Second

// A Launcher starts the worker for job where a runner runs workers (a
// process group, a container, a batch job) and hands it to Supervise.
type Launcher func(ctx context.Context, job Job) (Worker, error)

// Worker is one started worker as Supervise sees it: its standard streams
// and how to wait for it and stop it. Supervise calls Wait once, Terminate
// and Kill from one goroutine, and Close exactly once, last.
type Worker interface {
	// Stdin receives the run spec; Supervise closes it after writing.
	Stdin() io.WriteCloser
	// Stdout is the worker's protocol stream; it ends (EOF) when the
	// worker and everything holding it have closed it.
	Stdout() io.Reader
	// Stderr is the worker's free-text log.
	Stderr() io.Reader
	// Wait blocks until the worker has exited and returns its exit code:
	// its status, 128+signal when a signal ended it, -1 when unknown. An
	// error means the worker can no longer be supervised.
	Wait() (exitCode int, err error)
	// Terminate asks the worker to stop (SIGTERM to it and what it
	// started). Best effort: a worker already gone is not an error.
	Terminate()
	// Kill ends the worker and everything it started at once (SIGKILL).
	// Supervise also calls it after the worker has exited, so no straggler
	// it started keeps running (or keeps its streams open).
	Kill()
	// Close makes pending reads of Stdout and Stderr return and releases
	// what the worker held (pipes, a container).
	Close() error
}

// Supervise runs one worker to completion; it is the whole of Runner.Run
// for a runner that supplies launch. It starts the worker, writes job.Spec
// (one JSON line) to its stdin and closes it, decodes its stdout with the
// strict protocol decoder and calls onEvent for each event in order from one
// goroutine, keeps at most MaxProtocolErrs protocol errors, copies its stderr
// to job.Dir/StderrFile (when job.Dir is set) and its last StderrTailBytes to
// Outcome.StderrTail, and stops it on job.Timeout or ctx cancel: Terminate,
// job.Grace (DefaultGrace when 0), then Kill. Output still open job.Grace
// after the worker exited is abandoned. It returns an error only when the
// worker could not be started or supervised.
func Supervise(ctx context.Context, job Job, launch Launcher, onEvent func(protocol.Event)) (Outcome, error) {
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

	out := Outcome{Started: time.Now()}
	w, err := launch(ctx, job)
	if err != nil {
		return Outcome{}, err
	}

	// Spec on stdin, then EOF. A worker that exits without reading gives
	// EPIPE, which is the worker's failure to report, not ours.
	go func() {
		stdin := w.Stdin()
		_, _ = stdin.Write(append(spec, '\n'))
		_ = stdin.Close()
	}()

	stderr := newStderrSink(job.Dir)
	stderrDone := make(chan struct{})
	go func() {
		defer close(stderrDone)
		_, _ = io.Copy(stderr, w.Stderr())
	}()
	stream := &eventStream{onEvent: onEvent}
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		stream.read(w.Stdout())
	}()

	exitCode, waitErr := waitOrStop(ctx, w, job.Timeout, grace, &out)

	// The worker is gone; anything it started goes too, then its output
	// gets up to grace to drain before it is abandoned.
	w.Kill()
	drained := make(chan struct{})
	go func() { <-stdoutDone; <-stderrDone; close(drained) }()
	select {
	case <-drained:
	case <-time.After(grace):
	}
	closeErr := w.Close()
	<-drained
	stderr.close()
	if waitErr != nil {
		return Outcome{}, waitErr
	}
	if closeErr != nil {
		return Outcome{}, fmt.Errorf("release worker: %w", closeErr)
	}

	out.Ended = time.Now()
	out.ExitCode = exitCode
	out.StderrTail = stderr.tail.String()
	if exitCode == 0 && !stream.sawEnd && !out.TimedOut && !out.Interrupted {
		stream.addErr(errors.New("worker exited 0 without a done or error event"))
	}
	out.ProtocolErrs = stream.errs
	return out, nil
}

// waitOrStop waits for the worker to exit, stopping it on timeout or ctx
// cancel (Terminate, grace, Kill) and marking out accordingly.
func waitOrStop(ctx context.Context, w Worker, timeout, grace time.Duration, out *Outcome) (int, error) {
	type exit struct {
		code int
		err  error
	}
	exited := make(chan exit, 1)
	go func() {
		code, err := w.Wait()
		exited <- exit{code, err}
	}()

	var timedOut <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timedOut = t.C
	}
	var killAfter, giveUpAfter <-chan time.Time
	stopping := false
	stop := func() {
		if stopping {
			return
		}
		stopping = true
		w.Terminate()
		killAfter = time.After(grace)
	}
	cancelled := ctx.Done()
	for {
		select {
		case e := <-exited:
			return e.code, e.err
		case <-timedOut:
			out.TimedOut = true
			timedOut = nil
			stop()
		case <-cancelled:
			out.Interrupted = true
			cancelled = nil
			stop()
		case <-killAfter:
			killAfter = nil
			w.Kill()
			giveUpAfter = time.After(killWait)
		case <-giveUpAfter:
			return -1, nil
		}
	}
}

// eventStream decodes a worker's stdout; its fields are read only after
// read has returned.
type eventStream struct {
	onEvent func(protocol.Event)
	errs    []error
	sawEnd  bool // a done or error event arrived
}

func (s *eventStream) addErr(err error) {
	if len(s.errs) < MaxProtocolErrs {
		s.errs = append(s.errs, err)
	}
}

// read delivers every event to onEvent; a malformed line is a protocol error
// and the stream goes on, a read error (such as a line over the decoder's
// limit) ends decoding and the rest is discarded so the worker never blocks.
func (s *eventStream) read(r io.Reader) {
	dec := protocol.NewDecoder(r)
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			return
		}
		var lineErr *protocol.LineError
		if errors.As(err, &lineErr) {
			s.addErr(err)
			continue
		}
		if err != nil {
			s.addErr(fmt.Errorf("read worker output: %w", err))
			_, _ = io.Copy(io.Discard, r)
			return
		}
		if ev.Kind == protocol.KindDone || ev.Kind == protocol.KindError {
			s.sawEnd = true
		}
		if s.onEvent != nil {
			s.onEvent(ev)
		}
	}
}

// stderrSink takes a worker's stderr: all of it to the log file (while the
// file can be written), the last StderrTailBytes to tail. Its Write never
// fails, so the worker's stderr is always drained.
type stderrSink struct {
	tail *tailBuffer
	file *os.File
}

func newStderrSink(dir string) *stderrSink {
	s := &stderrSink{tail: newTailBuffer(StderrTailBytes)}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			if f, err := os.Create(filepath.Join(dir, StderrFile)); err == nil {
				s.file = f
			}
		}
	}
	return s
}

func (s *stderrSink) Write(p []byte) (int, error) {
	s.tail.Write(p)
	if s.file != nil {
		if _, err := s.file.Write(p); err != nil {
			s.file.Close()
			s.file = nil
		}
	}
	return len(p), nil
}

func (s *stderrSink) close() {
	if s.file != nil {
		s.file.Close()
	}
}

// tailBuffer keeps the last max bytes written to it, cut at a line start.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(p) >= t.max {
		p = p[len(p)-t.max:]
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

// String is the tail as text: from the first whole line when bytes were
// dropped, invalid UTF-8 removed, without the trailing newline.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.ToValidUTF8(t.buf, nil))
	if len(t.buf) >= t.max {
		if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
			s = s[i+1:]
		}
	}
	return strings.TrimRight(s, "\n")
}
