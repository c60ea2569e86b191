package main

import "errors"

// resultsCmd is owned by the issue that builds it; until then it says so plainly.
type resultsCmd struct{}

func (c *resultsCmd) Run() error { return errors.New("llem results is not built yet") }
