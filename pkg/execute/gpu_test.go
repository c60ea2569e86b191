package execute

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// recordingGPU is a GPUControl that records what the loop asks of it; the
// NVML side (pkg/gpuctl.Controller) is tested on go-nvml's mock there.
type recordingGPU struct {
	mu       sync.Mutex
	applied  []string
	changes  int
	cur      string
	restored int
}

func (g *recordingGPU) Apply(_ context.Context, r study.Run) (time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := r.Config.GPU.Key()
	g.applied = append(g.applied, k)
	if k == g.cur {
		return 0, nil
	}
	g.cur = k
	g.changes++
	return time.Millisecond, nil
}

func (g *recordingGPU) InEffect() []result.GPUState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return []result.GPUState{{UUID: "GPU-fake", PowerLimitW: 300, ThrottleReasons: []string{"sw_power_cap"}}}
}

func (g *recordingGPU) Restore() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.restored++
	g.cur = ""
	return nil
}

// TestGPURestoredAfterWorkerCrash: a crashing worker is recorded with the
// settings in effect and the study goes on; the GPUs are restored once at
// the end, and identical settings are applied once.
func TestGPURestoredAfterWorkerCrash(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`grid: {n: [1, 2], gpu: power_limit_w: [300]}
execution: {cycles: 2, order: "shuffled"}
`)
	g := &recordingGPU{}
	rep, err := Run(context.Background(), Options{
		Plan: plan, OutRoot: t.TempDir(), GPU: g,
		Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 2 || len(g.applied) != 4 || g.changes != 1 || g.restored != 1 {
		t.Fatalf("failed %d, applied %v, changes %d, restored %d", rep.Failed, g.applied, g.changes, g.restored)
	}
	recs, err := result.ReadRecords(rep.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if len(r.GPUSettings) != 1 || r.GPUSettings[0].PowerLimitW != 300 {
			t.Errorf("record %s cycle %d (%s): gpu settings %+v", r.RunID, r.Cycle, r.Status, r.GPUSettings)
		}
	}
}

// TestGPURestoredOnCtrlC: cancelling mid-run (Ctrl-C) still restores.
func TestGPURestoredOnCtrlC(t *testing.T) {
	t.Parallel()
	_, plan := writeStudy(t, fakeBase+`grid: {n: [3], gpu: power_limit_w: [300]}
execution: {cycles: 1}
`)
	g := &recordingGPU{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := Run(ctx, Options{
		Plan: plan, OutRoot: t.TempDir(), GPU: g,
		Routes: LocalRoutes(map[string]JobFunc{"native": fakeWorkerJob(0)}),
		OnEvent: func(ev Event) {
			if ev.Kind == EventPhase || ev.Kind == EventPower {
				cancel()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || g.restored != 1 || g.changes != 1 {
		t.Fatalf("interrupted %v, restored %d, changes %d", rep.Interrupted, g.restored, g.changes)
	}
}
