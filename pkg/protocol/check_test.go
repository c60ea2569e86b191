package protocol

import (
	"errors"
	"strings"
	"testing"
)

// validStream is a two-batch run: batch 0 with requests 0 and 1, batch 1
// with request 2, which stops after its first token (no decode phase).
func validStream() []Event {
	t := int64(100)
	at := func() int64 { t += 10; return t }
	ph := func(name, state string, batch, size, in, out int) Event {
		return Event{Kind: KindPhase, TNs: at(), Phase: &Phase{Name: name, State: state, Batch: batch, BatchSize: size, InputTokens: in, OutputTokens: out}}
	}
	req := func(i, b, in, out int) Event {
		return Event{Kind: KindRequest, TNs: at(), Request: &Request{Index: i, Batch: b, InputTokens: in, OutputTokens: out, StartNs: 50, TTFTNs: 5, EndNs: 60}}
	}
	return []Event{
		{Kind: KindHello, TNs: at(), Hello: &Hello{Backend: "native", ProtocolVersion: ProtocolVersion}},
		{Kind: KindLog, TNs: at(), Log: &Log{Level: "info", Message: "loading"}},
		{Kind: KindLoaded, TNs: at(), Loaded: &Loaded{Model: "m", Parameters: 1, DType: "fp32"}},
		{Kind: KindWarmupDone, TNs: at(), WarmupDone: &WarmupDone{Prompts: 2}},
		ph(PhasePrefill, StateStart, 0, 2, 0, 0),
		ph(PhasePrefill, StateEnd, 0, 2, 7, 2),
		ph(PhaseDecode, StateStart, 0, 2, 0, 0),
		ph(PhaseDecode, StateEnd, 0, 2, 0, 5),
		req(1, 0, 4, 4),
		req(0, 0, 3, 3),
		ph(PhasePrefill, StateStart, 1, 1, 0, 0),
		ph(PhasePrefill, StateEnd, 1, 1, 5, 1),
		req(2, 1, 5, 1),
		{Kind: KindDone, TNs: at(), Done: &Done{Requests: 3, InputTokens: 12, OutputTokens: 8}},
	}
}

func TestValidateValid(t *testing.T) {
	evs := validStream()
	evs[13].Done.Memory = &Memory{PeakAllocatedBytes: 10, PeakReservedBytes: 20, KVCacheBytes: 5, WeightsBytes: 4, Reporter: "torch.cuda"}
	sum, err := Validate(evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Batches) != 2 || sum.Batches[0].OutputTokens != 7 || sum.Batches[1].DecodeStartNs != 0 {
		t.Errorf("batches = %+v", sum.Batches)
	}
	if sum.Requests[0].Index != 0 || sum.Requests[1].InputTokens != 4 {
		t.Errorf("requests not ordered by index: %+v", sum.Requests)
	}
	if sum.Done == nil || sum.WarmupDoneNs == 0 || len(sum.Logs) != 1 || sum.Done.Memory.PeakReservedBytes != 20 {
		t.Errorf("summary = %+v", sum)
	}
}

// TestValidatePrefillPass: the vLLM/TensorRT-LLM shape — one batch whose
// prefill pair is the max_tokens=1 pass and whose decode pair is the full
// generation — is valid with phase_split_method prefill-pass.
func TestValidatePrefillPass(t *testing.T) {
	evs := append(validStream()[:10:10], Event{Kind: KindDone, TNs: 500, Done: &Done{Requests: 2, InputTokens: 7, OutputTokens: 7, PhaseSplitMethod: PhaseSplitPrefillPass}})
	sum, err := Validate(evs)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Done.PhaseSplitMethod != PhaseSplitPrefillPass || len(sum.Batches) != 1 {
		t.Fatalf("summary = %+v", sum)
	}
}

func TestValidateErrorRun(t *testing.T) {
	evs := validStream()[:5]
	evs = append(evs, Event{Kind: KindError, TNs: 999, Error: &Error{Kind: ErrKindOOM, Message: "oom"}})
	sum, err := Validate(evs)
	if err != nil || sum.Error == nil || sum.Error.Kind != ErrKindOOM {
		t.Fatalf("error run: %+v, %v", sum.Error, err)
	}
}

