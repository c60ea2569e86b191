package main

import (
	"context"

	"github.com/llenergymeasure/llem/pkg/serving"
)

// servingWorkerCmd is serving mode's worker (docs/serving.md): the parent
// starts `llem serving-worker --dir D` for a run with a serving: section;
// it starts the server, sends the load and reports the steady state over
// the worker protocol, leaving its report in D.
type servingWorkerCmd struct {
	Dir string `help:"The slot's work directory (the report and the server's log go there)." required:""`
}

func (c *servingWorkerCmd) Run(ctx context.Context, stdio *IO) error {
	return serving.RunWorker(ctx, stdio.Stdin, stdio.Stdout, serving.WorkerOptions{Dir: c.Dir})
}
