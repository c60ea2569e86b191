package stats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// ConfigDiff is one leaf of the effective config that differs between two
// runs ("" side: absent).
type ConfigDiff struct {
	Path string `json:"path"`
	A    string `json:"a"`
	B    string `json:"b"`
}

// MetricDiff compares one metric of two runs.
type MetricDiff struct {
	Name    string  `json:"name"`
	Unit    string  `json:"unit"`
	A       float64 `json:"a"`
	B       float64 `json:"b"`
	Diff    float64 `json:"diff" doc:"b - a"`
	RelDiff float64 `json:"rel_diff" doc:"(b - a) / |a|; 0 when a is 0"`
	CIA     *CI     `json:"ci_a,omitempty"`
	CIB     *CI     `json:"ci_b,omitempty"`
	// Overlap is whether the two CIs share a point. Non-overlapping 95%
	// intervals mean a difference well beyond cycle-to-cycle noise;
	// overlapping ones do not by themselves mean "no difference".
	Overlap *bool `json:"ci_overlap"`
}

// RunPair is a run of study A aligned with a run of study B.
type RunPair struct {
	RunA   string `json:"run_a"`
	RunB   string `json:"run_b"`
	LabelA string `json:"label_a"`
	LabelB string `json:"label_b"`
	// Match is "config_hash" (identical effective configs) or "nearest"
	// (the B run whose config differs in the fewest fields).
	Match      string       `json:"match"`
	ConfigDiff []ConfigDiff `json:"config_diff"`
	Metrics    []MetricDiff `json:"metrics"`
}

// Comparison is study B against study A (the baseline).
type Comparison struct {
	A          string    `json:"a"`
	B          string    `json:"b"`
	Pairs      []RunPair `json:"pairs"`
	UnmatchedA []string  `json:"unmatched_a"`
	UnmatchedB []string  `json:"unmatched_b"`
}

// CompareMetrics are the metrics a comparison reports, in order.
var CompareMetrics = []string{
	"energy_per_output_token_j", "energy_per_request_j", "energy_raw_j", "energy_adjusted_j",
	"mean_power_w", "output_tokens_per_sec", "ttft_p50_ms", "itl_p50_ms", "e2e_p95_ms",
	MetricQuality, MetricQualityPerJoule, // scored runs only (docs/quality.md)
}

// Compare aligns the runs of b with those of a: identical config hashes
// first, then each remaining A run with the remaining B run whose config
// differs in the fewest leaves (ties: earlier run). Runs left over on either
// side are listed as unmatched.
func Compare(nameA string, a *StudySummary, nameB string, b *StudySummary) Comparison {
	c := Comparison{A: nameA, B: nameB, Pairs: []RunPair{}, UnmatchedA: []string{}, UnmatchedB: []string{}}
	usedB := make([]bool, len(b.Runs))
	matchA := make([]int, len(a.Runs))
	for i := range matchA {
		matchA[i] = -1
		for j := range b.Runs {
			if !usedB[j] && a.Runs[i].ConfigHash != "" && a.Runs[i].ConfigHash == b.Runs[j].ConfigHash {
				matchA[i], usedB[j] = j, true
				break
			}
		}
	}
	flatA := make([]map[string]string, len(a.Runs))
	flatB := make([]map[string]string, len(b.Runs))
	for i := range a.Runs {
		flatA[i] = Flatten(a.Runs[i].Config)
	}
	for j := range b.Runs {
		flatB[j] = Flatten(b.Runs[j].Config)
	}
	for i := range a.Runs {
		if matchA[i] >= 0 {
			continue
		}
		best, bestN := -1, math.MaxInt
		for j := range b.Runs {
			if usedB[j] {
				continue
			}
			if n := len(diffFlat(flatA[i], flatB[j])); n < bestN {
				best, bestN = j, n
			}
		}
		if best >= 0 {
			matchA[i], usedB[best] = best, true
		}
	}
	for i := range a.Runs {
		j := matchA[i]
		if j < 0 {
			c.UnmatchedA = append(c.UnmatchedA, a.Runs[i].RunID)
			continue
		}
		ra, rb := &a.Runs[i], &b.Runs[j]
		p := RunPair{RunA: ra.RunID, RunB: rb.RunID, LabelA: ra.Label(), LabelB: rb.Label(), Match: "nearest",
			ConfigDiff: diffFlat(flatA[i], flatB[j]), Metrics: []MetricDiff{}}
		if ra.ConfigHash == rb.ConfigHash && ra.ConfigHash != "" {
			p.Match = "config_hash"
		}
		for _, name := range CompareMetrics {
			ma, mb := ra.Metric(name), rb.Metric(name)
			if ma == nil || mb == nil || ma.N == 0 || mb.N == 0 {
				continue
			}
			d := MetricDiff{Name: name, Unit: ma.Unit, A: ma.Mean, B: mb.Mean, Diff: mb.Mean - ma.Mean, CIA: ma.CI, CIB: mb.CI}
			if ma.Mean != 0 {
				d.RelDiff = d.Diff / math.Abs(ma.Mean)
			}
			if ma.CI != nil && mb.CI != nil && !math.IsNaN(ma.CI.Lower) && !math.IsNaN(mb.CI.Lower) {
				o := ma.CI.Overlaps(*mb.CI)
				d.Overlap = &o
			}
			p.Metrics = append(p.Metrics, d)
		}
		c.Pairs = append(c.Pairs, p)
	}
	for j := range b.Runs {
		if !usedB[j] {
			c.UnmatchedB = append(c.UnmatchedB, b.Runs[j].RunID)
		}
	}
	return c
}

