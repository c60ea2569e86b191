package parquet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// How Write works (see docs/results.md, "Benchmarks", for the numbers).
//
// The file is what pqarrow.FileWriter would write for Schema(meta) with
// WithStoreSchema (same Parquet schema, same ARROW:schema metadata, same
// values), but the columns are fed to arrow-go's column writers directly:
//
//   - Cells are read from the records row-block by row-block (a block of
//     records stays in cache while all its columns are read) into plain
//     typed slices, in parallel over blocks.
//   - Each row group is a buffered one, so its columns are encoded and
//     compressed in parallel, one column per goroutine at a time.
//   - String columns are dictionary-encoded from a dictionary built here
//     (a map per column, plus a same-as-previous-row shortcut) and handed
//     over as Arrow dictionary arrays, instead of letting the encoder hash
//     every value. JSON columns (config, environment) are compacted once
//     per distinct stored value, not once per row: in a study they repeat
//     for every cycle (config) or every row (environment).
//   - Numbers go straight to the typed column writers.

// blockRows is the number of records read together for all columns.
const blockRows = 256

// Write writes records to w as Parquet, with the columns ColumnsFor(recs).
// meta is added to the file's key-value metadata (the hf exporter puts its
// "huggingface" key there).
func Write(ctx context.Context, w io.Writer, recs []*result.Record, cc carbon.Config, meta map[string]string) error {
	cols := ColumnsFor(recs)
	unit := carbon.Compute(1, cc)
	return writeRows(ctx, w, cols, recordRows(recs, cols, &unit), meta)
}

