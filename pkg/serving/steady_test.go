package serving

import (
	"errors"
	"math"
	"testing"
)

const ms = int64(1e6)

// timeline builds requests sent every gapMs from t=1 s, each waiting
// queueMs, then streaming tokens every tokMs; slow(i) can stretch one.
func timeline(n int, gapMs, queueMs, tokMs int64, tokens int, slow func(i int) int64) []Trace {
	var ts []Trace
	for i := range n {
		sent := 1000*ms + int64(i)*gapMs*ms
		first := sent + queueMs*ms
		step := tokMs * ms
		if slow != nil {
			step *= slow(i)
		}
		tr := Trace{Index: i, ScheduledNs: sent, SentNs: sent, PromptTokens: 8, OutputTokens: tokens}
		for j := range tokens {
			tr.TokenNs = append(tr.TokenNs, first+int64(j)*step)
		}
		tr.EndNs = tr.TokenNs[tokens-1]
		ts = append(ts, tr)
	}
	return ts
}

var testParams = SteadyParams{BinNs: 250 * ms, Tolerance: 0.25, MinSpanNs: 1000 * ms}

// A server at a constant load: the steady state spans almost all of it,
// starting after the first token and ending before the drain.
func TestDetectSteady(t *testing.T) {
	ts := timeline(100, 50, 10, 10, 20, nil) // 20 req/s, 200 ms each → ~4 running
	w, err := Detect(ts, testParams)
	if err != nil {
		t.Fatal(err)
	}
	first, lastEnd := ts[0].SentNs, ts[len(ts)-1].EndNs
	if w.StartNs < ts[0].TokenNs[0] || w.EndNs > lastEnd || w.EndNs <= w.StartNs {
		t.Fatalf("window %d..%d outside the load %d..%d", w.StartNs, w.EndNs, first, lastEnd)
	}
	if span := float64(w.EndNs-w.StartNs) / 1e9; span < 3.5 {
		t.Errorf("steady span %.2f s of a 5 s constant load, want ≥ 3.5 s", span)
	}
	if math.Abs(w.TargetRunning-3.8) > 0.5 {
		t.Errorf("target running %.2f, want ≈ 3.8 (20 req/s × 190 ms)", w.TargetRunning)
	}
	if math.Abs(w.TokenRate-400) > 40 {
		t.Errorf("token rate %.1f, want ≈ 400 tok/s", w.TokenRate)
	}
}

// Ramp-up and drain are outside the window: a saturated server (requests
// queue, the running count holds at the batch size) is steady only while
// its batch is full.
func TestDetectExcludesRampAndDrain(t *testing.T) {
	// Batch of 4: request i starts when request i-4 ends.
	var ts []Trace
	for i := range 120 {
		sent := 1000*ms + int64(i)*10*ms // 100 req/s offered
		start := sent
		if i >= 4 {
			start = max(sent, ts[i-4].EndNs)
		}
		tr := Trace{Index: i, ScheduledNs: sent, SentNs: sent, PromptTokens: 8, OutputTokens: 10}
		for j := range 10 {
			tr.TokenNs = append(tr.TokenNs, start+int64(j+1)*10*ms)
		}
		tr.EndNs = tr.TokenNs[9]
		ts = append(ts, tr)
	}
	w, err := Detect(ts, testParams)
	if err != nil {
		t.Fatal(err)
	}
	// Running counts from the first token: 90 of each request's 100 ms.
	if math.Abs(w.TargetRunning-3.6) > 0.3 {
		t.Errorf("target %.2f, want 3.6 (the batch size 4 × 90%% of each slot)", w.TargetRunning)
	}
	if w.StartNs < ts[3].TokenNs[0] {
		t.Errorf("window starts at %d, before the batch filled (4th first token at %d)", w.StartNs, ts[3].TokenNs[0])
	}
	drain := ts[len(ts)-5].EndNs // from here fewer than 4 run
	if w.EndNs > drain {
		t.Errorf("window ends at %d, inside the drain (from %d)", w.EndNs, drain)
	}
}

// A server that stalls in the middle is steady only on one side of it.
func TestDetectStall(t *testing.T) {
	ts := timeline(100, 50, 10, 10, 20, func(i int) int64 {
		if i >= 60 && i < 70 {
			return 5 // five times slower: the token rate collapses
		}
		return 1
	})
	w, err := Detect(ts, testParams)
	if err != nil {
		t.Fatal(err)
	}
	// The stall's first bin may still pass (the rate drops as the slow
	// requests take over); from one bin in, the window must stop.
	stall0, stall1 := ts[60].TokenNs[0]+testParams.BinNs, ts[69].EndNs
	if w.StartNs < stall1 && w.EndNs > stall0 {
		t.Errorf("window %d..%d overlaps the stall %d..%d", w.StartNs, w.EndNs, stall0, stall1)
	}
}

// Loads that never settle are flagged, with the reason.
func TestDetectNeverSteady(t *testing.T) {
	cases := map[string][]Trace{
		"too few requests": timeline(2, 50, 10, 10, 20, nil),
		"too short":        timeline(10, 50, 10, 10, 5, nil), // 0.5 s of load
		// Bursts of ten requests every 500 ms: the server idles between
		// them, nothing holds for 1 s.
		"bursts": bursts(10, 10, 500),
	}
	for name, ts := range cases {
		t.Run(name, func(t *testing.T) {
			w, err := Detect(ts, testParams)
			var nss *NoSteadyState
			if !errors.As(err, &nss) || nss.Reason == "" {
				t.Fatalf("window %+v, error %v: want a NoSteadyState with a reason", w, err)
			}
			t.Log(nss.Reason)
		})
	}
}

func TestDetectBadParams(t *testing.T) {
	if _, err := Detect(timeline(10, 50, 10, 10, 5, nil), SteadyParams{}); err == nil {
		t.Fatal("zero bin and tolerance accepted")
	}
}

// Attributed energies sum to the window's energy, and a request that
// processed more tokens gets more.
func TestAttribute(t *testing.T) {
	ts := timeline(20, 100, 10, 10, 10, nil)
	ts[5].PromptTokens = 200
	w0, w1 := ts[0].SentNs, ts[19].EndNs
	total := 42.0
	e := Attribute(ts, w0, w1, 50*ms, func(b0, b1 int64) float64 { return total * float64(b1-b0) / float64(w1-w0) })
	var sum float64
	for _, x := range e {
		sum += x
	}
	if math.Abs(sum-total) > 1e-9 {
		t.Fatalf("attributed %g J, window %g J", sum, total)
	}
	if e[5] <= e[4] {
		t.Errorf("request with 200 prompt tokens got %g J, one with 8 got %g J", e[5], e[4])
	}
	if n, mean, p50, _, _, mx := Percentiles(e); n != 20 || !(p50 > 0) || mx < mean {
		t.Errorf("percentiles n=%d mean=%g p50=%g max=%g", n, mean, p50, mx)
	}
}

func bursts(n, per int, everyMs int64) []Trace {
	var ts []Trace
	for b := range n {
		at := 1000*ms + int64(b)*everyMs*ms
		for i := range per {
			tr := Trace{Index: len(ts), ScheduledNs: at, SentNs: at, PromptTokens: 8, OutputTokens: 10}
			for j := range 10 {
				tr.TokenNs = append(tr.TokenNs, at+int64(j+1)*10*ms+int64(i)*ms)
			}
			tr.EndNs = tr.TokenNs[9]
			ts = append(ts, tr)
		}
	}
	return ts
}
