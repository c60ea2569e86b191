//go:build cgo

package docker

import (
	"errors"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// The host's CUDA driver version is faked through go-nvml's mock (no GPU here).
func TestHostCUDAMajorFromNVMLMock(t *testing.T) {
	lib := &mock.Interface{
		InitFunc:                       func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:                   func() nvml.Return { return nvml.SUCCESS },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) { return 11080, nvml.SUCCESS },
	}
	major, err := HostCUDAMajor(lib)
	if err != nil || major != 11 {
		t.Fatalf("major = %d, %v", major, err)
	}
	_, err = ResolveImage("pytorch", "0.1.0", "", major)
	var me *CUDAMismatchError
	if !errors.As(err, &me) {
		t.Fatalf("host CUDA 11 must be a mismatch, got %v", err)
	}

	calledAfterFailedInit := false
	failing := &mock.Interface{
		InitFunc: func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND },
		SystemGetCudaDriverVersionFunc: func() (int, nvml.Return) {
			calledAfterFailedInit = true
			return 0, nvml.SUCCESS
		},
	}
	if _, err := HostCUDAMajor(failing); err == nil || calledAfterFailedInit {
		t.Fatalf("NVML was used after a failed Init (err=%v)", err)
	}
}
