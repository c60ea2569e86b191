package execute

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
)

// slotObserver watches one worker's event stream as it arrives. Per event
// it marks the energy counter at window boundaries, validates the stream
// (protocol.Checker) keeping the lifecycle timestamps the record needs,
// and reports phase changes to the progress display.
type slotObserver struct {
	x       *executor
	entry   result.Entry
	sampler *energy.Sampler // nil when measurement is off
	sensor  energy.Sensor   // the sampler's sensor, for its GPU process list

	// Touched only by the runner's event callback, one event at a time.
	phaseSeen bool
	phase     string

	// The window's edges as the busy-host check saw them (host CPU at
	// the window's start and end, other GPU processes at its end).
	hostStart, hostEnd measure.HostSnapshot
	gpuAfter           []string

	mu        sync.Mutex
	check     *protocol.Checker
	streamErr error // the first event the checker refused
	loadedNs  int64 // t_ns of loaded
}

func newSlotObserver(x *executor, e result.Entry, sm *energy.Sampler, sensor energy.Sensor) *slotObserver {
	return &slotObserver{x: x, entry: e, sampler: sm, sensor: sensor, check: protocol.NewChecker()}
}

// otherGPUProcesses is the sensor's list of processes other than llem on
// the measured GPUs (NVML, composite), nil when it has none.
func otherGPUProcesses(s energy.Sensor) []string {
	pl, ok := s.(interface{ OtherProcesses() ([]string, error) })
	if !ok {
		return nil
	}
	procs, err := pl.OtherProcesses()
	if err != nil {
		return nil
	}
	return procs
}

// flagDisturbance flags a window whose host was busy with other processes
// (measure.BusyHostWarning) or whose GPUs had other processes through it
// (measure.OtherGPUProcessesWarning, against gpuBefore, listed before the
// worker started).
func (o *slotObserver) flagDisturbance(rec *result.Record, gpuBefore []string) {
	for _, w := range []string{
		measure.BusyHostWarning(o.hostStart, o.hostEnd),
		measure.OtherGPUProcessesWarning(gpuBefore, o.gpuAfter),
	} {
		if w == "" {
			continue
		}
		code, _, _ := strings.Cut(w, ":")
		rec.Flags = append(rec.Flags, code)
		rec.Warnings = append(rec.Warnings, w)
	}
}

// observe is the runner's event callback.
func (o *slotObserver) observe(w protocol.Event) {
	o.markBoundary(w)
	o.validate(w)
	o.reportPhase(w)
}

// markBoundary puts an energy-counter reading within milliseconds of each
// window boundary, known only as its event arrives (the sampler reads the
// counter only every CounterEvery ticks otherwise; docs/methodology.md).
// The window runs from the first phase start (warmup_done for a worker
// that reports no phases) to done.
func (o *slotObserver) markBoundary(w protocol.Event) {
	if o.sampler != nil {
		switch {
		case w.Kind == protocol.KindWarmupDone, w.Kind == protocol.KindDone,
			w.Kind == protocol.KindPhase && w.Phase != nil && w.Phase.State == "start" && !o.phaseSeen:
			o.sampler.Mark()
			// After the mark, so it stays within milliseconds of the
			// event: the host's CPU at the edge, and at the end the
			// GPUs' other processes.
			if w.Kind == protocol.KindDone {
				o.hostEnd = measure.ReadHost(o.x.procRoot(), os.Getpid())
				o.gpuAfter = otherGPUProcesses(o.sensor)
			} else {
				o.hostStart = measure.ReadHost(o.x.procRoot(), os.Getpid())
			}
		}
	}
	if w.Kind == protocol.KindPhase {
		o.phaseSeen = true
	}
}

// validate feeds the checker until it refuses an event, and keeps the
// parent-side time of loaded (the warmup starts there).
func (o *slotObserver) validate(w protocol.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.streamErr == nil {
		if err := o.check.Add(w); err != nil {
			o.streamErr = err
		}
	}
	if w.Kind == protocol.KindLoaded {
		o.loadedNs = w.TNs
	}
}

// reportPhase emits EventPhase when the worker enters a new stage:
// loading, warmup, the thermal floor (the worker waits it out after
// warmup_done; nothing is measured), measuring, then each phase by name.
func (o *slotObserver) reportPhase(w protocol.Event) {
	p := ""
	switch w.Kind {
	case protocol.KindHello:
		p = "loading"
	case protocol.KindLoaded:
		p = "warmup"
	case protocol.KindWarmupDone:
		p = "measuring"
		if w := o.x.runs[o.entry.RunID].Config.Warmup; w.Enabled && w.ThermalFloorSeconds > 0 {
			p = fmt.Sprintf("thermal floor %gs", w.ThermalFloorSeconds)
		}
	case protocol.KindPhase:
		if w.Phase.State == "start" {
			p = w.Phase.Name
		}
	}
	if p != "" && p != o.phase {
		o.phase = p
		o.x.emit(Event{Kind: EventPhase, Entry: o.entry, Phase: p})
	}
}

// finish returns the stream's summary and, when the stream broke the
// protocol, the first violation (else the checker's end-of-stream verdict).
func (o *slotObserver) finish() (protocol.Summary, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sum, err := o.check.Finish()
	if o.streamErr != nil {
		err = o.streamErr
	}
	return sum, err
}

// loadedAt is the t_ns of the worker's loaded event (0 when none came).
func (o *slotObserver) loadedAt() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.loadedNs
}
