// Package parquet exports a study as one flat Parquet file: one row per run
// per cycle, one column per metric (see Columns), configs and environment as
// JSON strings. Written with arrow-go's pqarrow, snappy-compressed with
// dictionary encoding for the short string columns, in row groups of 64Ki
// rows.
package parquet

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// RowGroupRows is the number of rows per row group (and Arrow batch).
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

// Write writes records to w as Parquet. meta is added to the file's
// key-value metadata (the hf exporter puts its "huggingface" key there).
func Write(ctx context.Context, w io.Writer, recs []*result.Record, cc carbon.Config, meta map[string]string) error {
	schema := Schema(meta)
	// Dictionary encoding only where values repeat (strings: model,
	// backend, status, configs...). For measured floats it costs a hash
	// lookup per value and every value is distinct anyway.
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(RowGroupRows),
		parquet.WithCreatedBy("llem"),
	}
	for _, c := range Columns {
		if c.Kind == String && !bulkyStrings[c.Name] {
			opts = append(opts, parquet.WithDictionaryFor(c.Name, true))
		}
	}
	props := parquet.NewWriterProperties(opts...)
	// Hide any Close method: pqarrow closes a sink that has one, and the
	// caller owns w.
	fw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{w}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("create parquet writer: %w", err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	flush := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		if rec.NumRows() == 0 {
			return nil
		}
		if err := fw.Write(rec); err != nil {
			return fmt.Errorf("write parquet rows: %w", err)
		}
		return nil
	}
	builders := make([]array.Builder, len(Columns))
	for i := range Columns {
		builders[i] = b.Field(i)
	}
	// The carbon settings are the same for every row: resolve them once
	// (region lookup, validation) and scale per row.
	unit := carbon.Compute(1, cc)
	rows := make([]row, 0, min(RowGroupRows, len(recs)))
	workers := max(1, min(runtime.GOMAXPROCS(0), len(Columns)))
	for lo := 0; lo < len(recs); lo += RowGroupRows {
		if err := ctx.Err(); err != nil {
			fw.Close()
			return err
		}
		hi := min(lo+RowGroupRows, len(recs))
		rows = rows[:0]
		for _, r := range recs[lo:hi] {
			x := row{r: r}
			if r.Energy.RawJ != nil {
				x.co2 = unit.Scale(EnergyForCarbon(r))
			}
			rows = append(rows, x)
		}
		// Column-major and in parallel: each builder is touched by one
		// goroutine and stays hot in cache while it takes a whole batch.
		b.Reserve(len(rows))
		var wg sync.WaitGroup
		next := make(chan int, len(Columns))
		for i := range Columns {
			next <- i
		}
		close(next)
		for range workers {
			wg.Go(func() {
				for i := range next {
					appendColumn(builders[i], &Columns[i], rows)
				}
			})
		}
		wg.Wait()
		if err := flush(); err != nil {
			fw.Close()
			return err
		}
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("finish parquet file: %w", err)
	}
	return nil
}

// EnergyForCarbon is the energy a record's CO2 estimate uses: the same
// basis as its efficiency ratios (baseline-adjusted when that is the
// basis, else raw).
func EnergyForCarbon(r *result.Record) float64 {
	if r.Energy.BaselineAdjustedJ != nil && r.Efficiency.Basis == "baseline_adjusted" {
		return *r.Energy.BaselineAdjustedJ
	}
	if r.Energy.RawJ != nil {
		return *r.Energy.RawJ
	}
	return 0
}

// bulkyStrings are long per-row JSON strings: hashing them for a dictionary
// costs more than it saves over snappy (measured: ~40% of write time).
var bulkyStrings = map[string]bool{"config": true, "environment": true, "error_message": true}

// appendColumn appends one column's values for rows (capacity reserved).
func appendColumn(bl array.Builder, c *Column, rows []row) {
	switch c.Kind {
	case String:
		sb := bl.(*array.StringBuilder)
		for k := range rows {
			if v, ok := c.s(&rows[k]); ok {
				sb.Append(v)
			} else {
				sb.AppendNull()
			}
		}
	case Int64:
		ib := bl.(*array.Int64Builder)
		for k := range rows {
			if v, ok := c.i(&rows[k]); ok {
				ib.UnsafeAppend(v)
			} else {
				ib.UnsafeAppendBoolToBitmap(false)
			}
		}
	case Float64:
		fb := bl.(*array.Float64Builder)
		for k := range rows {
			if v, ok := c.f(&rows[k]); ok {
				fb.UnsafeAppend(v)
			} else {
				fb.UnsafeAppendBoolToBitmap(false)
			}
		}
	case Bool:
		bb := bl.(*array.BooleanBuilder)
		for k := range rows {
			if v, ok := c.b(&rows[k]); ok {
				bb.Append(v)
			} else {
				bb.AppendNull()
			}
		}
	case Timestamp:
		tb := bl.(*array.TimestampBuilder)
		for k := range rows {
			if v, ok := c.t(&rows[k]); ok {
				tb.Append(arrow.Timestamp(v.UnixMicro()))
			} else {
				tb.AppendNull()
			}
		}
	case StringList:
		lb := bl.(*array.ListBuilder)
		vb := lb.ValueBuilder().(*array.StringBuilder)
		for k := range rows {
			lb.Append(true)
			for _, v := range c.l(&rows[k]) {
				vb.Append(v)
			}
		}
	}
}

// Exporter is the parquet exporter.
type Exporter struct{ p exporters.Params }

// New returns a parquet exporter; it needs a destination file.
func New(p exporters.Params) (exporters.Exporter, error) {
	return &Exporter{p: p}, nil
}

var _ exporters.Exporter = (*Exporter)(nil)

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
func (e *Exporter) Export(ctx context.Context, s *exporters.Study) (err error) {
	w, closeFn, err := exporters.Output(e.p)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeFn(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", e.p.Dest, cerr)
		}
	}()
	return Write(ctx, w, s.Records, e.p.Carbon, nil)
}
