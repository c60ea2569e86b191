package result

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/energy"
)

// TimeseriesVersion is the version of the timeseries Parquet layout,
// stored in the file's key-value metadata under "llem". Version 2 appended
// t_utc, run_id and cycle and the clock anchor; earlier columns are
// unchanged.
const TimeseriesVersion = "2"

// ClockAnchor ties the timeline's clock to UTC. Samples carry
// CLOCK_MONOTONIC nanoseconds (pkg/clock: since boot, not counting
// suspend, never stepped), which no other tool logs; DCGM, Zeus and
// CodeCarbon log wall-clock time. The anchor is one reading of both
// clocks: a monotonic t is UTC + (t − MonotonicNs). It is taken when the
// timeseries is written, seconds after the window in the same boot, so
// the mapping is off only by the NTP slew since then (at most 500 ppm,
// typically a few ppm: microseconds over a window) plus UncertaintyNs.
type ClockAnchor struct {
	MonotonicNs int64     `json:"monotonic_ns"`
	UTC         time.Time `json:"utc"`
	// UncertaintyNs is half the monotonic time that passed while the
	// wall clock was read (the anchor is the midpoint).
	UncertaintyNs int64 `json:"uncertainty_ns"`
}

// NewClockAnchor reads both clocks: the wall clock between two monotonic
// readings, the anchor at their midpoint.
func NewClockAnchor() ClockAnchor {
	m0 := clock.Now()
	wall := time.Now().UTC()
	m1 := clock.Now()
	return ClockAnchor{MonotonicNs: m0 + (m1-m0)/2, UTC: wall.Round(0), UncertaintyNs: (m1 - m0 + 1) / 2}
}

// UTCOf is the wall-clock instant of the monotonic time tNs.
func (a ClockAnchor) UTCOf(tNs int64) time.Time {
	return a.UTC.Add(time.Duration(tNs - a.MonotonicNs))
}

// PhaseSpan is one worker-reported interval (prefill or decode of a batch).
type PhaseSpan struct {
	Name    string `json:"name"`
	Batch   int    `json:"batch"`
	StartNs int64  `json:"start_ns"`
	EndNs   int64  `json:"end_ns"`
}

// TimeseriesMeta describes the window a timeseries belongs to; it is stored
// as JSON in the Parquet key-value metadata under the key "llem".
type TimeseriesMeta struct {
	Version       string           `json:"timeseries_version"`
	Study         string           `json:"study"`
	RunID         string           `json:"run_id"`
	Cycle         int              `json:"cycle"`
	Sensor        string           `json:"sensor"`
	IntervalNs    int64            `json:"interval_ns"`
	WindowStartNs int64            `json:"window_start_ns"`
	WindowEndNs   int64            `json:"window_end_ns"`
	Channels      []energy.Channel `json:"channels"`
	Phases        []PhaseSpan      `json:"phases,omitempty"`
	// Anchor maps t_ns to UTC (t_utc); EncodeTimeseries reads the clocks
	// when it is nil.
	Anchor *ClockAnchor `json:"clock_anchor,omitempty"`
}

