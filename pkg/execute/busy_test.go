package execute

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/runner"
	"github.com/llenergymeasure/llem/pkg/study"
)

// procSensor is the fake GPU sensor with a FAKE NVML process list (as
// nvmlDeviceGetComputeRunningProcesses gives it through
// NVMLSensor.OtherProcesses, llem's own pid left out): another user's job
// (pid 4242) runs on the GPU throughout; the worker (pid 777) is listed
// once it has started.
type procSensor struct {
	logSensor
	workerUp *atomic.Bool
}

func (s *procSensor) OtherProcesses() ([]string, error) {
	out := []string{"pid 4242 on GPU-fake"}
	if s.workerUp.Load() {
		out = append(out, "pid 777 on GPU-fake")
	}
	return out, nil
}

// startedRunner marks the worker as up before playing the stream.
type startedRunner struct {
	scriptRunner
	up *atomic.Bool
}

func (r *startedRunner) Run(ctx context.Context, job runner.Job, onEvent func(protocol.Event)) (runner.Outcome, error) {
	r.up.Store(true)
	defer r.up.Store(false)
	return r.scriptRunner.Run(ctx, job, onEvent)
}

// TestWindowFlagsOtherGPUProcesses: a process that was on the measured GPU
// before the worker started and still is at the window's end flags the
// record (other_gpu_processes, with the pid in the warning); the worker's
// own process does not. The fake /proc does not change, so the host is not
// busy.
func TestWindowFlagsOtherGPUProcesses(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`execution: {cycles: 1, order: "sequential"}
`)
	up := &atomic.Bool{}
	proc := t.TempDir()
	os.WriteFile(filepath.Join(proc, "stat"), []byte("cpu  100 0 0 100 0 0 0 0 0 0\n"), 0o644)
	rep, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(), ProcRoot: proc,
		Routes: Routes{"native": {Runner: &startedRunner{up: up}, Job: fakeWorkerJob(0)}},
		Sensor: func(study.Energy) (energy.Sensor, energy.Selection, error) {
			return &procSensor{workerUp: up}, energy.Selection{Sensor: "fake", Method: energy.MethodCounter}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil || len(recs) != 1 || recs[0].Status != result.StatusOK {
		t.Fatalf("records: %v %+v", err, recs)
	}
	r := recs[0]
	if !slices.Contains(r.Flags, measure.FlagOtherGPUProcesses) || slices.Contains(r.Flags, measure.FlagBusyHost) {
		t.Errorf("flags %v: want other_gpu_processes and not busy_host", r.Flags)
	}
	var warned string
	for _, w := range r.Warnings {
		if strings.HasPrefix(w, measure.FlagOtherGPUProcesses) {
			warned = w
		}
	}
	if !strings.Contains(warned, "pid 4242 on GPU-fake") || strings.Contains(warned, "777") {
		t.Errorf("warning %q: want pid 4242 and not the worker's 777", warned)
	}
}
