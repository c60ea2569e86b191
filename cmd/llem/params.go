package main

import "errors"

// paramsCmd is owned by the issue that builds it; until then it says so plainly.
type paramsCmd struct{}

func (c *paramsCmd) Run() error { return errors.New("llem params is not built yet") }
