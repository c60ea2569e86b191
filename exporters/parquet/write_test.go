package parquet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

// loaded returns records as result.LoadStudy gives them: read back from the
// indented JSON that pkg/result writes (so config and environment hold
// indented JSON), with a realistic environment snapshot, some failures,
// flags, warnings and no-environment rows.
func loaded(t testing.TB, runs, cycles int) []*result.Record {
	t.Helper()
	recs := exportertest.Records(exportertest.Spec{Runs: runs, Cycles: cycles, Seed: 3,
		Failed: map[[2]int]bool{{1, 1}: true, {0, 2}: true}})
	for i := range recs {
		r := &recs[i]
		switch i % 7 {
		case 1:
			r.Flags = []string{"estimate_used"}
		case 2:
			r.Flags = []string{"window_too_short", "thermal_drift"}
			r.Warnings = []string{"a warning"}
		case 5:
			r.Thermal = &result.Thermal{Throttled: true}
		}
	}
	out, err := exportertest.AsLoaded(recs)
	if err != nil {
		t.Fatal(err)
	}
	// The environment snapshot is the same on every row: it is read back
	// once and each record gets its own copy of those bytes (the bytes a
	// per-record round trip gives, at the same depth in the record), since
	// round-tripping it with each of 65k records was most of the time of
	// TestWriteMatchesReference.
	env := loadedEnvironment(t)
	for i, r := range out {
		switch i % 7 {
		case 3:
			r.Environment = nil
		case 4:
			r.Environment = json.RawMessage("null")
		default:
			r.Environment = slices.Clone(env)
		}
	}
	return out
}

// loadedEnvironment is exportertest.Environment as it reads back from a
// record's indented JSON.
func loadedEnvironment(t testing.TB) json.RawMessage {
	t.Helper()
	out, err := exportertest.AsLoaded([]result.Record{{Environment: json.RawMessage(exportertest.Environment)}})
	if err != nil {
		t.Fatal(err)
	}
	return out[0].Environment
}

