package parquet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/exporters/exportertest"
	pq "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// TestTypedColumnsReadBack: the coordinate, device, domain and version
// columns arrive typed in DuckDB and hyparquet, in both tables, and
// several studies export as one dataset with their rows apart.
func TestTypedColumnsReadBack(t *testing.T) {
	a := loadStudy(t, exportertest.Spec{Study: "a", Runs: 3, Cycles: 2, Seed: 5, Failed: map[[2]int]bool{{1, 2}: true}})
	b := loadStudy(t, exportertest.Spec{Study: "b", Runs: 2, Cycles: 2, Seed: 6})
	batch := map[string]int{}
	for _, s := range []*result.Study{a, b} {
		for _, r := range s.Records {
			if _, ok := batch[r.Study+r.RunID]; !ok {
				batch[r.Study+r.RunID] = 1 << len(batch)
			}
			r.Coordinates = json.RawMessage(fmt.Sprintf(`{"native.batch_size": %d, "precision": "fp%d", "temperature": %d.5}`,
				batch[r.Study+r.RunID], 16*(1+len(batch)%2), len(batch)))
			r.Energy.PerDevice = []result.DeviceEnergy{{Index: 0, Kind: "gpu", Name: "H200", EnergyJ: 10, MeanPowerW: 300}}
			r.Energy.PerDomainJ = map[string]float64{"gpu": 10, "cpu-package": 2}
			r.Worker = &result.WorkerInfo{Backend: "native", ProtocolVersion: 1, Runner: "local", Versions: map[string]string{"torch": "2.9.0"}}
		}
	}
	out := filepath.Join(t.TempDir(), "two.parquet")
	intensity := 300.0
	e, _ := pq.New(exporters.Params{Dest: out, Carbon: carbon.Config{IntensityGPerKWh: &intensity}})
	if err := e.Export(context.Background(), exporters.NewSet(a, b)); err != nil {
		t.Fatal(err)
	}
	got := exportertest.ReadParquet(t, out, `SELECT study, coord_native_batch_size, coord_precision, coord_temperature, energy_gpu0_j,
		energy_domain_cpu_package_j, version_torch, status, output_tokens FROM t ORDER BY study, position`)
	want := map[string]string{"coord_native_batch_size": "BIGINT", "coord_precision": "VARCHAR", "coord_temperature": "DOUBLE",
		"energy_gpu0_j": "DOUBLE", "mean_power_gpu0_w": "DOUBLE", "energy_domain_cpu_package_j": "DOUBLE", "energy_domain_gpu_j": "DOUBLE",
		"version_torch": "VARCHAR", "window_start_ns": "BIGINT", "model_layers": "BIGINT"}
	for col, typ := range want {
		if got.DuckDB.Types[col] != typ {
			t.Errorf("duckdb type of %s = %q, want %s", col, got.DuckDB.Types[col], typ)
		}
	}
	if got.DuckDB.Count != 10 || got.Hyparquet.NumRows != 10 {
		t.Fatalf("rows duckdb %d hyparquet %d, want 10", got.DuckDB.Count, got.Hyparquet.NumRows)
	}
	q := got.DuckDB.Query
	if q[0]["study"] != "a" || fmt.Sprint(q[0]["coord_native_batch_size"]) != "1" || q[9]["study"] != "b" || fmt.Sprint(q[9]["coord_native_batch_size"]) != "16" ||
		q[0]["coord_precision"] == nil || fmt.Sprint(q[0]["energy_domain_cpu_package_j"]) != "2" || q[0]["version_torch"] != "2.9.0" {
		t.Errorf("duckdb rows: first %v last %v", q[0], q[9])
	}
	var failed int
	for _, r := range q {
		if r["status"] == "failed" {
			failed++
			if r["output_tokens"] != nil {
				t.Errorf("failed row output_tokens = %v, want null", r["output_tokens"])
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d failed rows, want 1", failed)
	}
	hrow := got.Hyparquet.Rows[0]
	if fmt.Sprint(hrow["coord_native_batch_size"]) != "1" || fmt.Sprint(hrow["coord_temperature"]) != "1.5" {
		t.Errorf("hyparquet row 0: batch %v temperature %v", hrow["coord_native_batch_size"], hrow["coord_temperature"])
	}

	runs := filepath.Join(filepath.Dir(out), "two.runs.parquet")
	if _, err := os.Stat(runs); err != nil {
		t.Fatal(err)
	}
	rg := exportertest.ReadParquet(t, runs, `SELECT study, run_id, coord_native_batch_size, n_valid_cycles::INTEGER AS n,
		energy_per_output_token_j_mean AS m, energy_per_output_token_j_ci_low AS lo, energy_per_output_token_j_ci_high AS hi,
		energy_per_output_token_j_ci_method AS method FROM t ORDER BY study, coord_native_batch_size`)
	if rg.DuckDB.Count != 5 || rg.Hyparquet.NumRows != 5 || rg.DuckDB.Types["coord_native_batch_size"] != "BIGINT" ||
		rg.DuckDB.Types["energy_per_output_token_j_n"] != "BIGINT" {
		t.Fatalf("runs table: %d/%d rows, types %v", rg.DuckDB.Count, rg.Hyparquet.NumRows, rg.DuckDB.Types)
	}
	for _, r := range rg.DuckDB.Query {
		lo, _ := r["lo"].(float64)
		hi, _ := r["hi"].(float64)
		m, _ := r["m"].(float64)
		if r["method"] == nil || lo > m || m > hi {
			t.Errorf("run %v: CI [%v, %v] around %v, method %v", r["run_id"], lo, hi, m, r["method"])
		}
	}
	ones := 0
	for _, r := range rg.DuckDB.Query {
		if fmt.Sprint(r["n"]) == "1" { // the run that lost a cycle
			ones++
		}
	}
	if ones != 1 {
		t.Errorf("%d runs with one valid cycle, want 1: %v", ones, rg.DuckDB.Query)
	}
}
