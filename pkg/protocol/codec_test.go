package protocol

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// fixedClock makes Emit deterministic.
func fixedClock(start int64) func() int64 {
	t := start
	return func() int64 { t += 10; return t }
}

func TestRoundTrip(t *testing.T) {
	payloads := []any{
		Hello{Backend: "native", ProtocolVersion: ProtocolVersion, Versions: map[string]string{"go": "go1.26"}, PID: 7},
		Loaded{Model: "random:llama-15m", Architecture: "LlamaForCausalLM", Parameters: 15_000_000, Layers: 6, DType: "fp32", MemoryBytes: 60 << 20, LoadTimeNs: 1234},
		WarmupDone{Prompts: 0},
		&Phase{Name: PhasePrefill, State: StateStart, Batch: 0, BatchSize: 2},
		Phase{Name: PhasePrefill, State: StateEnd, Batch: 0, BatchSize: 2, InputTokens: 10, OutputTokens: 2},
		Request{Index: 1, Batch: 0, InputTokens: 5, OutputTokens: 3, StartNs: 100, TTFTNs: 5, EndNs: 200, ITLNs: []int64{1, 2}, FinishReason: "length"},
		Log{Level: "info", Message: "héllo\n\"quoted\""},
		Done{Requests: 2, InputTokens: 10, OutputTokens: 6},
		Error{Kind: ErrKindOOM, Message: "out of memory", Hint: "use a smaller batch"},
	}
	var buf bytes.Buffer
	enc := NewEncoder(&buf)
	enc.now = fixedClock(1000)
	for _, p := range payloads {
		if err := enc.Emit(p); err != nil {
			t.Fatalf("emit %T: %v", p, err)
		}
	}
	dec := NewDecoder(&buf)
	for i, want := range payloads {
		ev, err := dec.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.TNs != int64(1010+10*i) {
			t.Errorf("event %d: t_ns = %d", i, ev.TNs)
		}
		got := reflect.ValueOf(ev.target0()).Elem().Interface()
		w := reflect.Indirect(reflect.ValueOf(want)).Interface()
		if !reflect.DeepEqual(got, w) {
			t.Errorf("event %d: got %+v, want %+v", i, got, w)
		}
	}
	if _, err := dec.Next(); err != io.EOF {
		t.Fatalf("after last event: %v, want io.EOF", err)
	}
}

// target0 returns the decoded payload pointer without reallocating it.
func (ev *Event) target0() any {
	for _, p := range []any{ev.Hello, ev.Loaded, ev.WarmupDone, ev.Phase, ev.Request, ev.Log, ev.Done, ev.Error} {
		if !reflect.ValueOf(p).IsNil() {
			return p
		}
	}
	return nil
}

func TestEmitRejects(t *testing.T) {
	enc := NewEncoder(io.Discard)
	for _, tc := range []struct {
		name    string
		payload any
	}{
		{"not a payload", struct{}{}},
		{"bad phase name", Phase{Name: "sample", State: StateStart, BatchSize: 1}},
		{"bad error kind", Error{Kind: "boom", Message: "x"}},
		{"itl length", Request{OutputTokens: 3, StartNs: 1, EndNs: 2, ITLNs: []int64{1}}},
	} {
		if err := enc.Emit(tc.payload); err == nil {
			t.Errorf("%s: Emit accepted %+v", tc.name, tc.payload)
		}
	}
	if err := enc.EmitAt(0, Log{Level: "info", Message: "x"}); err == nil {
		t.Error("EmitAt(0) accepted a zero timestamp")
	}
}

