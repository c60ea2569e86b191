package energy

import (
	"encoding/json"
	"math"
	"sort"
)

// Timeline is everything a Sampler recorded: per channel, its description and
// its samples in time order. It is plain exported data so that the executor
// can write it to a timeseries Parquet file and pkg/measure can compute
// windows from it.
type Timeline struct {
	Sensor     string            `json:"sensor"`
	IntervalNs int64             `json:"interval_ns"` // the sampler's configured interval
	Channels   []ChannelTimeline `json:"channels"`
}

// ChannelTimeline is one channel's samples and read failures.
type ChannelTimeline struct {
	Channel
	Samples []Sample `json:"samples"`
	// Errors counts failed reads of this channel; LastError is the latest.
	Errors    int    `json:"errors,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// Slice returns a copy of the timeline holding, per channel, the samples with
// t0 <= TNs <= t1 plus the nearest sample on either side (when there is one),
// so that a window's edges can still be interpolated from the slice.
func (t *Timeline) Slice(t0, t1 int64) *Timeline {
	out := &Timeline{Sensor: t.Sensor, IntervalNs: t.IntervalNs, Channels: make([]ChannelTimeline, len(t.Channels))}
	for i, c := range t.Channels {
		lo, hi := c.Bracket(t0, t1)
		cc := c
		cc.Samples = append([]Sample(nil), c.Samples[lo:hi]...)
		out.Channels[i] = cc
	}
	return out
}

// Bracket returns [lo, hi) indexes of the samples covering [t0, t1]: those
// inside plus one before t0 and one after t1 where they exist.
func (c *ChannelTimeline) Bracket(t0, t1 int64) (lo, hi int) {
	s := c.Samples
	lo = sort.Search(len(s), func(i int) bool { return s[i].TNs >= t0 })
	if lo > 0 {
		lo--
	}
	hi = sort.Search(len(s), func(i int) bool { return s[i].TNs > t1 })
	if hi < len(s) {
		hi++
	}
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// Span returns the first and last sample times over all channels, and false
// when there are no samples.
func (t *Timeline) Span() (first, last int64, ok bool) {
	for _, c := range t.Channels {
		if len(c.Samples) == 0 {
			continue
		}
		a, b := c.Samples[0].TNs, c.Samples[len(c.Samples)-1].TNs
		if !ok || a < first {
			first = a
		}
		if !ok || b > last {
			last = b
		}
		ok = true
	}
	return first, last, ok
}

// sampleJSON is Sample with unread fields as null: JSON has no NaN.
type sampleJSON struct {
	TNs             int64    `json:"t_ns"`
	EnergyJ         *float64 `json:"energy_j"`
	PowerW          *float64 `json:"power_w"`
	TempC           *float64 `json:"temp_c"`
	SMClockMHz      *float64 `json:"sm_clock_mhz"`
	MemClockMHz     *float64 `json:"mem_clock_mhz"`
	UtilPct         *float64 `json:"util_pct"`
	MemUsedBytes    *int64   `json:"mem_used_bytes"`
	ThrottleReasons *int64   `json:"throttle_reasons"`
}

func nullable(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

func nullableInt(v int64) *int64 {
	if v < 0 {
		return nil
	}
	return &v
}

func orNaN(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func orNeg(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

// MarshalJSON writes unread fields as null.
func (s Sample) MarshalJSON() ([]byte, error) {
	return json.Marshal(sampleJSON{s.TNs, nullable(s.EnergyJ), nullable(s.PowerW), nullable(s.TempC), nullable(s.SMClockMHz),
		nullable(s.MemClockMHz), nullable(s.UtilPct), nullableInt(s.MemUsedBytes), nullableInt(s.ThrottleReasons)})
}

// UnmarshalJSON reads null fields back as unread (NaN / -1).
func (s *Sample) UnmarshalJSON(b []byte) error {
	var j sampleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Sample{j.TNs, orNaN(j.EnergyJ), orNaN(j.PowerW), orNaN(j.TempC), orNaN(j.SMClockMHz), orNaN(j.MemClockMHz),
		orNaN(j.UtilPct), orNeg(j.MemUsedBytes), orNeg(j.ThrottleReasons)}
	return nil
}
