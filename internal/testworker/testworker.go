// Package testworker lets a test binary double as `llem worker` for the
// native backend, so tests can start os.Executable() as a real native
// worker without an llem build. Only tests import it.
package testworker

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/backend/native"
)

// RunIfWorker makes the calling test binary act as `llem worker` (the real
// native worker on stdin/stdout, then exit) when it was started as
// `<binary> worker` with env=1; otherwise it returns. Call it first in
// TestMain, so runners can start os.Executable() as a native worker without
// an llem build.
func RunIfWorker(env string) {
	if len(os.Args) < 2 || os.Args[1] != "worker" || os.Getenv(env) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := native.Run(ctx, os.Stdin, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(errs.ExitCode(err))
	}
	os.Exit(0)
}
