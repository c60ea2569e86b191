package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/backend/native"
)

// workerCmd is the native backend's worker: the parent starts `llem worker`
// as a subprocess (or in a container), writes the run spec to its stdin and
// reads protocol events from its stdout (docs/worker-protocol.md). Logs go
// to stderr. SIGINT/SIGTERM cancel the run: an "interrupted" error event,
// then exit 130.
type workerCmd struct {
	Spec string `help:"Read the run spec from this file instead of stdin." type:"existingfile" placeholder:"FILE"`
}

func (c *workerCmd) Run(ctx context.Context, stdio *IO) error {
	var spec io.Reader = stdio.Stdin
	if c.Spec != "" {
		f, err := os.Open(c.Spec)
		if err != nil {
			return errs.BadInput(fmt.Errorf("open run spec: %w", err), "")
		}
		defer f.Close()
		spec = f
	}
	return native.Run(ctx, spec, stdio.Stdout)
}
