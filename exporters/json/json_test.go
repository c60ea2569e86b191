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
	if err := e.Export(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var back []result.Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, b[:200])
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
	if err := e.Export(context.Background(), s); err != nil {
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

func TestEmptyStudyIsEmptyArray(t *testing.T) {
	var buf bytes.Buffer
	e, _ := jsonexp.New(exporters.Params{Stdout: &buf})
	if err := e.Export(context.Background(), &result.Study{}); err != nil {
		t.Fatal(err)
	}
	var back []any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back) != 0 {
		t.Errorf("got %q (%v)", buf.String(), err)
	}
}
