package parquet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/exporters/exportertest"
	pq "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

func loadStudy(t *testing.T, spec exportertest.Spec) *result.Study {
	t.Helper()
	dir, _, err := exportertest.WriteStudy(t.TempDir(), spec)
	if err != nil {
		t.Fatal(err)
	}
	s, err := result.LoadStudy(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// duckType maps our column kinds to what DuckDB reports.
var duckType = map[pq.Kind]string{
	pq.String: "VARCHAR", pq.Int64: "BIGINT", pq.Float64: "DOUBLE", pq.Bool: "BOOLEAN",
	pq.Timestamp: "TIMESTAMP WITH TIME ZONE", pq.StringList: "VARCHAR[]",
}

func TestParquetReadByIndependentReaders(t *testing.T) {
	s := loadStudy(t, exportertest.Spec{Runs: 4, Cycles: 3, Seed: 5, Failed: map[[2]int]bool{{1, 2}: true}})
	out := filepath.Join(t.TempDir(), "study.parquet")
	intensity := 300.0
	e, _ := pq.New(exporters.Params{Dest: out, Carbon: carbon.Config{IntensityGPerKWh: &intensity}})
	if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
		t.Fatal(err)
	}
	got := exportertest.ReadParquet(t, out, `SELECT run_id, cycle::INTEGER AS cycle, status, energy_raw_j, energy_adjusted_j, output_tokens::INTEGER AS output_tokens, co2_g,
		ttft_p50_ms, prefill_energy_j, flags, config, started_at::VARCHAR AS started FROM t ORDER BY position`)

	if got.Hyparquet.NumRows != 12 || got.DuckDB.Count != 12 {
		t.Fatalf("rows: hyparquet %d, duckdb %d, want 12", got.Hyparquet.NumRows, got.DuckDB.Count)
	}
	cols := pq.ColumnsFor(s.Records)
	if len(got.Hyparquet.Columns) != len(cols) {
		t.Fatalf("hyparquet sees %d columns, want %d", len(got.Hyparquet.Columns), len(cols))
	}
	for i, c := range cols {
		if got.Hyparquet.Columns[i] != c.Name {
			t.Errorf("column %d = %q, want %q", i, got.Hyparquet.Columns[i], c.Name)
		}
		if dt := got.DuckDB.Types[c.Name]; dt != duckType[c.Kind] {
			t.Errorf("column %s: DuckDB type %q, want %q", c.Name, dt, duckType[c.Kind])
		}
	}
	if got.Hyparquet.KV[pq.MetadataSchemaVersion] != result.SchemaVersion {
		t.Errorf("kv metadata = %v", got.Hyparquet.KV)
	}
	for i, row := range got.DuckDB.Query {
		r := s.Records[i]
		if row["run_id"] != r.RunID || int(row["cycle"].(float64)) != r.Cycle || row["status"] != string(r.Status) {
			t.Errorf("row %d identity = %v, want %s/%d/%s", i, row, r.RunID, r.Cycle, r.Status)
		}
		if r.Status == result.StatusFailed {
			if row["energy_raw_j"] != nil || row["co2_g"] != nil || row["ttft_p50_ms"] != nil || row["prefill_energy_j"] != nil {
				t.Errorf("failed row %d should have nulls: %v", i, row)
			}
			continue
		}
		if v := row["energy_raw_j"].(float64); v != *r.Energy.RawJ {
			t.Errorf("row %d energy_raw_j %v, want %v", i, v, *r.Energy.RawJ)
		}
		// Efficiency basis is baseline_adjusted, so CO2 uses the adjusted energy.
		wantCO2 := *r.Energy.BaselineAdjustedJ / 3.6e6 * intensity
		if v := row["co2_g"].(float64); math.Abs(v-wantCO2) > 1e-12 {
			t.Errorf("row %d co2_g %v, want %v", i, v, wantCO2)
		}
		if row["ttft_p50_ms"].(float64) != r.Latency.TTFT.P50Ms || int(row["output_tokens"].(float64)) != r.Throughput.OutputTokens {
			t.Errorf("row %d latency/tokens: %v", i, row)
		}
		if row["started"] != "2026-11-26 "+r.Timing.StartedAt.Format("15:04:05")+"+00" {
			t.Errorf("row %d started_at %v, want %v", i, row["started"], r.Timing.StartedAt)
		}
		if cfg, _ := row["config"].(string); len(cfg) == 0 || cfg[0] != '{' || bytes.ContainsRune([]byte(cfg), '\n') {
			t.Errorf("row %d config is not compact JSON: %q", i, cfg)
		}
	}
	// hyparquet's rows decode too (first 3): spot-check values and types.
	h := got.Hyparquet.Rows[0]
	if h["run_id"] != s.Records[0].RunID || h["energy_raw_j"].(float64) != *s.Records[0].Energy.RawJ || h["throttled"] != false {
		t.Errorf("hyparquet row 0 = %v", h)
	}
}

func TestParquetNoCarbonMeansNullCO2(t *testing.T) {
	s := loadStudy(t, exportertest.Spec{Runs: 1, Cycles: 2, Seed: 1})
	out := filepath.Join(t.TempDir(), "x.parquet")
	e, _ := pq.New(exporters.Params{Dest: out})
	if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
		t.Fatal(err)
	}
	got := exportertest.ReadParquet(t, out, "SELECT count(co2_g)::INTEGER AS n, count(carbon_method)::INTEGER AS m FROM t")
	if q := got.DuckDB.Query[0]; q["n"].(float64) != 0 || q["m"].(float64) != 0 {
		t.Errorf("CO2 invented without an intensity: %v", q)
	}
}

func TestColumnNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range pq.Columns() {
		if seen[c.Name] {
			t.Errorf("duplicate column %s", c.Name)
		}
		seen[c.Name] = true
	}
}

// BenchmarkExport100k writes 100,000 records (one row each) to Parquet.
// Goal: ≥ 1M rows/s. Besides rows/s it reports cpu-ms/op, the process's
// CPU time (all threads, GC included) per export, which is steadier than
// wall time on a shared machine.
//
//   - synthetic: exportertest.Records as they are in memory (100 runs ×
//     1000 cycles, a ~130-byte compact config, a 33-byte environment).
//   - study-100x1000 and study-10000x10: what llem results export sees for
//     a real study: records read back from the indented JSON pkg/result
//     writes (so config and environment are indented JSON, as on disk,
//     and every record is its own allocation), a ~700-byte config per run
//     and one ~1.3 KB environment snapshot per study; 100 runs × 1000
//     cycles or 10,000 runs × 10 cycles.
func BenchmarkExport100k(b *testing.B) {
	intensity := 300.0
	cc := carbon.Config{IntensityGPerKWh: &intensity}
	fixtures := []struct {
		name         string
		runs, cycles int
		loaded       bool
	}{
		{"synthetic", 100, 1000, false},
		{"study-100x1000", 100, 1000, true},
		{"study-10000x10", 10000, 10, true},
	}
	for _, fx := range fixtures {
		b.Run(fx.name, func(b *testing.B) {
			spec := exportertest.Spec{Runs: fx.runs, Cycles: fx.cycles, Seed: 9}
			if fx.loaded {
				spec.Configs = make([]map[string]any, fx.runs)
				for i := range spec.Configs {
					spec.Configs[i] = exportertest.RealisticConfig(i)
				}
			}
			recs := exportertest.Records(spec)
			var ptrs []*result.Record
			if fx.loaded {
				for i := range recs {
					recs[i].Environment = json.RawMessage(exportertest.Environment)
				}
				var err error
				if ptrs, err = exportertest.AsLoaded(recs); err != nil {
					b.Fatal(err)
				}
				recs = nil
			} else {
				ptrs = make([]*result.Record, len(recs))
				for i := range recs {
					ptrs[i] = &recs[i]
				}
			}
			runtime.GC()
			cpu0 := cpuTime()
			for b.Loop() {
				if err := pq.Write(context.Background(), io.Discard, ptrs, cc, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(ptrs))/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		})
	}
}

// TestColumnsDocumented keeps docs/results.md's column table in step with
// Columns: every column, in order, with its number.
func TestColumnsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/results.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	at := 0
	for i, c := range pq.Columns() {
		row := fmt.Sprintf("| %d | `%s` |", i+1, c.Name)
		k := strings.Index(doc[at:], row)
		if k < 0 {
			t.Fatalf("docs/results.md lacks the row %q (after column %d): regenerate the table", row, i)
		}
		at += k
	}
}

// TestParquetSeveralRowGroups crosses the row-group boundary (batches are
// built column-major in parallel) and checks every row arrives in order.
func TestParquetSeveralRowGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 66,000 rows")
	}
	// Only the independent readers check the file: without them, skip
	// before writing it rather than after.
	exportertest.ReadersDir(t)
	recs := exportertest.Records(exportertest.Spec{Runs: 6, Cycles: 11000, Seed: 2})
	ptrs := make([]*result.Record, len(recs))
	for i := range recs {
		ptrs[i] = &recs[i]
	}
	out := filepath.Join(t.TempDir(), "big.parquet")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := pq.Write(context.Background(), f, ptrs, carbon.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var sumRaw, sumPos float64
	for _, r := range recs {
		sumRaw += *r.Energy.RawJ
		sumPos += float64(r.Position)
	}
	got := exportertest.ReadParquet(t, out, `SELECT sum(energy_raw_j) AS e, sum(position)::DOUBLE AS p,
		count(*) FILTER (WHERE position <> rn - 1)::INTEGER AS misplaced FROM (SELECT *, row_number() OVER () AS rn FROM t)`)
	q := got.DuckDB.Query[0]
	if got.DuckDB.Count != 66000 || math.Abs(q["e"].(float64)-sumRaw) > 1e-6*sumRaw || q["p"].(float64) != sumPos || q["misplaced"].(float64) != 0 {
		t.Errorf("rows %d, query %v; want 66000 rows, sum %v, positions %v, none misplaced", got.DuckDB.Count, q, sumRaw, sumPos)
	}
}
