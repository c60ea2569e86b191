package protocol

import (
	"errors"
	"fmt"
)

// Summary is what a valid event stream says about a run: the lifecycle
// events, the measured batches with their phase windows, and every request.
// The parent turns the phase windows into energy windows.
type Summary struct {
	Hello      Hello
	Loaded     *Loaded
	WarmupDone *WarmupDone
	// WarmupDoneNs is the t_ns of warmup_done: the earliest moment the
	// measured window may start.
	WarmupDoneNs int64
	Batches      []Batch
	Requests     []Request // ordered by Index
	Done         *Done
	DoneNs       int64
	// Error is set when the worker reported a failure (the stream is still
	// well-formed; the run failed).
	Error *Error
	Logs  []Log
}

// Batch is one measured batch: its prefill window and, when it decoded at
// least one step, its decode window (CLOCK_MONOTONIC ns).
type Batch struct {
	Index          int
	Size           int
	PrefillStartNs int64
	PrefillEndNs   int64
	DecodeStartNs  int64 // 0 when the batch had no decode phase
	DecodeEndNs    int64
	// InputTokens is the prefill end's count; OutputTokens the sum of the
	// prefill and decode ends' counts.
	InputTokens  int
	OutputTokens int
}

// Checker validates a worker's event stream as it arrives, one event at a
// time, so the parent can stop a misbehaving worker early. The rules are
// those of docs/worker-protocol.md ("Ordering" and "Consistency"):
//
//   - hello is first and speaks ProtocolVersion; loaded, warmup_done and
//     done appear once each, in that order; done or error is last.
//   - phases are sequential: at most one is open; each batch (indices 0, 1,
//     2, … in order) has one prefill start/end pair, then at most one decode
//     pair; phase timestamps never go backwards.
//   - requests come after warmup_done, have unique indices 0…n−1, belong to
//     a started batch; per batch, the requests' count equals batch_size,
//     their input tokens equal the prefill's and their output tokens equal
//     prefill + decode output tokens; done's totals equal the sums.
type Checker struct {
	n       int // events seen
	sum     Summary
	state   int
	open    *Phase // the open phase, if any
	lastTNs int64  // last phase timestamp
	reqSeen map[int]bool
}

// Checker states, in the order the stream must pass through them.
const (
	stStart = iota
	stHello
	stLoaded
	stMeasuring
	stFinished
)

// NewChecker returns a Checker expecting hello first.
func NewChecker() *Checker { return &Checker{reqSeen: map[int]bool{}} }

// StreamError is an ordering or consistency violation at one event.
type StreamError struct {
	Event int    // 1-based position in the stream
	Kind  string // the event's kind
	Err   error
}

func (e *StreamError) Error() string {
	return fmt.Sprintf("worker event %d (%s): %v", e.Event, e.Kind, e.Err)
}

func (e *StreamError) Unwrap() error { return e.Err }

// ErrProtocolVersion is wrapped by the error for a hello whose protocol
// version this llem does not speak.
var ErrProtocolVersion = errors.New("protocol version mismatch")

// Add checks one event against the stream so far.
func (c *Checker) Add(ev Event) error {
	c.n++
	if err := c.add(ev); err != nil {
		return &StreamError{Event: c.n, Kind: ev.Kind, Err: err}
	}
	return nil
}

func (c *Checker) add(ev Event) error {
	if c.state == stFinished {
		return errors.New("event after done/error (done or error must be the last event)")
	}
	if c.state == stStart {
		if ev.Hello == nil {
			return errors.New("the first event must be hello")
		}
		if ev.Hello.ProtocolVersion != ProtocolVersion {
			return fmt.Errorf("%w: worker speaks protocol %d, this llem speaks %d (use a worker and an llem of matching versions)",
				ErrProtocolVersion, ev.Hello.ProtocolVersion, ProtocolVersion)
		}
		c.sum.Hello = *ev.Hello
		c.state = stHello
		return nil
	}
	switch {
	case ev.Unknown != nil:
		return nil // a lenient decoder already warned
	case ev.Hello != nil:
		return errors.New("hello may appear only once, as the first event")
	case ev.Log != nil:
		c.sum.Logs = append(c.sum.Logs, *ev.Log)
		return nil
	case ev.Error != nil:
		c.sum.Error = ev.Error
		c.state = stFinished
		return nil
	case ev.Loaded != nil:
		if c.state != stHello {
			return errors.New("loaded must come once, after hello and before warmup_done")
		}
		c.sum.Loaded = ev.Loaded
		c.state = stLoaded
		return nil
	case ev.WarmupDone != nil:
		if c.state != stLoaded {
			return errors.New("warmup_done must come once, after loaded")
		}
		c.sum.WarmupDone = ev.WarmupDone
		c.sum.WarmupDoneNs = ev.TNs
		c.state = stMeasuring
		return nil
	case ev.Phase != nil:
		if c.state != stMeasuring {
			return errors.New("phase events must come after warmup_done")
		}
		return c.phase(ev.TNs, ev.Phase)
	case ev.Request != nil:
		if c.state != stMeasuring {
			return errors.New("request events must come after warmup_done")
		}
		return c.request(ev.Request)
	case ev.Done != nil:
		if c.state != stMeasuring {
			return errors.New("done must come after warmup_done")
		}
		if err := c.done(ev.Done); err != nil {
			return err
		}
		c.sum.Done = ev.Done
		c.sum.DoneNs = ev.TNs
		c.state = stFinished
		return nil
	}
	return fmt.Errorf("event without a payload")
}

