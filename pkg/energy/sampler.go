package energy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// Default sampling intervals, chosen from what the hardware updates:
//
//   - NVML: the energy counter updates every ~100 ms and instant power
//     (field 186) 7–10 times a second on an H100 (docs/reference h100-facts).
//     Totals come from the counter, so the timeline only has to place window
//     edges and phases: 100 ms (10 Hz) matches the counter period, meets the
//     ≥ 10 Hz target, and keeps one batched GetFieldValues per GPU per tick.
//   - RAPL: energy_uj updates every ~1 ms; 100 ms keeps the same timeline
//     resolution and is far below the fastest wrap (~60 s at 4 kW on a 2^32 µJ range).
//   - Estimate: /proc/stat ticks at 100 Hz; 500 ms gives a stable utilisation.
const (
	DefaultIntervalNVML     = 100 * time.Millisecond
	DefaultIntervalRAPL     = 100 * time.Millisecond
	DefaultIntervalEstimate = 500 * time.Millisecond
	// DefaultCounterEvery: NVML's energy counter is read on every 50th tick
	// (every 5 s at 100 ms), at Start and Stop, and on Mark. A read costs
	// ~4 ms of CPU idle and ~15 ms under load on an H100 (the driver
	// busy-waits; docs/methodology.md), so reading it every tick took 15 % of
	// a core; every 5 s the whole llem process used 0.4 %. Windows take the
	// counter readings nearest their edges and integrate instant power over
	// the rest, so callers that Mark window boundaries lose nothing (H100:
	// steady 60 s window −0.03 %, bursty −/+0.4 % vs an in-process reader).
	DefaultCounterEvery = 50
	// DefaultAuxEvery: slow fields (temperature, clocks, utilisation, memory,
	// throttle reasons) are read on every 5th tick (2 Hz at 100 ms), since each
	// is a separate NVML call and none changes faster than that matters here.
	DefaultAuxEvery = 5
)

// DefaultInterval returns the sampling interval suited to a sensor name.
// (its registered Interval; NVML's for unregistered names, e.g. test fakes).
func DefaultInterval(sensor string) time.Duration {
	if d, ok := LookupSensor(sensor); ok && d.Interval > 0 {
		return d.Interval
	}
	return DefaultIntervalNVML
}

// SamplerOptions tune a Sampler; zero values pick the defaults.
type SamplerOptions struct {
	Interval time.Duration // 0: DefaultInterval(sensor.Name())
	AuxEvery int           // 0: DefaultAuxEvery; 1 reads every field every tick
	// CounterEvery: read an expensive energy counter every this many ticks
	// (0: DefaultCounterEvery; 1: every tick).
	CounterEvery int
	// Capacity preallocates room for this many samples per channel so that
	// recording does not allocate; 0 sizes for 10 minutes.
	Capacity int
}

// Sampler reads a Sensor every interval on its own goroutine and records a
// Timeline. Start it before the measured work and Stop it after; Snapshot
// gives a consistent copy while it runs.
type Sampler struct {
	sensor       Sensor
	interval     time.Duration
	auxEvery     int
	counterEvery int

	mu      sync.Mutex
	tl      Timeline
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
	scratch []Sample
}

// NewSampler prepares a sampler for s; nothing is read until Start.
func NewSampler(s Sensor, opt SamplerOptions) *Sampler {
	if opt.Interval <= 0 {
		opt.Interval = DefaultInterval(s.Name())
	}
	if opt.AuxEvery <= 0 {
		opt.AuxEvery = DefaultAuxEvery
	}
	if opt.CounterEvery <= 0 {
		opt.CounterEvery = DefaultCounterEvery
	}
	if opt.Capacity <= 0 {
		opt.Capacity = int(10*time.Minute/opt.Interval) + 1
	}
	chans := s.Channels()
	tl := Timeline{Sensor: s.Name(), IntervalNs: opt.Interval.Nanoseconds(), Channels: make([]ChannelTimeline, len(chans))}
	for i, c := range chans {
		tl.Channels[i] = ChannelTimeline{Channel: c, Samples: make([]Sample, 0, opt.Capacity)}
	}
	return &Sampler{sensor: s, interval: opt.Interval, auxEvery: opt.AuxEvery, counterEvery: opt.CounterEvery, tl: tl,
		scratch: make([]Sample, len(chans))}
}

