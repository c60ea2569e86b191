package serving

import (
	"fmt"
	"math"
	"slices"
)

// Trace is one request as the client saw it, on CLOCK_MONOTONIC (ns).
type Trace struct {
	Index        int     `json:"index"`
	ScheduledNs  int64   `json:"scheduled_ns"`
	SentNs       int64   `json:"sent_ns"`
	EndNs        int64   `json:"end_ns"`
	TokenNs      []int64 `json:"token_ns,omitempty"` // arrival of each streamed token
	PromptTokens int     `json:"prompt_tokens"`
	OutputTokens int     `json:"output_tokens"`
	Err          string  `json:"err,omitempty"`
	TimedOut     bool    `json:"timed_out,omitempty"`
}

// OK reports whether the request completed.
func (t *Trace) OK() bool { return t.Err == "" }

// SteadyParams are the steady-state rule's parameters (docs/serving.md).
type SteadyParams struct {
	BinNs     int64   // width of one bin of the signals
	Tolerance float64 // relative band around the target levels
	MinSpanNs int64   // shorter spans are not a steady state
}

// Window is a detected steady state.
type Window struct {
	StartNs, EndNs int64
	TargetRunning  float64 // K: the running level the server held
	TokenRate      float64 // median output tokens/s of the window's bins
	Bins           int
	BinNs          int64 // the bin width used (widened to ≥ 4 arrivals)
}

// NoSteadyState is why a run has no steady state.
type NoSteadyState struct{ Reason string }

func (e *NoSteadyState) Error() string { return "no steady state: " + e.Reason }

