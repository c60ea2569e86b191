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

	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// referenceWrite is the straightforward writer (Arrow builders and
// pqarrow.FileWriter, dictionaries hashed by arrow-go) that Write must
// agree with, value for value.
func referenceWrite(ctx context.Context, w io.Writer, recs []*result.Record, cc carbon.Config, meta map[string]string) error {
	cols := ColumnsFor(recs)
	schema := Schema(cols, meta)
	// Dictionary encoding only where values repeat (strings: model,
	// backend, status, configs...). For measured floats it costs a hash
	// lookup per value and every value is distinct anyway.
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(RowGroupRows),
		parquet.WithCreatedBy("llem"),
	}
	for _, c := range cols {
		if c.Kind == String && c.j == nil && c.Name != "error_message" {
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
	builders := make([]array.Builder, len(cols))
	for i := range cols {
		builders[i] = b.Field(i)
	}
	// The carbon settings are the same for every row: resolve them once
	// (region lookup, validation) and scale per row.
	unit := carbon.Compute(1, cc)
	all := recordRows(recs, cols, &unit)
	workers := max(1, min(runtime.GOMAXPROCS(0), len(cols)))
	for lo := 0; lo < len(recs); lo += RowGroupRows {
		if err := ctx.Err(); err != nil {
			fw.Close()
			return err
		}
		hi := min(lo+RowGroupRows, len(recs))
		rows := all[lo:hi]
		// Column-major and in parallel: each builder is touched by one
		// goroutine and stays hot in cache while it takes a whole batch.
		b.Reserve(len(rows))
		var wg sync.WaitGroup
		next := make(chan int, len(cols))
		for i := range cols {
			next <- i
		}
		close(next)
		for range workers {
			wg.Go(func() {
				for i := range next {
					appendColumn(builders[i], &cols[i], rows)
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