// writeRows writes rows as Parquet with the columns cols.
func writeRows(ctx context.Context, w io.Writer, cols []Column, rows []row, meta map[string]string) error {
	schema := Schema(cols, meta)
	props := writerProperties(cols)
	arrProps := pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
	pqSchema, err := pqarrow.ToParquet(schema, props, arrProps)
	if err != nil {
		return fmt.Errorf("parquet schema: %w", err)
	}
	kv, err := fileMetadata(schema)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	// Hide any Close method: the parquet writer closes a sink that has one,
	// and the caller owns w.
	fw, err := file.NewParquetWriterWithError(struct{ io.Writer }{bw}, pqSchema.Root(),
		file.WithWriterProps(props), file.WithWriteMetadata(kv))
	if err != nil {
		return fmt.Errorf("create parquet writer: %w", err)
	}
	wr := newWriter(cols, min(RowGroupRows, len(rows)), &arrProps)
	for lo := 0; lo < len(rows); lo += RowGroupRows {
		if err := ctx.Err(); err != nil {
			fw.Close()
			return err
		}
		hi := min(lo+RowGroupRows, len(rows))
		rgw, err := fw.AppendBufferedRowGroupChecked()
		if err != nil {
			fw.Close()
			return fmt.Errorf("write parquet rows: %w", err)
		}
		wr.extract(rows[lo:hi])
		if err := wr.encode(rgw); err != nil {
			fw.Close()
			return fmt.Errorf("write parquet rows: %w", err)
		}
		if err := rgw.Close(); err != nil {
			fw.Close()
			return fmt.Errorf("write parquet rows: %w", err)
		}
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("finish parquet file: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("finish parquet file: %w", err)
	}
	return nil
}

// writerProperties: snappy, dictionary encoding for string columns (whose
// dictionaries Write builds itself), none for numbers (every measured value
// is distinct, so a dictionary would only cost a hash per value).
func writerProperties(cols []Column) *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithDictionaryDefault(false),
		parquet.WithMaxRowGroupLength(RowGroupRows),
		parquet.WithCreatedBy("llem"),
	}
	for _, c := range cols {
		if c.Kind == String {
			opts = append(opts, parquet.WithDictionaryFor(c.Name, true))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// fileMetadata is the key-value metadata pqarrow's WithStoreSchema writes:
// the schema's own metadata, then ARROW:schema, the schema as an IPC
// message (list items named "element", as pqarrow stores them), base64.
func fileMetadata(schema *arrow.Schema) (metadata.KeyValueMetadata, error) {
	kv := metadata.NewKeyValueMetadata()
	md := schema.Metadata()
	for i, k := range md.Keys() {
		if err := kv.Append(k, md.Values()[i]); err != nil {
			return nil, err
		}
	}
	fields := make([]arrow.Field, schema.NumFields())
	for i, f := range schema.Fields() {
		if lt, ok := f.Type.(*arrow.ListType); ok {
			elem := lt.ElemField()
			elem.Name = "element"
			f.Type = arrow.ListOfField(elem)
		}
		fields[i] = f
	}
	var buf bytes.Buffer
	iw := ipc.NewWriter(&buf, ipc.WithSchema(arrow.NewSchema(fields, &md)), ipc.WithAllocator(memory.DefaultAllocator))
	if err := iw.Close(); err != nil {
		return nil, fmt.Errorf("serialize arrow schema: %w", err)
	}
	if err := kv.Append("ARROW:schema", base64.StdEncoding.EncodeToString(buf.Bytes())); err != nil {
		return nil, err
	}
	return kv, nil
}

// colBuf holds one column's cells for the current row group: def[k] is 1
// for a value, 0 for a null; the value slice matching the kind is filled.
type colBuf struct {
	def   []int16
	f     []float64
	i     []int64
	b     []bool
	s     []string
	raw   [][]byte
	lists [][]string

	// Dictionary state of a String column (reused across row groups).
	dict  map[string]int32
	idx   []int32
	vals  []string
	ba    []parquet.ByteArray
	jsonC map[string]string // JSON columns: stored form → compact form
}

type writer struct {
	defs     []Column
	rows     []row
	cols     []colBuf
	arrProps *pqarrow.ArrowWriterProperties
	workers  int
	order    []int // columns, most expensive to encode first
}

func newWriter(defs []Column, n int, arrProps *pqarrow.ArrowWriterProperties) *writer {
	wr := &writer{defs: defs, cols: make([]colBuf, len(defs)), arrProps: arrProps,
		workers: max(1, runtime.GOMAXPROCS(0))}
	for c := range defs {
		b := &wr.cols[c]
		b.def = make([]int16, n)
		switch defs[c].Kind {
		case Float64:
			b.f = make([]float64, n)
		case Int64, Timestamp:
			b.i = make([]int64, n)
		case Bool:
			b.b = make([]bool, n)
		case String:
			if defs[c].j != nil {
				b.raw = make([][]byte, n)
				b.jsonC = map[string]string{}
			} else {
				b.s = make([]string, n)
			}
			b.dict = map[string]int32{}
			b.idx = make([]int32, n)
		case StringList:
			b.lists = make([][]string, n)
		}
	}
	for pass := range 2 {
		for c, col := range defs {
			if (col.Kind == String || col.Kind == StringList) == (pass == 0) {
				wr.order = append(wr.order, c)
			}
		}
	}
	return wr
}

// parallel runs f(0..n-1) on the writer's goroutines.
func (wr *writer) parallel(n int, f func(int) error) error {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(wr.workers, n) {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				if err := f(k); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// extract reads rows (one row group) into the column buffers.
func (wr *writer) extract(rows []row) {
	n := len(rows)
	wr.rows = rows
	blocks := (n + blockRows - 1) / blockRows
	_ = wr.parallel(blocks, func(bk int) error {
		lo, hi := bk*blockRows, min((bk+1)*blockRows, n)
		for c := range wr.defs {
			extractColumn(&wr.defs[c], &wr.cols[c], rows[lo:hi], lo)
		}
		return nil
	})
}

func defOf(ok bool) int16 {
	if ok {
		return 1
	}
	return 0
}

// extractColumn fills b[lo:lo+len(rows)] from rows.
func extractColumn(c *Column, b *colBuf, rows []row, lo int) {
	def := b.def[lo : lo+len(rows)]
	switch c.Kind {
	case Float64:
		out := b.f[lo : lo+len(rows)]
		for k := range rows {
			v, ok := c.f(&rows[k])
			out[k], def[k] = v, defOf(ok)
		}
	case Int64:
		out := b.i[lo : lo+len(rows)]
		for k := range rows {
			v, ok := c.i(&rows[k])
			out[k], def[k] = v, defOf(ok)
		}
	case Timestamp:
		out := b.i[lo : lo+len(rows)]
		for k := range rows {
			v, ok := c.t(&rows[k])
			if ok {
				out[k] = v.UnixMicro()
			}
			def[k] = defOf(ok)
		}
	case Bool:
		out := b.b[lo : lo+len(rows)]
		for k := range rows {
			v, ok := c.b(&rows[k])
			out[k], def[k] = v, defOf(ok)
		}
	case String:
		if c.j != nil {
			out := b.raw[lo : lo+len(rows)]
			for k := range rows {
				raw := c.j(&rows[k])
				if len(raw) == 0 || string(raw) == "null" {
					raw = nil
				}
				out[k], def[k] = raw, defOf(raw != nil)
			}
			return
		}
		out := b.s[lo : lo+len(rows)]
		for k := range rows {
			v, ok := c.s(&rows[k])
			out[k], def[k] = v, defOf(ok)
		}
	case StringList:
		out := b.lists[lo : lo+len(rows)]
		for k := range rows {
			out[k] = c.l(&rows[k])
		}
	}
}

// encode writes every column of the extracted row group to rgw.
func (wr *writer) encode(rgw file.BufferedRowGroupWriter) error {
	n := len(wr.rows)
	return wr.parallel(len(wr.order), func(k int) error {
		c := wr.order[k]
		cw, err := rgw.Column(c)
		if err != nil {
			return err
		}
		if err := wr.encodeColumn(cw, &wr.defs[c], &wr.cols[c], n); err != nil {
			return fmt.Errorf("column %s: %w", wr.defs[c].Name, err)
		}
		// Cut and compress the last page here, in parallel, rather than in
		// the row group's Close. Not for a dictionary-encoded column: its
		// pages must follow the dictionary page, which Close writes (its
		// pages are small, RLE-packed indices).
		fl, ok := cw.(interface{ FlushBufferedDataPages() error })
		if ok && cw.CurrentEncoder().Encoding() != parquet.Encodings.PlainDict {
			if err := fl.FlushBufferedDataPages(); err != nil {
				return fmt.Errorf("column %s: %w", wr.defs[c].Name, err)
			}
		}
		return nil
	})
}

// compactValues moves the values of non-null rows to the front (the
// column writers take only defined values next to the def levels).
func compactValues[T any](vals []T, def []int16) []T {
	j := 0
	for k, d := range def {
		if d != 0 {
			vals[j] = vals[k]
			j++
		}
	}
	return vals[:j]
}

func hasNulls(def []int16) bool {
	for _, d := range def {
		if d == 0 {
			return true
		}
	}
	return false
}

// reserve sizes a plain-encoded column's value buffer once (arrow-go grows
// it by doubling, 1 KiB at a time, otherwise). The row group's values are
// one page unless they pass the 1 MiB data page size.
func reserve(cw file.ColumnChunkWriter, bytes int) {
	if r, ok := cw.CurrentEncoder().(interface{ ReserveForWrite(int) }); ok {
		r.ReserveForWrite(min(bytes, int(cw.Properties().DataPageSize())))
	}
}

func (wr *writer) encodeColumn(cw file.ColumnChunkWriter, c *Column, b *colBuf, n int) error {
	def := b.def[:n]
	var err error
	switch c.Kind {
	case Float64, Int64, Timestamp:
		reserve(cw, 8*n)
	}
	switch c.Kind {
	case Float64:
		vals := b.f[:n]
		if hasNulls(def) {
			vals = compactValues(vals, def)
		}
		_, err = cw.(*file.Float64ColumnChunkWriter).WriteBatch(vals, def, nil)
	case Int64, Timestamp:
		vals := b.i[:n]
		if hasNulls(def) {
			vals = compactValues(vals, def)
		}
		_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(vals, def, nil)
	case Bool:
		vals := b.b[:n]
		if hasNulls(def) {
			vals = compactValues(vals, def)
		}
		_, err = cw.(*file.BooleanColumnChunkWriter).WriteBatch(vals, def, nil)
	case String:
		err = wr.encodeStrings(cw.(*file.ByteArrayColumnChunkWriter), b, n)
	case StringList:
		err = encodeLists(cw.(*file.ByteArrayColumnChunkWriter), b, n)
	}
	return err
}

// encodeStrings dictionary-encodes a string column: indices in order of
// first appearance, as arrow-go's own dictionary encoder would number them.
func (wr *writer) encodeStrings(cw *file.ByteArrayColumnChunkWriter, b *colBuf, n int) error {
	def := b.def[:n]
	idx := b.idx[:n]
	clear(b.dict)
	b.vals = b.vals[:0]
	var dictBytes, nulls int
	add := func(v string) int32 {
		i, ok := b.dict[v]
		if !ok {
			i = int32(len(b.vals))
			b.dict[v] = i
			b.vals = append(b.vals, v)
			dictBytes += 4 + len(v)
		}
		return i
	}
	if b.raw != nil {
		// JSON: look the stored bytes up (the previous row's first: the
		// environment is the same on every row), compacting each distinct
		// stored value once.
		var last []byte
		var lastIdx int32 = -1
		for k, raw := range b.raw[:n] {
			if raw == nil {
				idx[k] = 0
				nulls++
				continue
			}
			if lastIdx >= 0 && bytes.Equal(raw, last) {
				idx[k] = lastIdx
				continue
			}
			v, ok := b.jsonC[string(raw)]
			if !ok {
				v, _ = compactJSON(raw)
				b.jsonC[string(raw)] = v
			}
			idx[k] = add(v)
			last, lastIdx = raw, idx[k]
		}
	} else {
		var last string
		var lastIdx int32 = -1
		for k, v := range b.s[:n] {
			if def[k] == 0 {
				idx[k] = 0
				nulls++
				continue
			}
			if lastIdx >= 0 && v == last {
				idx[k] = lastIdx
				continue
			}
			idx[k] = add(v)
			last, lastIdx = v, idx[k]
		}
	}
	nonNull := n - nulls
	if int64(dictBytes) >= cw.Properties().DictionaryPageSizeLimit() && len(b.vals)*2 > nonNull {
		// A dictionary bigger than arrow-go's limit whose values mostly
		// do not repeat: plain encoding, as arrow-go would fall back to.
		cw.FallbackToPlain()
		b.ba = b.ba[:0]
		for k := range n {
			if def[k] != 0 {
				b.ba = append(b.ba, bytesOf(b.vals[idx[k]]))
			}
		}
		_, err := cw.WriteBatch(b.ba, def, nil)
		return err
	}
	dict := stringArray(b.vals)
	defer dict.Release()
	var valid *memory.Buffer
	if nulls > 0 {
		bits := make([]byte, (n+7)/8)
		for k, d := range def {
			if d != 0 {
				bits[k/8] |= 1 << (k % 8)
			}
		}
		valid = memory.NewBufferBytes(bits)
	}
	indices := array.NewInt32Data(array.NewData(arrow.PrimitiveTypes.Int32, n,
		[]*memory.Buffer{valid, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(idx))}, nil, nulls, 0))
	defer indices.Release()
	arr := array.NewDictionaryArray(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, indices, dict)
	defer arr.Release()
	actx := pqarrow.NewArrowWriteContext(context.Background(), wr.arrProps)
	return pqarrow.WriteArrowToColumn(actx, cw, arr, def, nil, true)
}

// stringArray makes an Arrow string array of vals.
func stringArray(vals []string) *array.String {
	offsets := make([]int32, len(vals)+1)
	size := 0
	for _, v := range vals {
		size += len(v)
	}
	data := make([]byte, 0, size)
	for i, v := range vals {
		data = append(data, v...)
		offsets[i+1] = int32(len(data))
	}
	return array.NewStringData(array.NewData(arrow.BinaryTypes.String, len(vals),
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(offsets)), memory.NewBufferBytes(data)}, nil, 0, 0))
}

// encodeLists writes a list<string> column (never null, items never null)
// as Parquet's three-level list: an empty list is def level max-2, an item
// max; rep level 1 continues the row's list.
func encodeLists(cw *file.ByteArrayColumnChunkWriter, b *colBuf, n int) error {
	maxDef := cw.Descr().MaxDefinitionLevel()
	def := b.def[:0]
	var rep []int16
	b.ba = b.ba[:0]
	for _, l := range b.lists[:n] {
		if len(l) == 0 {
			def = append(def, maxDef-2)
			rep = append(rep, 0)
			continue
		}
		for j, v := range l {
			def = append(def, maxDef)
			rep = append(rep, defOf(j > 0))
			b.ba = append(b.ba, bytesOf(v))
		}
	}
	b.def = def[:cap(def)] // keep any growth; len stays ≥ n
	_, err := cw.WriteBatch(b.ba, def, rep)
	return err
}

// bytesOf is s as a byte slice without copying; the column writers only
// read their input.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
