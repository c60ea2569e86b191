package study

import (
	"math"
	"strings"
)

// Estimate is a rough forecast of a study's wall time, for `--dry-run`:
// the waits the plan fixes (thermal floors, gaps, cooldowns, baselines)
// exactly, plus a crude guess of each run's own time (RunSeconds). With
// steady_state on, cycles may stop early: the estimate is for all cycles.
type Estimate struct {
	// TotalSeconds is the sum of the parts below.
	TotalSeconds float64 `json:"total_seconds"`
	// ThermalFloorSeconds sums warmup.thermal_floor_seconds over every
	// slot whose warm-up is enabled.
	ThermalFloorSeconds float64 `json:"thermal_floor_seconds"`
	// GapSeconds is execution.gap_seconds between consecutive slots.
	GapSeconds float64 `json:"gap_seconds"`
	// CooldownSeconds is execution.cooldown_seconds between cycles.
	CooldownSeconds float64 `json:"cooldown_seconds"`
	// BaselineSeconds is the idle-power baselines: the longest
	// baseline.duration_seconds of the runs that measure one, once at the
	// start and again each time the cache (cache_ttl_seconds) expires.
	BaselineSeconds float64 `json:"baseline_seconds"`
	// RunSeconds is the runs themselves, guessed per slot as the backend's
	// start-up time plus (warm-up + measured prompts) × output tokens at
	// the backend's rough decode rate (runRate). Only this part is a
	// guess; it can be off by a factor of a few either way.
	RunSeconds float64 `json:"run_seconds"`
}

// runRate holds the rough figures the run-time guess uses per backend:
// seconds to start a worker and load a model, and generated tokens per
// second (all prompts of a batch together). Native figures are for the
// built-in random presets on a laptop CPU; the GPU backends' for a small
// model on one data-centre GPU. Unknown backends use pytorch's.
var runRate = map[string]struct{ startup, tokensPerSec float64 }{
	"native":   {1, 300},
	"pytorch":  {20, 400},
	"vllm":     {60, 3000},
	"tensorrt": {90, 3000},
}

// computeEstimate fills p.Estimate from the runs and the schedule.
func (p *Plan) computeEstimate() {
	var e Estimate
	ex := p.Execution
	if n := len(p.Schedule); n > 1 {
		e.GapSeconds = float64(n-1) * ex.GapSeconds
	}
	if ex.Cycles > 1 {
		e.CooldownSeconds = float64(ex.Cycles-1) * ex.CooldownSeconds
	}
	per := make([]float64, len(p.Runs))
	for i, r := range p.Runs {
		c := r.Config
		rate, ok := runRate[c.Backend]
		if !ok {
			rate = runRate["pytorch"]
		}
		out := float64(c.MaxOutputTokens)
		if c.Dataset.Source == "synthetic" && c.Dataset.OutputLen > 0 {
			out = math.Min(out, float64(c.Dataset.OutputLen))
		}
		prompts := float64(c.N)
		if c.Warmup.Enabled {
			prompts += float64(c.Warmup.NWarmup)
		}
		per[i] = rate.startup + prompts*out/rate.tokensPerSec
	}
	baseline, ttl := 0.0, math.Inf(1)
	for _, s := range p.Schedule {
		c := p.Runs[s.Run].Config
		e.RunSeconds += per[s.Run]
		if c.Warmup.Enabled {
			e.ThermalFloorSeconds += c.Warmup.ThermalFloorSeconds
		}
		if c.Baseline.Enabled {
			baseline = math.Max(baseline, c.Baseline.DurationSeconds)
			ttl = math.Min(ttl, c.Baseline.CacheTTLSeconds)
		}
	}
	wall := e.RunSeconds + e.ThermalFloorSeconds + e.GapSeconds + e.CooldownSeconds
	if baseline > 0 {
		times := 1.0
		switch {
		case ttl == 0:
			times = float64(len(p.Schedule))
		case !math.IsInf(ttl, 1):
			times += math.Floor(wall / ttl)
		}
		e.BaselineSeconds = times * baseline
	}
	e.TotalSeconds = wall + e.BaselineSeconds
	p.Estimate = e
}

// Label is how the run at index i is named in progress lines and tables:
// its experiments entry's name, else its grid coordinates, else its
// origin ("experiments[2]", "base", "file").
func (p *Plan) Label(i int) string {
	r := p.Runs[i]
	if r.Name != "" {
		return r.Name
	}
	if _, ok := r.Coordinates["experiment"]; !ok {
		if c := p.FormatCoords(r.Coordinates); c != "" {
			return c
		}
	}
	return strings.TrimSpace(r.Origin)
}