func (c *Checker) phase(tNs int64, p *Phase) error {
	if tNs < c.lastTNs {
		return fmt.Errorf("phase t_ns %d is before the previous phase event's %d", tNs, c.lastTNs)
	}
	c.lastTNs = tNs
	bs := c.sum.Batches
	if p.State == StateEnd {
		o := c.open
		if o == nil || o.Name != p.Name || o.Batch != p.Batch {
			return fmt.Errorf("%s end of batch %d without its start", p.Name, p.Batch)
		}
		if p.BatchSize != o.BatchSize {
			return fmt.Errorf("batch %d: batch_size %d at end, %d at start", p.Batch, p.BatchSize, o.BatchSize)
		}
		b := &bs[len(bs)-1]
		if p.Name == PhasePrefill {
			b.PrefillEndNs = tNs
			b.InputTokens = p.InputTokens
		} else {
			b.DecodeEndNs = tNs
		}
		b.OutputTokens += p.OutputTokens
		c.open = nil
		return nil
	}
	if c.open != nil {
		return fmt.Errorf("%s start of batch %d while %s of batch %d is open (phases are sequential)",
			p.Name, p.Batch, c.open.Name, c.open.Batch)
	}
	switch p.Name {
	case PhasePrefill:
		if p.Batch != len(bs) {
			return fmt.Errorf("prefill of batch %d, want batch %d (batches are numbered 0, 1, 2, … in order, one prefill each)", p.Batch, len(bs))
		}
		c.sum.Batches = append(bs, Batch{Index: p.Batch, Size: p.BatchSize, PrefillStartNs: tNs})
	case PhaseDecode:
		if len(bs) == 0 || p.Batch != len(bs)-1 {
			return fmt.Errorf("decode of batch %d must follow that batch's prefill", p.Batch)
		}
		b := &bs[len(bs)-1]
		if b.DecodeStartNs != 0 {
			return fmt.Errorf("second decode phase for batch %d", p.Batch)
		}
		if p.BatchSize != b.Size {
			return fmt.Errorf("batch %d: decode batch_size %d, prefill said %d", p.Batch, p.BatchSize, b.Size)
		}
		b.DecodeStartNs = tNs
	}
	cp := *p
	c.open = &cp
	return nil
}

func (c *Checker) request(r *Request) error {
	if c.reqSeen[r.Index] {
		return fmt.Errorf("request index %d reported twice", r.Index)
	}
	if r.Batch >= len(c.sum.Batches) {
		return fmt.Errorf("request %d names batch %d, which has not started", r.Index, r.Batch)
	}
	c.reqSeen[r.Index] = true
	c.sum.Requests = append(c.sum.Requests, *r)
	return nil
}