// Interval is the configured sampling interval.
func (s *Sampler) Interval() time.Duration { return s.interval }

// Start takes one sample immediately and then one per interval until Stop or
// until ctx ends.
func (s *Sampler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("start sampler: already running")
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.running = true
	s.sampleLocked(ReadAux | ReadCounter)
	go s.loop(ctx)
	return nil
}

func (s *Sampler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n++
			var mode ReadMode
			if n%s.auxEvery == 0 {
				mode |= ReadAux
			}
			if n%s.counterEvery == 0 {
				mode |= ReadCounter
			}
			s.mu.Lock()
			s.sampleLocked(mode)
			s.mu.Unlock()
		}
	}
}

// sampleLocked reads once and appends. With the capacity preallocated it
// does not allocate unless a read fails (the error message is kept).
func (s *Sampler) sampleLocked(mode ReadMode) {
	now := clock.Now()
	for i := range s.scratch {
		s.scratch[i].Reset(now)
	}
	err := s.sensor.Read(s.scratch, mode)
	for i := range s.scratch {
		c := &s.tl.Channels[i]
		c.Samples = append(c.Samples, s.scratch[i])
	}
	if err != nil {
		var ce *ChannelError
		for e := err; e != nil; {
			if errors.As(e, &ce) && ce.Index >= 0 && ce.Index < len(s.tl.Channels) {
				c := &s.tl.Channels[ce.Index]
				c.Errors++
				c.LastError = ce.Err.Error()
				e = ce.next
				continue
			}
			for i := range s.tl.Channels {
				s.tl.Channels[i].Errors++
				s.tl.Channels[i].LastError = e.Error()
			}
			break
		}
	}
}

// Mark takes a full sample now, energy counter included, outside the tick
// schedule. The counter is read only every CounterEvery ticks, so callers
// that learn of a window boundary in real time (a worker's phase or done
// event, a command's LLEM_MARK line) call Mark to put a counter reading
// within milliseconds of the boundary; pkg/measure then integrates instant
// power over that short edge only. A no-op when the sampler is not running.
func (s *Sampler) Mark() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		s.sampleLocked(ReadAux | ReadCounter)
	}
}

// Stop ends sampling (taking one last sample so the timeline reaches the
// present) and returns the timeline. Calling Stop twice returns the same data.
func (s *Sampler) Stop() *Timeline {
	s.mu.Lock()
	running := s.running
	if running {
		s.cancel()
	}
	s.mu.Unlock()
	if running {
		<-s.done
		s.mu.Lock()
		s.sampleLocked(ReadAux | ReadCounter)
		s.running = false
		s.mu.Unlock()
	}
	return s.Snapshot()
}

// Snapshot returns a deep copy of what has been recorded so far.
func (s *Sampler) Snapshot() *Timeline {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.tl
	out.Channels = make([]ChannelTimeline, len(s.tl.Channels))
	for i, c := range s.tl.Channels {
		c.Samples = append([]Sample(nil), c.Samples...)
		out.Channels[i] = c
	}
	return &out
}

// ChannelError is a read failure of one channel; sensors chain several with
// JoinChannelErrors so the sampler can attribute each to its channel.
type ChannelError struct {
	Index int
	Err   error
	next  error
}

func (e *ChannelError) Error() string {
	msg := e.Err.Error()
	if e.next != nil {
		msg += "; " + e.next.Error()
	}
	return msg
}

func (e *ChannelError) Unwrap() error { return e.Err }

// JoinChannelErrors chains per-channel errors (nil entries skipped) into one.
func JoinChannelErrors(errs []*ChannelError) error {
	var head error
	for i := len(errs) - 1; i >= 0; i-- {
		if errs[i] == nil {
			continue
		}
		errs[i].next = head
		head = errs[i]
	}
	return head
}
