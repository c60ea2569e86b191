package json_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/exporters/exportertest"
	jsonexp "github.com/llenergymeasure/llem/exporters/json"
	"github.com/llenergymeasure/llem/pkg/carbon"
	"github.com/llenergymeasure/llem/pkg/result"
)

func study(t *testing.T) *result.Study {
	t.Helper()
	dir, _, err := exportertest.WriteStudy(t.TempDir(), exportertest.Spec{Runs: 3, Cycles: 2, Seed: 1,
		Failed: map[[2]int]bool{{2, 2}: true}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := result.LoadStudy(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestArrayRoundTrip(t *testing.T) {
	s := study(t)
	out := filepath.Join(t.TempDir(), "records.json")
	e, _ := jsonexp.New(exporters.Params{Dest: out})
	if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Studies []string           `json:"studies"`
		Records []result.Record    `json:"records"`
		Runs    []exporters.RunRow `json:"runs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b[:200])
	}
	back := doc.Records
	if len(doc.Runs) != 3 || doc.Runs[0].Metric("energy_per_output_token_j") == nil || doc.Runs[0].Metric("energy_per_output_token_j").CI == nil {
		t.Errorf("runs table: %d runs, first %+v", len(doc.Runs), doc.Runs)
	}
	if len(back) != 6 {
		t.Fatalf("%d records, want 6", len(back))
	}
	for i, r := range back {
		if r.RunID != s.Records[i].RunID || r.Cycle != s.Records[i].Cycle || r.Status != s.Records[i].Status {
			t.Errorf("record %d: %s/%d/%s, want %s/%d/%s", i, r.RunID, r.Cycle, r.Status, s.Records[i].RunID, s.Records[i].Cycle, s.Records[i].Status)
		}
	}
	if back[5].Status != result.StatusFailed || back[5].Error == nil || back[0].Energy.RawJ == nil || *back[0].Energy.RawJ != *s.Records[0].Energy.RawJ {
		t.Errorf("values lost in round trip: %+v", back[5])
	}
}

func TestJSONLines(t *testing.T) {
	s := study(t)
	var buf bytes.Buffer
	e, _ := jsonexp.New(exporters.Params{Stdout: &buf, JSONL: true})
	if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var r result.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		if r.SchemaVersion != result.SchemaVersion {
			t.Errorf("line %d: schema_version %q", n+1, r.SchemaVersion)
		}
		n++
	}
	if n != 6 {
		t.Errorf("%d lines, want 6", n)
	}
}

func TestEmptyStudyIsEmptyArrays(t *testing.T) {
	var buf bytes.Buffer
	e, _ := jsonexp.New(exporters.Params{Stdout: &buf})
	if err := e.Export(context.Background(), exporters.NewSet(&result.Study{})); err != nil {
		t.Fatal(err)
	}
	var back struct{ Records, Runs []any }
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back.Records == nil || len(back.Records) != 0 || back.Runs == nil {
		t.Errorf("got %q (%v)", buf.String(), err)
	}
}

// TestFailedRunNulls: what a failed run never measured is null in JSON,
// as it is in Parquet (not 0), and an ok run keeps its numbers; the CO2
// estimate is there when an intensity is set.
func TestFailedRunNulls(t *testing.T) {
	s := study(t)
	var buf bytes.Buffer
	intensity := 400.0
	e, _ := jsonexp.New(exporters.Params{Stdout: &buf, JSONL: true, Carbon: carbon.Config{IntensityGPerKWh: &intensity}})
	if err := e.Export(context.Background(), exporters.NewSet(s)); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, m)
	}
	get := func(m map[string]any, path ...string) (any, bool) {
		var v any = m
		for _, p := range path {
			mm, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			v, ok = mm[p]
			if !ok {
				return nil, false
			}
		}
		return v, true
	}
	failed, ok := lines[5], lines[0]
	if failed["status"] != "failed" || ok["status"] != "ok" {
		t.Fatalf("statuses %v %v", failed["status"], ok["status"])
	}
	for _, path := range [][]string{{"throughput", "requests"}, {"throughput", "output_tokens_per_sec"}, {"timing", "window_s"},
		{"timing", "window_start_ns"}, {"energy", "samples"}, {"latency", "ttft", "n"}, {"latency", "e2e", "p50_ms"}} {
		if v, present := get(failed, path...); !present || v != nil {
			t.Errorf("failed run %v = %v (present %v), want null", path, v, present)
		}
		if v, _ := get(ok, path...); v == nil {
			t.Errorf("ok run %v is null", path)
		}
	}
	if v, _ := get(ok, "co2", "co2_g"); v == nil {
		t.Errorf("ok run has no co2: %v", ok["co2"])
	}
}