func TestDecodeLineErrors(t *testing.T) {
	for _, tc := range []struct {
		line, want string
	}{
		{`not json`, "not a JSON object"},
		{`[1,2]`, "not a JSON object"},
		{`null`, "not a JSON object"},
		{`{"t_ns":1}`, `missing "event"`},
		{`{"event":3,"t_ns":1}`, `"event" is not a string`},
		{`{"event":"log","level":"info","message":"x"}`, `missing "t_ns"`},
		{`{"event":"log","t_ns":0,"level":"info","message":"x"}`, `"t_ns" must be a positive integer`},
		{`{"event":"log","t_ns":1.5,"level":"info","message":"x"}`, `"t_ns" must be a positive integer`},
		{`{"event":"log","t_ns":"1","level":"info","message":"x"}`, `"t_ns" must be a positive integer`},
		{`{"event":"sample","t_ns":1}`, `unknown event "sample"`},
		{`{"event":"log","t_ns":1,"level":"info","message":"x","extra":1}`, `unknown field "extra"`},
		{`{"event":"log","t_ns":1,"level":"info"}`, `missing "message"`},
		{`{"event":"log","t_ns":1,"level":"loud","message":"x"}`, `"level" is "loud"`},
		{`{"event":"done","t_ns":1,"requests":1,"input_tokens":"2","output_tokens":3}`, "cannot unmarshal string"},
		{`{"event":"done","t_ns":1,"requests":1,"input_tokens":null,"output_tokens":3}`, `missing "input_tokens"`},
		{`{"event":"done","t_ns":1,"requests":1,"input_tokens":2,"output_tokens":3,"memory":{"kv_cache_byte":1,"reporter":"x"}}`, `unknown field "kv_cache_byte"`},
		{`{"event":"hello","t_ns":1,"backend":"","protocol_version":1,"versions":{}}`, `"backend" is empty`},
		{`{"event":"phase","t_ns":1,"name":"prefill","state":"start","batch":0,"batch_size":0}`, `"batch_size" ≥ 1`},
		{`{"event":"phase","t_ns":1,"name":"prefill","state":"start","batch":0,"batch_size":1,"input_tokens":3}`, "belong on the end event"},
		{`{"event":"request","t_ns":9,"index":0,"batch":0,"input_tokens":1,"output_tokens":1,"start_ns":10,"ttft_ns":20,"end_ns":15}`, `"ttft_ns" must lie within`},
		{`{"event":"request","t_ns":9,"index":0,"batch":0,"input_tokens":1,"output_tokens":1,"start_ns":10,"ttft_ns":2,"end_ns":15,"finish_reason":"tired"}`, `"finish_reason" is "tired"`},
		{`{"event":"error","t_ns":1,"kind":"crash","message":"x"}`, `"kind" is "crash"`},
	} {
		_, err := DecodeLine([]byte(tc.line))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeLine(%s) = %v, want error containing %q", tc.line, err, tc.want)
		}
	}
}

func TestDecoderNamesLine(t *testing.T) {
	in := `{"event":"log","t_ns":1,"level":"info","message":"ok"}` + "\n\n" + `{"event":"log","t_ns":2}` + "\n"
	dec := NewDecoder(strings.NewReader(in))
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := dec.Next()
	var le *LineError
	if !errors.As(err, &le) || le.Line != 3 || !strings.Contains(err.Error(), "worker output line 3") {
		t.Fatalf("got %v, want a LineError for line 3", err)
	}
}

func TestLenientDecoder(t *testing.T) {
	in := `{"event":"gpu_stats","t_ns":5,"util":0.9}` + "\n" +
		`{"event":"log","t_ns":6,"level":"info","message":"m","color":"red","z":1}` + "\n" +
		`{"event":"log","t_ns":7,"level":"info"}` + "\n"
	dec := NewDecoder(strings.NewReader(in))
	dec.Lenient = true
	ev, err := dec.Next()
	if err != nil || ev.Unknown == nil || len(ev.Warnings) != 1 {
		t.Fatalf("unknown kind: %+v, %v", ev, err)
	}
	ev, err = dec.Next()
	if err != nil || ev.Log == nil || ev.Log.Message != "m" || len(ev.Warnings) != 2 {
		t.Fatalf("unknown fields: %+v, %v", ev, err)
	}
	if _, err := dec.Next(); err == nil {
		t.Fatal("lenient decoder accepted a missing required field")
	}
}

func FuzzDecodeLine(f *testing.F) {
	for _, s := range []string{
		`{"event":"hello","t_ns":1,"backend":"native","protocol_version":1,"versions":{"go":"1"}}`,
		`{"event":"request","t_ns":9,"index":0,"batch":0,"input_tokens":1,"output_tokens":2,"start_ns":10,"ttft_ns":2,"end_ns":15,"itl_ns":[3]}`,
		`{"event":"phase","t_ns":1,"name":"decode","state":"end","batch":0,"batch_size":1,"output_tokens":4}`,
		`{"event":"error","t_ns":1,"kind":"oom","message":"x","hint":"y"}`,
		`{"event":"done","t_ns":1,"requests":0,"input_tokens":0,"output_tokens":0}`,
		`{"event":"done","t_ns":1,"requests":0,"input_tokens":0,"output_tokens":0,"memory":{"peak_allocated_bytes":1,"peak_reserved_bytes":2,"kv_cache_bytes":3,"weights_bytes":4,"reporter":"torch.cuda"}}`,
		`{}`, `null`, `{"event":"log","t_ns":-1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := DecodeLine(raw)
		if err != nil {
			return
		}
		if ev.TNs <= 0 || ev.target0() == nil {
			t.Fatalf("accepted %q as %+v", raw, ev)
		}
		// Whatever decodes must re-encode and decode to the same payload.
		var buf bytes.Buffer
		if err := NewEncoder(&buf).EmitAt(ev.TNs, ev.target0()); err != nil {
			t.Fatalf("re-encode %q: %v", raw, err)
		}
		ev2, err := DecodeLine(bytes.TrimSpace(buf.Bytes()))
		if err != nil {
			t.Fatalf("decode re-encoded %q: %v", buf.Bytes(), err)
		}
		if !reflect.DeepEqual(ev.target0(), ev2.target0()) || ev.TNs != ev2.TNs {
			t.Fatalf("round trip changed %q: %+v vs %+v", raw, ev, ev2)
		}
	})
}
