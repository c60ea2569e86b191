package worker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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

// Emit stamps payload with the current time and writes it.
func (e *Encoder) Emit(payload any) error { return e.EmitAt(e.now(), payload) }

// EmitAt writes payload with an explicit timestamp (for events whose moment
// was captured earlier, e.g. right after a device synchronize).
func (e *Encoder) EmitAt(tNs int64, payload any) error {
	kind, err := kindOf(payload)
	if err != nil {
		return err
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", kind, err)
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
	e.mu.Lock()
	defer e.mu.Unlock()
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

// Decoder reads events strictly: an unknown event kind, an unknown field, a
// missing t_ns or malformed JSON is an error naming the line.
type Decoder struct {
	sc   *bufio.Scanner
	line int
}

// NewDecoder reads JSON lines from r.
func NewDecoder(r io.Reader) *Decoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	return &Decoder{sc: sc}
}

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

// Next returns the next event, or io.EOF at the end of the stream.
func (d *Decoder) Next() (Event, error) {
	for d.sc.Scan() {
		d.line++
		raw := bytes.TrimSpace(d.sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		ev, err := DecodeLine(raw)
		if err != nil {
			return Event{}, &LineError{Line: d.line, Text: string(raw), Err: err}
		}
		return ev, nil
	}
	if err := d.sc.Err(); err != nil {
		return Event{}, err
	}
	return Event{}, io.EOF
}

// DecodeLine decodes one JSON line strictly.
func DecodeLine(raw []byte) (Event, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Event{}, fmt.Errorf("not a JSON object: %w", err)
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
	body, _ := json.Marshal(fields)

	var target any
	switch ev.Kind {
	case KindHello:
		ev.Hello = new(Hello)
		target = ev.Hello
	case KindLoaded:
		ev.Loaded = new(Loaded)
		target = ev.Loaded
	case KindWarmupDone:
		ev.WarmupDone = new(WarmupDone)
		target = ev.WarmupDone
	case KindPhase:
		ev.Phase = new(Phase)
		target = ev.Phase
	case KindRequest:
		ev.Request = new(Request)
		target = ev.Request
	case KindLog:
		ev.Log = new(Log)
		target = ev.Log
	case KindDone:
		ev.Done = new(Done)
		target = ev.Done
	case KindError:
		ev.Error = new(Error)
		target = ev.Error
	default:
		return Event{}, fmt.Errorf("unknown event %q", ev.Kind)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(target); err != nil {
		return Event{}, fmt.Errorf("%s event: %w", ev.Kind, err)
	}
	return ev, nil
}
