package report

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/llenergymeasure/llem/pkg/pareto"
	"github.com/llenergymeasure/llem/pkg/report/figure"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// Options shape a report.
type Options struct {
	// MaxTimelines bounds the power-timeline figures (one per run × cycle),
	// in executed order; 0 means DefaultMaxTimelines, negative means all.
	MaxTimelines int
	// Level is the confidence level the statistics used (for captions).
	Level float64
}

// DefaultMaxTimelines keeps a report of a large study readable (and its
// file a few MB); llem results report --timelines changes it.
const DefaultMaxTimelines = 24

// Config is one row of the per-configuration table: one run of one study.
type Config struct {
	figure.Config
	Study   *Study
	Run     *stats.RunStats
	Coords  []Coord
	Records []*result.Record // this run's records, in cycle order
}

// Coord is one grid coordinate of a configuration.
type Coord struct{ Name, Value string }

// Report is everything the HTML page and the figure files show.
type Report struct {
	Studies  []*Study
	Configs  []*Config
	Grouping figure.Grouping
	// Dimensions are the grid dimensions that vary between configurations.
	Dimensions []string
	Figures    []*figure.Figure
	Timelines  []*figure.Figure
	// TimelinesOmitted counts windows left out by MaxTimelines; Missing
	// says why a figure or timeline is absent.
	TimelinesOmitted int
	Missing          []string
	// Problems are what figure.Check found, per figure name.
	Problems map[string][]string
	Level    float64
}

// Build assembles the report of one or more loaded studies.
func Build(studies []*Study, o Options) (*Report, error) {
	if o.MaxTimelines == 0 {
		o.MaxTimelines = DefaultMaxTimelines
	}
	if o.Level == 0 {
		o.Level = stats.DefaultLevel
	}
	r := &Report{Studies: studies, Problems: map[string][]string{}, Level: o.Level}
	r.configs()
	cs := make([]figure.Config, len(r.Configs))
	for i, c := range r.Configs {
		cs[i] = c.Config
	}
	g := r.Grouping
	add := func(name string, f *figure.Figure) {
		if f == nil {
			r.Missing = append(r.Missing, name)
			return
		}
		r.Figures = append(r.Figures, f)
	}
	add("energy per output token: no configuration has energy (sensor none?)", figure.EnergyPerToken(cs, g, o.Level))
	add("prefill vs decode split: no record has per-phase energy", figure.PhaseSplit(cs))
	add("throughput vs energy: no configuration has both", r.frontier("tradeoff", "Throughput vs energy per token", "output throughput (tokens/s)",
		pareto.Axis{Metric: "output_tokens_per_sec", Higher: true}))
	// Quality vs energy from the summariser's "quality" metric (scored
	// runs only), with the same CI-aware frontier.
	if f := r.frontier("quality-energy", "Quality vs energy per token", "quality score", pareto.Axis{Metric: "quality", Higher: true}); f != nil {
		r.Figures = append(r.Figures, f)
	} else {
		r.Missing = append(r.Missing, "quality vs energy: the records carry no quality scores")
	}
	add("latency: no record has TTFT or ITL", figure.Latency(cs, g))
	add("cycle-to-cycle: no valid cycle has energy per output token", figure.Cycles(cs, stats.SteadyThreshold, stats.SteadyWindow))
	if err := r.timelines(o.MaxTimelines); err != nil {
		return nil, err
	}
	for _, f := range append(append([]*figure.Figure{}, r.Figures...), r.Timelines...) {
		if p := f.Check(); len(p) > 0 {
			r.Problems[f.Name] = p
		}
	}
	return r, nil
}

func estimate(m *stats.MetricStats) figure.Estimate {
	if m == nil || m.N == 0 || math.IsNaN(m.Mean) {
		return figure.Estimate{}
	}
	e := figure.Estimate{Mean: m.Mean, OK: true}
	if m.CI != nil && m.CI.Method != stats.MethodNone && !math.IsNaN(m.CI.Lower) && !math.IsNaN(m.CI.Upper) {
		e.Lo, e.Hi, e.HasCI = m.CI.Lower, m.CI.Upper, true
	}
	return e
}

