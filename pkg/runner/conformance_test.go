package runner_test

import (
	"testing"

	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/runner/runnertest"
)

func TestLocalConformance(t *testing.T) {
	t.Parallel()
	runnertest.Run(t, func(*testing.T) runner.Runner { return runner.NewLocal() }, runnertest.Options{})
}
