//go:build cgo

package energy

import "github.com/NVIDIA/go-nvml/pkg/nvml"

// SelectedGPUs returns the NVML handles of the GPUs a study uses: those
// CUDA_VISIBLE_DEVICES selects (every GPU when it is unset; a MIG instance
// maps to its parent), deduplicated by UUID, the same set the NVML sensor
// measures. Under Slurm and Docker that is the allocation. lib must be
// initialised.
func SelectedGPUs(lib nvml.Interface, opt NVMLOptions) ([]nvml.Device, []string, error) {
	sel, notes, err := selectGPUs(lib, opt)
	if err != nil {
		return nil, nil, err
	}
	out := make([]nvml.Device, len(sel))
	for i, g := range sel {
		out[i] = g.dev
	}
	return out, notes, nil
}
