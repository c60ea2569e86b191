package pipeline

import (
	"errors"
	"fmt"

	"github.com/llenergymeasure/llem/pkg/compute"
	"github.com/llenergymeasure/llem/pkg/study"
)

// MemoryEstimate is a run's estimated peak memory for the dry run.
type MemoryEstimate struct {
	RunID string         `json:"run_id"`
	Where string         `json:"where" doc:"the memory compared with: the first selected GPU, or host memory for the native (CPU) backend"`
	Mem   compute.Memory `json:"memory"`
	// NoEstimate says why a checkpoint on this machine has none (its
	// layout is not one pkg/compute counts); Mem is then zero.
	NoEstimate string `json:"no_estimate,omitempty"`
}

// MemoryEstimates estimates each run's peak memory where llem knows the
// model's shape without loading it (the random: presets, and checkpoints
// whose config.json is on this machine: compute.ForCheckpoint), and
// compares it with the memory the run will use: the first selected GPU's,
// or, for the native engine, the size alone. Runs of models not on this
// machine are left out; a checkpoint whose layout pkg/compute does not
// count gets a NoEstimate reason.
func (p *Prepared) MemoryEstimates() []MemoryEstimate {
	var gpuBytes int64
	gpuName := "GPU"
	if gpus := p.Environment.GPU.GPUs; len(gpus) > 0 {
		gpuBytes, gpuName = int64(gpus[0].MemoryTotalBytes), gpus[0].Name
	}
	var out []MemoryEstimate
	for _, r := range p.Plan.Runs {
		arch, ok := compute.ForModel(r.Model)
		if !ok {
			a, err := compute.ForCheckpoint(r.Model)
			switch {
			case errors.Is(err, compute.ErrUnsupportedArch):
				out = append(out, MemoryEstimate{RunID: r.ID, NoEstimate: err.Error()})
				continue
			case err != nil:
				continue
			}
			arch = a
		}
		shape := runShape(r)
		device, where := gpuBytes, gpuName
		if r.Backend == "native" {
			// The engine runs in host memory, which is rarely what limits
			// it: the size alone, with no machine-dependent verdict.
			device, where = 0, "host memory"
		}
		out = append(out, MemoryEstimate{RunID: r.ID, Where: where, Mem: arch.EstimateMemory(shape, device)})
	}
	return out
}

// runShape is what one run asks of the model at once: its batch size and
// the longest prompt and output its dataset and limits allow.
func runShape(r study.Run) compute.Shape {
	c := r.Config
	batch := 1
	if bs, ok := c.Section()["batch_size"].(float64); ok && bs >= 1 {
		batch = int(bs)
	} else if bs, ok := c.Section()["batch_size"].(int); ok && bs >= 1 {
		batch = bs
	}
	in, out := c.MaxInputTokens, c.MaxOutputTokens
	if c.Dataset.InputLen > 0 && (in == 0 || c.Dataset.InputLen < in) {
		in = c.Dataset.InputLen
	}
	if c.Dataset.OutputLen > 0 && (out == 0 || c.Dataset.OutputLen < out) {
		out = c.Dataset.OutputLen
	}
	b := compute.BytesPerValue(c.Precision)
	return compute.Shape{Batch: batch, InputTokens: in, OutputTokens: out, WeightBytes: b, KVBytes: b}
}

// String is the dry run's line for the estimate.
func (m MemoryEstimate) String() string {
	if m.NoEstimate != "" {
		return fmt.Sprintf("%s: no estimate: %s", m.RunID, m.NoEstimate)
	}
	if m.Mem.DeviceBytes == 0 {
		return fmt.Sprintf("%s: needs about %.0f MiB (%s)", m.RunID, float64(m.Mem.TotalBytes)/(1<<20), m.Where)
	}
	return fmt.Sprintf("%s: %s (%s)", m.RunID, m.Mem.Verdict, m.Where)
}
