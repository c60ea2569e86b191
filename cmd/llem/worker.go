package main

import "errors"

// workerCmd is owned by the issue that builds it; until then it says so plainly.
type workerCmd struct{}

func (c *workerCmd) Run() error { return errors.New("llem worker is not built yet") }
