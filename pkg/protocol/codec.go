package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// Encoder writes events as JSON lines. It is safe for concurrent use.
type Encoder struct {
	mu  sync.Mutex
	w   io.Writer
	now func() int64
}

// NewEncoder returns an Encoder stamping events with CLOCK_MONOTONIC.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w, now: clock.Now} }

// Emit stamps payload with the current time and writes it. The time is read
// under the encoder's lock, so events from concurrent goroutines leave in
// t_ns order.
func (e *Encoder) Emit(payload any) error { return e.emit(0, payload) }

// EmitAt writes payload with an explicit timestamp (for events whose moment
// was captured earlier, e.g. right after a device synchronize).
func (e *Encoder) EmitAt(tNs int64, payload any) error {
	if tNs <= 0 {
		return fmt.Errorf("emit event: t_ns %d is not a CLOCK_MONOTONIC time", tNs)
	}
	return e.emit(tNs, payload)
}

// emit validates payload (so a worker bug surfaces in the worker, not as a
// confusing parent-side error) and writes one line; tNs 0 means now.
func (e *Encoder) emit(tNs int64, payload any) error {
	kind, err := kindOf(payload)
	if err != nil {
		return err
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", kind, err)
	}
	ev := Event{Kind: kind}
	if err := json.Unmarshal(body, ev.target()); err != nil {
		return fmt.Errorf("encode %s event: %w", kind, err)
	}
	if err := ev.validatePayload(); err != nil {
		return fmt.Errorf("encode %s event: %w", kind, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if tNs == 0 {
		tNs = e.now()
	}
	var line bytes.Buffer
	fmt.Fprintf(&line, `{"event":%q,"t_ns":%d`, kind, tNs)
	if len(body) > 2 { // not "{}"
		line.WriteByte(',')
		line.Write(body[1:])
	} else {
		line.WriteByte('}')
	}
	line.WriteByte('\n')
	_, err = e.w.Write(line.Bytes())
	return err
}

func kindOf(payload any) (string, error) {
	switch payload.(type) {
	case Hello, *Hello:
		return KindHello, nil
	case Loaded, *Loaded:
		return KindLoaded, nil
	case WarmupDone, *WarmupDone:
		return KindWarmupDone, nil
	case Phase, *Phase:
		return KindPhase, nil
	case Request, *Request:
		return KindRequest, nil
	case Log, *Log:
		return KindLog, nil
	case Done, *Done:
		return KindDone, nil
	case Error, *Error:
		return KindError, nil
	}
	return "", fmt.Errorf("worker: %T is not an event payload", payload)
}

// Decoder reads events. By default it is strict: an unknown event kind, an
// unknown field, a missing required field, a missing t_ns or malformed JSON
// is a *LineError naming the line. With Lenient set (production), unknown
// kinds and unknown fields are tolerated and reported in Event.Warnings, so a
// newer worker's additions do not break an older llem; everything else stays
// an error.
type Decoder struct {
	// Lenient tolerates unknown event kinds and unknown fields.
	Lenient bool

	sc   *bufio.Scanner
	line int
}

// NewDecoder reads JSON lines from r.
func NewDecoder(r io.Reader) *Decoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), MaxLineBytes)
	return &Decoder{sc: sc}
}

// MaxLineBytes is the longest event line a Decoder accepts.
const MaxLineBytes = 16 * 1024 * 1024

// LineError is a malformed line of worker output.
type LineError struct {
	Line int
	Text string
	Err  error
}

func (e *LineError) Error() string {
	text := e.Text
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	return fmt.Sprintf("worker output line %d: %v: %s", e.Line, e.Err, text)
}

func (e *LineError) Unwrap() error { return e.Err }

// Line returns the number of the last line read (1-based).
func (d *Decoder) Line() int { return d.line }

// Next returns the next event, or io.EOF at the end of the stream.
func (d *Decoder) Next() (Event, error) {
	for d.sc.Scan() {
		d.line++
		raw := bytes.TrimSpace(d.sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		ev, err := decodeLine(raw, d.Lenient)
		if err != nil {
			return Event{}, &LineError{Line: d.line, Text: string(raw), Err: err}
		}
		return ev, nil
	}
	if err := d.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("read worker output after line %d: %w", d.line, err)
	}
	return Event{}, io.EOF
}

