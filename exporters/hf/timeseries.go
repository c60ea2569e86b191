package hf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llenergymeasure/llem/exporters"
	pq "github.com/llenergymeasure/llem/exporters/parquet"
	"github.com/llenergymeasure/llem/pkg/result"
)

// TimeseriesFile is every record's timeseries in one table, published as
// the config "timeseries"; rows join the default config on (study,
// run_id, cycle).
const TimeseriesFile = "timeseries/train-00000-of-00001.parquet"

// TimeseriesColumns is the "timeseries" config's schema: the study's
// timeseries Parquet columns (docs/results-layout.md) led by the keys
// that join them to the per-cycle rows. t_utc is null for files written
// before timeseries version 2 (no clock anchor).
var TimeseriesColumns = []pq.Column{
	{Name: "study", Kind: pq.String}, {Name: "run_id", Kind: pq.String}, {Name: "cycle", Kind: pq.Int64},
	{Name: "t_ns", Kind: pq.Int64}, {Name: "t_s", Kind: pq.Float64}, {Name: "t_utc", Kind: pq.Timestamp},
	{Name: "channel", Kind: pq.String}, {Name: "sensor", Kind: pq.String}, {Name: "kind", Kind: pq.String},
	{Name: "device_index", Kind: pq.Int64}, {Name: "device_name", Kind: pq.String}, {Name: "phase", Kind: pq.String},
	{Name: "energy_j", Kind: pq.Float64}, {Name: "power_w", Kind: pq.Float64}, {Name: "temp_c", Kind: pq.Float64},
	{Name: "sm_clock_mhz", Kind: pq.Float64}, {Name: "mem_clock_mhz", Kind: pq.Float64}, {Name: "util_pct", Kind: pq.Float64},
	{Name: "mem_used_bytes", Kind: pq.Int64}, {Name: "throttle_reasons", Kind: pq.Int64},
}

// writeTimeseries concatenates the timeseries of s's records (those that
// have one) into one Parquet file; rows is 0 (and the file empty) when no
// record has a timeseries.
func writeTimeseries(ctx context.Context, s *exporters.Set, w *bytes.Buffer) (rows int, err error) {
	fields := make([]arrow.Field, len(TimeseriesColumns))
	for i, c := range TimeseriesColumns {
		fields[i] = arrow.Field{Name: c.Name, Type: c.Kind.Arrow(), Nullable: true}
	}
	md := arrow.NewMetadata([]string{"huggingface"}, []string{Features(TimeseriesColumns)})
	schema := arrow.NewSchema(fields, &md)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, st := range s.Studies {
		for _, r := range st.Records {
			if r.Timeseries == "" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			n, err := appendTimeseries(b, st, r)
			if err != nil {
				return 0, err
			}
			rows += n
		}
	}
	if rows == 0 {
		return 0, nil
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithCreatedBy("llem"))
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return 0, fmt.Errorf("timeseries config: %w", err)
	}
	if err := fw.Write(rec); err != nil {
		fw.Close()
		return 0, fmt.Errorf("timeseries config: %w", err)
	}
	if err := fw.Close(); err != nil {
		return 0, fmt.Errorf("timeseries config: %w", err)
	}
	return rows, nil
}

// appendTimeseries appends one record's timeseries file to b, columns
// matched by name.
func appendTimeseries(b *array.RecordBuilder, st *result.Study, r *result.Record) (int, error) {
	path := filepath.Join(st.Dir, filepath.FromSlash(r.Timeseries))
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("timeseries of %s cycle %d: %w", r.RunID, r.Cycle, err)
	}
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	defer tbl.Release()
	n := int(tbl.NumRows())
	for i, c := range TimeseriesColumns {
		fb := b.Field(i)
		switch c.Name {
		case "study":
			for range n {
				fb.(*array.StringBuilder).Append(r.Study)
			}
			continue
		case "run_id":
			for range n {
				fb.(*array.StringBuilder).Append(r.RunID)
			}
			continue
		case "cycle":
			for range n {
				fb.(*array.Int64Builder).Append(int64(r.Cycle))
			}
			continue
		}
		idx := tbl.Schema().FieldIndices(c.Name)
		if len(idx) == 0 {
			fb.AppendNulls(n)
			continue
		}
		for _, chunk := range tbl.Column(idx[0]).Data().Chunks() {
			appendArray(fb, chunk)
		}
	}
	return n, nil
}

// appendArray appends src's values (nulls kept) to dst, widening int32 to
// int64.
func appendArray(dst array.Builder, src arrow.Array) {
	for k := range src.Len() {
		if src.IsNull(k) {
			dst.AppendNull()
			continue
		}
		switch a := src.(type) {
		case *array.Int64:
			dst.(*array.Int64Builder).Append(a.Value(k))
		case *array.Int32:
			dst.(*array.Int64Builder).Append(int64(a.Value(k)))
		case *array.Float64:
			dst.(*array.Float64Builder).Append(a.Value(k))
		case *array.String:
			dst.(*array.StringBuilder).Append(a.Value(k))
		case *array.Timestamp:
			dst.(*array.TimestampBuilder).Append(a.Value(k))
		default:
			dst.AppendNull()
		}
	}
}
