// Package errs attaches a fix hint and an exit code to an error, so that
// packages can say what the user should do and main can pick the exit status,
// without packages printing anything themselves.
package errs

import (
	"context"
	"errors"
	"os"
)

// Exit codes of the llem command.
const (
	ExitOK          = 0
	ExitFailure     = 1   // a run or command failed
	ExitBadInput    = 2   // the user's input (study, flags, files) is wrong
	ExitInterrupted = 130 // Ctrl-C / SIGINT
)

type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// WithHint attaches a one-line fix to err ("start Docker: dockerd &").
func WithHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hint: hint}
}

// Hint returns the outermost hint attached to err (WithHint, or an error
// type with a Hint() string method), or "".
func Hint(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// Hint is the hint WithHint attached.
func (h *hinted) Hint() string { return h.hint }

type coded struct {
	err  error
	code int
}

func (c *coded) Error() string { return c.err.Error() }
func (c *coded) Unwrap() error { return c.err }

// WithExitCode marks err with the exit code main should use.
func WithExitCode(err error, code int) error {
	if err == nil {
		return nil
	}
	return &coded{err: err, code: code}
}

// BadInput marks err as the user's mistake (exit 2), with an optional hint.
func BadInput(err error, hint string) error {
	if hint != "" {
		err = WithHint(err, hint)
	}
	return WithExitCode(err, ExitBadInput)
}

// ExitCode maps err to the exit status: 0 for nil, 130 for cancellation or
// an interrupt, the attached code if any, else 1.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var c *coded
	if errors.As(err, &c) {
		return c.code
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrInterrupted) {
		return ExitInterrupted
	}
	if errors.Is(err, os.ErrNotExist) {
		return ExitBadInput
	}
	return ExitFailure
}

// ErrInterrupted is returned when the user pressed Ctrl-C.
var ErrInterrupted = errors.New("interrupted")