// done checks the totals and per-batch sums once every request is in.
func (c *Checker) done(d *Done) error {
	if c.open != nil {
		return fmt.Errorf("done while %s of batch %d is open", c.open.Name, c.open.Batch)
	}
	if m := d.Memory; m != nil {
		if m.PeakAllocatedBytes < 0 || m.PeakReservedBytes < 0 || m.KVCacheBytes < 0 || m.WeightsBytes < 0 {
			return fmt.Errorf("done.memory: byte counts must be ≥ 0, got %+v", *m)
		}
		if m.Reporter == "" {
			return fmt.Errorf("done.memory: reporter is required (what the numbers were read from)")
		}
		if m.PeakAllocatedBytes > 0 && m.PeakReservedBytes > 0 && m.PeakAllocatedBytes > m.PeakReservedBytes {
			return fmt.Errorf("done.memory: peak_allocated_bytes %d exceeds peak_reserved_bytes %d (the allocator reserves what it allocates)", m.PeakAllocatedBytes, m.PeakReservedBytes)
		}
	}
	switch d.PhaseSplitMethod {
	case "", PhaseSplitTimestamps:
	case PhaseSplitPrefillPass:
		if len(c.sum.Batches) != 1 || c.sum.Batches[0].DecodeStartNs == 0 {
			return fmt.Errorf("phase_split_method %q needs exactly one batch with a prefill and a decode pair, got %d batch(es)", d.PhaseSplitMethod, len(c.sum.Batches))
		}
	default:
		return fmt.Errorf("phase_split_method %q: want %q or %q", d.PhaseSplitMethod, PhaseSplitTimestamps, PhaseSplitPrefillPass)
	}
	n := len(c.sum.Requests)
	if d.Requests != n {
		return fmt.Errorf("done says %d requests, %d request events were sent", d.Requests, n)
	}
	type agg struct{ n, in, out int }
	per := make([]agg, len(c.sum.Batches))
	in, out := 0, 0
	ordered := make([]Request, n)
	for _, r := range c.sum.Requests {
		if r.Index >= n {
			return fmt.Errorf("request indices must be 0…%d, got %d", n-1, r.Index)
		}
		ordered[r.Index] = r
		per[r.Batch].n++
		per[r.Batch].in += r.InputTokens
		per[r.Batch].out += r.OutputTokens
		in += r.InputTokens
		out += r.OutputTokens
	}
	c.sum.Requests = ordered
	for i, b := range c.sum.Batches {
		a := per[i]
		switch {
		case a.n != b.Size:
			return fmt.Errorf("batch %d: batch_size %d but %d request events", i, b.Size, a.n)
		case a.in != b.InputTokens:
			return fmt.Errorf("batch %d: prefill input_tokens %d but its requests sum to %d", i, b.InputTokens, a.in)
		case a.out != b.OutputTokens:
			return fmt.Errorf("batch %d: prefill+decode output_tokens %d but its requests sum to %d", i, b.OutputTokens, a.out)
		}
	}
	if d.InputTokens != in || d.OutputTokens != out {
		return fmt.Errorf("done says %d input / %d output tokens, requests sum to %d / %d",
			d.InputTokens, d.OutputTokens, in, out)
	}
	return nil
}

// Finish checks that the stream ended properly and returns its summary. A
// stream that ends with an error event is well-formed: Finish returns the
// summary (with Error set) and a nil error.
func (c *Checker) Finish() (Summary, error) {
	if c.state != stFinished {
		what := "no events"
		if c.n > 0 {
			what = fmt.Sprintf("%d events", c.n)
		}
		return c.sum, fmt.Errorf("worker stream ended after %s without done or error", what)
	}
	return c.sum, nil
}

// Validate checks a whole recorded stream.
func Validate(events []Event) (Summary, error) {
	c := NewChecker()
	for _, ev := range events {
		if err := c.Add(ev); err != nil {
			return c.sum, err
		}
	}
	return c.Finish()
}

// Interval is a CLOCK_MONOTONIC window [StartNs, EndNs).
type Interval struct {
	StartNs, EndNs int64
}

// Window is the measured window: from the first prefill start to the last
// phase end; ok is false when no batch ran.
func (s Summary) Window() (w Interval, ok bool) {
	if len(s.Batches) == 0 {
		return Interval{}, false
	}
	last := s.Batches[len(s.Batches)-1]
	end := last.PrefillEndNs
	if last.DecodeEndNs != 0 {
		end = last.DecodeEndNs
	}
	return Interval{StartNs: s.Batches[0].PrefillStartNs, EndNs: end}, true
}

// Phases returns the intervals of one phase (PhasePrefill or PhaseDecode)
// over all batches, in order; batches without that phase are skipped.
func (s Summary) Phases(name string) []Interval {
	var out []Interval
	for _, b := range s.Batches {
		switch {
		case name == PhasePrefill:
			out = append(out, Interval{b.PrefillStartNs, b.PrefillEndNs})
		case name == PhaseDecode && b.DecodeStartNs != 0:
			out = append(out, Interval{b.DecodeStartNs, b.DecodeEndNs})
		}
	}
	return out
}
