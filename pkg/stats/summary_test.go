package stats_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

func summarise(recs []result.Record, o stats.SummaryOptions) *stats.StudySummary {
	s := stats.NewSummary(o)
	for i := range recs {
		s.Add(&recs[i])
	}
	return s.Close()
}

func TestSummaryAcrossCycles(t *testing.T) {
	recs := exportertest.Records(exportertest.Spec{Runs: 3, Cycles: 6, Seed: 1,
		Failed: map[[2]int]bool{{1, 2}: true}})
	sum := summarise(recs, stats.SummaryOptions{})
	if len(sum.Runs) != 3 {
		t.Fatalf("runs = %d, want 3", len(sum.Runs))
	}
	m := sum.Methodology
	if m.Mode != stats.ModeFixedCycles || m.Resamples != stats.DefaultResamples || m.Seed != 42 || m.ConfidenceLevel != 0.95 || m.CIMethod != "bca" {
		t.Errorf("methodology = %+v", m)
	}
	for i, r := range sum.Runs {
		wantValid := 6
		if i == 1 {
			wantValid = 5
		}
		if r.Cycles != 6 || r.ValidCount != wantValid {
			t.Errorf("run %d: cycles %d valid %d, want 6 and %d", i, r.Cycles, r.ValidCount, wantValid)
		}
		// Check energy per output token against a direct computation.
		var vals []float64
		for _, rec := range recs {
			if rec.RunID == r.RunID && rec.Status == result.StatusOK {
				vals = append(vals, *rec.Efficiency.EnergyPerOutputTokenJ)
			}
		}
		e := r.Metric("energy_per_output_token_j")
		if e == nil || e.N != wantValid {
			t.Fatalf("run %d: energy_per_output_token_j = %+v", i, e)
		}
		var mean float64
		for _, v := range vals {
			mean += v
		}
		mean /= float64(len(vals))
		if math.Abs(e.Mean-mean) > 1e-15 {
			t.Errorf("run %d: mean %.17g, direct %.17g", i, e.Mean, mean)
		}
		if !e.CI.Contains(e.Mean) || e.CI.Method != stats.MethodBCa {
			t.Errorf("run %d: CI %+v around %.6g", i, e.CI, e.Mean)
		}
		for _, name := range []string{"energy_raw_j", "energy_adjusted_j", "output_tokens_per_sec", "ttft_p50_ms", "itl_p99_ms", "prefill_energy_j", "decode_tokens_per_sec", "energy_per_request_j"} {
			if r.Metric(name) == nil {
				t.Errorf("run %d: metric %s missing", i, name)
			}
		}
	}
	if len(sum.Runs[1].Warnings) == 0 || !strings.Contains(sum.Runs[1].Warnings[0], "1 of 6 cycles failed") {
		t.Errorf("failed cycle not warned: %v", sum.Runs[1].Warnings)
	}
	if len(sum.Warnings) != 0 {
		t.Errorf("unexpected study warnings with ≥5 valid cycles: %v", sum.Warnings)
	}
}

func TestSummaryWarnsFewCycles(t *testing.T) {
	sum := summarise(exportertest.Records(exportertest.Spec{Runs: 2, Cycles: 3, Seed: 2}), stats.SummaryOptions{})
	if len(sum.Warnings) != 1 || !strings.Contains(sum.Warnings[0], "only 3 valid cycle") {
		t.Errorf("warnings = %v", sum.Warnings)
	}
}

func TestReporters(t *testing.T) {
	sum := summarise(exportertest.Records(exportertest.Spec{Runs: 2, Cycles: 5, Seed: 3}), stats.SummaryOptions{})
	var buf bytes.Buffer
	if err := stats.NewTextReporter(sum)(&buf); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	for _, want := range []string{"J/OUT-TOKEN", "native / random:llama-15m / fp32", "5/5", "95% bca CI, 10000 resamples, seed 42", " ["} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	buf.Reset()
	if err := stats.NewJSONReporter(sum)(&buf); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Methodology map[string]any `json:"measurement_methodology"`
		Runs        []struct {
			NValid  int `json:"n_valid_cycles"`
			Metrics []struct {
				Name string `json:"name"`
				N    int    `json:"n_valid_cycles"`
				CI   struct {
					Lower, Upper float64
					Method       string
				} `json:"ci"`
			} `json:"metrics"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Methodology["ci_method"] != "bca" || back.Runs[0].NValid != 5 || back.Runs[0].Metrics[0].CI.Method != "bca" {
		t.Errorf("JSON summary = %s", buf.String()[:400])
	}
}

// BenchmarkSummary1000Runs: summary statistics, DefaultResamples resamples, 1,000 runs
// of 5 cycles (every metric of every run gets a BCa CI).
func BenchmarkSummary1000Runs(b *testing.B) {
	recs := exportertest.Records(exportertest.Spec{Runs: 1000, Cycles: 5, Seed: 4,
		Configs: func() []map[string]any {
			c := make([]map[string]any, 1000)
			for i := range c {
				c[i] = map[string]any{"model": "m", "backend": "native", "n": i}
			}
			return c
		}()})
	b.ResetTimer()
	for b.Loop() {
		sum := summarise(recs, stats.SummaryOptions{})
		if len(sum.Runs) != 1000 {
			b.Fatal(len(sum.Runs))
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "runs/s")
}
