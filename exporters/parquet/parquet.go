// Package parquet exports a study as one flat Parquet file: one row per run
// per cycle, one column per metric (see Columns), configs and environment as
// JSON strings. Written with arrow-go (the file pqarrow would write for
// Schema, see write.go), snappy-compressed with dictionary encoding for the
// string columns, in row groups of 64Ki rows.
package parquet

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/pkg/result"
)

// RowGroupRows is the number of rows per row group.
const RowGroupRows = 1 << 16

// MetadataSchemaVersion is the key-value metadata key holding the record
// schema version the columns were derived from.
const MetadataSchemaVersion = "llem:schema_version"

// Schema returns the Arrow schema of the export with extra metadata.
func Schema(meta map[string]string) *arrow.Schema {
	fields := make([]arrow.Field, len(Columns))
	for i, c := range Columns {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Kind.Arrow(), Nullable: true}
	}
	keys := []string{MetadataSchemaVersion}
	vals := []string{result.SchemaVersion}
	for k, v := range meta {
		keys = append(keys, k)
		vals = append(vals, v)
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
	exporters.Register(exporters.Format{Name: "parquet", New: New, DefaultDest: func(slug string) string { return slug + ".parquet" }})
}

// Description says what will be written.
func (e *Exporter) Description() string {
	return fmt.Sprintf("Parquet, one row per run per cycle, %d columns, to %s", len(Columns), dest(e.p.Dest))
}

func dest(d string) string {
	if d == "" || d == "-" {
		return "stdout"
	}
	return d
}

// Export writes s's records.
func (e *Exporter) Export(ctx context.Context, s *result.Study) (err error) {
	w, err := exporters.Open(e.p)
	if err != nil {
		return err
	}
	defer w.Abort()
	if err := Write(ctx, w, s.Records, e.p.Carbon, nil); err != nil {
		return err
	}
	return w.Commit()
}