// DecodeLine decodes one JSON line strictly.
func DecodeLine(raw []byte) (Event, error) { return decodeLine(raw, false) }

// required lists, per event kind, the payload fields that must be present.
// Fields left out here are optional; a missing optional number means 0.
var required = map[string][]string{
	KindHello:      {"backend", "protocol_version", "versions"},
	KindLoaded:     {"model", "parameters", "dtype"},
	KindWarmupDone: {"prompts"},
	KindPhase:      {"name", "state", "batch", "batch_size"},
	KindRequest:    {"index", "batch", "input_tokens", "output_tokens", "start_ns", "ttft_ns", "end_ns"},
	KindLog:        {"level", "message"},
	KindDone:       {"requests", "input_tokens", "output_tokens"},
	KindError:      {"kind", "message"},
}

func decodeLine(raw []byte, lenient bool) (Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Event{}, fmt.Errorf("not a JSON object: %w", err)
	}
	if fields == nil { // the literal null
		return Event{}, fmt.Errorf("not a JSON object: null")
	}
	var ev Event
	kindRaw, ok := fields["event"]
	if !ok {
		return Event{}, fmt.Errorf(`missing "event"`)
	}
	if err := json.Unmarshal(kindRaw, &ev.Kind); err != nil {
		return Event{}, fmt.Errorf(`"event" is not a string`)
	}
	tRaw, ok := fields["t_ns"]
	if !ok {
		return Event{}, fmt.Errorf(`%s event: missing "t_ns"`, ev.Kind)
	}
	if err := json.Unmarshal(tRaw, &ev.TNs); err != nil || ev.TNs <= 0 {
		return Event{}, fmt.Errorf(`%s event: "t_ns" must be a positive integer (CLOCK_MONOTONIC nanoseconds)`, ev.Kind)
	}
	delete(fields, "event")
	delete(fields, "t_ns")

	target := ev.target()
	if target == nil {
		if !lenient {
			return Event{}, fmt.Errorf("unknown event %q", ev.Kind)
		}
		ev.Unknown = append(json.RawMessage(nil), raw...)
		ev.Warnings = append(ev.Warnings, fmt.Sprintf("unknown event %q ignored", ev.Kind))
		return ev, nil
	}
	for _, name := range required[ev.Kind] {
		v, ok := fields[name]
		if !ok || string(v) == "null" {
			return Event{}, fmt.Errorf("%s event: missing %q", ev.Kind, name)
		}
	}
	if lenient {
		known := knownFields(target)
		for name := range fields {
			if !known[name] {
				ev.Warnings = append(ev.Warnings, fmt.Sprintf("%s event: unknown field %q ignored", ev.Kind, name))
				delete(fields, name)
			}
		}
		sort.Strings(ev.Warnings)
	}
	body, err := json.Marshal(fields)
	if err != nil {
		return Event{}, fmt.Errorf("%s event: %w", ev.Kind, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return Event{}, fmt.Errorf("%s event: %w", ev.Kind, err)
	}
	if err := ev.validatePayload(); err != nil {
		return Event{}, fmt.Errorf("%s event: %w", ev.Kind, err)
	}
	return ev, nil
}

// knownFields returns the JSON names of a payload struct's fields.
func knownFields(target any) map[string]bool {
	t := reflect.TypeOf(target).Elem()
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	return names
}

