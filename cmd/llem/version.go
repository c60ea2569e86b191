package main

import (
	"fmt"

	"github.com/llenergymeasure/llem/internal/version"
)

type versionCmd struct{}

func (c *versionCmd) Run(stdio *IO) error {
	_, err := fmt.Fprintln(stdio.Stdout, versionString())
	return err
}

func versionString() string { return version.String() }
