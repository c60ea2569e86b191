// Package loadgen drives an OpenAI-compatible server with a realistic load
// and measures what each request saw from the client side.
//
// Open-loop arrivals are scheduled on the monotonic clock before the run and
// sent at their scheduled times whatever the server does, and every latency
// is measured from the scheduled send time, not from when the request
// actually left: a server that stalls cannot slow the generator down and
// hide its own stall (no coordinated omission). When the generator itself
// cannot keep up (too few cores, an in-flight cap), the lag between schedule
// and send is measured and reported instead of silently stretching the
// schedule.
package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/llenergymeasure/llem/internal/errs"
)

// Arrival processes of open-loop load.
const (
	Poisson  = "poisson"  // exponential inter-arrival times
	Gamma    = "gamma"    // gamma inter-arrival times with shape Burstiness
	Constant = "constant" // exactly 1/Rate apart
)

// Arrivals describes an open-loop arrival process.
type Arrivals struct {
	// Process is Poisson (default), Gamma or Constant.
	Process string
	// Rate is the mean request rate in requests per second.
	Rate float64
	// Burstiness is the gamma shape, parametrised as vLLM's
	// benchmark_serving.py --burstiness: inter-arrival times are
	// Gamma(shape=b, scale=1/(Rate*b)), so the mean stays 1/Rate and the
	// coefficient of variation is 1/sqrt(b). 1 is Poisson; below 1 is
	// burstier, above 1 smoother. Only for Gamma (0 means 1).
	Burstiness float64
	// Seed makes the schedule reproducible.
	Seed uint64
}

// Validate reports a bad arrival process as bad input.
func (a Arrivals) Validate() error {
	switch a.Process {
	case "", Poisson, Constant:
		if a.Burstiness != 0 && a.Burstiness != 1 {
			return errs.BadInput(fmt.Errorf("loadgen: burstiness %g with process %q", a.Burstiness, a.Process), `burstiness applies to process "gamma" only`)
		}
	case Gamma:
		if a.Burstiness < 0 || math.IsNaN(a.Burstiness) || math.IsInf(a.Burstiness, 0) {
			return errs.BadInput(fmt.Errorf("loadgen: burstiness %g", a.Burstiness), "use a positive burstiness (1 = Poisson, < 1 burstier)")
		}
	default:
		return errs.BadInput(fmt.Errorf("loadgen: unknown arrival process %q", a.Process), `use "poisson", "gamma" or "constant"`)
	}
	if !(a.Rate > 0) || math.IsInf(a.Rate, 0) {
		return errs.BadInput(fmt.Errorf("loadgen: request rate %g", a.Rate), "use a positive, finite rate in requests per second")
	}
	return nil
}

// Schedule returns the send offsets from the start of the run: n of them,
// or (n = 0) every arrival before d. The first request goes at offset 0.
func (a Arrivals) Schedule(n int, d time.Duration) ([]time.Duration, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if n <= 0 && d <= 0 {
		return nil, errs.BadInput(fmt.Errorf("loadgen: neither a request count nor a duration"), "set requests or duration")
	}
	src := rand.NewPCG(a.Seed, 0x6c6c656d) // "llem"
	var next func() float64
	switch a.Process {
	case Constant:
		next = func() float64 { return 1 / a.Rate }
	case Gamma:
		b := a.Burstiness
		if b == 0 {
			b = 1
		}
		g := distuv.Gamma{Alpha: b, Beta: a.Rate * b, Src: src}
		next = g.Rand
	default:
		r := rand.New(src)
		next = func() float64 { return r.ExpFloat64() / a.Rate }
	}
	var out []time.Duration
	if n > 0 {
		out = make([]time.Duration, 0, n)
	}
	t := 0.0
	for {
		off := time.Duration(t * float64(time.Second))
		if (n > 0 && len(out) == n) || (n <= 0 && off >= d) {
			return out, nil
		}
		out = append(out, off)
		t += next()
	}
}
