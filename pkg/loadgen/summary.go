package loadgen

import (
	"math"
	"slices"
	"time"
)

// SLO is a latency objective for goodput: a request counts as good when it
// completed and meets every bound that is set (0: no bound).
type SLO struct {
	TTFT time.Duration
	TPOT time.Duration
	E2E  time.Duration
}

// Met reports whether r completed within the objective.
func (s SLO) Met(r *Result) bool {
	if !r.OK() {
		return false
	}
	return (s.TTFT == 0 || r.TTFT() <= s.TTFT) && (s.TPOT == 0 || r.TPOT() <= s.TPOT) && (s.E2E == 0 || r.E2E() <= s.E2E)
}

// Dist is a latency distribution in seconds.
type Dist struct {
	N                        int
	Mean, P50, P90, P99, Max float64
}

// Summary is the client-side view of a run over a span of it.
type Summary struct {
	Requests, Completed, Failed, TimedOut int
	// Span is the wall time the rates are over, seconds.
	Span                 float64
	RequestRate          float64 // completed requests / Span
	OutputTokenRate      float64 // output tokens of completed requests / Span
	Goodput              float64 // requests meeting the SLO / Span
	TTFT, TPOT, ITL, E2E Dist
	Lag                  Lag
}

// Summarise reduces a report to throughput and latency percentiles, with
// goodput under slo. Percentiles interpolate linearly between order
// statistics (numpy's default, which vLLM's benchmark uses).
func Summarise(rep *Report, slo SLO) Summary {
	s := Summary{Requests: len(rep.Results), Failed: rep.Failed, TimedOut: rep.TimedOut, Lag: rep.Lag, Span: rep.Elapsed.Seconds()}
	var ttft, tpot, itl, e2e []time.Duration
	tokens, good := 0, 0
	for i := range rep.Results {
		r := &rep.Results[i]
		if !r.OK() {
			continue
		}
		s.Completed++
		tokens += r.OutputTokens
		if slo.Met(r) {
			good++
		}
		if len(r.Tokens) > 0 {
			ttft = append(ttft, r.TTFT())
		}
		if t := r.TPOT(); t > 0 {
			tpot = append(tpot, t)
		}
		itl = append(itl, r.ITLs()...)
		e2e = append(e2e, r.E2E())
	}
	if s.Span > 0 {
		s.RequestRate = float64(s.Completed) / s.Span
		s.OutputTokenRate = float64(tokens) / s.Span
		s.Goodput = float64(good) / s.Span
	}
	s.TTFT, s.TPOT, s.ITL, s.E2E = dist(ttft), dist(tpot), dist(itl), dist(e2e)
	return s
}

func dist(d []time.Duration) Dist {
	if len(d) == 0 {
		return Dist{}
	}
	slices.Sort(d)
	var sum float64
	for _, v := range d {
		sum += v.Seconds()
	}
	return Dist{N: len(d), Mean: sum / float64(len(d)), P50: durationQuantile(d, 0.5).Seconds(), P90: durationQuantile(d, 0.9).Seconds(),
		P99: durationQuantile(d, 0.99).Seconds(), Max: d[len(d)-1].Seconds()}
}

// durationQuantile is the q-quantile of sorted d, linearly interpolated.
func durationQuantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	pos := q * float64(len(d)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(d)-1)
	frac := pos - float64(lo)
	return d[lo] + time.Duration(frac*float64(d[hi]-d[lo]))
}
