package main

import "errors"

// envCmd is owned by the issue that builds it; until then it says so plainly.
type envCmd struct{}

func (c *envCmd) Run() error { return errors.New("llem env is not built yet") }