// Detect finds the steady-state window of a load run.
//
// The rule follows ML.ENERGY's RequestTracker (ml-energy/benchmark,
// mlenergy/llm/benchmark.py @ d6450a393492de62f79a1b62f817d8d11d3cb2e3):
// a request is *running* once its first token has come back; the steady
// state starts once max_num_seqs requests have received their first token
// (the batch is full) and ends once num_requests − max_num_seqs − 1
// requests have finished (before the batch drains). ML.ENERGY sends every
// request at once to a server with a known batch size; llem's loads are
// open- or closed-loop at a target level, so:
//
//  1. K, the target level, is the median over the bins of the middle half
//     of the load of the time-averaged number of running requests (a
//     saturated server holds its batch size; queued requests are not
//     running; a median, so a stall does not move it).
//  2. Candidate span: from the ⌈K⌉-th first token to the moment
//     N − ⌈K⌉ − 1 requests had finished.
//  3. The span is cut into bins (p.BinNs, widened to hold at least three
//     arrivals on average, also in step 1); the steady state is the longest run of
//     consecutive bins whose time-averaged running count is at least
//     (1 − tolerance)·K and whose output-token rate is within tolerance of
//     the candidate's median bin rate.
//  4. A run shorter than p.MinSpanNs is no steady state (*NoSteadyState).
func Detect(traces []Trace, p SteadyParams) (Window, error) {
	if p.BinNs <= 0 || p.Tolerance <= 0 {
		return Window{}, fmt.Errorf("steady state: bin %d ns, tolerance %g: both must be positive", p.BinNs, p.Tolerance)
	}
	var sent []Trace
	for _, t := range traces {
		if t.SentNs > 0 && t.EndNs >= t.SentNs {
			sent = append(sent, t)
		}
	}
	if len(sent) < 3 {
		return Window{}, &NoSteadyState{fmt.Sprintf("only %d requests were sent", len(sent))}
	}
	first, last, lastSend := int64(math.MaxInt64), int64(0), int64(0)
	for _, t := range sent {
		first = min(first, t.SentNs)
		last = max(last, t.EndNs)
		lastSend = max(lastSend, t.SentNs)
	}
	bin := p.BinNs
	if lastSend > first {
		bin = max(bin, 3*(lastSend-first)/int64(len(sent)-1))
	}
	// K: the median bin's running level over the middle half (a median, so
	// a stall in the middle does not raise the target).
	q := (last - first) / 4
	var mid []float64
	for b0 := first + q; b0+bin <= last-q || len(mid) == 0; b0 += bin {
		mid = append(mid, meanRunning(sent, b0, min(b0+bin, last)))
		if b0+bin >= last {
			break
		}
	}
	k := median(mid)
	if !(k > 0) {
		return Window{}, &NoSteadyState{"no request was running in the middle half of the load"}
	}
	ki := int(math.Ceil(k))
	// 2. Candidate span.
	var firsts, ends []int64
	for _, t := range sent {
		if len(t.TokenNs) > 0 {
			firsts = append(firsts, t.TokenNs[0])
		}
		if t.OK() {
			ends = append(ends, t.EndNs)
		}
	}
	slices.Sort(firsts)
	slices.Sort(ends)
	if len(firsts) < ki {
		return Window{}, &NoSteadyState{fmt.Sprintf("only %d requests received a first token, the target level is %d", len(firsts), ki)}
	}
	start, end := firsts[ki-1], last
	if n := len(sent) - ki - 1; n >= 1 && n <= len(ends) {
		end = ends[n-1]
	}
	if end-start < p.MinSpanNs || end-start < 2*bin {
		return Window{}, &NoSteadyState{fmt.Sprintf("the span from the %d-th first token to the drain is %.2f s, shorter than min_span %.2f s or two bins (send more requests or a longer duration)",
			ki, float64(end-start)/1e9, float64(max(p.MinSpanNs, 2*bin))/1e9)}
	}
	// 3. Bins.
	nb := int((end - start) / bin)
	running := make([]float64, nb)
	rate := make([]float64, nb)
	for b := range nb {
		b0 := start + int64(b)*bin
		running[b] = meanRunning(sent, b0, b0+bin)
	}
	for _, t := range sent {
		for _, tk := range t.TokenNs {
			if tk >= start && tk < start+int64(nb)*bin {
				rate[(tk-start)/bin]++
			}
		}
	}
	for b := range rate {
		rate[b] /= float64(bin) / 1e9
	}
	medRate := median(rate)
	ok := func(b int) bool {
		return running[b] >= (1-p.Tolerance)*k && math.Abs(rate[b]-medRate) <= p.Tolerance*medRate
	}
	bestLo, bestN, lo := 0, 0, -1
	for b := 0; b <= nb; b++ {
		if b < nb && ok(b) {
			if lo < 0 {
				lo = b
			}
			continue
		}
		if lo >= 0 && b-lo > bestN {
			bestLo, bestN = lo, b-lo
		}
		lo = -1
	}
	if bestN == 0 || int64(bestN)*bin < p.MinSpanNs {
		return Window{}, &NoSteadyState{fmt.Sprintf("the longest stable span is %.2f s (%d of %d bins of %.2f s with running ≥ %.0f%% of %.2f and token rate within %.0f%% of %.1f tok/s), shorter than min_span %.2f s",
			float64(int64(bestN)*bin)/1e9, bestN, nb, float64(bin)/1e9, (1-p.Tolerance)*100, k, p.Tolerance*100, medRate, float64(p.MinSpanNs)/1e9)}
	}
	w := Window{StartNs: start + int64(bestLo)*bin, TargetRunning: k, Bins: bestN, BinNs: bin}
	w.EndNs = w.StartNs + int64(bestN)*bin
	w.TokenRate = median(rate[bestLo : bestLo+bestN])
	return w, nil
}

// meanRunning is the time-averaged number of running requests (first
// token received, not ended) over [t0, t1).
func meanRunning(ts []Trace, t0, t1 int64) float64 {
	if t1 <= t0 {
		return 0
	}
	var busy float64
	for _, t := range ts {
		if len(t.TokenNs) == 0 {
			continue
		}
		a, b := max(t.TokenNs[0], t0), min(t.EndNs, t1)
		if b > a {
			busy += float64(b - a)
		}
	}
	return busy / float64(t1-t0)
}

// meanInFlight is the time-averaged number of requests in flight (sent and
// not ended) over [t0, t1).
func meanInFlight(ts []Trace, t0, t1 int64) float64 {
	if t1 <= t0 {
		return 0
	}
	var busy float64
	for _, t := range ts {
		a, b := max(t.SentNs, t0), min(t.EndNs, t1)
		if b > a {
			busy += float64(b - a)
		}
	}
	return busy / float64(t1-t0)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// quantile interpolates linearly between order statistics of sorted s
// (numpy's default).
func quantile(s []float64, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}