// timeseriesSchema is long format: one row per sample per channel (device),
// every sampled field as a column with its unit in the name. Unread values
// (NaN / -1 in energy.Sample) are nulls, never zeros.
var timeseriesSchema = []arrow.Field{
	{Name: "t_ns", Type: arrow.PrimitiveTypes.Int64},
	{Name: "t_s", Type: arrow.PrimitiveTypes.Float64},
	{Name: "channel", Type: arrow.BinaryTypes.String},
	{Name: "sensor", Type: arrow.BinaryTypes.String},
	{Name: "kind", Type: arrow.BinaryTypes.String},
	{Name: "device_index", Type: arrow.PrimitiveTypes.Int32},
	{Name: "device_name", Type: arrow.BinaryTypes.String},
	{Name: "phase", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "energy_j", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "power_w", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "temp_c", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "sm_clock_mhz", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "mem_clock_mhz", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "util_pct", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "mem_used_bytes", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "throttle_reasons", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	// Version 2, appended.
	{Name: "t_utc", Type: arrow.FixedWidthTypes.Timestamp_us},
	{Name: "run_id", Type: arrow.BinaryTypes.String},
	{Name: "cycle", Type: arrow.PrimitiveTypes.Int64},
}

// TimeseriesColumns lists the column names of a timeseries Parquet file.
func TimeseriesColumns() []string {
	names := make([]string, len(timeseriesSchema))
	for i, f := range timeseriesSchema {
		names[i] = f.Name
	}
	return names
}

// EncodeTimeseries encodes tl as a Parquet file (zstd). Column t_s is
// seconds since meta.WindowStartNs; t_utc is t_ns on the wall clock
// (meta.Anchor, microseconds, UTC); energy_j is the channel's cumulative
// counter relative to the sensor's first reading (take differences); phase
// is the worker phase running at the sample, null outside every phase;
// run_id and cycle repeat the window's, so files concatenate.
func EncodeTimeseries(tl *energy.Timeline, meta TimeseriesMeta) ([]byte, error) {
	meta.Version = TimeseriesVersion
	if meta.Anchor == nil {
		a := NewClockAnchor()
		meta.Anchor = &a
	}
	meta.Sensor = tl.Sensor
	meta.IntervalNs = tl.IntervalNs
	meta.Channels = meta.Channels[:0]
	for _, c := range tl.Channels {
		meta.Channels = append(meta.Channels, c.Channel)
	}
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode timeseries metadata: %w", err)
	}
	md := arrow.NewMetadata([]string{"llem"}, []string{string(metaJSON)})
	schema := arrow.NewSchema(timeseriesSchema, &md)

	mem := memory.NewGoAllocator()
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	var (
		tNs      = b.Field(0).(*array.Int64Builder)
		tS       = b.Field(1).(*array.Float64Builder)
		channel  = b.Field(2).(*array.StringBuilder)
		sensor   = b.Field(3).(*array.StringBuilder)
		kind     = b.Field(4).(*array.StringBuilder)
		index    = b.Field(5).(*array.Int32Builder)
		name     = b.Field(6).(*array.StringBuilder)
		phase    = b.Field(7).(*array.StringBuilder)
		floats   = []*array.Float64Builder{b.Field(8).(*array.Float64Builder), b.Field(9).(*array.Float64Builder), b.Field(10).(*array.Float64Builder), b.Field(11).(*array.Float64Builder), b.Field(12).(*array.Float64Builder), b.Field(13).(*array.Float64Builder)}
		memUsed  = b.Field(14).(*array.Int64Builder)
		throttle = b.Field(15).(*array.Int64Builder)
		tUTC     = b.Field(16).(*array.TimestampBuilder)
		runID    = b.Field(17).(*array.StringBuilder)
		cycle    = b.Field(18).(*array.Int64Builder)
	)
	for _, c := range tl.Channels {
		for _, s := range c.Samples {
			tNs.Append(s.TNs)
			tS.Append(float64(s.TNs-meta.WindowStartNs) / 1e9)
			tUTC.Append(arrow.Timestamp(meta.Anchor.UTCOf(s.TNs).UnixMicro()))
			runID.Append(meta.RunID)
			cycle.Append(int64(meta.Cycle))
			channel.Append(c.ID)
			sensor.Append(c.Sensor)
			kind.Append(c.Kind)
			index.Append(int32(c.Index))
			name.Append(c.Name)
			if p := phaseAt(meta.Phases, s.TNs); p != "" {
				phase.Append(p)
			} else {
				phase.AppendNull()
			}
			for i, v := range []float64{s.EnergyJ, s.PowerW, s.TempC, s.SMClockMHz, s.MemClockMHz, s.UtilPct} {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					floats[i].AppendNull()
				} else {
					floats[i].Append(v)
				}
			}
			for _, p := range []struct {
				b *array.Int64Builder
				v int64
			}{{memUsed, s.MemUsedBytes}, {throttle, s.ThrottleReasons}} {
				if p.v < 0 {
					p.b.AppendNull()
				} else {
					p.b.Append(p.v)
				}
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()

	var buf bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	w, err := pqarrow.NewFileWriter(schema, &buf, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("create timeseries writer: %w", err)
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, fmt.Errorf("write timeseries: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close timeseries: %w", err)
	}
	return buf.Bytes(), nil
}

// phaseAt returns the name of the phase covering t; spans are few (one pair
// per batch), so a linear scan is fine.
func phaseAt(spans []PhaseSpan, t int64) string {
	for _, p := range spans {
		if t >= p.StartNs && t <= p.EndNs {
			return p.Name
		}
	}
	return ""
}

// WriteTimeseries writes the window's timeseries to its TimeseriesPath and
// returns that relative path.
func (s *Store) WriteTimeseries(tl *energy.Timeline, meta TimeseriesMeta) (string, error) {
	data, err := EncodeTimeseries(tl, meta)
	if err != nil {
		return "", err
	}
	rel := TimeseriesPath(meta.RunID, meta.Cycle)
	if err := WriteFileAtomic(filepath.Join(s.Dir, rel), data); err != nil {
		return "", err
	}
	return rel, nil
}