func readTable(t *testing.T, b []byte) (arrow.Table, map[string]string) {
	t.Helper()
	rdr, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	kv := map[string]string{}
	for _, k := range rdr.MetaData().KeyValueMetadata().Keys() {
		kv[k] = *rdr.MetaData().KeyValueMetadata().FindValue(k)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tbl, kv
}

// TestWriteMatchesReference: Write's file holds exactly what the plain
// pqarrow writer's does (schema, stored Arrow schema, metadata, every
// value), across row groups, nulls, lists, JSON and carbon columns. Both
// carbon settings are checked on one row group (carbon is filled per row);
// the row-group boundary, the expensive part, is crossed once, with carbon
// (skipped with -short).
func TestWriteMatchesReference(t *testing.T) {
	intensity := 250.0
	pue := 1.2
	withCarbon := carbon.Config{IntensityGPerKWh: &intensity, PUE: &pue}
	small := loaded(t, 100, 7)
	for _, cc := range []carbon.Config{{}, withCarbon} {
		checkMatchesReference(t, small, cc)
	}
	if testing.Short() {
		return
	}
	// 100 runs × 656 cycles = 65,600 rows: one full row group and a second.
	big := loaded(t, 100, RowGroupRows/100+1)
	if len(big) <= RowGroupRows {
		t.Fatalf("%d rows do not cross the %d-row group boundary", len(big), RowGroupRows)
	}
	checkMatchesReference(t, big, withCarbon)
}

// checkMatchesReference writes recs with Write and with referenceWrite and
// compares what pqarrow reads back from both.
func checkMatchesReference(t *testing.T, recs []*result.Record, cc carbon.Config) {
	t.Helper()
	meta := map[string]string{"huggingface": `{"info": {}}`}
	var got, want bytes.Buffer
	if err := Write(context.Background(), &got, recs, cc, meta); err != nil {
		t.Fatal(err)
	}
	if err := referenceWrite(context.Background(), &want, recs, cc, meta); err != nil {
		t.Fatal(err)
	}
	gt, gkv := readTable(t, got.Bytes())
	defer gt.Release()
	wt, wkv := readTable(t, want.Bytes())
	defer wt.Release()
	if fmt.Sprint(gkv) != fmt.Sprint(wkv) {
		t.Errorf("key-value metadata differs:\n got %v\nwant %v", gkv, wkv)
	}
	if !gt.Schema().Equal(wt.Schema()) {
		t.Fatalf("schema differs:\n got %s\nwant %s", gt.Schema(), wt.Schema())
	}
	if gt.NumRows() != int64(len(recs)) || wt.NumRows() != int64(len(recs)) {
		t.Fatalf("rows %d / %d, want %d", gt.NumRows(), wt.NumRows(), len(recs))
	}
	for c := range int(gt.NumCols()) {
		g, w := gt.Column(c).Data(), wt.Column(c).Data()
		if !array.ChunkedEqual(g, w) {
			ga, _ := array.Concatenate(g.Chunks(), memory.DefaultAllocator)
			wa, _ := array.Concatenate(w.Chunks(), memory.DefaultAllocator)
			for k := range ga.Len() {
				if !array.SliceEqual(ga, int64(k), int64(k+1), wa, int64(k), int64(k+1)) {
					t.Errorf("column %s row %d: got %v, want %v", gt.Schema().Field(c).Name, k,
						array.NewSlice(ga, int64(k), int64(k+1)), array.NewSlice(wa, int64(k), int64(k+1)))
					break
				}
			}
		}
	}
	t.Logf("%d rows, carbon %v: %d bytes (reference %d)", len(recs), cc.IntensityGPerKWh != nil, got.Len(), want.Len())
}

// TestRowCarbonMatchesScale: the per-row CO2 is carbon.Estimate.Scale's.
func TestRowCarbonMatchesScale(t *testing.T) {
	intensity, pue := 317.5, 1.37
	unit := carbon.Compute(1, carbon.Config{IntensityGPerKWh: &intensity, PUE: &pue})
	for _, e := range []float64{0, 1e-9, 0.3, 52.123456789, 9.87e6} {
		r := &result.Record{Energy: result.Energy{RawJ: &e}}
		x := newRow(r, &unit)
		if want := unit.Scale(e); x.co2g != *want.CO2Grams {
			t.Errorf("energy %v: co2 %v, Scale gives %v", e, x.co2g, *want.CO2Grams)
		}
	}
}

// TestWriteEmpty: no records is a valid file with no rows.
func TestWriteEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := Write(context.Background(), &b, nil, carbon.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	tbl, _ := readTable(t, b.Bytes())
	defer tbl.Release()
	if tbl.NumRows() != 0 || int(tbl.NumCols()) != len(Columns()) {
		t.Errorf("rows %d cols %d", tbl.NumRows(), tbl.NumCols())
	}
}

// BenchmarkWritePhases splits Write's time for one 64Ki-row row group of a
// realistic study (see BenchmarkExport100k's study fixtures): reading the
// records into column buffers, and arrow-go encoding them (levels, plain
// and dictionary encoding, statistics, snappy, page assembly), on all
// cores and on one.
func BenchmarkWritePhases(b *testing.B) {
	spec := exportertest.Spec{Runs: 100, Cycles: RowGroupRows/100 + 1, Seed: 9, Configs: make([]map[string]any, 100)}
	for i := range spec.Configs {
		spec.Configs[i] = exportertest.RealisticConfig(i)
	}
	all := exportertest.Records(spec)[:RowGroupRows]
	for i := range all {
		all[i].Environment = json.RawMessage(exportertest.Environment)
	}
	recs, err := exportertest.AsLoaded(all)
	if err != nil {
		b.Fatal(err)
	}
	intensity := 300.0
	unit := carbon.Compute(1, carbon.Config{IntensityGPerKWh: &intensity})
	cols := ColumnsFor(recs)
	rows := recordRows(recs, cols, &unit)
	props := writerProperties(cols)
	arrProps := pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())
	pqSchema, err := pqarrow.ToParquet(Schema(cols, nil), props, arrProps)
	if err != nil {
		b.Fatal(err)
	}
	perRow := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/row")
	}
	b.Run("extract", func(b *testing.B) {
		wr := newWriter(cols, len(recs), &arrProps)
		for b.Loop() {
			wr.extract(rows)
		}
		perRow(b)
	})
	for _, workers := range []int{0, 1} {
		name := "encode"
		if workers == 1 {
			name = "encode-1-goroutine"
		}
		b.Run(name, func(b *testing.B) {
			wr := newWriter(cols, len(recs), &arrProps)
			if workers > 0 {
				wr.workers = workers
			}
			wr.extract(rows)
			for b.Loop() {
				fw := file.NewParquetWriter(io.Discard, pqSchema.Root(), file.WithWriterProps(props))
				rgw := fw.AppendBufferedRowGroup()
				if err := wr.encode(rgw); err != nil {
					b.Fatal(err)
				}
				if err := rgw.Close(); err != nil {
					b.Fatal(err)
				}
				if err := fw.Close(); err != nil {
					b.Fatal(err)
				}
			}
			perRow(b)
		})
	}
}

