package main

import (
	"context"
	"errors"

	"github.com/llenergymeasure/llem/internal/errs"
)

// pushHF pushes the hf-datasets export to the Hugging Face Hub.
func (c *resultsPushCmd) pushHF(ctx context.Context, stdio *IO, to, token string) error {
	return errs.BadInput(errors.New("push to the Hub: not implemented yet"), "")
}
