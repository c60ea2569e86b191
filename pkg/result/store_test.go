package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/clock"
	"github.com/llenergymeasure/llem/pkg/energy"
)

func TestCreateNeverOverwrites(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	now := time.Date(2026, 11, 26, 20, 1, 2, 0, time.UTC)
	a, err := Create(root, Manifest{Study: "my study/x"}, now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Create(root, Manifest{Study: "my study/x"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(a.Dir) != "my-study-x-20261126T200102Z" || filepath.Base(b.Dir) != "my-study-x-20261126T200102Z-2" {
		t.Fatalf("dirs = %s, %s", a.Dir, b.Dir)
	}
	if _, err := CreateAt(a.Dir, Manifest{}); err == nil {
		t.Fatal("CreateAt over an existing study succeeded")
	}
}

func TestManifestUpdateAndOpen(t *testing.T) {
	t.Parallel()
	s, err := CreateAt(t.TempDir(), Manifest{Study: "s", Status: StudyRunning, Entries: []Entry{
		{RunID: "a", Cycle: 1, Status: EntryPending}, {RunID: "b", Cycle: 1, Status: EntryPending},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(m *Manifest) { m.Entries[0].Status = EntryDone; m.Entries[1].Status = EntryRunning }); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(s.Dir); !errors.As(err, new(*LockedError)) {
		t.Fatalf("second writer while the first holds the lock: %v, want a *LockedError", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	o, err := Open(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	m := o.Manifest()
	if m.Counts != (Counts{Total: 2, Done: 1, Running: 1}) || m.SchemaVersion != SchemaVersion {
		t.Fatalf("reopened manifest = %+v", m)
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no manifest.json") || !errors.As(err, new(*ManifestError)) {
		t.Fatalf("open of an empty dir: %v", err)
	}
}

// TestWriteFileAtomicConcurrentReaders rewrites a file while readers read
// it: every read must be one complete version.
func TestWriteFileAtomicConcurrentReaders(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.json")
	if err := WriteJSON(path, map[string]any{"v": 0, "pad": strings.Repeat("x", 1<<16)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Error(err)
					return
				}
				var v map[string]any
				if err := json.Unmarshal(b, &v); err != nil {
					t.Errorf("torn read: %v", err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		if err := WriteJSON(path, map[string]any{"v": i, "pad": strings.Repeat("y", 1<<16+i)}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*"))
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestRecordsReadBackInPositionOrder(t *testing.T) {
	t.Parallel()
	ids := []string{"zz", "aa", "mm"}
	m := Manifest{Study: "s"}
	for pos := range ids {
		id := ids[2-pos]
		m.Entries = append(m.Entries, Entry{RunID: id, Cycle: 1, Position: pos, Status: EntryPending})
	}
	s, err := CreateAt(t.TempDir(), m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	finish := func(r Record) {
		t.Helper()
		rel, err := s.WriteRecord(&r)
		if err != nil {
			t.Fatal(err)
		}
		if rel != "records/"+r.RunID+"/cycle-1.json" {
			t.Fatalf("record path = %s", rel)
		}
		if err := s.UpdateEntry(r.Position, func(e *Entry) { e.Status, e.Record = EntryFailed, rel }); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range ids {
		r := sampleRecord()
		r.RunID, r.Position = id, 2-i
		finish(r)
	}
	// Rewriting the same run×cycle replaces, never duplicates.
	r := sampleRecord()
	r.RunID, r.Position, r.Attempt = "aa", 1, 2
	finish(r)
	recs, err := ReadRecords(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.RunID)
	}
	if !reflect.DeepEqual(got, []string{"mm", "aa", "zz"}) || recs[1].Attempt != 2 {
		t.Fatalf("records = %v (attempt %d)", got, recs[1].Attempt)
	}
}

func fakeTimeline() *energy.Timeline {
	nan := math.NaN()
	tl := &energy.Timeline{Sensor: "estimate", IntervalNs: 1e8}
	for d := range 2 {
		c := energy.ChannelTimeline{Channel: energy.Channel{ID: "estimate:cpu" + string(rune('0'+d)), Sensor: "estimate", Kind: "cpu", Name: "cpu", Index: d, Method: energy.MethodEstimateTDP}}
		for i := range 5 {
			s := energy.Sample{TNs: int64(1e9 + i*1e8), EnergyJ: float64(i), PowerW: 10 + float64(d), TempC: nan,
				SMClockMHz: nan, MemClockMHz: nan, UtilPct: 50, MemUsedBytes: -1, ThrottleReasons: -1}
			c.Samples = append(c.Samples, s)
		}
		tl.Channels = append(tl.Channels, c)
	}
	return tl
}

func TestTimeseriesIndependentReader(t *testing.T) {
	t.Parallel()
	readers := ParquetReadersDir(t)
	s, err := CreateAt(t.TempDir(), Manifest{Study: "s"})
	if err != nil {
		t.Fatal(err)
	}
	anchor := ClockAnchor{MonotonicNs: 1e9, UTC: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), UncertaintyNs: 40}
	rel, err := s.WriteTimeseries(fakeTimeline(), TimeseriesMeta{Study: "s", RunID: "r1", Cycle: 2, WindowStartNs: 1e9, WindowEndNs: 1.4e9,
		Phases: []PhaseSpan{{Name: "prefill", StartNs: 1e9, EndNs: 1.1e9}, {Name: "decode", StartNs: 1.1e9 + 1, EndNs: 1.4e9}}, Anchor: &anchor})
	if err != nil {
		t.Fatal(err)
	}
	got := ReadParquetWithNode(t, readers, filepath.Join(s.Dir, rel))
	if !reflect.DeepEqual(got.Columns, TimeseriesColumns()) {
		t.Fatalf("columns = %v", got.Columns)
	}
	if len(got.Rows) != 10 {
		t.Fatalf("rows = %d, want 10 (5 samples × 2 devices)", len(got.Rows))
	}
	r0, r9 := got.Rows[0], got.Rows[9]
	if r0["phase"] != "prefill" || r0["t_s"] != 0.0 || r0["temp_c"] != nil || r0["mem_used_bytes"] != nil || r0["power_w"] != 10.0 {
		t.Fatalf("row 0 = %v", r0)
	}
	if r9["phase"] != "decode" || r9["device_index"] != 1.0 || r9["power_w"] != 11.0 || r9["energy_j"] != 4.0 {
		t.Fatalf("row 9 = %v", r9)
	}
	if got.Llem["run_id"] != "r1" || got.Llem["cycle"] != 2.0 || got.Llem["sensor"] != "estimate" || got.Llem["timeseries_version"] != "2" {
		t.Fatalf("llem metadata = %v", got.Llem)
	}
	// The wall clock of each sample: the anchor plus its monotonic offset
	// (sample 4 of a device is 400 ms after the anchor's monotonic time).
	if r0["run_id"] != "r1" || r0["cycle"] != 2.0 || fmt.Sprint(r0["t_utc"]) != "2026-03-01T12:00:00.000Z" || fmt.Sprint(r9["t_utc"]) != "2026-03-01T12:00:00.400Z" {
		t.Fatalf("t_utc/run_id/cycle: row 0 %v %v %v, row 9 %v", r0["t_utc"], r0["run_id"], r0["cycle"], r9["t_utc"])
	}
}

// NodeParquet is what testdata/read_parquet.mjs prints.
type NodeParquet struct {
	Columns []string         `json:"columns"`
	Rows    []map[string]any `json:"rows"`
	Llem    map[string]any   `json:"llem"`
}

// ParquetReadersDir finds tools/parquet-readers with node_modules installed
// (env LLEM_PARQUET_READERS, else the repo path). It skips when they are
// missing outside CI and fails in CI, where `make deps` must have run.
func ParquetReadersDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LLEM_PARQUET_READERS")
	if dir == "" {
		dir, _ = filepath.Abs("../../tools/parquet-readers")
	}
	_, err := os.Stat(filepath.Join(dir, "node_modules", "hyparquet"))
	_, nodeErr := exec.LookPath("node")
	if err != nil || nodeErr != nil {
		msg := "independent Parquet reader unavailable (need node and " + dir + "/node_modules: run make deps)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// ReadParquetWithNode reads file with hyparquet under node.
func ReadParquetWithNode(t *testing.T, readers, file string) NodeParquet {
	t.Helper()
	script, _ := filepath.Abs("testdata/read_parquet.mjs")
	out, err := exec.Command("node", script, readers, file).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("node reader: %v\n%s", err, stderr)
	}
	var got NodeParquet
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node reader output: %v\n%s", err, out)
	}
	return got
}

// TestClockAnchorMapsToWallClock: a fresh anchor maps the monotonic clock
// now to the wall clock now (within a second: both are read in this test),
// and a later monotonic time to the same later offset.
func TestClockAnchorMapsToWallClock(t *testing.T) {
	a := NewClockAnchor()
	now, wall := clock.Now(), time.Now()
	if d := a.UTCOf(now).Sub(wall); d < -time.Second || d > time.Second {
		t.Errorf("anchor maps now to %v, wall clock %v (off %v)", a.UTCOf(now), wall, d)
	}
	if a.UTCOf(a.MonotonicNs+1500).Sub(a.UTC) != 1500*time.Nanosecond || a.UncertaintyNs < 0 || a.UTC.Location() != time.UTC {
		t.Errorf("anchor %+v", a)
	}
}
