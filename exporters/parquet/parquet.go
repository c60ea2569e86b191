// Package parquet exports a study as one flat Parquet file: one row per run
// per cycle, one column per metric (see Columns), configs and environment as
// JSON strings. Written with arrow-go (the file pqarrow would write for
// Schema, see write.go), snappy-compressed with dictionary encoding for the
// string columns, in row groups of 64Ki rows.
package parquet

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/pkg/result"
)

// RowGroupRows is the number of rows per row group.
const RowGroupRows = 1 << 16

// MetadataSchemaVersion is the key-value metadata key holding the record
// schema version the columns were derived from.
const MetadataSchemaVersion = "llem:schema_version"

// Schema returns the Arrow schema of cols with extra metadata (keys in
// sorted order, so the same export is the same bytes).
func Schema(cols []Column, meta map[string]string) *arrow.Schema {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Kind.Arrow(), Nullable: true}
	}
	keys := []string{MetadataSchemaVersion}
	vals := []string{result.SchemaVersion}
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		keys = append(keys, k)
		vals = append(vals, meta[k])
	}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(fields, &md)
}

// Exporter is the parquet exporter.
type Exporter struct{ p exporters.Params }

// New returns a parquet exporter; it needs a destination file.
func New(p exporters.Params) (exporters.Exporter, error) {
	return &Exporter{p: p}, nil
}

var _ exporters.Exporter = (*Exporter)(nil)

func init() {
	exporters.Register(exporters.Format{Name: "parquet", New: New, DefaultDest: func(slug string) string { return slug + ".parquet" }, Beside: RunsDest})
}

// RunsDest is where the per-run statistics table of a Parquet export to
// dest goes: x.parquet → x.runs.parquet (stdout exports have none).
func RunsDest(dest string) []string {
	if dest == "" || dest == "-" {
		return nil
	}
	return []string{exporters.BesideFile(dest, ".parquet", ".runs")}
}

// Description says what will be written.
func (e *Exporter) Description() string {
	d := fmt.Sprintf("Parquet, one row per run per cycle, %d+ columns, to %s", len(Columns()), dest(e.p.Dest))
	if runs := RunsDest(e.p.Dest); runs != nil {
		d += "; per-run statistics to " + runs[0]
	}
	return d
}

func dest(d string) string {
	if d == "" || d == "-" {
		return "stdout"
	}
	return d
}

// Export writes s's records and, beside a file, its per-run statistics.
// Both files are complete before either is renamed into place.
func (e *Exporter) Export(ctx context.Context, s *exporters.Set) (err error) {
	w, err := exporters.Open(e.p)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := Write(ctx, w, s.Records(), e.p.Carbon, nil); err != nil {
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
		if err := WriteRuns(ctx, rw, rows, nil); err != nil {
			return err
		}
		if err := rw.Commit(); err != nil {
			return err
		}
	}
	return w.Commit()
}
