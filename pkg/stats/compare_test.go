package stats_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/pkg/stats"
)

func configs(precision string) []map[string]any {
	var out []map[string]any
	for _, bs := range []int{1, 4, 16} {
		out = append(out, map[string]any{"model": "random:llama-15m", "backend": "native", "precision": precision,
			"n": 100, "native": map[string]any{"batch_size": bs, "threads": 2}, "decoder": map[string]any{"temperature": 0}})
	}
	return out
}

func TestCompareOneParameter(t *testing.T) {
	a := summarise(exportertest.Records(exportertest.Spec{Study: "a", Runs: 3, Cycles: 5, Seed: 1, Configs: configs("fp32")}), stats.SummaryOptions{})
	b := summarise(exportertest.Records(exportertest.Spec{Study: "b", Runs: 3, Cycles: 5, Seed: 2, Configs: configs("fp16"), EnergyScale: 0.6}), stats.SummaryOptions{})
	c := stats.Compare("a", a, "b", b)
	if len(c.Pairs) != 3 || len(c.UnmatchedA) != 0 || len(c.UnmatchedB) != 0 {
		t.Fatalf("pairs %d, unmatched %v %v", len(c.Pairs), c.UnmatchedA, c.UnmatchedB)
	}
	for i, p := range c.Pairs {
		if p.Match != "nearest" || len(p.ConfigDiff) != 1 || p.ConfigDiff[0] != (stats.ConfigDiff{Path: "precision", A: `"fp32"`, B: `"fp16"`}) {
			t.Errorf("pair %d: match %s, config diff %+v; want only precision fp32→fp16", i, p.Match, p.ConfigDiff)
		}
		// Batch sizes must line up (the nearest config, not any config).
		if p.RunA != a.Runs[i].RunID || p.RunB != b.Runs[i].RunID {
			t.Errorf("pair %d aligned %s with %s", i, p.RunA, p.RunB)
		}
		var e *stats.MetricDiff
		for k := range p.Metrics {
			if p.Metrics[k].Name == "energy_raw_j" {
				e = &p.Metrics[k]
			}
		}
		if e == nil || e.Diff >= 0 || e.RelDiff > -0.3 || e.Overlap == nil || *e.Overlap {
			t.Errorf("pair %d: energy diff %+v, want ~-40%% with non-overlapping CIs", i, e)
		}
	}
	var buf bytes.Buffer
	if err := stats.WriteComparison(&buf, c); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Count(out, "config precision: \"fp32\" → \"fp16\"") != 3 || strings.Contains(out, "config native") || !strings.Contains(out, "NO") {
		t.Errorf("text comparison:\n%s", out)
	}
	if _, err := json.Marshal(c); err != nil {
		t.Fatal(err)
	}
}

func TestCompareIdenticalStudies(t *testing.T) {
	a := summarise(exportertest.Records(exportertest.Spec{Runs: 2, Cycles: 5, Seed: 1, Configs: configs("fp32")[:2]}), stats.SummaryOptions{})
	b := summarise(exportertest.Records(exportertest.Spec{Runs: 2, Cycles: 5, Seed: 7, Configs: configs("fp32")[:2]}), stats.SummaryOptions{})
	c := stats.Compare("a", a, "b", b)
	for _, p := range c.Pairs {
		if p.Match != "config_hash" || len(p.ConfigDiff) != 0 {
			t.Errorf("pair %+v: want identical configs matched by hash", p)
		}
	}
	if len(c.Pairs) != 2 {
		t.Fatalf("%d pairs", len(c.Pairs))
	}
}

func TestCompareUnmatched(t *testing.T) {
	a := summarise(exportertest.Records(exportertest.Spec{Runs: 3, Cycles: 2, Seed: 1, Configs: configs("fp32")}), stats.SummaryOptions{})
	b := summarise(exportertest.Records(exportertest.Spec{Runs: 1, Cycles: 2, Seed: 1, Configs: configs("fp32")[2:]}), stats.SummaryOptions{})
	c := stats.Compare("a", a, "b", b)
	if len(c.Pairs) != 1 || c.Pairs[0].RunA != a.Runs[2].RunID || len(c.UnmatchedA) != 2 {
		t.Errorf("got %+v", c)
	}
}

func TestFlatten(t *testing.T) {
	f := stats.Flatten(json.RawMessage(`{"a":{"b":1,"c":[1,2]},"d":"x","e":{}}`))
	want := map[string]string{"a.b": "1", "a.c": "[1,2]", "d": `"x"`, "e": "{}"}
	if len(f) != len(want) {
		t.Fatalf("got %v", f)
	}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("%s = %q, want %q", k, f[k], v)
		}
	}
}

func TestVariedParamsInTable(t *testing.T) {
	sum := summarise(exportertest.Records(exportertest.Spec{Runs: 3, Cycles: 2, Seed: 1, Configs: configs("fp32")}), stats.SummaryOptions{})
	if v := stats.VariedParams(sum.Runs); len(v) != 1 || v[0] != "native.batch_size" {
		t.Fatalf("varied = %v, want [native.batch_size]", v)
	}
	var buf bytes.Buffer
	if err := stats.NewTextReporter(sum)(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"batch_size=1", "batch_size=4", "batch_size=16"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

// TestCompareConstants: two runs whose every cycle measured the same
// constant (different cycle counts, so a summed mean would round
// differently) have one-point CIs that overlap.
func TestCompareConstants(t *testing.T) {
	mk := func(n int) *stats.StudySummary {
		d := stats.Describe(slices.Repeat([]float64{0.1}, n), stats.Options{})
		return &stats.StudySummary{Runs: []stats.RunStats{{RunID: "r", Backend: "native", Model: "m", ConfigHash: "h",
			Metrics: []stats.MetricStats{{Name: "energy_per_output_token_j", Unit: "J/token", Description: d}}}}}
	}
	a, b := mk(3), mk(7)
	if a.Runs[0].Metrics[0].Mean != 0.1 || b.Runs[0].Metrics[0].CI.Lower != 0.1 || b.Runs[0].Metrics[0].CI.Upper != 0.1 {
		t.Fatalf("constant summarised as %+v", b.Runs[0].Metrics[0].Description)
	}
	c := stats.Compare("a", a, "b", b)
	if len(c.Pairs) != 1 || len(c.Pairs[0].Metrics) != 1 {
		t.Fatalf("comparison %+v", c)
	}
	m := c.Pairs[0].Metrics[0]
	if m.Overlap == nil || !*m.Overlap || m.Diff != 0 {
		t.Errorf("constants: overlap %v diff %v, want overlap yes, diff 0", m.Overlap, m.Diff)
	}
	var buf bytes.Buffer
	if err := stats.WriteComparison(&buf, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "NO") || !strings.Contains(buf.String(), "yes") {
		t.Errorf("text:\n%s", buf.String())
	}
	// Without the exact-constant path the sums differ in the last bit;
	// Overlaps treats ends that close as touching.
	x, y := stats.CI{Lower: 0.1, Upper: 0.1}, stats.CI{Lower: 0.10000000000000002, Upper: 0.10000000000000002}
	if !x.Overlaps(y) || x.Overlaps(stats.CI{Lower: 0.1000001, Upper: 0.2}) {
		t.Error("Overlaps tolerance wrong")
	}
}