// TestWritePlainFallback: a string column whose row group dictionary would
// pass 1 MiB with values that do not repeat (here a unique 1 KB error
// message on every failed row) is written plain, with the same values.
func TestWritePlainFallback(t *testing.T) {
	recs := loaded(t, 30, 100)
	pad := strings.Repeat("x", 1000)
	for i, r := range recs {
		if i%3 != 0 {
			r.Status = result.StatusFailed
			r.Error = &result.RunError{Kind: "crash", Message: fmt.Sprintf("%d %s", i, pad)}
		}
	}
	var got, want bytes.Buffer
	if err := Write(context.Background(), &got, recs, carbon.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	if err := referenceWrite(context.Background(), &want, recs, carbon.Config{}, nil); err != nil {
		t.Fatal(err)
	}
	gt, _ := readTable(t, got.Bytes())
	defer gt.Release()
	wt, _ := readTable(t, want.Bytes())
	defer wt.Release()
	for c := range int(gt.NumCols()) {
		if !array.ChunkedEqual(gt.Column(c).Data(), wt.Column(c).Data()) {
			t.Errorf("column %s differs", gt.Schema().Field(c).Name)
		}
	}
	// The error_message column chunk is plain, not dictionary-encoded.
	rdr, err := file.NewParquetReader(bytes.NewReader(got.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	col := -1
	for i, c := range Columns() {
		if c.Name == "error_message" {
			col = i
		}
	}
	cc, err := rdr.MetaData().RowGroup(0).ColumnChunk(col)
	if err != nil {
		t.Fatal(err)
	}
	if cc.HasDictionaryPage() {
		t.Errorf("error_message has a dictionary page; encodings %v", cc.Encodings())
	}
}

// TestMemoryColumns: NVML's peak and the backend's own account land in
// their columns, null where the record has none.
func TestMemoryColumns(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	byName := map[string]Column{}
	for _, c := range Columns() {
		byName[c.Name] = c
	}
	rec := &result.Record{Memory: &result.DeviceMemory{PeakUsedBytes: 4_395_499_520},
		BackendMemory: &result.BackendMemory{PeakAllocatedBytes: i64(2_910_068_224), WeightsBytes: i64(2_471_629_056), Reporter: "torch.cuda"}}
	x := &row{r: rec}
	for name, want := range map[string]int64{"nvml_peak_used_bytes": 4_395_499_520, "backend_peak_allocated_bytes": 2_910_068_224, "backend_weights_bytes": 2_471_629_056} {
		if v, ok := byName[name].i(x); !ok || v != want {
			t.Errorf("%s = %d, %v; want %d", name, v, ok, want)
		}
	}
	if _, ok := byName["backend_kv_cache_bytes"].i(x); ok {
		t.Error("backend_kv_cache_bytes set without a KV cache figure")
	}
	if s, ok := byName["backend_memory_reporter"].s(x); !ok || s != "torch.cuda" {
		t.Errorf("reporter %q %v", s, ok)
	}
	empty := &row{r: &result.Record{}}
	for _, name := range []string{"nvml_peak_used_bytes", "backend_peak_reserved_bytes"} {
		if _, ok := byName[name].i(empty); ok {
			t.Errorf("%s set on a record without memory", name)
		}
	}
}
