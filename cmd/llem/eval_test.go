package main

import (
	"bytes"
	"context"
	"testing"
)

func runEval(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), append([]string{"eval"}, args...), IO{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}