// configs makes one Config per run of every study, finds the grid
// dimensions that vary, and picks the axis and colour dimensions.
func (r *Report) configs() {
	multi := len(r.Studies) > 1
	for _, s := range r.Studies {
		byRun := map[string][]*result.Record{}
		for _, rec := range s.Records {
			byRun[rec.RunID] = append(byRun[rec.RunID], rec)
		}
		for i := range s.Stats.Runs {
			run := &s.Stats.Runs[i]
			recs := byRun[run.RunID]
			sort.SliceStable(recs, func(a, b int) bool { return recs[a].Cycle < recs[b].Cycle })
			c := &Config{Study: s, Run: run, Records: recs}
			c.ID = fmt.Sprintf("C%d", len(r.Configs)+1)
			c.Label = run.Label()
			if multi {
				c.Coords = append(c.Coords, Coord{"study", s.Name()})
			}
			c.Coords = append(c.Coords, coordinates(recs, run)...)
			c.EnergyPerToken = estimate(run.Metric("energy_per_output_token_j"))
			c.Throughput = estimate(run.Metric("output_tokens_per_sec"))
			c.PrefillJ = estimate(run.Metric("prefill_energy_j"))
			c.DecodeJ = estimate(run.Metric("decode_energy_j"))
			c.TotalJ = estimate(run.Metric("energy_raw_j"))
			c.TTFT = percentiles(recs, func(r *result.Record) result.Dist { return r.Latency.TTFT })
			c.ITL = percentiles(recs, func(r *result.Record) result.Dist { return r.Latency.ITL })
			for _, rec := range recs {
				if rec.Status == result.StatusOK && rec.Efficiency.EnergyPerOutputTokenJ != nil {
					c.CycleEnergyPerToken = append(c.CycleEnergyPerToken, *rec.Efficiency.EnergyPerOutputTokenJ)
					c.Cycles = append(c.Cycles, rec.Cycle)
				}
			}
			if at := stats.SteadyState(c.CycleEnergyPerToken, stats.SteadyWindow, stats.SteadyThreshold); at > 0 && at <= len(c.Cycles) {
				c.SteadyAt = c.Cycles[at-1]
			}
			r.Configs = append(r.Configs, c)
		}
	}
	// Dimensions that vary, in first-seen order.
	values := map[string]map[string]bool{}
	var order []string
	for _, c := range r.Configs {
		for _, k := range c.Coords {
			if values[k.Name] == nil {
				values[k.Name] = map[string]bool{}
				order = append(order, k.Name)
			}
			values[k.Name][k.Value] = true
		}
	}
	for _, k := range order {
		if len(values[k]) > 1 {
			r.Dimensions = append(r.Dimensions, k)
		}
	}
	if len(r.Dimensions) == 0 {
		return
	}
	// Axis: the dimension with most values, numeric first; colour: the rest.
	axis := r.Dimensions[0]
	for _, d := range r.Dimensions[1:] {
		if len(values[d]) > len(values[axis]) || (len(values[d]) == len(values[axis]) && numeric(values[d]) && !numeric(values[axis])) {
			axis = d
		}
	}
	r.Grouping.Category = dimName(axis)
	var rest []string
	for _, d := range r.Dimensions {
		if d != axis {
			rest = append(rest, d)
		}
	}
	if len(rest) == 1 {
		r.Grouping.Series = dimName(rest[0])
	}
	cats := map[string]bool{}
	for _, c := range r.Configs {
		var parts []string
		for _, k := range c.Coords {
			switch {
			case k.Name == axis:
				c.Category = k.Value
				cats[k.Value] = true
			case len(rest) > 0 && contains(rest, k.Name):
				if len(rest) == 1 {
					parts = append(parts, k.Value)
				} else {
					parts = append(parts, dimName(k.Name)+" "+k.Value)
				}
			}
		}
		c.Series = strings.Join(parts, ", ")
	}
	// Numeric categories in numeric order: sort configs so the first
	// appearance order of categories is ascending.
	if numeric(cats) {
		sort.SliceStable(r.Configs, func(i, j int) bool {
			a, _ := strconv.ParseFloat(r.Configs[i].Category, 64)
			b, _ := strconv.ParseFloat(r.Configs[j].Category, 64)
			return a < b
		})
		for i, c := range r.Configs {
			c.ID = fmt.Sprintf("C%d", i+1)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func numeric(vs map[string]bool) bool {
	for v := range vs {
		if _, err := strconv.ParseFloat(v, 64); err != nil {
			return false
		}
	}
	return len(vs) > 0
}

// dimName turns a dotted config path into words: native.batch_size →
// "batch size".
func dimName(path string) string {
	return strings.ReplaceAll(path[strings.LastIndex(path, ".")+1:], "_", " ")
}

// coordinates are the record's grid coordinates, else the run's config
// leaves (flattened) — only those that vary end up as dimensions.
func coordinates(recs []*result.Record, run *stats.RunStats) []Coord {
	var m map[string]any
	if len(recs) > 0 && len(recs[0].Coordinates) > 0 {
		_ = json.Unmarshal(recs[0].Coordinates, &m)
	}
	var out []Coord
	if len(m) > 0 {
		for k, v := range m {
			out = append(out, Coord{k, strings.Trim(fmt.Sprint(jsonValue(v)), `"`)})
		}
	} else {
		for k, v := range stats.Flatten(run.Config) {
			out = append(out, Coord{k, strings.Trim(v, `"`)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return v
}

// percentiles averages each percentile over the valid cycles.
func percentiles(recs []*result.Record, get func(*result.Record) result.Dist) figure.Percentiles {
	var p figure.Percentiles
	n := 0
	for _, r := range recs {
		d := get(r)
		if r.Status != result.StatusOK || d.N == 0 {
			continue
		}
		n++
		p.N += d.N
		p.Min += d.MinMs
		p.P50 += d.P50Ms
		p.P90 += d.P90Ms
		p.P95 += d.P95Ms
		p.P99 += d.P99Ms
		p.Max += d.MaxMs
		p.Mean += d.MeanMs
	}
	if n == 0 {
		return figure.Percentiles{}
	}
	k := float64(n)
	p.Min, p.P50, p.P90, p.P95, p.P99, p.Max, p.Mean = p.Min/k, p.P50/k, p.P90/k, p.P95/k, p.P99/k, p.Max/k, p.Mean/k
	return p
}

// throttleBits are the NVML clocks-event reasons that slow the GPU down:
// SW power cap, HW slowdown, SW thermal, HW thermal, HW power brake.
const throttleBits = 0x4 | 0x8 | 0x20 | 0x40 | 0x80

// timelines reads the timeseries of each run × cycle (executed order) and
// draws its power timeline.
func (r *Report) timelines(limit int) error {
	type win struct {
		c   *Config
		rec *result.Record
	}
	var wins []win
	for _, c := range r.Configs {
		for _, rec := range c.Records {
			if rec.Timeseries != "" {
				wins = append(wins, win{c, rec})
			}
		}
	}
	sort.SliceStable(wins, func(i, j int) bool {
		if wins[i].c.Study != wins[j].c.Study {
			return false
		}
		return wins[i].rec.Position < wins[j].rec.Position
	})
	if len(wins) == 0 {
		r.Missing = append(r.Missing, "power timelines: no record has a timeseries file")
	}
	for i, w := range wins {
		if limit > 0 && i >= limit {
			r.TimelinesOmitted = len(wins) - limit
			break
		}
		s, err := readTimeseries(filepath.Join(w.c.Study.Dir, filepath.FromSlash(w.rec.Timeseries)))
		if err != nil {
			r.Missing = append(r.Missing, fmt.Sprintf("power timeline of %s cycle %d: %v", w.c.ID, w.rec.Cycle, err))
			continue
		}
		f := figure.PowerTimeline(timeline(w.c, w.rec, s))
		if f == nil {
			r.Missing = append(r.Missing, fmt.Sprintf("power timeline of %s cycle %d: no power samples", w.c.ID, w.rec.Cycle))
			continue
		}
		f.Caption = fmt.Sprintf("%s, cycle %d (run %s, %s). Window %.3g s, %d samples every %.0f ms.",
			w.c.Label, w.rec.Cycle, shortID(w.rec.RunID), w.c.Study.Name(), w.rec.Timing.WindowS, w.rec.Energy.Samples, w.rec.Energy.SampleIntervalMs)
		r.Timelines = append(r.Timelines, f)
	}
	return nil
}

func timeline(c *Config, rec *result.Record, s *samples) figure.Timeline {
	tl := figure.Timeline{
		Name:    fmt.Sprintf("timeline-%s-%s-cycle-%d", c.ID, shortID(rec.RunID), rec.Cycle),
		Title:   fmt.Sprintf("%s cycle %d", c.ID, rec.Cycle),
		WindowS: rec.Timing.WindowS, BaselineW: math.NaN(), MeanW: math.NaN(), MeanMethod: rec.Energy.Method,
	}
	if rec.Energy.MeanPowerW != nil {
		tl.MeanW = *rec.Energy.MeanPowerW
	}
	if b := rec.Energy.Baseline; b != nil && b.Method != "unavailable" {
		tl.BaselineW = b.PowerW
	}
	idx := map[string]int{}
	for i := range s.tS {
		ch := s.channel[i]
		k, ok := idx[ch]
		if !ok {
			k = len(tl.Channels)
			idx[ch] = k
			tl.Channels = append(tl.Channels, figure.Trace{Name: s.name[i]})
		}
		t := &tl.Channels[k]
		t.T = append(t.T, s.tS[i])
		t.PowerW = append(t.PowerW, s.powerW[i])
		t.TempC = append(t.TempC, s.tempC[i])
		t.Throttle = append(t.Throttle, i < len(s.throttle) && s.throttle[i] > 0 && s.throttle[i]&throttleBits != 0)
	}
	for _, p := range s.meta.Phases {
		tl.Phases = append(tl.Phases, figure.Span{Name: p.Name,
			Start: float64(p.StartNs-s.meta.WindowStartNs) / 1e9, End: float64(p.EndNs-s.meta.WindowStartNs) / 1e9})
	}
	return tl
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
