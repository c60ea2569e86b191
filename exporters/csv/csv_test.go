package csv_test

import (
	"context"
	stdcsv "encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/llenergymeasure/llem/exporters"
	csvexp "github.com/llenergymeasure/llem/exporters/csv"
	"github.com/llenergymeasure/llem/exporters/exportertest"
	pq "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/pkg/result"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := stdcsv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestCSVMatchesParquetColumns: the CSV has the Parquet export's columns
// in order, the same nulls (empty cells) for a failed run, floats that
// read back exactly, and the per-run table beside it.
func TestCSVMatchesParquetColumns(t *testing.T) {
	dir, _, err := exportertest.WriteStudy(t.TempDir(), exportertest.Spec{Runs: 2, Cycles: 3, Seed: 3, Failed: map[[2]int]bool{{1, 3}: true}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := result.LoadStudy(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "x.csv")
	e, _ := csvexp.New(exporters.Params{Dest: out})
	if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
		t.Fatal(err)
	}
	rows := readCSV(t, out)
	var names []string
	for _, c := range pq.ColumnsFor(s.Records) {
		names = append(names, c.Name)
	}
	if !slices.Equal(rows[0], names) {
		t.Fatalf("header %v\nwant %v", rows[0], names)
	}
	if len(rows) != 1+len(s.Records) {
		t.Fatalf("%d rows, want %d", len(rows)-1, len(s.Records))
	}
	col := func(name string) int { return slices.Index(names, name) }
	for k, r := range s.Records {
		cells := rows[k+1]
		if r.Status == result.StatusFailed {
			for _, c := range []string{"output_tokens", "window_s", "energy_raw_j", "ttft_n"} {
				if cells[col(c)] != "" {
					t.Errorf("failed row %d: %s = %q, want empty (null)", k, c, cells[col(c)])
				}
			}
			continue
		}
		got, err := strconv.ParseFloat(cells[col("energy_raw_j")], 64)
		if err != nil || got != *r.Energy.RawJ {
			t.Errorf("row %d energy_raw_j %q, want %v", k, cells[col("energy_raw_j")], *r.Energy.RawJ)
		}
		if cells[col("flags")] == "" || cells[col("flags")][0] != '[' {
			t.Errorf("row %d flags %q, want a JSON array", k, cells[col("flags")])
		}
	}
	runs := readCSV(t, filepath.Join(filepath.Dir(out), "x.runs.csv"))
	if len(runs) != 3 || runs[0][0] != "study" || runs[0][1] != "run_id" {
		t.Errorf("runs table: %d rows, header %v", len(runs), runs[0])
	}
}
