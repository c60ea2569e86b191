package execute

import (
	"context"
	"math"
	"time"

	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/measure"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// livePower emits the latest sampled power every LivePower until stopped.
func (x *executor) livePower(sm *energy.Sampler, e result.Entry) (stop func()) {
	if sm == nil || x.opt.OnEvent == nil {
		return func() {}
	}
	every := x.opt.LivePower
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				tl := sm.Snapshot()
				var p float64
				have := false
				for _, c := range tl.Channels {
					if c.SubsetOf != "" || len(c.Samples) == 0 {
						continue
					}
					if v := c.Samples[len(c.Samples)-1].PowerW; !math.IsNaN(v) {
						p += v
						have = true
					}
				}
				if have {
					x.emit(Event{Kind: EventPower, Entry: e, PowerW: p})
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// baseline returns the idle baseline for s: reused in memory while within
// its TTL, else from the disk cache or measured (measure.GetBaseline).
func (x *executor) baseline(ctx context.Context, s energy.Sensor, cfg study.Baseline) (*measure.Baseline, error) {
	ttl := time.Duration(cfg.CacheTTLSeconds * float64(time.Second))
	if b, ok := x.base[s.Name()]; ok && ttl > 0 && time.Since(b.MeasuredAt) < ttl {
		c := *b
		c.Source = "cache"
		return &c, nil
	}
	b, err := measure.GetBaseline(ctx, s, measure.BaselineConfig{
		Duration:    time.Duration(cfg.DurationSeconds * float64(time.Second)),
		TTL:         ttl,
		Fingerprint: x.opt.Fingerprint,
		Cache:       x.opt.BaselineCache,
	})
	if b != nil {
		x.base[s.Name()] = b
	}
	return b, err
}
