package main

import (
	"context"
	"errors"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/study"
)

// execute runs the plan. Execution is built by a later issue (this file is
// replaced then); until it exists, say so plainly instead of pretending.
func (c *evalCmd) execute(ctx context.Context, stdio *IO, plan *study.Plan) error {
	_ = ctx
	_ = stdio
	_ = plan
	return errs.WithExitCode(errs.WithHint(errors.New("executing studies is not available yet"),
		"use --dry-run to see the plan"), errs.ExitFailure)
}
