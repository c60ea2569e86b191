package hf_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/exporters/hf"
	"github.com/llenergymeasure/llem/pkg/energy"
	"github.com/llenergymeasure/llem/pkg/result"
)

// TestTimeseriesConfig: every record's timeseries file lands in the
// "timeseries" config with its study, run and cycle, read back by DuckDB
// and hyparquet with t_utc typed as a timestamp.
func TestTimeseriesConfig(t *testing.T) {
	dir, _, err := exportertest.WriteStudy(t.TempDir(), exportertest.Spec{Study: "ts", Runs: 2, Cycles: 2, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	s, err := result.LoadStudy(dir)
	if err != nil {
		t.Fatal(err)
	}
	anchor := result.ClockAnchor{MonotonicNs: 5e9, UTC: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, r := range s.Records {
		tl := &energy.Timeline{Sensor: "estimate", IntervalNs: 1e8}
		c := energy.ChannelTimeline{Channel: energy.Channel{ID: "estimate:cpu", Sensor: "estimate", Kind: "cpu", Name: "cpu"}}
		for i := range 3 {
			c.Samples = append(c.Samples, energy.Sample{TNs: int64(5e9 + i*1e8), EnergyJ: float64(i), PowerW: 20, TempC: math.NaN(),
				SMClockMHz: math.NaN(), MemClockMHz: math.NaN(), UtilPct: 10, MemUsedBytes: -1, ThrottleReasons: -1})
		}
		tl.Channels = append(tl.Channels, c)
		data, err := result.EncodeTimeseries(tl, result.TimeseriesMeta{Study: r.Study, RunID: r.RunID, Cycle: r.Cycle, WindowStartNs: 5e9, WindowEndNs: 5.2e9, Anchor: &anchor})
		if err != nil {
			t.Fatal(err)
		}
		r.Timeseries = result.TimeseriesPath(r.RunID, r.Cycle)
		p := filepath.Join(dir, filepath.FromSlash(r.Timeseries))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "ds")
	e, _ := hf.New(exporters.Params{Dest: out})
	if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
		t.Fatal(err)
	}
	got := exportertest.ReadParquet(t, filepath.Join(out, filepath.FromSlash(hf.TimeseriesFile)),
		`SELECT study, run_id, cycle::INTEGER AS cycle, t_utc::VARCHAR AS utc, power_w FROM t ORDER BY run_id, cycle, t_ns`)
	if got.DuckDB.Count != 12 || got.Hyparquet.NumRows != 12 {
		t.Fatalf("rows duckdb %d hyparquet %d, want 12", got.DuckDB.Count, got.Hyparquet.NumRows)
	}
	for col, typ := range map[string]string{"t_utc": "TIMESTAMP WITH TIME ZONE", "cycle": "BIGINT", "device_index": "BIGINT", "temp_c": "DOUBLE"} {
		if got.DuckDB.Types[col] != typ {
			t.Errorf("duckdb type of %s = %q, want %s", col, got.DuckDB.Types[col], typ)
		}
	}
	q := got.DuckDB.Query
	if q[0]["study"] != "ts" || fmt.Sprint(q[1]["utc"]) == "" || q[0]["utc"] == q[1]["utc"] {
		t.Errorf("rows %v %v", q[0], q[1])
	}
	card, _ := os.ReadFile(filepath.Join(out, "README.md"))
	if !strings.Contains(string(card), "\n- config_name: timeseries\n") {
		t.Errorf("card lacks the timeseries config")
	}
}
