package execute

import (
	"context"
	"time"

	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// GPUControl sets runs' GPU power limit and clocks (the study's gpu:
// section; pkg/gpuctl's Controller). The loop calls Apply before every slot
// (a no-op when the settings are already in effect) and waits the settle
// time it returns, stores InEffect in the record after the worker ends, and
// calls Restore once when the execution ends for any reason: done, Ctrl-C,
// an error. A worker crash changes nothing here: the settings belong to
// this process, which records the crash and goes on.
type GPUControl interface {
	Apply(ctx context.Context, run study.Run) (settle time.Duration, err error)
	InEffect() []result.GPUState
	Restore() error
}

// gpuSlot is measureSlot with the run's GPU settings applied first.
func (x *executor) gpuSlot(ctx context.Context, run study.Run, e result.Entry) *result.Record {
	g := x.opt.GPU
	if g == nil {
		return x.measureSlot(ctx, run, e)
	}
	start := time.Now().UTC()
	fail := func(kind, msg, hint string) *result.Record {
		rec := x.newRecord(run, e, start)
		rec.Fail(result.RunError{Kind: kind, Message: msg, Hint: hint, ExitCode: -1})
		rec.Timing.EndedAt = time.Now().UTC()
		rec.Timing.WallS = rec.Timing.EndedAt.Sub(start).Seconds()
		rec.Energy.PerDevice = []result.DeviceEnergy{}
		rec.GPUSettings = g.InEffect()
		return rec
	}
	settle, err := g.Apply(ctx, run)
	if err != nil {
		return fail("gpu_settings", err.Error(), "check the gpu: section against `llem env`; the GPUs are restored when the study ends")
	}
	if settle > 0 {
		x.emit(Event{Kind: EventGap, Entry: e, Gap: settle, Message: "GPU settings settling"})
		if err := x.opt.Sleep(ctx, settle, nil); err != nil {
			return fail("interrupted", "interrupted while GPU settings settled", "")
		}
	}
	rec := x.measureSlot(ctx, run, e)
	rec.GPUSettings = g.InEffect()
	return rec
}
