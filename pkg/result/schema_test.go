package result

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite docs/schema/record.schema.json and quality.schema.json")

const schemaPath = "../../docs/schema/record.schema.json"

// TestSchemaFresh fails when the committed JSON Schema no longer matches the
// Go types; run with -update to refresh it.
func TestSchemaFresh(t *testing.T) {
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(schemaPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatalf("read committed schema: %v (run: go test ./pkg/result -run TestSchemaFresh -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale; run: go test ./pkg/result -run TestSchemaFresh -update", filepath.Clean(schemaPath))
	}
}

const qualitySchemaPath = "../../docs/schema/quality.schema.json"

// TestQualitySchemaFresh: the committed quality.json schema matches the Go
// type (refresh with -update, as TestSchemaFresh).
func TestQualitySchemaFresh(t *testing.T) {
	got, err := QualityJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(qualitySchemaPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(qualitySchemaPath)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is stale or missing (%v); run: go test ./pkg/result -run TestQualitySchemaFresh -update", filepath.Clean(qualitySchemaPath), err)
	}
}

// TestQualitySchemaCoversRecord: every key a fully populated quality
// record writes is declared, every required key written.
func TestQualitySchemaCoversRecord(t *testing.T) {
	raw, err := QualityJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	n, yes := 5, true
	q := QualityRecord{SchemaVersion: SchemaVersion, Study: "s", StudyHash: "h", RunID: "r", ConfigHash: "c", Attempt: 1,
		Status: StatusFailed, Source: "local-completions", Command: []string{"python3", "-m", "lm_eval"}, Runner: "local",
		LMEvalVersion: "0.4.9", GitHash: "g", Limit: f64(10), Score: f64(0.5), ScoreStderr: f64(0.01),
		Tasks: []QualityTask{{Task: "hellaswag", Metric: "acc_norm", Filter: "none", Value: 0.5, Stderr: f64(0.01),
			HigherIsBetter: &yes, NShot: &n, Version: "1.0", Samples: &n, SamplesTotal: &n, Weight: 1, Scored: true,
			Metrics: map[string]float64{"acc,none": 0.5}}},
		ResultsFile: "records/r/quality.lm-eval.json",
		Energy:      QualityEnergy{Sensor: "nvml", RawJ: f64(10), AdjustedJ: f64(5), MeanPowerW: f64(100), Unavailable: "x"},
		Timing:      QualityTiming{StartedAt: now, EndedAt: now},
		Error:       &RunError{Kind: "internal", Message: "m", ExitCode: 1}, Warnings: []string{"w"}}
	b, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	checkObject(t, "quality", schema, doc, schema["$defs"].(map[string]any))
}

func f64(v float64) *float64 { return &v }

func sampleRecord() Record {
	now := time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC)
	return Record{
		SchemaVersion: SchemaVersion, Study: "s", RunID: "r1", Cycle: 1, Attempt: 1,
		Model: "random:llama-15m", Backend: "native", Precision: "fp32",
		Config: json.RawMessage(`{"model":"random:llama-15m"}`), ConfigHash: "abc",
		Environment: json.RawMessage(`{"os":"linux"}`),
		Llem:        LlemInfo{Version: "0.1.0", Commit: "x"},
		Worker:      &WorkerInfo{Backend: "native", ProtocolVersion: 1, Versions: map[string]string{"go": "1.26"}, Runner: "local"},
		ModelInfo:   &ModelInfo{Parameters: 15, LoadTimeS: 0.1},
		Status:      StatusFailed,
		Error:       &RunError{Kind: "crash", Message: "m", ExitCode: 2, StderrTail: "boom"},
		Timing:      Timing{StartedAt: now, EndedAt: now, WallS: 1},
		Energy: Energy{Sensor: "estimate", Method: "estimate-tdp", RawJ: f64(1), BaselineAdjustedJ: f64(0.5),
			Baseline:   &Baseline{PowerW: 1, Method: "fresh", MeasuredAt: now},
			PerDevice:  []DeviceEnergy{{Name: "cpu", Kind: "estimate", EnergyJ: 1, BaselineW: f64(1)}},
			PerDomainJ: map[string]float64{"cpu": 1}, MeanPowerW: f64(1), PeakPowerW: f64(2),
			CrossCheck: &CrossCheck{CounterJ: 1, IntegralJ: 1}},
		Efficiency: Efficiency{Basis: "raw", EnergyPerOutputTokenJ: f64(0.1)},
		Prefill:    &PhaseMetrics{Tokens: 3, EnergyJ: f64(0.2)},
		Decode:     &PhaseMetrics{Tokens: 3},
		Thermal:    &Thermal{StartC: f64(40)},
		Warmup:     &Warmup{Prompts: 1},
		Flags:      []string{"estimate_used"},
		Warnings:   []string{},
		Timeseries: "timeseries/r1/cycle-1.parquet",
	}
}

// TestSchemaCoversRecord checks that every key a fully populated record
// writes is declared in the schema (additionalProperties is false, so a
// missing declaration would make valid records fail validation), and that
// every required key is written.
func TestSchemaCoversRecord(t *testing.T) {
	raw, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["$defs"].(map[string]any)
	b, err := json.Marshal(sampleRecord())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	checkObject(t, "record", schema, doc, defs)
}

func resolve(s map[string]any, defs map[string]any) map[string]any {
	for {
		if ref, ok := s["$ref"].(string); ok {
			s = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
			continue
		}
		if all, ok := s["allOf"].([]any); ok {
			s = all[0].(map[string]any)
			continue
		}
		if any_, ok := s["anyOf"].([]any); ok {
			s = any_[0].(map[string]any)
			continue
		}
		return s
	}
}

func checkObject(t *testing.T, path string, s map[string]any, doc map[string]any, defs map[string]any) {
	t.Helper()
	s = resolve(s, defs)
	props, ok := s["properties"].(map[string]any)
	if !ok {
		return // free-form object (config, environment, maps)
	}
	for k, v := range doc {
		ps, ok := props[k].(map[string]any)
		if !ok {
			t.Errorf("%s.%s is written but not in the schema", path, k)
			continue
		}
		if sub, ok := v.(map[string]any); ok {
			checkObject(t, path+"."+k, ps, sub, defs)
		}
		if arr, ok := v.([]any); ok {
			if items, ok := resolve(ps, defs)["items"].(map[string]any); ok {
				for _, it := range arr {
					if sub, ok := it.(map[string]any); ok {
						checkObject(t, path+"."+k+"[]", items, sub, defs)
					}
				}
			}
		}
	}
	for _, r := range s["required"].([]any) {
		if _, ok := doc[r.(string)]; !ok {
			t.Errorf("%s.%s is required by the schema but not written", path, r)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	in := sampleRecord()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(out)
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed the record:\n%s\n%s", b, b2)
	}
}
