package main

import "errors"

// evalCmd is owned by the issue that builds it; until then it says so plainly.
type evalCmd struct{}

func (c *evalCmd) Run() error { return errors.New("llem eval is not built yet") }
