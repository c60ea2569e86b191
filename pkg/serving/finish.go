package serving

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/execute"
	"github.com/llenergymeasure/llem/pkg/result"
)

// Flags a serving record can carry.
const (
	FlagNoSteadyState   = "no_steady_state"
	FlagGeneratorBehind = "load_generator_behind"
	FlagClientTimeouts  = "client_timeouts"
)

// Finish is the serving route's execute.Route.Finish: it reads the
// worker's report from the work directory and fills the record's serving
// section, and its throughput, efficiency and latency from the
// steady-state window (docs/serving.md). A slot whose worker left no
// report (it failed first) keeps its failure as it is.
func Finish(req execute.FinishRequest) {
	rec := req.Record
	b, err := os.ReadFile(filepath.Join(req.Dir, ReportFile))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			rec.Warnings = append(rec.Warnings, "serving report unreadable: "+err.Error())
		}
		return
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		rec.Warnings = append(rec.Warnings, "serving report unreadable: "+err.Error())
		return
	}
	Fill(rec, &rep, req.Timeline)
}

// Fill puts a worker's report into rec over rec's measured window.
func Fill(rec *result.Record, rep *Report, tl *energy.Timeline) {
	w0, w1 := rec.Timing.WindowStartNs, rec.Timing.WindowEndNs
	if rep.Window != nil {
		w0, w1 = rep.Window.StartNs, rep.Window.EndNs
	} else if w1 <= w0 {
		w0, w1 = rep.FirstSendNs, rep.LastEndNs
	}
	sv := &result.Serving{
		Server: result.ServingServer{Kind: rep.Server.Kind, URL: rep.Server.URL, Command: rep.Server.Command, StartS: rep.Server.StartS,
			Measured: measuredText(rep.Server.Kind, rec.Energy.Sensor)},
		Load: result.ServingLoad{Mode: rep.Load.Mode, Arrivals: rep.Load.Arrivals, RateRps: rep.Load.Rate, Burstiness: rep.Load.Burstiness,
			Concurrency: rep.Load.Concurrency, DurationS: rep.Load.DurationS},
		NoSteadyState:    rep.NoSteadyState,
		ScheduleLagP99Ms: float64(rep.Lag.P99) / 1e6,
		GeneratorBehind:  rep.Lag.Behind,
	}
	if w := rep.Window; w != nil {
		sv.SteadyState = &result.ServingWindow{StartNs: w.StartNs, EndNs: w.EndNs, DurationS: float64(w.EndNs-w.StartNs) / 1e9,
			StartOffsetS: float64(w.StartNs-rep.FirstSendNs) / 1e9, TargetRunning: w.TargetRunning, TokenRate: w.TokenRate, Bins: w.Bins, BinS: float64(w.BinNs) / 1e9}
	} else {
		rec.Flags = append(rec.Flags, FlagNoSteadyState)
		rec.Warnings = append(rec.Warnings, "no steady state ("+rep.NoSteadyState+"): energy is over the whole load, from the first send to the last response")
	}
	// Whole-run counts, and the window's requests: those that completed
	// inside it. Output tokens are every token streamed inside the window
	// (the work the window's energy paid for); input tokens are the
	// prompts whose prefill ended (first token) inside it.
	var inWin []int
	inputTokens, outputTokens := 0, 0
	for i := range rep.Traces {
		t := &rep.Traces[i]
		if t.SentNs > 0 {
			sv.Requests++
		}
		if t.OK() {
			sv.Completed++
		} else if t.SentNs > 0 {
			sv.Failed++
		}
		if t.TimedOut {
			sv.TimedOut++
		}
		for j, tk := range t.TokenNs {
			if tk >= w0 && tk <= w1 {
				outputTokens++
				if j == 0 {
					inputTokens += t.PromptTokens
				}
			}
		}
		if t.OK() && t.EndNs >= w0 && t.EndNs <= w1 {
			inWin = append(inWin, i)
		}
	}
	if sv.TimedOut > 0 {
		rec.Flags = append(rec.Flags, FlagClientTimeouts)
		rec.Warnings = append(rec.Warnings, fmt.Sprintf("%d request(s) timed out on the client (serving.load.timeout_seconds)", sv.TimedOut))
	}
	if rep.Lag.Behind {
		rec.Flags = append(rec.Flags, FlagGeneratorBehind)
	}
	sv.WindowRequests = len(inWin)
	winS := float64(w1-w0) / 1e9
	sv.InFlightMean = meanInFlight(rep.Traces, w0, w1)
	rec.Latency = latencies(rep.Traces, inWin)
	if slo := rep.SLO; slo.TTFTMs > 0 || slo.TPOTMs > 0 || slo.E2EMs > 0 {
		good := 0
		for _, i := range inWin {
			if meets(&rep.Traces[i], slo.TTFTMs, slo.TPOTMs, slo.E2EMs) {
				good++
			}
		}
		if winS > 0 {
			g := float64(good) / winS
			sv.GoodputRps = &g
		}
		if len(inWin) > 0 {
			a := float64(good) / float64(len(inWin))
			sv.SLOAttainment = &a
		}
	}
	rec.FillServing(sv, len(inWin), inputTokens, outputTokens)
	if rec.Energy.RawJ == nil || w1 <= w0 {
		return
	}
	// Per-request energy: the window's energy shared by tokens processed.
	bin := int64(100e6)
	if tl != nil && tl.IntervalNs > 0 {
		bin = tl.IntervalNs
	}
	e := Attribute(rep.Traces, w0, w1, bin, binEnergyFunc(tl, w0, w1, *rec.Energy.RawJ))
	var per []float64
	for _, i := range inWin {
		per = append(per, e[i])
	}
	sv.PerRequestEnergyJ = per
	if n, mean, p50, p90, p99, mx := Percentiles(per); n > 0 {
		sv.EnergyPerRequestJ = &result.EnergyDist{N: n, MeanJ: mean, P50J: p50, P90J: p90, P99J: p99, MaxJ: mx}
	}
}

