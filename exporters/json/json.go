// Package json exports studies' records as one JSON object (records and
// per-run statistics), or as JSON lines (one record per line, for
// streaming tools such as jq -c or pandas.read_json(lines=True)). Records
// keep the field names of docs/schema/record.schema.json, with unmeasured
// values of failed runs as null (as in Parquet) and a co2 estimate added.
package json

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/pkg/result"
)

// Exporter is the json exporter.
type Exporter struct{ p exporters.Params }

// New returns a json exporter.
func New(p exporters.Params) (exporters.Exporter, error) { return &Exporter{p: p}, nil }

func init() {
	exporters.Register(exporters.Format{Name: "json", New: New, DefaultDest: func(string) string { return "" }})
}

var _ exporters.Exporter = (*Exporter)(nil)

// Description says what will be written.
func (e *Exporter) Description() string {
	kind := "JSON array of records"
	if e.p.JSONL {
		kind = "JSON lines (one record per line)"
	}
	dest := e.p.Dest
	if dest == "" || dest == "-" {
		dest = "stdout"
	}
	return kind + " to " + dest
}

// Export writes every record of s: as JSON lines, one record per line; as
// JSON, one object {"studies": [...], "records": [...], "runs": [...]}
// whose runs are the per-run statistics (exporters.Set.Runs).
func (e *Exporter) Export(ctx context.Context, s *exporters.Set) (err error) {
	w, err := exporters.Open(e.p)
	if err != nil {
		return err
	}
	defer w.Abort()
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	if !e.p.JSONL {
		names := make([]string, len(s.Studies))
		for i, st := range s.Studies {
			names[i] = st.Name()
		}
		b, _ := json.Marshal(names)
		fmt.Fprintf(bw, "{\n  \"schema_version\": %q,\n  \"studies\": %s,\n  \"records\": [\n", result.SchemaVersion, b)
	}
	for i, r := range s.Records() {
		if err := ctx.Err(); err != nil {
			return err
		}
		v := view(r, e.p.Carbon)
		if !e.p.JSONL {
			if i > 0 {
				bw.WriteString(",\n")
			}
			bw.WriteString("    ")
			b, err := json.MarshalIndent(v, "    ", "  ")
			if err != nil {
				return fmt.Errorf("encode record %s cycle %d: %w", r.RunID, r.Cycle, err)
			}
			bw.Write(b)
			continue
		}
		if err := enc.Encode(v); err != nil { // Encode appends the newline
			return fmt.Errorf("encode record %s cycle %d: %w", r.RunID, r.Cycle, err)
		}
	}
	if !e.p.JSONL {
		runs, _ := s.Runs()
		if runs == nil {
			runs = []exporters.RunRow{}
		}
		b, err := json.MarshalIndent(runs, "  ", "  ")
		if err != nil {
			return fmt.Errorf("encode runs: %w", err)
		}
		fmt.Fprintf(bw, "\n  ],\n  \"runs\": %s\n}\n", b)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return w.Commit()
}
