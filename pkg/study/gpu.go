package study

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"cuelang.org/go/cue"
)

// GPU is schema #GPU: the power limit and clocks a run sets on its GPUs
// (pkg/gpuctl applies them). A nil field leaves that setting as it is.
type GPU struct {
	PowerLimitW        *float64 `json:"power_limit_w,omitempty"`
	PowerLimitFraction *float64 `json:"power_limit_fraction,omitempty"`
	SMClockMHz         *int     `json:"sm_clock_mhz,omitempty"`
	MemClockMHz        *int     `json:"mem_clock_mhz,omitempty"`
	AppMemClockMHz     *int     `json:"app_mem_clock_mhz,omitempty"`
	AppSMClockMHz      *int     `json:"app_sm_clock_mhz,omitempty"`
	SettleSeconds      *float64 `json:"settle_seconds,omitempty"`
}

// DefaultGPUSettle is the wait after a GPU setting changes when the study
// gives no gpu.settle_seconds: power management reacts within a few control
// periods (about 100 ms each), the thermal state takes longer, and the
// warm-up and thermal floor come after it anyway.
const DefaultGPUSettle = 5 * time.Second

// Key identifies the settings (not the settle time): runs with equal keys
// need no change between them. "" means nothing is set.
func (g *GPU) Key() string {
	if g == nil {
		return ""
	}
	c := *g
	c.SettleSeconds = nil
	b, _ := json.Marshal(c) // pointers to numbers always marshal
	if string(b) == "{}" {
		return ""
	}
	return string(b)
}

// Settle is how long to wait after applying g.
func (g *GPU) Settle() time.Duration {
	if g == nil || g.SettleSeconds == nil {
		return DefaultGPUSettle
	}
	return time.Duration(*g.SettleSeconds * float64(time.Second))
}

// gpuFields are #GPU's fields, for positions.
var gpuFields = []string{"power_limit_w", "power_limit_fraction", "sm_clock_mhz", "mem_clock_mhz", "app_mem_clock_mhz", "app_sm_clock_mhz"}

// gpuPositions records where the study wrote each gpu value, so checks that
// need the hardware (pkg/gpuctl, after loading) can point at the line:
// "gpu.f", "base.gpu.f", "experiments[i].gpu.f" and, for grid values,
// "grid.gpu.f=<value>".
func (l *loader) gpuPositions() map[string]Diagnostic {
	out := map[string]Diagnostic{}
	at := func(key string, v cue.Value) {
		if v.Exists() && v.Pos().IsValid() {
			out[key] = diagAt(v.Pos(), "", "")
		}
	}
	for _, f := range gpuFields {
		at("gpu."+f, l.user.LookupPath(cue.ParsePath("gpu."+f)))
		at("base.gpu."+f, l.user.LookupPath(cue.ParsePath("base.gpu."+f)))
		if list, err := l.user.LookupPath(cue.ParsePath("grid.gpu." + f)).List(); err == nil {
			for list.Next() {
				var x any
				if list.Value().Decode(&x) == nil {
					at("grid.gpu."+f+"="+gpuValueKey(x), list.Value())
				}
			}
		}
		if list, err := l.user.LookupPath(cue.ParsePath("experiments")).List(); err == nil {
			for i := 0; list.Next(); i++ {
				at(fmt.Sprintf("experiments[%d].gpu.%s", i, f), list.Value().LookupPath(cue.ParsePath("gpu."+f)))
			}
		}
	}
	return out
}

func gpuValueKey(x any) string {
	b, _ := json.Marshal(x)
	return canonicalNumber(string(b))
}

// GPUDiag is msg as a diagnostic at the place in the study file that gave
// run r's gpu.<field>: its grid value, experiments entry, base, or the
// top-level field of a single experiment (no position when none is known).
func (p *Plan) GPUDiag(r Run, field, msg string) Diagnostic {
	path := "gpu." + field
	keys := []string{}
	if v, ok := r.Coordinates[path]; ok {
		keys = append(keys, "grid."+path+"="+gpuValueKey(v))
		path = fmt.Sprintf("grid.%s (run %s)", path, r.ID)
	} else {
		if strings.HasPrefix(r.Origin, "experiments[") {
			keys = append(keys, r.Origin+"."+path)
		}
		keys = append(keys, "base."+path, path)
		path = fmt.Sprintf("%s (run %s, %s)", path, r.ID, r.Origin)
	}
	d := Diagnostic{Path: path, Msg: msg}
	for _, k := range keys {
		if pos, ok := p.gpuPos[k]; ok {
			d.File, d.Line, d.Col = pos.File, pos.Line, pos.Col
			break
		}
	}
	return d
}

// HasGPU reports whether any run sets a GPU setting.
func (p *Plan) HasGPU() bool {
	for i := range p.Runs {
		if p.Runs[i].Config.GPU.Key() != "" {
			return true
		}
	}
	return false
}

// groupByGPU reorders each cycle so that runs with the same GPU settings
// run back to back, minimising changes (each costs a settle time and puts
// a power-management transient near a run). Within a block the planned
// order (e.g. the shuffle) is kept; blocks go in sorted key order, reversed
// every other cycle, so a cycle starts with the settings the previous one
// ended with. A plan without GPU settings is left exactly as it was.
func (p *Plan) groupByGPU() {
	if !p.HasGPU() {
		return
	}
	keys := make([]string, len(p.Runs))
	for i := range p.Runs {
		keys[i] = p.Runs[i].Config.GPU.Key()
	}
	for c, idx := range p.Order {
		desc := c%2 == 1
		slices.SortStableFunc(idx, func(a, b int) int {
			r := strings.Compare(keys[a], keys[b])
			if desc {
				return -r
			}
			return r
		})
	}
	p.Schedule = p.Schedule[:0]
	if p.Execution.Order == "sequential" {
		for _, r := range p.Order[0] {
			for c := range p.Order {
				p.Schedule = append(p.Schedule, Slot{Run: r, Cycle: c + 1})
			}
		}
		return
	}
	for c, idx := range p.Order {
		for _, r := range idx {
			p.Schedule = append(p.Schedule, Slot{Run: r, Cycle: c + 1})
		}
	}
}

// GPUChanges counts how often the schedule changes GPU settings (the
// first slot's setting counts as one).
func (p *Plan) GPUChanges() int {
	n, last := 0, "\x00"
	for _, s := range p.Schedule {
		k := p.Runs[s.Run].Config.GPU.Key()
		if k != last {
			n++
			last = k
		}
	}
	return n
}