func measuredText(kind, sensor string) string {
	s := "this machine's devices (sensor " + sensor + ")"
	if kind == "url" {
		s += "; the server at the url must run on this machine for the energy to be its own"
	}
	return s
}

func meets(t *Trace, ttftMs, tpotMs, e2eMs float64) bool {
	ttft, tpot, e2e := traceLatencies(t)
	return (ttftMs == 0 || ttft <= ttftMs) && (tpotMs == 0 || tpot <= tpotMs) && (e2eMs == 0 || e2e <= e2eMs)
}

// traceLatencies are a request's TTFT, TPOT and E2E in ms, counted from
// its scheduled time (no coordinated omission: pkg/loadgen).
func traceLatencies(t *Trace) (ttft, tpot, e2e float64) {
	e2e = float64(t.EndNs-t.ScheduledNs) / 1e6
	if len(t.TokenNs) > 0 {
		ttft = float64(t.TokenNs[0]-t.ScheduledNs) / 1e6
		if t.OutputTokens > 1 {
			tpot = float64(t.EndNs-t.TokenNs[0]) / 1e6 / float64(t.OutputTokens-1)
		}
	}
	return
}

func latencies(ts []Trace, idx []int) result.Latency {
	var ttft, tpot, itl, e2e []float64
	for _, i := range idx {
		t := &ts[i]
		a, b, c := traceLatencies(t)
		e2e = append(e2e, c)
		if len(t.TokenNs) > 0 {
			ttft = append(ttft, a)
		}
		if t.OutputTokens > 1 {
			tpot = append(tpot, b)
		}
		for j := 1; j < len(t.TokenNs); j++ {
			itl = append(itl, float64(t.TokenNs[j]-t.TokenNs[j-1])/1e6)
		}
	}
	return result.Latency{TTFT: distMs(ttft), TPOT: distMs(tpot), ITL: distMs(itl), E2E: distMs(e2e)}
}

func distMs(xs []float64) result.Dist {
	if len(xs) == 0 {
		return result.Dist{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	return result.Dist{N: len(s), MeanMs: sum / float64(len(s)), P50Ms: quantile(s, .5), P90Ms: quantile(s, .9), P95Ms: quantile(s, .95),
		P99Ms: quantile(s, .99), MinMs: s[0], MaxMs: s[len(s)-1]}
}

// binEnergyFunc returns the energy of [b0, b1) from the timeline's
// channels (their counters where read, else their power integrated),
// scaled so the window [w0, w1) sums to totalJ (the record's raw_j); with
// no usable timeline, energy is spread evenly over time.
func binEnergyFunc(tl *energy.Timeline, w0, w1 int64, totalJ float64) func(b0, b1 int64) float64 {
	uniform := func(b0, b1 int64) float64 { return totalJ * float64(b1-b0) / float64(w1-w0) }
	if tl == nil {
		return uniform
	}
	var cums []func(int64) float64
	for _, c := range tl.Channels {
		if f := cumulative(c.Samples); f != nil {
			cums = append(cums, f)
		}
	}
	at := func(t int64) float64 {
		var s float64
		for _, f := range cums {
			s += f(t)
		}
		return s
	}
	whole := at(w1) - at(w0)
	if len(cums) == 0 || !(whole > 0) || math.IsNaN(whole) {
		return uniform
	}
	scale := totalJ / whole
	return func(b0, b1 int64) float64 { return (at(b1) - at(b0)) * scale }
}

// cumulative returns a channel's energy at time t (joules from its first
// sample, linearly interpolated): the counter when every sample has one,
// else the trapezoid integral of power; nil when neither is usable.
func cumulative(ss []energy.Sample) func(int64) float64 {
	if len(ss) < 2 {
		return nil
	}
	ts := make([]int64, len(ss))
	es := make([]float64, len(ss))
	counter := true
	for i, s := range ss {
		if math.IsNaN(s.EnergyJ) {
			counter = false
		}
		ts[i] = s.TNs
	}
	if counter {
		for i, s := range ss {
			es[i] = s.EnergyJ
		}
	} else {
		for i := 1; i < len(ss); i++ {
			p0, p1 := ss[i-1].PowerW, ss[i].PowerW
			if math.IsNaN(p0) || math.IsNaN(p1) {
				return nil
			}
			es[i] = es[i-1] + (p0+p1)/2*float64(ts[i]-ts[i-1])/1e9
		}
	}
	return func(t int64) float64 {
		i, _ := slices.BinarySearch(ts, t)
		switch {
		case i == 0:
			return es[0]
		case i >= len(ts):
			return es[len(es)-1]
		}
		f := float64(t-ts[i-1]) / float64(ts[i]-ts[i-1])
		return es[i-1] + f*(es[i]-es[i-1])
	}
}
