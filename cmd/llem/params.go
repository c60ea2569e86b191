package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/params"
)

// paramsCmd lists backend parameters from the schema (pkg/params).
type paramsCmd struct {
	Backend  string `arg:"" optional:"" help:"Backend to list (pytorch, vllm, tensorrt, native); all when omitted." predictor:"backend"`
	JSON     bool   `name:"json" help:"Print JSON." xor:"format"`
	Markdown bool   `help:"Print Markdown (the generator of docs/params.md)." xor:"format"`
}

func (c *paramsCmd) Run(stdio *IO) error {
	var backends []string
	if c.Backend != "" {
		b := strings.ToLower(c.Backend)
		if names := params.BackendNames(); !slices.Contains(names, b) {
			msg := fmt.Errorf("unknown backend %q", c.Backend)
			if s := didYouMean(b, names); s != "" {
				msg = fmt.Errorf("unknown backend %q, did you mean %s?", c.Backend, s)
			}
			return errs.BadInput(msg, "choose one of "+strings.Join(names, ", ")+", or omit it to list all")
		}
		backends = []string{b}
	}
	reports, err := params.Reports(backends...)
	if err != nil {
		return fmt.Errorf("load schema: %w", err)
	}
	switch {
	case c.JSON:
		return params.WriteJSON(stdio.Stdout, reports)
	case c.Markdown:
		return params.WriteMarkdown(stdio.Stdout, reports)
	}
	return params.WriteText(stdio.Stdout, reports)
}
