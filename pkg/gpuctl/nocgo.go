//go:build !cgo

package gpuctl

import (
	"context"
	"errors"
	"time"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// errNoCgo: go-nvml needs cgo, so a CGO_ENABLED=0 build cannot set GPUs.
var errNoCgo = errors.New("gpu settings: llem was built without cgo (rebuild with CGO_ENABLED=1 to set GPU power limits and clocks)")

// Options configure Open (see the cgo build).
type Options struct {
	Lib    any
	Select energy.NVMLOptions
	Dir    string
	Plan   *study.Plan
}

// Controller exists only in cgo builds.
type Controller struct{ Notes []string }

func Open(Options) (*Controller, error)                                       { return nil, errNoCgo }
func ReadRanges(any, energy.NVMLOptions) ([]Range, error)                     { return nil, errNoCgo }
func (c *Controller) Apply(context.Context, study.Run) (time.Duration, error) { return 0, errNoCgo }
func (c *Controller) InEffect() []result.GPUState                             { return nil }
func (c *Controller) Restore() error                                          { return nil }

// Recover has nothing to restore without NVML; a journal stays for a cgo build.
func Recover(_ any, dir string) ([]string, error) {
	if len(journalUUIDs(cmpDir(dir))) > 0 {
		return nil, errNoCgo
	}
	return nil, nil
}

func cmpDir(d string) string {
	if d == "" {
		return DefaultDir()
	}
	return d
}