func TestValidateViolations(t *testing.T) {
	type mut func([]Event) []Event
	del := func(i int) mut {
		return func(e []Event) []Event { return append(e[:i:i], e[i+1:]...) }
	}
	swap := func(i, j int) mut {
		return func(e []Event) []Event { e[i], e[j] = e[j], e[i]; return e }
	}
	for _, tc := range []struct {
		name string
		mut  mut
		want string
	}{
		{"hello not first", swap(0, 1), "first event must be hello"},
		{"wrong protocol", func(e []Event) []Event { e[0].Hello.ProtocolVersion = 99; return e }, "worker speaks protocol 99"},
		{"two hellos", func(e []Event) []Event { return append(e[:2:2], append([]Event{e[0]}, e[2:]...)...) }, "only once"},
		{"no loaded", del(2), "warmup_done must come once, after loaded"},
		{"no warmup_done", del(3), "phase events must come after warmup_done"},
		{"end without start", del(4), "prefill end of batch 0 without its start"},
		{"overlapping", swap(5, 6), "while prefill of batch 0 is open"},
		{"batch skipped", func(e []Event) []Event { e[10].Phase.Batch, e[11].Phase.Batch, e[12].Request.Batch = 2, 2, 1; return e }, "want batch 1"},
		{"time backwards", func(e []Event) []Event { e[7].TNs = 1; return e }, "before the previous phase event"},
		{"duplicate request", func(e []Event) []Event { e[9].Request.Index = 1; return e }, "reported twice"},
		{"request of future batch", func(e []Event) []Event { e[8].Request.Batch = 1; return e }, "has not started"},
		{"missing request", del(12), "done says 3 requests, 2"},
		{"input mismatch", func(e []Event) []Event { e[5].Phase.InputTokens = 8; return e }, "prefill input_tokens 8 but its requests sum to 7"},
		{"output mismatch", func(e []Event) []Event { e[7].Phase.OutputTokens = 4; return e }, "output_tokens 6 but its requests sum to 7"},
		{"done totals", func(e []Event) []Event { e[13].Done.OutputTokens = 9; return e }, "requests sum to 12 / 8"},
		{"batch size", func(e []Event) []Event { e[10].Phase.BatchSize, e[11].Phase.BatchSize = 2, 2; return e }, "batch_size 2 but 1 request events"},
		{"event after done", func(e []Event) []Event { return append(e, e[1]) }, "after done/error"},
		{"no end", del(13), "without done or error"},
		{"open phase at done", func(e []Event) []Event { return append(e[:11:11], e[12], e[13]) }, "prefill of batch 1 is open"},
		{"unknown split method", func(e []Event) []Event { e[13].Done.PhaseSplitMethod = "guess"; return e }, `phase_split_method "guess"`},
		{"negative memory", func(e []Event) []Event { e[13].Done.Memory = &Memory{KVCacheBytes: -1, Reporter: "x"}; return e }, "byte counts must be ≥ 0"},
		{"memory without reporter", func(e []Event) []Event { e[13].Done.Memory = &Memory{KVCacheBytes: 1}; return e }, "reporter is required"},
		{"allocated over reserved", func(e []Event) []Event {
			e[13].Done.Memory = &Memory{PeakAllocatedBytes: 2, PeakReservedBytes: 1, Reporter: "torch.cuda"}
			return e
		}, "exceeds peak_reserved_bytes"},
		{"prefill-pass with two batches", func(e []Event) []Event { e[13].Done.PhaseSplitMethod = PhaseSplitPrefillPass; return e }, "needs exactly one batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.mut(validStream()))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want error containing %q", err, tc.want)
			}
		})
	}
	_, err := Validate(func(e []Event) []Event { e[0].Hello.ProtocolVersion = 2; return e }(validStream()))
	if !errors.Is(err, ErrProtocolVersion) {
		t.Errorf("protocol mismatch does not wrap ErrProtocolVersion: %v", err)
	}
}

func TestSummaryWindows(t *testing.T) {
	sum, err := Validate(validStream())
	if err != nil {
		t.Fatal(err)
	}
	w, ok := sum.Window()
	// validStream's phase events are at t = 150, 160, 170, 180 (batch 0)
	// and 210, 220 (batch 1, prefill only).
	if !ok || w != (Interval{150, 220}) {
		t.Errorf("window = %+v, %v", w, ok)
	}
	if got := sum.Phases(PhasePrefill); len(got) != 2 || got[0] != (Interval{150, 160}) || got[1] != (Interval{210, 220}) {
		t.Errorf("prefill = %+v", got)
	}
	if got := sum.Phases(PhaseDecode); len(got) != 1 || got[0] != (Interval{170, 180}) {
		t.Errorf("decode = %+v", got)
	}
	if _, ok := (Summary{}).Window(); ok {
		t.Error("empty summary has a window")
	}
}
