// Package csv exports studies as CSV (RFC 4180, header row): the same
// columns, order and nulls as the Parquet export (a null is an empty
// cell; lists are JSON arrays), for spreadsheets and tools without a
// Parquet reader. Beside a file it writes the per-run statistics table,
// x.csv → x.runs.csv.
package csv

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"

	"github.com/llenergymeasure/llem/exporters"
	pq "github.com/llenergymeasure/llem/exporters/parquet"
)

// Exporter is the csv exporter.
type Exporter struct{ p exporters.Params }

// New returns a csv exporter.
func New(p exporters.Params) (exporters.Exporter, error) { return &Exporter{p: p}, nil }

var _ exporters.Exporter = (*Exporter)(nil)

func init() {
	exporters.Register(exporters.Format{Name: "csv", New: New, DefaultDest: func(slug string) string { return slug + ".csv" }, Beside: RunsDest})
}

// RunsDest is where the per-run table of an export to dest goes.
func RunsDest(dest string) []string {
	if dest == "" || dest == "-" {
		return nil
	}
	return []string{exporters.BesideFile(dest, ".csv", ".runs")}
}

// Description says what will be written.
func (e *Exporter) Description() string {
	d := e.p.Dest
	if d == "" || d == "-" {
		return "CSV, one row per run per cycle, to stdout"
	}
	return fmt.Sprintf("CSV, one row per run per cycle, to %s; per-run statistics to %s", d, RunsDest(d)[0])
}

// Export writes the per-cycle table, and the per-run table beside a file.
func (e *Exporter) Export(ctx context.Context, s *exporters.Set) error {
	w, err := exporters.Open(e.p)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := write(ctx, w, pq.RecordText(s.Records(), e.p.Carbon)); err != nil {
		return err
	}
	if runs := RunsDest(e.p.Dest); runs != nil {
		rp := e.p
		rp.Dest = runs[0]
		rw, err := exporters.Open(rp)
		if err != nil {
			return err
		}
		defer rw.Abort()
		rows, _ := s.Runs()
		if err := write(ctx, rw, pq.RunText(rows)); err != nil {
			return err
		}
		if err := rw.Commit(); err != nil {
			return err
		}
	}
	return w.Commit()
}

func write(ctx context.Context, out *exporters.Output, t *pq.TextTable) error {
	bw := bufio.NewWriterSize(out, 1<<16)
	cw := csv.NewWriter(bw)
	if err := cw.Write(t.Header()); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	cells := make([]string, len(t.Cols))
	for k := range t.Len() {
		if k%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		t.Row(k, cells)
		if err := cw.Write(cells); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}