// validatePayload checks the values of one event on its own (enums, signs,
// per-request consistency); Checker checks the stream as a whole.
func (ev *Event) validatePayload() error {
	switch {
	case ev.Hello != nil:
		h := ev.Hello
		if h.Backend == "" {
			return errors.New(`"backend" is empty`)
		}
		if h.ProtocolVersion <= 0 {
			return errors.New(`"protocol_version" must be a positive integer`)
		}
	case ev.Loaded != nil:
		l := ev.Loaded
		if l.Model == "" {
			return errors.New(`"model" is empty`)
		}
		if l.Parameters < 0 || l.Layers < 0 || l.MemoryBytes < 0 || l.LoadTimeNs < 0 {
			return errors.New("counts and sizes must not be negative")
		}
	case ev.WarmupDone != nil:
		if ev.WarmupDone.Prompts < 0 {
			return errors.New(`"prompts" must not be negative`)
		}
	case ev.Phase != nil:
		p := ev.Phase
		if p.Name != PhasePrefill && p.Name != PhaseDecode {
			return fmt.Errorf(`"name" is %q, want "prefill" or "decode"`, p.Name)
		}
		if p.State != StateStart && p.State != StateEnd {
			return fmt.Errorf(`"state" is %q, want "start" or "end"`, p.State)
		}
		if p.Batch < 0 || p.BatchSize <= 0 {
			return errors.New(`"batch" must be ≥ 0 and "batch_size" ≥ 1`)
		}
		if p.InputTokens < 0 || p.OutputTokens < 0 {
			return errors.New("token counts must not be negative")
		}
		if p.State == StateStart && (p.InputTokens != 0 || p.OutputTokens != 0) {
			return errors.New("token counts belong on the end event, not the start")
		}
		if p.Name == PhaseDecode && p.InputTokens != 0 {
			return errors.New(`a decode phase has no "input_tokens"`)
		}
	case ev.Request != nil:
		r := ev.Request
		if r.Index < 0 || r.Batch < 0 || r.InputTokens < 0 || r.OutputTokens < 0 {
			return errors.New("index, batch and token counts must not be negative")
		}
		if r.StartNs <= 0 || r.EndNs < r.StartNs {
			return errors.New(`need 0 < "start_ns" ≤ "end_ns"`)
		}
		if r.TTFTNs < 0 || r.StartNs+r.TTFTNs > r.EndNs {
			return errors.New(`"ttft_ns" must lie within [0, end_ns − start_ns]`)
		}
		if len(r.ITLNs) > 0 && len(r.ITLNs) != r.OutputTokens-1 {
			return fmt.Errorf(`"itl_ns" has %d entries, want output_tokens − 1 = %d`, len(r.ITLNs), r.OutputTokens-1)
		}
		for _, d := range r.ITLNs {
			if d < 0 {
				return errors.New(`"itl_ns" entries must not be negative`)
			}
		}
		switch r.FinishReason {
		case "", "eos", "length", "stop":
		default:
			return fmt.Errorf(`"finish_reason" is %q, want "eos", "length" or "stop"`, r.FinishReason)
		}
	case ev.Log != nil:
		switch ev.Log.Level {
		case "debug", "info", "warn":
		default:
			return fmt.Errorf(`"level" is %q, want "debug", "info" or "warn"`, ev.Log.Level)
		}
	case ev.Done != nil:
		d := ev.Done
		if d.Requests < 0 || d.InputTokens < 0 || d.OutputTokens < 0 {
			return errors.New("counts must not be negative")
		}
	case ev.Error != nil:
		if !slices.Contains(ErrorKinds, ev.Error.Kind) {
			return fmt.Errorf(`"kind" is %q, want one of %s`, ev.Error.Kind, strings.Join(ErrorKinds, ", "))
		}
		if ev.Error.Message == "" {
			return errors.New(`"message" is empty`)
		}
	}
	return nil
}

// target allocates the payload for ev.Kind and returns a pointer to it, or
// nil for an unknown kind.
func (ev *Event) target() any {
	switch ev.Kind {
	case KindHello:
		ev.Hello = new(Hello)
		return ev.Hello
	case KindLoaded:
		ev.Loaded = new(Loaded)
		return ev.Loaded
	case KindWarmupDone:
		ev.WarmupDone = new(WarmupDone)
		return ev.WarmupDone
	case KindPhase:
		ev.Phase = new(Phase)
		return ev.Phase
	case KindRequest:
		ev.Request = new(Request)
		return ev.Request
	case KindLog:
		ev.Log = new(Log)
		return ev.Log
	case KindDone:
		ev.Done = new(Done)
		return ev.Done
	case KindError:
		ev.Error = new(Error)
		return ev.Error
	}
	return nil
}
