//go:build cgo

package docker

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// HostCUDAMajor asks NVML for the CUDA version the host driver supports
// (e.g. 12080 → 12). lib is nvml.New() in production and go-nvml's mock in
// tests. No NVML function is called unless Init succeeds.
func HostCUDAMajor(lib nvml.Interface) (int, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return 0, fmt.Errorf("nvml init: %s", nvml.ErrorString(ret))
	}
	defer lib.Shutdown()
	v, ret := lib.SystemGetCudaDriverVersion()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("nvml cuda driver version: %s", nvml.ErrorString(ret))
	}
	return v / 1000, nil
}