// Flatten turns a JSON object into dotted leaf paths with JSON-encoded
// values ({"a": {"b": 1}} → "a.b" = "1"). Arrays are leaves.
func Flatten(raw json.RawMessage) map[string]string {
	out := map[string]string{}
	if len(raw) == 0 {
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return out
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k, x := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
			return
		}
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
	walk("", v)
	return out
}

func diffFlat(a, b map[string]string) []ConfigDiff {
	var d []ConfigDiff
	for k, va := range a {
		if vb, ok := b[k]; !ok || vb != va {
			d = append(d, ConfigDiff{Path: k, A: va, B: b[k]})
		}
	}
	for k, vb := range b {
		if _, ok := a[k]; !ok {
			d = append(d, ConfigDiff{Path: k, B: vb})
		}
	}
	sort.Slice(d, func(i, j int) bool { return d[i].Path < d[j].Path })
	if d == nil {
		d = []ConfigDiff{}
	}
	return d
}

// WriteComparison renders c as text: per pair the config differences, then
// a metric table with the CIs and whether they overlap.
func WriteComparison(w io.Writer, c Comparison) error {
	fmt.Fprintf(w, "A: %s\nB: %s\n", c.A, c.B)
	for _, p := range c.Pairs {
		fmt.Fprintf(w, "\n%s  ↔  %s  (%s)\n", shortID(p.RunA), shortID(p.RunB), p.Match)
		if len(p.ConfigDiff) == 0 {
			fmt.Fprintln(w, "  config: identical")
		}
		for _, d := range p.ConfigDiff {
			fmt.Fprintf(w, "  config %s: %s → %s\n", d.Path, orAbsent(d.A), orAbsent(d.B))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  METRIC\tA [95% CI]\tB [95% CI]\tB−A\tCHANGE\tCIs OVERLAP")
		for _, m := range p.Metrics {
			ov := "-"
			if m.Overlap != nil {
				ov = map[bool]string{true: "yes", false: "NO"}[*m.Overlap]
			}
			fmt.Fprintf(tw, "  %s (%s)\t%s\t%s\t%s\t%+.1f%%\t%s\n", m.Name, m.Unit, withCI(m.A, m.CIA), withCI(m.B, m.CIB), Num(m.Diff), m.RelDiff*100, ov)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write comparison: %w", err)
		}
	}
	if len(c.UnmatchedA) > 0 {
		fmt.Fprintf(w, "\nonly in A: %s\n", strings.Join(c.UnmatchedA, ", "))
	}
	if len(c.UnmatchedB) > 0 {
		fmt.Fprintf(w, "\nonly in B: %s\n", strings.Join(c.UnmatchedB, ", "))
	}
	return nil
}

func withCI(v float64, ci *CI) string {
	if ci == nil || ci.Method == MethodNone || math.IsNaN(ci.Lower) {
		return Num(v)
	}
	return fmt.Sprintf("%s [%s, %s]", Num(v), Num(ci.Lower), Num(ci.Upper))
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}
