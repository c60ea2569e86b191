//go:build cgo

package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/study"
)

// TestCUDAMismatchFromNVMLMock follows the host's CUDA version the way
// llem eval does (envinfo's NVML probe → HostFacts → Resolve → Prepare),
// from a go-nvml mock of a CUDA 11.8 driver to the numbered problem and its
// fix; no literal CUDA major is handed to setup.
func TestCUDAMismatchFromNVMLMock(t *testing.T) {
	t.Setenv("LLEM_RUNNER_PYTORCH", "")
	lib := &mock.Interface{
		InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
		SystemGetDriverVersionFunc:     func() (string, nvml.Return) { return "520.61.05", nvml.SUCCESS },
		SystemGetNVMLVersionFunc:       func() (string, nvml.Return) { return "11.520.61.05", nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return 11080, nvml.SUCCESS },
		DeviceGetCountFunc:             func() (int, nvml.Return) { return 0, nvml.SUCCESS },
	}
	snap := envinfo.Collect(envinfo.Options{NVML: energy.NVMLOptions{Lib: lib}})
	if snap.GPU.Unavailable != "" || snap.GPU.CUDADriverVersion != "11.8" {
		t.Fatalf("envinfo GPU = %+v", snap.GPU)
	}
	cuda, gpus := HostFacts(snap.GPU.NVMLInfo)
	if cuda != 11 || len(gpus) != 0 {
		t.Fatalf("HostFacts = %d, %v; want 11 and no GPUs", cuda, gpus)
	}

	p := &probes{}
	res, err := Resolve(context.Background(), p.apply(Input{
		Plan:        planWith(map[string]study.Runner{"pytorch": {Kind: "docker"}}),
		LlemVersion: "0.3.0", HostCUDAMajor: cuda, GPUs: gpus,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Backend("pytorch"); b.Image != "" || b.Problem == "" {
		t.Fatalf("pytorch on a CUDA 11 host resolved to %+v", b)
	}
	// Prepare refuses to start (exit 2) before it ever talks to a daemon:
	// the mismatched backend has no image to check.
	err = res.Prepare(context.Background(), nil)
	if errs.ExitCode(err) != errs.ExitBadInput {
		t.Fatalf("Prepare: %v (exit %d), want a bad-input error", err, errs.ExitCode(err))
	}
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 1 {
		t.Fatalf("Prepare: %v, want one problem", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"cannot start, 1 problem(s)",
		"1. backend pytorch (docker runner): no pytorch image supports the host's CUDA 11 driver (images exist for CUDA 12, 13)",
		"fix: upgrade the NVIDIA driver to one that supports CUDA 12 or newer, or build an image for your CUDA from docker/pytorch.Dockerfile and pin it with runners: pytorch: image: \"...\"",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems lack %q:\n%s", want, msg)
		}
	}
}
